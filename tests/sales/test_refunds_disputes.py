"""Refunds and disputes in the books, and events that come late, twice or out of order."""

from __future__ import annotations

import pytest

from core.errors import NinetyError
from ledger.accounts import INCOME_SALES, PROCESSING_FEES, STRIPE, payee_payable


def _payees(shop, release) -> int:
    return shop.balance(payee_payable(release["payee_id"])) + shop.balance(payee_payable(release["collaborator_id"]))


def test_a_partial_refund_reverses_the_sale_proportionally_and_the_fee_stays_the_platforms(shop):
    release = shop.release(price="10.00", tracks=2)
    order_id = shop.buy(shop.user(), release).order_id
    fee = 590_000  # 2.9% of 10.00 + 0.30
    artists = -(-(10_000_000 - fee) * 9 // 10)
    assert _payees(shop, release) == artists
    shop.refund(order_id, "2.50")
    assert shop.balance(STRIPE) == 10_000_000 - fee - 2_500_000
    assert _payees(shop, release) == artists - artists * 2_500_000 // 10_000_000
    assert shop.balance(PROCESSING_FEES) == fee  # Stripe keeps its fee on a refund; the platform bears it
    shop.refund(order_id)  # the rest
    assert _payees(shop, release) == 0  # a sale refunded in full takes back exactly what it paid
    assert shop.balance(INCOME_SALES) == 0
    assert shop.balance(INCOME_SALES) - shop.balance(PROCESSING_FEES) == -fee  # the platform lost the fee
    assert shop.balance(STRIPE) == -fee
    order = shop.order(order_id)
    assert (order.refunded_micros, order.refundable_micros, order.owned) == (10_000_000, 0, False)
    shop.books_ok()


def test_over_refunds_are_refused_by_ninety_before_stripe_is_asked(shop):
    release = shop.release(price="3.00", tracks=1)
    order_id = shop.buy(shop.user(), release).order_id
    with pytest.raises(NinetyError) as refused:
        shop.refund(order_id, "3.01")
    assert refused.value.code == "refund_exceeds_remaining"
    assert shop.standin.refunds == {}
    shop.refund(order_id, "1.00")
    with pytest.raises(NinetyError):
        shop.refund(order_id, "2.01")
    assert len(shop.standin.refunds) == 1


def test_a_refund_made_at_stripe_is_booked_from_its_event_once(shop):
    release = shop.release(price="6.00", tracks=1)
    checkout = shop.buy(shop.user(), release)
    refund = shop.stripe.refund(payment_intent=checkout.payment_intent_id, amount_minor=100, idempotency_key="dash")
    charge = shop.standin.charges[shop.standin.payment_intents[checkout.payment_intent_id]["latest_charge"]]
    event = shop.standin.event("charge.refunded", charge)
    assert shop.deliver(event) == "refunds_booked:1"
    assert shop.deliver(shop.standin.event("refund.created", shop.standin.refunds[refund.id])) == "refunds_current"
    assert shop.order(checkout.order_id).refunded_micros == 1_000_000


def test_a_refund_event_before_the_payment_event_applies_both_in_order(shop):
    release = shop.release(price="6.00", tracks=1)
    checkout = shop.checkout(shop.user(), release)
    succeeded = shop.pay(checkout)
    shop.stripe.refund(payment_intent=checkout.payment_intent_id, amount_minor=200, idempotency_key="early")
    charge = shop.standin.charges[shop.standin.payment_intents[checkout.payment_intent_id]["latest_charge"]]
    assert shop.deliver(shop.standin.event("charge.refunded", charge)) == "refunds_booked:1"
    order = shop.order(checkout.order_id)
    assert (order.status, order.refunded_micros) == ("paid", 2_000_000)
    assert shop.deliver(succeeded) == "already_paid"
    shop.books_ok()


def test_an_event_for_a_payment_that_has_not_succeeded_is_refused_for_a_retry(shop):
    from sales.errors import WebhookRefused

    release = shop.release(price="6.00", tracks=1)
    checkout = shop.checkout(shop.user(), release)
    intent = shop.standin.payment_intents[checkout.payment_intent_id]
    event = shop.standin.event("charge.refunded", {"object": "charge", "id": "ch_x", "payment_intent": intent["id"]})
    with pytest.raises(WebhookRefused):
        shop.deliver(event)
    shop.pay(checkout)
    assert shop.deliver(event) == "refunds_current"  # the same event, delivered again later, now applies
    assert shop.order(checkout.order_id).status == "paid"


def test_a_dispute_reverses_and_books_its_fee_and_a_won_one_restores(shop):
    release = shop.release(price="20.00", tracks=2)
    checkout = shop.buy(shop.user(), release)
    fee = 20_000_000 * 29 // 1000 + 300_000  # 0.88
    artists = _payees(shop, release)
    dispute = shop.standin.dispute(checkout.payment_intent_id, fee=1500)
    assert shop.deliver(shop.standin.event("charge.dispute.created", dispute)) == "dispute_opened"
    assert _payees(shop, release) == 0
    assert shop.balance(STRIPE) == 20_000_000 - fee - 20_000_000 - 15_000_000
    assert shop.balance(PROCESSING_FEES) == fee + 15_000_000
    with pytest.raises(NinetyError) as while_open:
        shop.refund(checkout.order_id, "1.00")
    assert while_open.value.code == "order_disputed"
    closed = shop.standin.close_dispute(dispute["id"], won=True)
    assert shop.deliver(shop.standin.event("charge.dispute.closed", closed)) == "dispute_won"
    assert _payees(shop, release) == artists
    assert shop.balance(PROCESSING_FEES) == fee + 15_000_000  # the dispute fee stays the platform's
    assert shop.deliver(shop.standin.event("charge.dispute.closed", closed)) == "dispute_current"
    order = shop.order(checkout.order_id)
    assert (order.disputed_micros, order.owned) == (0, True)
    # Won or not, Stripe refunds no charged-back payment: Ninety says so itself, and nothing moves.
    refunds_at_stripe = len(shop.standin.refunds)
    with pytest.raises(NinetyError) as after_won:
        shop.refund(checkout.order_id, "1.00")
    assert after_won.value.code == "order_disputed" and "dispute was won" in after_won.value.message
    assert len(shop.standin.refunds) == refunds_at_stripe and _payees(shop, release) == artists
    shop.books_ok()


def test_a_lost_dispute_keeps_the_reversal_and_a_closed_event_alone_opens_and_closes(shop):
    release = shop.release(price="5.00", tracks=1)
    lost = shop.buy(shop.user(), release)
    dispute = shop.standin.dispute(lost.payment_intent_id, fee=1500)
    closed = shop.standin.close_dispute(dispute["id"], won=False)
    assert shop.deliver(shop.standin.event("charge.dispute.closed", closed)) == "dispute_opened,dispute_lost"
    assert _payees(shop, release) == 0
    assert shop.order(lost.order_id).owned is False

    won = shop.buy(shop.user(), release)
    before = _payees(shop, release)
    dispute = shop.standin.dispute(won.payment_intent_id, fee=1500)
    closed = shop.standin.close_dispute(dispute["id"], won=True, fee_returned=True)
    # created was never delivered; closed (won, fee returned) arrives alone: reversal and restoration both
    assert shop.deliver(shop.standin.event("charge.dispute.closed", closed)) == "dispute_opened,dispute_won"
    assert _payees(shop, release) == before  # reversed and restored: the payees are where they were
    assert shop.balance(PROCESSING_FEES) == 2 * shop.standin.fee_for(500) * 10_000 + 15_000_000  # the lost one's
    shop.books_ok()


def test_a_refund_that_fails_at_stripe_returns_the_money_to_the_payees_once(shop):
    from sqlalchemy import text

    from ledger.services import get_entry
    from sales.models import OrderRefund

    release = shop.release(price="10.00", tracks=2)
    order_id = shop.buy(shop.user(), release).order_id
    payees, stripe, income = _payees(shop, release), shop.balance(STRIPE), shop.balance(INCOME_SALES)
    refund_id = shop.refund(order_id, "4.00")
    refunded = payees - _payees(shop, release)
    assert refunded == payees * 4_000_000 // 10_000_000
    failed = shop.standin.fail_refund(refund_id)
    client = shop.app.test_client()
    first = shop.standin.event("refund.failed", failed)
    outcomes = []
    for event in (first, shop.standin.event("charge.refund.updated", failed), first):
        payload, header = shop.signed(event)
        response = client.post("/webhooks/stripe", data=payload,
                               headers={"Stripe-Signature": header, "Content-Type": "application/json"})
        assert response.status_code == 200, response.get_data(as_text=True)
        outcomes.append(response.get_json()["outcome"])
    assert outcomes == ["refunds_failed:1", "refunds_current", "duplicate"]
    assert (_payees(shop, release), shop.balance(STRIPE), shop.balance(INCOME_SALES)) == (payees, stripe, income)
    order = shop.order(order_id)
    assert (order.refunded_micros, order.refundable_micros, order.owned) == (0, 10_000_000, True)
    with shop.sessions() as s:
        booked = s.scalar(text("SELECT entry_id FROM sales_refunds WHERE stripe_refund_id = :r"), {"r": refund_id})
        entry = get_entry(s, get_entry(s, booked).reversed_by_id)
        row = s.get(OrderRefund, s.scalar(text("SELECT id FROM sales_refunds WHERE stripe_refund_id = :r"),
                                          {"r": refund_id}))
        assert (row.status, row.failure_reason) == ("failed", "expired_or_canceled_card")
        assert "Failed at Stripe" not in row.reason  # the requester's reason stays theirs
    assert entry.metadata["event"] == "refund" and entry.metadata["failed"] is True
    assert sum(p.amount_micros for p in entry.postings if p.side == "credit" and p.account.startswith(
        "liabilities:payee:")) == refunded
    assert sum(p.amount_micros for p in entry.postings if p.side == "debit") == \
        sum(p.amount_micros for p in entry.postings if p.side == "credit")
    shop.books_ok()
    page = _finance_page(shop, order_id)
    assert 'data-refund-status="failed"' in page and "Failed at Stripe (expired_or_canceled_card)" in page
    shop.refund(order_id)  # refundable in full again, and the books stay proportional
    assert _payees(shop, release) == 0
    shop.books_ok()


def test_a_partially_refunded_then_disputed_sale(shop):
    release = shop.release(price="10.00", tracks=1, shares=(6000, 4000))
    checkout = shop.buy(shop.user(), release)
    artists = _payees(shop, release)
    shop.refund(checkout.order_id, "4.00")
    dispute = shop.standin.dispute(checkout.payment_intent_id, amount=600, fee=1500)
    assert shop.deliver(shop.standin.event("charge.dispute.created", dispute)) == "dispute_opened"
    assert _payees(shop, release) == 0 and artists > 0
    order = shop.order(checkout.order_id)
    assert (order.refunded_micros, order.disputed_micros, order.refundable_micros) == (4_000_000, 6_000_000, 0)
    shop.books_ok()


def test_payee_balances_may_go_negative_and_later_earnings_recoup_them(shop):
    from ledger import services as ledger
    from ledger.accounts import BANK

    release = shop.release(price="10.00", tracks=1, shares=(9000, 1000))
    checkout = shop.buy(shop.user(), release)
    payee = payee_payable(release["payee_id"])
    paid_out = shop.balance(payee)
    with shop.unit() as s:  # the artist was paid out in between
        ledger.post(s, ledger.Entry("payout:test", shop.clock.now(), "payout",
                                    [ledger.Posting(payee, "debit", paid_out, "USD"),
                                     ledger.Posting(BANK, "credit", paid_out, "USD")], {"event": "payout"}))
    shop.refund(checkout.order_id)
    assert shop.balance(payee) == -paid_out
    shop.buy(shop.user(), release)
    assert shop.balance(payee) == 0  # the next sale's share recoups it
    shop.books_ok()


def _finance_page(shop, order_id: int) -> str:
    from tests.conftest import login

    client = shop.app.test_client()
    login(client, shop.user(roles=("finance",), name="finance"))
    page = client.get(f"/finance/sales/orders/{order_id}")
    assert page.status_code == 200
    return page.get_data(as_text=True)
