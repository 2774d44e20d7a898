"""The subscriber pool's law, for random months (Hypothesis), through the real webhooks, refunds and close:

- every subscriber's 90% of net (less what refunds took back while the month was open, plus what an empty
  month carried in) lands on the tracks THAT subscriber played, by listening time then split sheet, to the
  micro, exactly as a plain model with `core.money.allocate` computes it;
- a subscriber who played nothing carries the pool on; the third empty month in a row sends it to
  income:unattributed;
- nothing is created or lost across carry-forwards and late refunds (recouped from the payees), the closed
  month's pool account ends at zero, and `ninety ledger check` passes after every close.

Each Hypothesis example is one month, so carry-forwards run across examples against one model.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from core.money import allocate, share_ceil
from ledger.accounts import INCOME_UNATTRIBUTED, payee_payable
from royalties.services import close_period
from sales import subscriptions
from sales.subscription_models import Invoice, SubscriberPoolPayee, SubscriberPoolShare
from sales.subscriptions import subscriber_pool
from tests.royalties.test_properties import ledger_check

SUBSCRIBERS = 4
TRACKS = 4

month_plan = st.fixed_dictionaries({
    "payments": st.lists(st.tuples(st.integers(0, SUBSCRIBERS - 1), st.integers(1, 3000), st.integers(0, 100)),
                         min_size=1, max_size=6),
    "failures": st.lists(st.integers(0, SUBSCRIBERS - 1), max_size=2),
    # The last subscriber never plays (pays every month): carry-forward and the third empty month always run.
    # Listening times from a few values, so that equal remainders (the tie-breaks) come up.
    "plays": st.lists(st.tuples(st.integers(0, SUBSCRIBERS - 2), st.integers(0, TRACKS - 1),
                                st.one_of(st.sampled_from([30_000, 60_000, 90_000]), st.integers(30_000, 900_000))),
                      min_size=1, max_size=8),
    "downloads": st.lists(st.tuples(st.integers(0, SUBSCRIBERS - 2), st.integers(0, TRACKS - 1)), max_size=3),
    "refunds": st.lists(st.tuples(st.integers(0, 5), st.integers(1, 100)), max_size=2),
    "late_refund": st.one_of(st.none(), st.tuples(st.integers(0, 5), st.integers(1, 100))),
})


class Fees:
    """localstripe reports no fees; this adds the drawn fee to the real intent, as Stripe's would be."""

    def __init__(self, stripe):
        self.stripe, self.by_intent = stripe, {}

    def retrieve_payment_intent(self, intent_id):
        return replace(self.stripe.retrieve_payment_intent(intent_id), fee_minor=self.by_intent.get(intent_id, 0))


