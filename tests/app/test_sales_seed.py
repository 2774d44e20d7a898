"""The demo's sales are made through the real path: PaymentIntents on an embedded localstripe confirmed with
a card (one through 3-D Secure), fulfilled by localstripe's own signed webhooks, a refund, a redeemed code;
the books check afterwards and the embedded localstripe the seed started is stopped again."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.conftest import login


def test_the_demo_sales_go_through_checkout_stripe_and_the_signed_webhook(app):
    from app.seed import accounts, catalog
    from app.seed import sales as seed_sales
    from core.embedded import localstripe_pid
    from ledger.checks import check_books
    from ledger.models import JournalEntry
    from sales.models import DownloadCode, Order, OrderRefund, WebhookEvent

    runtime = app.extensions["ninety"]
    state: dict = {}
    for module in (accounts, catalog, seed_sales):
        module.seed(runtime, state)
    assert runtime.config.stripe_api_base == ""  # the embedded localstripe was for the seed only …
    assert localstripe_pid(runtime.config.var_dir) is None  # … and is stopped again

    with runtime.sessions() as s:
        orders = s.scalars(select(Order).where(Order.id.in_(state["sales"]["orders"]))).all()
        assert len(orders) == len(seed_sales.PURCHASES)
        assert all(o.status == "paid" and o.payment_intent_id.startswith("pi_") and o.sale_entry_id for o in orders)
        assert sorted(o.amount_micros for o in orders) == [3_000_000, 5_000_000, 5_000_000, 6_000_000]
        # each fulfilment came from a payment_intent.succeeded event localstripe sent and signed
        events = s.scalars(select(WebhookEvent).where(WebhookEvent.type == "payment_intent.succeeded")).all()
        assert {e.object_id for e in events} == {o.payment_intent_id for o in orders}
        assert all(e.id.startswith("evt_") for e in events)
        refunded = s.get(Order, state["sales"]["refunded_order"])
        assert refunded.refunded_micros == refunded.amount_micros // 2
        assert s.scalar(select(func.count()).select_from(OrderRefund)) == 1
        codes = s.scalars(select(DownloadCode)).all()
        assert len(codes) == seed_sales.CODES and sum(1 for c in codes if c.redeemed_at) == 1
        redeemed = s.get(Order, next(c.order_id for c in codes if c.order_id))
        assert redeemed.kind == "code" and redeemed.amount_micros == 0
        assert s.scalar(select(func.count()).select_from(JournalEntry)
                        .where(JournalEntry.idempotency_key.like("sale:%"))) == len(orders)
        assert check_books(s).ok
        from core.users import User

        listener = s.scalar(select(User).where(User.email == "listener@ninety.test"))
        s.expunge(listener)
    client = app.test_client()
    login(client, listener)
    page = client.get("/collection")
    assert "Lamplight EP" in page.text and "Neon Rain" in page.text and "bought for $6.00" in page.text
