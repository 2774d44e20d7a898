"""Escrow: a disabled track's new earnings are held for its case and go to whoever is right, to the micro,
once; a property test drives random notices, counter-notices, acceptances, court reports, withdrawals and
clock moves over tracks that keep earning, with `ninety ledger check`'s checks after every step."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ledger.accounts import payee_held, payee_payable
from rights import escrow, services
from rights.models import Case
from tests.rights.conftest import COUNTER


def test_held_while_disabled_then_released_split_as_earned(world, holder, admin):
    ada = world.artist("Ada")
    track = ada["tracks"][0]
    before = world.earn(track, 1_000_003)  # payable as usual
    notice_id = world.file(holder, [track])
    world.action(admin, notice_id)
    held = world.earn(track, 2_000_001, count=3)
    artist, co = ada["payee_id"], ada["collaborator_id"]
    assert world.balance(payee_held(artist)) + world.balance(payee_held(co)) == held
    # 90% of 6,000,003 rounded up is 5,400,003: 70% of it, largest remainder, is 3,780,002 (the collaborator 1,620,001)
    assert (world.balance(payee_held(artist)), world.balance(payee_held(co))) == (3_780_002, 1_620_001)
    payable_before = world.balance(payee_payable(artist)) + world.balance(payee_payable(co))
    assert payable_before == before
    case_id = world.case_ids(notice_id)[0]
    with world.sessions() as s:
        assert services.case_money(s, case_id).held == {"USD": held}
    world.withdraw(notice_id, holder)
    assert world.balance(payee_held(artist)) == world.balance(payee_held(co)) == 0
    assert world.balance(payee_payable(artist)) + world.balance(payee_payable(co)) == before + held
    with world.sessions() as s:
        money = services.case_money(s, case_id)
        assert (money.held, money.released_to_artist, money.to_claimant) == ({}, {"USD": held}, {})
        # Settling again moves nothing (never released twice).
        assert escrow.settle_case(s, s.get(Case, case_id), to_claimant_payee_id=None, at=world.clock.now(),
                                  reason="again") is None
    after = world.earn(track, 1_000_000)  # restored: payable again
    assert world.balance(payee_payable(artist)) + world.balance(payee_payable(co)) == before + held + after
    world.check_books()


def test_upheld_pays_the_claimant_as_a_payee(world, holder, admin):
    from catalog.models import Payee

    ada = world.artist("Ada")
    track = ada["tracks"][0]
    notice_id = world.file(holder, [track])
    world.action(admin, notice_id)
    held = world.earn(track, 3_333_333)
    case_id = world.case_ids(notice_id)[0]
    world.accept(case_id, ada["user"])
    with world.sessions() as s:
        payee = s.scalar(select(Payee).where(Payee.user_id == holder.id))
        assert payee is not None and payee.display_name == "Rhea Holder"
        assert services.case_money(s, case_id).to_claimant == {"USD": held}
    assert world.balance(payee_payable(payee.id)) == held
    assert world.balance(payee_held(ada["payee_id"])) == 0
    later = world.earn(track, 1_000_000)  # still down after an upheld case: the claimant's
    assert world.balance(payee_payable(payee.id)) == held + later
    assert world.balance(payee_payable(ada["payee_id"])) == 0
    world.check_books()


def test_held_money_is_never_in_a_payout_batch(world, holder, admin):
    from datetime import UTC, datetime

    from payments.services import add_manual_method, confirm_method, verify_method
    from royalties.models import PayoutItem
    from royalties.payouts import draft_batch
    from royalties.services import close_period

    held_artist = world.artist("Ada", collaborator=False)
    paid_artist = world.artist("Bob", collaborator=False)
    finance = world.user("finance", name="fin")
    for who in (held_artist, paid_artist):
        with world.unit() as s:
            method = add_manual_method(s, who["payee_id"], holder_name="Hand", instructions="PayPal",
                                       clock=world.clock)
            confirm_method(s, method.id, clock=world.clock)
            verify_method(s, method.id, clock=world.clock, verifier_id=finance.id)
    notice_id = world.file(holder, held_artist["tracks"])
    world.action(admin, notice_id)
    world.earn(held_artist["tracks"][0], 50_000_000)
    world.earn(paid_artist["tracks"][0], 50_000_000)
    assert world.balance(payee_held(held_artist["payee_id"])) == 45_000_000
    world.clock.set(datetime(2026, 11, 2, tzinfo=UTC))
    with world.unit() as s:
        close_period(s, world.app.extensions["ninety"].redis, "2026-10", clock=world.clock)
    with world.unit() as s:
        batch = draft_batch(s, "2026-10", currency="USD", drafted_by=finance.id, clock=world.clock,
                            threshold_micros=10_000_000)
        items = list(s.scalars(select(PayoutItem).where(PayoutItem.batch_id == batch.id)))
        assert [(i.payee_id, i.amount_micros) for i in items] == [(paid_artist["payee_id"], 45_000_000)]


OPS = ("earn", "notice", "counter", "accept", "court", "withdraw", "wait")


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 1), st.integers(1, 9_999_999),
                                st.integers(0, 20)), min_size=3, max_size=14))
def test_escrow_property(world, admin, steps):
    """held + released + paid to the claimant == the earnings during each case, to the micro, for every case;
    the track's payees get exactly what was earned outside cases plus what was released; books check."""
    holder = world.user("rights_holder", name="prop")
    ada = world.artist("Prop", tracks=2)
    tracks = ada["tracks"]
    payees = [ada["payee_id"], ada["collaborator_id"]]
    during: dict[int, int] = defaultdict(int)   # case -> earnings while it held the track
    outside = 0                                 # earnings no case held, to the payees
    after_upheld = 0                            # earnings of a track that stays down after an upheld case
    for op, which, amount, days in steps:
        track = tracks[which]
        with world.sessions() as s:
            case = s.scalar(select(Case).where(Case.track_id == track).order_by(Case.id.desc()).limit(1))
            case = (case.id, case.state) if case else None
        if op == "earn":
            earned = world.earn(track, amount)
            if case and case[1] in ("disabled", "countered"):
                during[case[0]] += earned
            elif case and case[1] == "upheld":
                after_upheld += earned
            else:
                outside += earned
        elif op == "notice" and (case is None or case[1] in ("restored", "withdrawn", "rejected")):
            notice_id = world.file(holder, [track])
            if days % 3 == 0:
                with world.unit() as s:
                    services.reject_notice(s, notice_id, s.merge(admin), reason="not substantiated",
                                           clock=world.clock, settings=world.settings)
            else:
                world.action(admin, notice_id)
        elif op == "counter" and case and case[1] == "disabled":
            with world.unit() as s:
                services.file_counter_notice(s, case[0], s.merge(ada["user"]), COUNTER, clock=world.clock,
                                             settings=world.settings)
        elif op == "accept" and case and case[1] in ("disabled", "countered"):
            with world.unit() as s:
                services.accept_notice(s, case[0], s.merge(ada["user"]), clock=world.clock, settings=world.settings)
        elif op == "court" and case and case[1] == "countered":
            with world.unit() as s:
                services.report_court_action(s, case[0], s.merge(holder), clock=world.clock,
                                             settings=world.settings, reference="Case 1")
        elif op == "withdraw" and case and case[1] in ("disabled", "countered"):
            with world.sessions() as s:
                notice_id = s.get(Case, case[0]).notice_id
            world.withdraw(notice_id, holder)
        elif op == "wait":
            world.clock.advance(days=days, hours=1)
            world.tick()
        world.check_books()
        _check(world, during, outside, after_upheld, payees, tracks, holder)


