"""The Stripe client against a real localstripe (the PyPI stand-in the demo runs): the card-element flow,
retrieval with the balance transaction expanded (localstripe's fee is always 0), refunds, and a checkout
fulfilled by localstripe's own signed webhook delivered over HTTP to the live app."""

from __future__ import annotations

import time

from sqlalchemy import select

from ledger.accounts import INCOME_SALES, STRIPE

SECRET = "whsec_localstripe_test"


def test_the_client_on_localstripe(localstripe):
    from payments.stripe_client import SdkStripeClient

    stripe = SdkStripeClient(localstripe.api_key, api_base=localstripe.url)
    created = stripe.create_payment_intent(amount_minor=1234, currency="EUR", idempotency_key="k1",
                                           metadata={"order_id": "7"})
    assert created.status == "requires_payment_method" and created.client_secret
    confirmed = stripe.confirm_payment_intent(created.id, payment_method="pm_card_visa")
    assert confirmed.status == "succeeded"
    fetched = stripe.retrieve_payment_intent(created.id)
    assert (fetched.status, fetched.amount_minor, fetched.currency, fetched.fee_minor) == ("succeeded", 1234, "EUR", 0)
    assert fetched.charge_id and fetched.charge_id.startswith("ch_")
    assert fetched.metadata == {"order_id": "7"}
    refund = stripe.refund(payment_intent=created.id, amount_minor=234, idempotency_key="r1")
    assert refund.amount_minor == 234
    assert [r.id for r in stripe.list_refunds(created.id)] == [refund.id]


def test_a_purchase_fulfilled_by_localstripes_signed_webhook(make_app, localstripe, live_server_factory, clock,
                                                            tmp_path):
    from core.users import get_user
    from payments.stripe_client import SdkStripeClient
    from sales.models import Order
    from sales.services import confirm_checkout
    from tests.sales.conftest import Shop

    app = make_app(clock=clock, stripe_api_base=localstripe.url, stripe_webhook_secret=SECRET)
    stripe = SdkStripeClient(localstripe.api_key, api_base=localstripe.url)
    server = live_server_factory(app)
    localstripe.send_webhooks_to(f"{server.url}/webhooks/stripe", SECRET)
    shop = Shop(app, clock, None, stripe, str(tmp_path / "media"))
    release = shop.release(price="4.00", tracks=2)
    buyer = shop.user()
    checkout = shop.checkout(buyer, release)
    with shop.unit() as s:
        assert confirm_checkout(s, stripe, checkout.order_id, user=get_user(s, buyer.id),
                                payment_method="pm_card_visa").status == "succeeded"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with shop.sessions() as s:
            status = s.scalar(select(Order.status).where(Order.id == checkout.order_id))
        if status == "paid":
            break
        time.sleep(0.1)
    assert status == "paid"
    assert shop.balance(STRIPE) == 4_000_000  # localstripe reports no fee
    assert shop.balance(INCOME_SALES) == 4_000_000 - 3_600_000
    shop.books_ok()
