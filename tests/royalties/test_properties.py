"""Properties of a month, for random months (Hypothesis), through the real flush, close, draft and run:

- the payees' earnings equal 90% of attributable revenue by the policy (artist side rounded up per entry),
  to the micro, with key-mode pools following each listener's downloads;
- every payout plus its carried rest equals the payee's balance at the cut-off;
- nothing is created or lost: the books balance, the pool and in-transit accounts end at zero, and the
  ledger's own check passes after every close and every run.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from core.money import allocate, share_ceil
from ledger.accounts import INCOME_UNATTRIBUTED, PAYOUTS_IN_TRANSIT, STRIPE, advertiser_prepaid, listener_pool
from payments.services import add_manual_method, confirm_method, verify_method
from royalties.models import PayoutItem
from royalties.rails import default_rails
from royalties.services import approve_batch, close_period, draft_batch, execute_batch
from tests.royalties.helpers import assert_books_balance

LISTENERS = ["la", "lb", "lc"]

impression = st.one_of(
    st.tuples(st.just("gate"), st.integers(0, 3), st.integers(1, 40_000_000)),
    st.tuples(st.just("key"), st.integers(0, len(LISTENERS) - 1), st.integers(1, 40_000_000)),
)
month_plan = st.fixed_dictionaries({
    "impressions": st.lists(impression, min_size=1, max_size=25),
    "downloads": st.lists(st.tuples(st.integers(0, len(LISTENERS) - 1), st.integers(0, 3)), max_size=8),
    "collab_bp": st.integers(1, 9_999),
    "with_method": st.lists(st.booleans(), min_size=3, max_size=3),
})


def ledger_check(app) -> None:
    """`ninety ledger check` when the ledger's CLI offers it."""
    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from app.cli import main

    ledger_cmd = main.commands.get("ledger")
    if ledger_cmd is not None and "check" in getattr(ledger_cmd, "commands", {}):
        info = ScriptInfo(create_app=lambda: app, set_debug_flag=False, load_dotenv_defaults=False)
        result = CliRunner().invoke(main, ["ledger", "check"], obj=info)
        assert result.exit_code == 0, result.output