def _check(world, during, outside, after_upheld, payees, tracks, holder):
    from catalog.models import Payee

    with world.sessions() as s:
        to_claimant = released = 0
        for case in s.scalars(select(Case).where(Case.track_id.in_(tracks))):
            money = services.case_money(s, case.id)
            held, rel, claim = (money.held.get("USD", 0), money.released_to_artist.get("USD", 0),
                                money.to_claimant.get("USD", 0))
            assert held + rel + claim == during.get(case.id, 0), (case.id, case.state)
            if case.state in ("disabled", "countered"):
                assert rel == claim == 0
            elif case.state == "upheld":
                assert held == rel == 0
            else:
                assert held == claim == 0
            to_claimant += claim
            released += rel
        payable = sum(world.balance(payee_payable(p)) for p in payees)
        assert payable == outside + released
        claimant = s.scalar(select(Payee.id).where(Payee.user_id == holder.id))
        if claimant is not None:
            assert world.balance(payee_payable(claimant)) == to_claimant + after_upheld
        else:
            assert to_claimant == after_upheld == 0


@pytest.mark.parametrize("outcome", ["restored", "not_countered"])
def test_timer_outcomes_settle_the_escrow(world, holder, admin, outcome):
    ada = world.artist("Ada", collaborator=False)
    track = ada["tracks"][0]
    notice_id = world.file(holder, [track])
    world.action(admin, notice_id)
    held = world.earn(track, 1_234_567)
    case_id = world.case_ids(notice_id)[0]
    if outcome == "restored":
        world.counter(case_id, ada["user"])
    world.clock.advance(days=15)
    world.tick()
    with world.sessions() as s:
        money = services.case_money(s, case_id)
    if outcome == "restored":
        assert money.released_to_artist == {"USD": held}
        assert world.balance(payee_payable(ada["payee_id"])) == held
    else:
        assert money.to_claimant == {"USD": held}
        assert world.balance(payee_payable(ada["payee_id"])) == 0
    world.check_books()
