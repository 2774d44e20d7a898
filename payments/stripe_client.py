"""The Stripe boundary: a small protocol and its one implementation over the official `stripe` SDK.

This is the only module in Ninety that imports `stripe`. The base URL is configurable so that tests (and
a local demo) talk to localstripe or to the Connect stand-in over real HTTP with the real SDK.
Amounts cross this boundary in minor units (cents), as Stripe counts them; callers convert from micros.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from payments.errors import PaymentsError, RailDeclined, RailUnavailable


@dataclass(frozen=True)
class PaymentIntent:
    id: str
    status: str
    amount_minor: int
    currency: str
    fee_minor: int = 0
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Refund:
    id: str
    status: str
    amount_minor: int
    payment_intent: str


@dataclass(frozen=True)
class ConnectAccount:
    id: str
    email: str | None
    country: str | None
    payouts_enabled: bool
    details_submitted: bool


@dataclass(frozen=True)
class Transfer:
    id: str
    amount_minor: int
    currency: str
    destination: str
    reversed: bool = False
    metadata: dict = field(default_factory=dict)


class StripeClient(Protocol):
    # charges (sales, advertiser prepayments)
    def create_payment_intent(self, *, amount_minor: int, currency: str, idempotency_key: str,
                              payment_method: str = "pm_card_visa", metadata: dict | None = None,
                              description: str | None = None) -> PaymentIntent: ...

    def retrieve_payment_intent(self, intent_id: str) -> PaymentIntent: ...

    def refund(self, *, payment_intent: str, idempotency_key: str, amount_minor: int | None = None) -> Refund: ...

    # Connect (payouts)
    def create_connect_account(self, *, email: str, country: str, idempotency_key: str) -> ConnectAccount: ...

    def retrieve_connect_account(self, account_id: str) -> ConnectAccount: ...

    def create_transfer(self, *, amount_minor: int, currency: str, destination: str, idempotency_key: str,
                        description: str = "", metadata: dict | None = None,
                        transfer_group: str | None = None) -> Transfer: ...

    # webhooks
    def construct_event(self, payload: bytes, signature_header: str, secret: str) -> dict: ...


def _translate(exc: Exception) -> PaymentsError:
    import stripe

    message = getattr(exc, "user_message", None) or str(exc) or type(exc).__name__
    code = getattr(exc, "code", None) or "stripe_error"
    if isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)):
        return RailUnavailable(f"Stripe could not be reached: {message}", code="stripe_unavailable")
    status = getattr(exc, "http_status", None)
    if status is not None and status >= 500:
        return RailUnavailable(f"Stripe answered with an error ({status}): {message}", code="stripe_unavailable")
    if isinstance(exc, stripe.AuthenticationError):
        return PaymentsError(f"Stripe refused the API key: {message}", code="stripe_authentication", status=502)
    return RailDeclined(message, code=str(code))


class SdkStripeClient:
    """StripeClient over `stripe.StripeClient`, pointed at `api_base` when one is given."""

    def __init__(self, api_key: str, *, api_base: str = "", max_network_retries: int = 0) -> None:
        import stripe

        options: dict[str, Any] = {"max_network_retries": max_network_retries}
        if api_base:
            options["base_addresses"] = {"api": api_base.rstrip("/")}
        self._client = stripe.StripeClient(api_key, **options)

    def _call(self, fn, params: dict, idempotency_key: str | None = None):
        import stripe

        options = {"idempotency_key": idempotency_key} if idempotency_key else None
        try:
            return fn(params, options) if options else fn(params)
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    # charges --------------------------------------------------------------------------------------
    def create_payment_intent(self, *, amount_minor, currency, idempotency_key, payment_method="pm_card_visa",
                              metadata=None, description=None) -> PaymentIntent:
        params = {"amount": amount_minor, "currency": currency.lower(), "payment_method": payment_method,
                  "confirm": True, "metadata": metadata or {}}
        if description:
            params["description"] = description
        intent = self._call(self._client.v1.payment_intents.create, params, idempotency_key)
        return _intent(intent)

    def retrieve_payment_intent(self, intent_id: str) -> PaymentIntent:
        import stripe

        try:
            return _intent(self._client.v1.payment_intents.retrieve(intent_id))
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    def refund(self, *, payment_intent, idempotency_key, amount_minor=None) -> Refund:
        params: dict[str, Any] = {"payment_intent": payment_intent}
        if amount_minor is not None:
            params["amount"] = amount_minor
        refund = _plain(self._call(self._client.v1.refunds.create, params, idempotency_key))
        return Refund(id=refund["id"], status=refund.get("status", ""), amount_minor=int(refund["amount"]),
                      payment_intent=str(refund.get("payment_intent") or payment_intent))

    # Connect --------------------------------------------------------------------------------------
    def create_connect_account(self, *, email, country, idempotency_key) -> ConnectAccount:
        params = {"type": "express", "email": email, "country": country,
                  "capabilities": {"transfers": {"requested": True}}}
        return _account(self._call(self._client.v1.accounts.create, params, idempotency_key))

    def retrieve_connect_account(self, account_id: str) -> ConnectAccount:
        import stripe

        try:
            return _account(self._client.v1.accounts.retrieve(account_id))
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    def create_transfer(self, *, amount_minor, currency, destination, idempotency_key, description="",
                        metadata=None, transfer_group=None) -> Transfer:
        params: dict[str, Any] = {"amount": amount_minor, "currency": currency.lower(), "destination": destination,
                                  "metadata": metadata or {}}
        if description:
            params["description"] = description
        if transfer_group:
            params["transfer_group"] = transfer_group
        transfer = _plain(self._call(self._client.v1.transfers.create, params, idempotency_key))
        return Transfer(id=transfer["id"], amount_minor=int(transfer["amount"]), currency=transfer["currency"].upper(),
                        destination=str(transfer["destination"]), reversed=bool(transfer.get("reversed", False)),
                        metadata=dict(transfer.get("metadata") or {}))

    # webhooks -------------------------------------------------------------------------------------
    def construct_event(self, payload: bytes, signature_header: str, secret: str) -> dict:
        import stripe

        try:
            event = self._client.construct_event(payload, signature_header, secret)
        except (ValueError, stripe.SignatureVerificationError) as exc:
            raise PaymentsError("The webhook signature does not verify.", code="bad_webhook_signature") from exc
        return _plain(event)


def _plain(obj) -> dict:
    """The SDK's object as plain nested dicts (StripeObject is not a dict since stripe 15)."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _intent(obj) -> PaymentIntent:
    obj = _plain(obj)
    fee = 0
    data = (obj.get("charges") or {}).get("data") or []
    if data and isinstance(data[0].get("balance_transaction"), dict):
        fee = int(data[0]["balance_transaction"].get("fee") or 0)
    return PaymentIntent(id=obj["id"], status=obj.get("status", ""), amount_minor=int(obj["amount"]),
                         currency=str(obj["currency"]).upper(), fee_minor=fee, metadata=dict(obj.get("metadata") or {}))


def _account(obj) -> ConnectAccount:
    obj = _plain(obj)
    return ConnectAccount(id=obj["id"], email=obj.get("email"), country=obj.get("country"),
                          payouts_enabled=bool(obj.get("payouts_enabled")),
                          details_submitted=bool(obj.get("details_submitted")))


def make_stripe_client(api_key: str, api_base: str = "") -> StripeClient:
    """The composition root's factory (the app calls it with config.stripe_api_key/stripe_api_base)."""
    return SdkStripeClient(api_key, api_base=api_base)
