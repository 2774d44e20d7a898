"""Stripe Billing for premium: Products, Plans, Customers, SetupIntents, Subscriptions, Invoices, refunds.

A small protocol and its one implementation over the official `stripe` SDK, beside `stripe_client.py` (which
holds PaymentIntents, Connect and webhook signatures). Plans rather than Prices: localstripe, which tests and
the demo run, implements Plans only, and a Plan id is accepted wherever Stripe takes a Price id.
Amounts cross this boundary in minor units (cents), as Stripe counts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from payments.errors import PaymentsError
from payments.stripe_client import _plain, _translate


@dataclass(frozen=True)
class SetupIntent:
    id: str
    status: str
    client_secret: str
    customer: str | None
    payment_method: str | None


@dataclass(frozen=True)
class StripeSubscription:
    id: str
    status: str  # incomplete | active | past_due | canceled | incomplete_expired ...
    customer: str
    current_period_start: int | None
    current_period_end: int | None
    cancel_at_period_end: bool
    latest_invoice: str | None
    payment_intent: str | None  # the latest invoice's
    payment_status: str | None  # that PaymentIntent's status (requires_action: 3-D Secure to complete)
    client_secret: str | None


@dataclass(frozen=True)
class SubscriptionRefund:
    id: str
    amount_minor: int
    status: str


class SubscriptionGateway(Protocol):
    def create_product(self, *, name: str, idempotency_key: str) -> str: ...

    def create_plan(self, *, product: str, amount_minor: int, currency: str, idempotency_key: str,
                    nickname: str = "") -> str: ...

    def create_customer(self, *, email: str, user_id: int, idempotency_key: str) -> str: ...

    def create_setup_intent(self, *, customer: str, idempotency_key: str | None = None) -> SetupIntent: ...

    def retrieve_setup_intent(self, setup_intent_id: str) -> SetupIntent: ...

    def use_payment_method(self, *, customer: str, payment_method: str) -> None:
        """Attach the card to the customer and make it the one invoices charge (declined → RailDeclined)."""

    def create_subscription(self, *, customer: str, plan: str, idempotency_key: str,
                            metadata: dict | None = None) -> StripeSubscription: ...

    def retrieve_subscription(self, subscription_id: str) -> StripeSubscription: ...

    def cancel_at_period_end(self, subscription_id: str, cancel: bool = True) -> StripeSubscription: ...

    def cancel_now(self, subscription_id: str) -> StripeSubscription: ...

    def refund(self, *, payment_intent: str, amount_minor: int, idempotency_key: str) -> SubscriptionRefund: ...


class SdkSubscriptionGateway:
    """SubscriptionGateway over `stripe.StripeClient`, pointed at `api_base` when one is given."""

    def __init__(self, api_key: str, *, api_base: str = "", max_network_retries: int = 0) -> None:
        import stripe

        options: dict[str, Any] = {"max_network_retries": max_network_retries}
        if api_base:
            options["base_addresses"] = {"api": api_base.rstrip("/")}
        self._client = stripe.StripeClient(api_key, **options)

    def _call(self, fn, *args, idempotency_key: str | None = None):
        import stripe

        try:
            if idempotency_key:
                return _plain(fn(*args, {"idempotency_key": idempotency_key}))
            return _plain(fn(*args))
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    def create_product(self, *, name, idempotency_key) -> str:
        return self._call(self._client.v1.products.create, {"name": name, "type": "service"},
                          idempotency_key=idempotency_key)["id"]

    def create_plan(self, *, product, amount_minor, currency, idempotency_key, nickname="") -> str:
        params = {"product": product, "amount": amount_minor, "currency": currency.lower(), "interval": "month"}
        if nickname:
            params["nickname"] = nickname
        return self._call(self._client.v1.plans.create, params, idempotency_key=idempotency_key)["id"]

    def create_customer(self, *, email, user_id, idempotency_key) -> str:
        return self._call(self._client.v1.customers.create,
                          {"email": email, "metadata": {"ninety_user_id": str(user_id)}},
                          idempotency_key=idempotency_key)["id"]

    def create_setup_intent(self, *, customer, idempotency_key=None) -> SetupIntent:
        obj = self._call(self._client.v1.setup_intents.create,
                         {"customer": customer, "payment_method_types": ["card"], "usage": "off_session"},
                         idempotency_key=idempotency_key)
        return _setup_intent(obj)

    def retrieve_setup_intent(self, setup_intent_id) -> SetupIntent:
        return _setup_intent(self._call(self._client.v1.setup_intents.retrieve, setup_intent_id))

    def use_payment_method(self, *, customer, payment_method) -> None:
        self._call(self._client.v1.payment_methods.attach, payment_method, {"customer": customer})
        self._call(self._client.v1.customers.update, customer,
                   {"invoice_settings": {"default_payment_method": payment_method}})

    def create_subscription(self, *, customer, plan, idempotency_key, metadata=None) -> StripeSubscription:
        obj = self._call(self._client.v1.subscriptions.create,
                         {"customer": customer, "items": [{"plan": plan}], "metadata": metadata or {},
                          "payment_behavior": "allow_incomplete",
                          "expand": ["latest_invoice.payment_intent"]},
                         idempotency_key=idempotency_key)
        return _subscription(obj)

    def retrieve_subscription(self, subscription_id) -> StripeSubscription:
        return _subscription(self._call(self._client.v1.subscriptions.retrieve, subscription_id,
                                        {"expand": ["latest_invoice.payment_intent"]}))

    def cancel_at_period_end(self, subscription_id, cancel=True) -> StripeSubscription:
        return _subscription(self._call(self._client.v1.subscriptions.update, subscription_id,
                                        {"cancel_at_period_end": cancel}))

    def cancel_now(self, subscription_id) -> StripeSubscription:
        return _subscription(self._call(self._client.v1.subscriptions.cancel, subscription_id))

    def refund(self, *, payment_intent, amount_minor, idempotency_key) -> SubscriptionRefund:
        obj = self._call(self._client.v1.refunds.create, {"payment_intent": payment_intent, "amount": amount_minor},
                         idempotency_key=idempotency_key)
        return SubscriptionRefund(id=obj["id"], amount_minor=int(obj["amount"]), status=str(obj.get("status", "")))


def _setup_intent(obj: dict) -> SetupIntent:
    pm = obj.get("payment_method")
    if isinstance(pm, dict):
        pm = pm.get("id")
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return SetupIntent(id=obj["id"], status=str(obj.get("status", "")), client_secret=str(obj.get("client_secret") or ""),
                       customer=customer, payment_method=pm)


def _subscription(obj: dict) -> StripeSubscription:
    invoice = obj.get("latest_invoice")
    invoice_id = intent_id = intent_status = secret = None
    if isinstance(invoice, dict):
        invoice_id = invoice.get("id")
        intent = invoice.get("payment_intent")
        if isinstance(intent, dict):
            intent_id, intent_status, secret = intent.get("id"), intent.get("status"), intent.get("client_secret")
        elif isinstance(intent, str):
            intent_id = intent
    elif isinstance(invoice, str):
        invoice_id = invoice
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    item = ((obj.get("items") or {}).get("data") or [{}])[0]
    start = obj.get("current_period_start") or item.get("current_period_start")
    end = obj.get("current_period_end") or item.get("current_period_end")
    return StripeSubscription(
        id=obj["id"], status=str(obj.get("status", "")), customer=str(customer or ""),
        current_period_start=int(start) if start else None, current_period_end=int(end) if end else None,
        cancel_at_period_end=bool(obj.get("cancel_at_period_end")), latest_invoice=invoice_id,
        payment_intent=intent_id, payment_status=intent_status, client_secret=secret)


def make_subscription_gateway(api_key: str, api_base: str = "") -> SubscriptionGateway:
    """The composition root's factory (the app calls it with config.stripe_api_key/stripe_api_base)."""
    if not api_key:
        raise PaymentsError("STRIPE_API_KEY is not set.", code="stripe_not_configured", status=503)
    return SdkSubscriptionGateway(api_key, api_base=api_base)