def test_each_subscribers_pool_follows_their_own_listening_to_the_micro(pworld):
    world = pworld
    artists = [world.artist(f"Artist {i}", tracks=2 if i == 0 else 1) for i in range(3)]
    collab = world.collaborator("collab@example.com", artists[0]["artist_id"])
    tracks = artists[0]["tracks"] + [artists[1]["tracks"][0], artists[2]["tracks"][0]]
    world.split(tracks[1], [(artists[0]["payee_id"], 6_667), (collab, 3_333)])
    sheets = {tracks[0]: [(artists[0]["payee_id"], 10_000)],
              tracks[1]: [(artists[0]["payee_id"], 6_667), (collab, 3_333)],
              tracks[2]: [(artists[1]["payee_id"], 10_000)], tracks[3]: [(artists[2]["payee_id"], 10_000)]}
    payees = sorted({p for sheet in sheets.values() for p, _ in sheet})
    finance = world.finance("fin")
    users, stripe_subs = [], []
    for i in range(SUBSCRIBERS):
        user = world.listener(f"sub{i}")
        _, stripe_sub, status, _ = world.subscribe(user)
        assert status == "active"
        users.append(user)
        stripe_subs.append(stripe_sub)
    fees = Fees(world.stripe)
    state = {"month": 0, "carried": dict.fromkeys(range(SUBSCRIBERS), 0), "streak": dict.fromkeys(range(SUBSCRIBERS), 0),
             "credited": 0, "taken_back": 0, "last_invoices": []}

    @settings(max_examples=10)
    @given(plan=month_plan)
    def month(plan):
        start = datetime(2026, 10 + state["month"], 1, tzinfo=UTC) if state["month"] < 3 else \
            datetime(2027, state["month"] - 2, 1, tzinfo=UTC)
        state["month"] += 1
        period = f"{start.year:04d}-{start.month:02d}"
        world.clock.set(start + timedelta(hours=1))
        pooled = dict.fromkeys(range(SUBSCRIBERS), 0)
        invoices = []
        for who, amount_minor, fee_pct in [*plan["payments"], (SUBSCRIBERS - 1, 499, 7)]:
            event = world.invoice_event("invoice.payment_succeeded", stripe_subs[who], amount_minor=amount_minor,
                                        start=start, end=start + timedelta(days=30))
            fee_minor = amount_minor * fee_pct // 100
            fees.by_intent[event["data"]["object"]["payment_intent"]] = fee_minor
            assert world.apply(event, stripe=fees) == "invoice_paid"
            assert world.apply(event, stripe=fees) == "duplicate"
            pool = share_ceil((amount_minor - fee_minor) * 10_000, 9, 10)
            pooled[who] += pool
            state["credited"] += pool
            invoices.append((who, event["data"]["object"]["id"], pool))
        for who in plan["failures"]:
            world.apply(world.invoice_event("invoice.payment_failed", stripe_subs[who], amount_minor=499,
                                            start=start, end=start + timedelta(days=30)))
        day = start + timedelta(days=3)
        weights = {i: {} for i in range(SUBSCRIBERS)}
        for who, track, heard in plan["plays"]:
            world.play(users[who].id, tracks[track], day, heard)
            weights[who][tracks[track]] = weights[who].get(tracks[track], 0) + heard
        for who, track in plan["downloads"]:
            world.download(f"u{users[who].id}", tracks[track], day, via="subscriber")
            weights[who][tracks[track]] = weights[who].get(tracks[track], 0) + 1000  # no audio: a 1 s track
        # Refunds while the month is open take the pool's part back from that subscriber's pool.
        world.clock.set(start + timedelta(days=5))
        for index, percent in plan["refunds"]:
            if index >= len(invoices):
                continue
            who, invoice_id, _ = invoices[index]
            taken = _refund(world, finance, invoice_id, percent)
            if taken is not None:
                pooled[who] -= taken
                state["taken_back"] += taken
        # A refund of last month's invoice, after its close: recouped from where that pool went.
        if plan["late_refund"] and state["last_invoices"]:
            index, percent = plan["late_refund"]
            who, invoice_id, _ = state["last_invoices"][index % len(state["last_invoices"])]
            taken = _refund(world, finance, invoice_id, percent)
            if taken is not None:
                state["taken_back"] += taken
                if state["carried"][who]:  # last month carried that pool on: the refund takes it from there
                    state["carried"][who] -= taken

        world.clock.set(start + timedelta(days=33))
        with world.session() as s:
            close_period(s, world.redis, period, clock=world.clock)

        # The model.
        expected = []
        for i in range(SUBSCRIBERS):
            balance = pooled[i] + state["carried"][i]
            state["carried"][i] = 0
            if balance <= 0:
                continue
            played = weights[i]
            if not played:
                state["streak"][i] += 1
                kind = "unattributed" if state["streak"][i] >= 3 else "carried"
                expected.append((users[i].id, kind, None, None, balance))
                if kind == "carried":
                    state["carried"][i] = balance
                else:
                    state["streak"][i] = 0
                continue
            state["streak"][i] = 0
            ordered = sorted(played)
            for track_id, part in zip(ordered, allocate(balance, [played[t] for t in ordered]), strict=True):
                sheet = sheets[track_id]
                for (payee_id, _), amount in zip(sheet, allocate(part, [bp for _, bp in sheet]), strict=True):
                    if amount:
                        expected.append((users[i].id, "track", track_id, payee_id, amount))
        with world.session() as s:
            got = [(r.subscriber_id, r.kind, r.track_id, r.payee_id, r.amount_micros) for r in s.scalars(
                select(SubscriberPoolShare).where(SubscriberPoolShare.period == period))]
        assert sorted(got, key=str) == sorted(expected, key=str)
        # Per payee and track: what the month's pools paid, and whose pools those were.
        by_part: dict[tuple[int, int], tuple[int, list]] = {}
        for subscriber_id, kind, track_id, payee_id, amount in expected:
            if kind == "track":
                total, whose = by_part.get((payee_id, track_id), (0, []))
                by_part[(payee_id, track_id)] = (total + amount, sorted(whose + [subscriber_id]))
        with world.session() as s:
            rows = s.scalars(select(SubscriberPoolPayee).where(SubscriberPoolPayee.period == period)).all()
            assert {(r.payee_id, r.track_id): (r.amount_micros, sorted(r.subscriber_ids)) for r in rows} == by_part
        assert world.balance(subscriber_pool(period)) == 0
        # Nothing created or lost: what pools received less refunds is with payees, unattributed, or carried.
        following = f"{(start + timedelta(days=40)).year:04d}-{(start + timedelta(days=40)).month:02d}"
        with world.session() as s:
            carried_on = s.execute(text(
                "SELECT coalesce(sum(CASE WHEN p.credit THEN p.amount_micros ELSE -p.amount_micros END), 0) "
                "FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id "
                "WHERE a.code = :code AND p.ref LIKE 'subscriber:%' AND p.entry_id IN "
                "(SELECT id FROM ledger_entries WHERE metadata->>'event' IN "
                "('subscriber_pool_distribution', 'subscription_refund'))"),
                {"code": subscriber_pool(following)}).scalar()
        paid_out = sum(world.balance(payee_payable(p)) for p in payees) + world.balance(INCOME_UNATTRIBUTED)
        assert paid_out + carried_on == state["credited"] - state["taken_back"]
        assert carried_on == sum(state["carried"].values())
        ledger_check(world.app)
        state["last_invoices"] = invoices

    month()


def _refund(world, finance, stripe_invoice_id: str, percent: int) -> int | None:
    with world.session() as s:
        invoice = s.scalars(select(Invoice).where(Invoice.stripe_invoice_id == stripe_invoice_id)).one()
        left = invoice.gross_micros - invoice.refunded_micros
        amount = (left // 10_000 * percent // 100) * 10_000
        invoice_id = invoice.id
    if amount <= 0:
        return None
    with world.unit() as s:
        return subscriptions.refund_invoice(s, world.gateway, invoice_id, amount, by=finance,
                                            clock=world.clock).pool_micros
