"""Payout batches: draft rules and reasons, four eyes, execution on the Connect and SEPA rails, reversals,
and the kill-and-resume guarantee (nobody paid twice, nobody skipped)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import xmlschema
from sqlalchemy import select

from core.errors import Forbidden
from ledger.accounts import PAYOUTS_IN_TRANSIT, STRIPE, payee_payable
from payments.sepa import xsd_path
from royalties.errors import BatchStateError, FourEyes, PeriodNotClosed
from royalties.models import PayoutExclusion, PayoutItem
from royalties.rails import default_rails
from royalties.services import (
    approve_batch,
    cancel_batch,
    draft_batch,
    execute_batch,
    place_hold,
    sepa_file,
)
from tests.royalties.helpers import assert_books_balance, close, connect, manual, sepa

TEN = 10_000_000
OCT5 = datetime(2026, 10, 5, tzinfo=UTC)


def _draft(world, currency="USD", who="fin"):
    with world.session() as s:
        batch = draft_batch(s, "2026-10", currency=currency, drafted_by=world.finance(who).id, clock=world.clock,
                            threshold_micros=TEN)
        s.commit()  # the service does not commit: the caller owns the transaction
        return batch


def _approve(world, batch_id, who="approver"):
    with world.session() as s:
        batch = approve_batch(s, batch_id, approved_by=world.finance(who).id, clock=world.clock)
        s.commit()
        return batch


def _execute(world, batch_id, stripe, **kwargs):
    with world.session() as s:
        return execute_batch(s, batch_id, rails=default_rails(stripe), clock=world.clock, **kwargs)


def test_draft_pays_whole_cents_carries_the_rest_and_says_why_others_are_left_out(world, stripe_client):
    paid = world.artist("Paid")
    small = world.artist("Small")
    nomethod = world.artist("Nomethod")
    held = world.artist("Held")
    unverified = world.artist("Unverified")
    world.gate_revenue(paid["tracks"][0], 13_717_420, OCT5)   # 90% = 12.345678
    world.gate_revenue(small["tracks"][0], 5_000_000, OCT5)
    world.gate_revenue(nomethod["tracks"][0], 30_000_000, OCT5)
    world.gate_revenue(held["tracks"][0], 30_000_000, OCT5)
    world.gate_revenue(unverified["tracks"][0], 30_000_000, OCT5)
    for artist in (paid, small, held):
        connect(world, stripe_client, artist["payee_id"])
    manual(world, unverified["payee_id"])
    with world.session() as s:
        place_hold(s, held["payee_id"], reason="identity check pending", placed_by=None, clock=world.clock)
        s.commit()

    with world.session() as s, pytest.raises(PeriodNotClosed):
        draft_batch(s, "2026-10", currency="USD", drafted_by=world.finance("fin").id, clock=world.clock,
                    threshold_micros=TEN)
    close(world)
    batch = _draft(world)
    assert _draft(world).id == batch.id  # drafting again returns the open draft

    with world.session() as s:
        items = s.scalars(select(PayoutItem).where(PayoutItem.batch_id == batch.id)).all()
        reasons = {e.payee_id: (e.reason_code, e.reason) for e in s.scalars(select(PayoutExclusion))}
    assert [(i.payee_id, i.amount_micros, i.carried_micros) for i in items] == [(paid["payee_id"], 12_340_000, 5_678)]
    assert items[0].reference == "Ninety royalties 2026-10: Paid LP"
    assert batch.total_micros == 12_340_000 and batch.item_count == 1
    assert reasons[small["payee_id"]] == ("below_threshold", "below the 10.00 USD threshold: carried to next month")
    assert reasons[nomethod["payee_id"]][0] == "no_payout_method"
    assert reasons[held["payee_id"]] == ("on_hold", "on hold: identity check pending")
    assert reasons[unverified["payee_id"]][0] == "method_unverified"


def test_four_eyes_and_finance_only(world, stripe_client):
    a = world.artist("Ana")
    world.gate_revenue(a["tracks"][0], 20_000_000, OCT5)
    connect(world, stripe_client, a["payee_id"])
    close(world)
    batch = _draft(world)
    with world.session() as s, pytest.raises(FourEyes):
        approve_batch(s, batch.id, approved_by=world.finance("fin").id, clock=world.clock)
    with world.session() as s, pytest.raises(Forbidden):
        approve_batch(s, batch.id, approved_by=a["user"].id, clock=world.clock)
    with world.session() as s, pytest.raises(BatchStateError):  # not approved yet
        execute_batch(s, batch.id, rails=default_rails(stripe_client), clock=world.clock)
    with world.session() as s, pytest.raises(Forbidden):
        draft_batch(s, "2026-10", currency="USD", drafted_by=a["user"].id, clock=world.clock, threshold_micros=TEN)
    assert _approve(world, batch.id).status == "approved"
    with world.session() as s, pytest.raises(BatchStateError):
        approve_batch(s, batch.id, approved_by=world.finance("third").id, clock=world.clock)


def test_execute_settles_on_connect_and_reverses_a_declined_transfer(world, stripe_client, connect_standin):
    ok = world.artist("Ok")
    bad = world.artist("Bad")
    world.gate_revenue(ok["tracks"][0], 20_000_000, OCT5)
    world.gate_revenue(bad["tracks"][0], 40_000_000, OCT5)
    ok_method = connect(world, stripe_client, ok["payee_id"])
    bad_method = connect(world, stripe_client, bad["payee_id"])
    close(world)
    batch = _draft(world)
    _approve(world, batch.id)
    connect_standin.disable_payouts(bad_method.stripe_account_id)
    stripe_before = world.balance(STRIPE)
    result = _execute(world, batch.id, stripe_client)
    assert result.status == "done" and result.counts == {"pending": 0, "in_transit": 0, "settled": 1, "reversed": 1}
    [transfer] = connect_standin.transfers_to(ok_method.stripe_account_id)
    assert transfer["amount"] == 1800 and transfer["description"] == "Ninety royalties 2026-10: Ok LP"
    assert world.balance(payee_payable(ok["payee_id"])) == 0
    assert world.balance(payee_payable(bad["payee_id"])) == 36_000_000  # reversed: owed again
    assert world.balance(PAYOUTS_IN_TRANSIT) == 0
    assert world.balance(STRIPE) == stripe_before - 18_000_000
    with world.session() as s:
        reversed_item = s.scalar(select(PayoutItem).where(PayoutItem.payee_id == bad["payee_id"]))
    assert reversed_item.status == "reversed" and reversed_item.failure_code == "account_invalid"
    assert "cannot receive transfers" in reversed_item.failure_reason
    # Executing a finished batch changes nothing.
    assert _execute(world, batch.id, stripe_client).counts["settled"] == 1
    assert len(connect_standin.transfers) == 1
    assert_books_balance(world)


class Killed(BaseException):
    """Stands for the process dying: not an Exception, so nothing on the way up handles it."""


@pytest.mark.parametrize("step", ["in_transit", "sent", "settled", "declined"])
def test_a_run_killed_at_any_step_resumes_without_paying_twice_or_skipping(world, stripe_client, connect_standin,
                                                                              step):
    artists = [world.artist(f"Artist {i}") for i in range(4)]
    methods = []
    for i, artist in enumerate(artists):
        world.gate_revenue(artist["tracks"][0], 20_000_000 + i * 1_111_111, OCT5)
        methods.append(connect(world, stripe_client, artist["payee_id"], email=f"a{i}@example.com"))
    if step == "declined":
        connect_standin.disable_payouts(methods[2].stripe_account_id)
    close(world)
    batch = _draft(world)
    _approve(world, batch.id)
    with world.session() as s:
        target = s.scalars(select(PayoutItem.id).where(PayoutItem.batch_id == batch.id)
                           .order_by(PayoutItem.id)).all()[2]

    def crash(seen_step, item):
        if seen_step == step and item.id == target:
            raise Killed()

    with pytest.raises(Killed):
        _execute(world, batch.id, stripe_client, checkpoint=crash)
    # A second run resumes where the first died.
    result = _execute(world, batch.id, stripe_client)
    assert result.status == "done"
    for i, method in enumerate(methods):
        transfers = connect_standin.transfers_to(method.stripe_account_id)
        if step == "declined" and i == 2:
            assert transfers == []
            assert world.balance(payee_payable(artists[i]["payee_id"])) > 0
        else:
            assert len(transfers) == 1, f"payee {i} paid {len(transfers)} times"
            assert world.balance(payee_payable(artists[i]["payee_id"])) < 10_000  # only the sub-cent rest
    assert world.balance(PAYOUTS_IN_TRANSIT) == 0
    assert_books_balance(world)


def test_an_unreachable_rail_stops_the_run_and_a_resume_finishes_it(world, stripe_client, connect_standin):
    a = world.artist("Ana")
    b = world.artist("Bo")
    for artist in (a, b):
        world.gate_revenue(artist["tracks"][0], 20_000_000, OCT5)
        connect(world, stripe_client, artist["payee_id"], email=f"{artist['payee_id']}@example.com")
    close(world)
    batch = _draft(world)
    _approve(world, batch.id)
    connect_standin.fail_next(1)
    stopped = _execute(world, batch.id, stripe_client)
    assert stopped.status == "executing" and stopped.counts["in_transit"] == 1 and stopped.stopped_reason
    assert world.balance(PAYOUTS_IN_TRANSIT) == 18_000_000
    done = _execute(world, batch.id, stripe_client)
    assert done.status == "done" and done.counts["settled"] == 2
    assert len(connect_standin.transfers) == 2
    assert_books_balance(world)


def test_sepa_items_make_a_valid_pain001_file(world):
    e = world.artist("Élodie", currency="EUR")
    world.gate_revenue(e["tracks"][0], 25_000_000, OCT5, currency="EUR")
    sepa(world, e["payee_id"])
    close(world)
    batch = _draft(world, currency="EUR")
    _approve(world, batch.id)
    with world.session() as s, pytest.raises(BatchStateError):
        sepa_file(s, batch.id, debtor_name="Ninety", debtor_iban="DE89370400440532013000", debtor_bic="COBADEFFXXX",
                  execution_date=date(2026, 11, 3))
    assert _execute(world, batch.id, None).status == "done"
    with world.session() as s:
        xml = sepa_file(s, batch.id, debtor_name="Ninety Music Ltd", debtor_iban="DE89370400440532013000",
                        debtor_bic="COBADEFFXXX", execution_date=date(2026, 11, 3))
    xmlschema.XMLSchema(xsd_path()).validate(xml.decode())
    assert b"<InstdAmt Ccy=\"EUR\">22.50</InstdAmt>" in xml and b"FR1420041010050500013M02606" in xml
    assert world.balance(payee_payable(e["payee_id"]), "EUR") == 0


def test_a_sepa_method_is_not_used_for_dollars_and_a_draft_can_be_cancelled(world):
    a = world.artist("Ana")
    world.gate_revenue(a["tracks"][0], 25_000_000, OCT5)
    sepa(world, a["payee_id"])
    close(world)
    batch = _draft(world)
    with world.session() as s:
        assert s.scalar(select(PayoutExclusion.reason_code)) == "rail_currency"
        assert cancel_batch(s, batch.id, cancelled_by=world.finance("fin").id, clock=world.clock).status == "cancelled"
        s.commit()
    assert _draft(world).id != batch.id