def test_random_months_pay_ninety_percent_and_lose_nothing(world, rapp):
    from adserver.stream import StreamImpression
    from royalties.flush import flush_impressions

    artists = [world.artist(f"Artist {i}", tracks=2) for i in range(3)]
    collab = world.collaborator("collab@example.com", artists[0]["artist_id"])
    tracks = [artists[0]["tracks"][0], artists[0]["tracks"][1], artists[1]["tracks"][0], artists[2]["tracks"][1]]
    fin, approver = world.finance("fin"), world.finance("approver")
    with world.unit() as s:
        from ledger import services as ledger

        ledger.post(s, ledger.Entry("fund", datetime(2026, 1, 1, tzinfo=UTC), "funding", [
            ledger.Posting(STRIPE, "debit", 10**13, "USD"),
            ledger.Posting(advertiser_prepaid(1), "credit", 10**13, "USD")], metadata={"event": "advertiser_funding"}))
    state = {"month": 0}

    @settings(max_examples=6)
    @given(plan=month_plan)
    def month(plan):
        state["month"] += 1
        start = datetime(2026, 10, 1, tzinfo=UTC) + timedelta(days=31 * state["month"])
        start = start.replace(day=1)
        period = f"{start.year:04d}-{start.month:02d}"
        world.clock.set(start + timedelta(hours=1))
        world.split(tracks[0], [(artists[0]["payee_id"], 10_000 - plan["collab_bp"]), (collab, plan["collab_bp"])])
        day = start + timedelta(days=3)
        for listener, track in plan["downloads"]:
            world.download(LISTENERS[listener], tracks[track], day)
        imps = []
        for kind, who, price in plan["impressions"]:
            imps.append(StreamImpression(
                decision_id=uuid.uuid4().hex, campaign_id=1, advertiser_id=1, creative_id=1,
                slot="gate" if kind == "gate" else "browse", track_id=tracks[who] if kind == "gate" else None,
                listener_id=LISTENERS[who] if kind == "key" else f"g{who}", mode=kind, price_micros=price,
                currency="USD", at=day))
        with world.session() as s:
            opening = _payee_balances(s)
            flush_impressions(s, imps)
            s.commit()

        # The model: per track, 90% rounded up then the split sheet; the pool by listener, then downloads.
        expected: dict[int, int] = {}
        sheets = {tracks[0]: [(artists[0]["payee_id"], 10_000 - plan["collab_bp"]), (collab, plan["collab_bp"])],
                  tracks[1]: [(artists[0]["payee_id"], 10_000)], tracks[2]: [(artists[1]["payee_id"], 10_000)],
                  tracks[3]: [(artists[2]["payee_id"], 10_000)]}
        gate_totals: dict[int, int] = {}
        key_by_listener: dict[str, int] = {}
        for imp in imps:
            if imp.mode == "gate":
                gate_totals[imp.track_id] = gate_totals.get(imp.track_id, 0) + imp.price_micros
            else:
                key_by_listener[imp.listener_id] = key_by_listener.get(imp.listener_id, 0) + imp.price_micros
        for track_id, total in gate_totals.items():
            sheet = sheets[track_id]
            for (payee, _), part in zip(sheet, allocate(share_ceil(total, 9, 10), [bp for _, bp in sheet]), strict=True):
                expected[payee] = expected.get(payee, 0) + part
        unattributed = 0
        if key_by_listener:
            listeners = sorted(key_by_listener)
            pool = share_ceil(sum(key_by_listener.values()), 9, 10)
            for lid, part in zip(listeners, allocate(pool, [key_by_listener[x] for x in listeners]), strict=True):
                counts: dict[int, int] = {}
                for listener, track in plan["downloads"]:
                    if LISTENERS[listener] == lid:
                        counts[tracks[track]] = counts.get(tracks[track], 0) + 1
                if not counts:
                    unattributed += part
                    continue
                ordered = sorted(counts)
                for track_id, track_part in zip(ordered, allocate(part, [counts[t] for t in ordered]), strict=True):
                    sheet = sheets[track_id]
                    for (payee, _), amount in zip(sheet, allocate(track_part, [bp for _, bp in sheet]), strict=True):
                        expected[payee] = expected.get(payee, 0) + amount
        revenue = sum(i.price_micros for i in imps)
        entries = len(gate_totals) + (1 if key_by_listener else 0)
        artists_side = sum(expected.values()) + unattributed
        assert revenue * 9 <= artists_side * 10 <= revenue * 9 + 10 * entries  # >= 90%, by at most 1 micro/entry

        for i, has_method in enumerate(plan["with_method"]):
            if has_method:
                with world.unit() as s:
                    method = add_manual_method(s, artists[i]["payee_id"], holder_name="A", instructions="by hand",
                                               clock=world.clock)
                    confirm_method(s, method.id, clock=world.clock)  # the payee's emailed link
                    verify_method(s, method.id, clock=world.clock, verifier_id=fin.id)

        unattributed_before = world.balance(INCOME_UNATTRIBUTED)
        world.clock.set((start + timedelta(days=40)).replace(day=2))
        with world.session() as s:
            close_period(s, world.redis, period, clock=world.clock)
        ledger_check(rapp)
        assert world.balance(listener_pool(period)) == 0
        assert world.balance(INCOME_UNATTRIBUTED) - unattributed_before == unattributed
        with world.session() as s:
            at_cutoff = _payee_balances(s)
        for payee in set(at_cutoff) | set(opening) | set(expected):
            assert at_cutoff.get(payee, 0) - opening.get(payee, 0) == expected.get(payee, 0), payee

        with world.session() as s:
            batch = draft_batch(s, period, currency="USD", drafted_by=fin.id, clock=world.clock,
                                threshold_micros=10_000_000)
            approve_batch(s, batch.id, approved_by=approver.id, clock=world.clock)
            s.commit()
            result = execute_batch(s, batch.id, rails=default_rails(None), clock=world.clock)
            assert result.status == "done"
            items = s.scalars(select(PayoutItem).where(PayoutItem.batch_id == batch.id)).all()
        ledger_check(rapp)
        for item in items:
            assert item.amount_micros + item.carried_micros == at_cutoff[item.payee_id]
            assert item.amount_micros % 10_000 == 0 and 0 <= item.carried_micros
            assert world.balance(f"liabilities:payee:{item.payee_id}:payable") == item.carried_micros
        assert world.balance(PAYOUTS_IN_TRANSIT) == 0
        assert_books_balance(world)

    month()


def _payee_balances(session) -> dict[int, int]:
    rows = session.execute(text("SELECT split_part(code, ':', 3)::int, balance_micros FROM ledger_accounts "
                                "WHERE code ~ :pattern AND currency = 'USD'"),
                       {"pattern": r"^liabilities:payee:[0-9]+:payable$"}).all()
    return {int(r[0]): int(r[1]) for r in rows}
