"""Succeeded payments applied as a batch in one transaction (what POST /webhooks/stripe does with the
deliveries that arrive together): each fulfilled once, duplicates inside and across batches are duplicates,
an event of another kind and an unknown intent are answered alone, and the books balance."""

from __future__ import annotations

from sqlalchemy import func, select

from ledger.models import JournalEntry
from sales.models import WebhookEvent
from sales.webhooks import WebhookContext, apply_batch, prefetch
from tests.conftest import CliRunner


def _batch(shop, events):
    ctx = WebhookContext(shop.stripe, shop.clock, shop.redis)
    items = [(event, prefetch(ctx, event)) for event in events]
    with shop.unit() as s:
        return apply_batch(s, ctx, items)


def test_a_batch_fulfils_each_sale_once_and_answers_every_delivery(shop, smtp):
    release = shop.release(price="5.00", tracks=2)
    buyers = [shop.user() for _ in range(3)]
    checkouts = [shop.checkout(buyer, release) for buyer in buyers]
    paid = [shop.pay(checkout) for checkout in checkouts]
    stranger = shop.standin.event("payment_intent.succeeded", {**paid[0]["data"]["object"], "id": "pi_not_ours"})
    refunded_later = shop.standin.event("charge.refunded", {"object": "charge", "id": "ch_x",
                                                            "payment_intent": checkouts[1].payment_intent_id})
    outcomes = _batch(shop, [paid[0], paid[1], paid[0], refunded_later, paid[2], stranger])
    # the refund event is applied first, on its own: it applies its payment from Stripe's state, which the
    # batch then finds paid
    assert outcomes == ["fulfilled", "already_paid", "duplicate", "refunds_current", "fulfilled", "unknown_intent"]
    assert _batch(shop, [paid[2], paid[1]]) == ["duplicate", "duplicate"]
    with shop.sessions() as s:
        assert s.scalar(select(func.count()).select_from(JournalEntry)
                        .where(JournalEntry.idempotency_key.like("sale:%"))) == 3
        assert s.scalar(select(func.count()).select_from(WebhookEvent)
                        .where(WebhookEvent.outcome == "processing")) == 0
    for checkout in checkouts:
        order = shop.order(checkout.order_id)
        assert order.status == "paid" and order.sale_entry_id and order.fee_micros == 450_000  # 2.9% + 0.30, rounded
    shop.books_ok()
    # the batch's receipts went out as one job, fanned out by the worker into one email each
    result = CliRunner(shop.app).invoke(["jobs", "work", "--burst"])
    assert result.exit_code == 0, result.output
    for buyer in buyers:
        [receipt] = smtp.to(buyer.email)
        assert "Your receipt" in receipt["subject"] and "$5.00" in receipt["body"]
