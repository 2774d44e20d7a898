"""The Stripe boundary: a small protocol and its one implementation over the official `stripe` SDK.

This is the only module in Ninety that imports `stripe`. The base URL is configurable so that tests (and
a local demo) talk to localstripe or to the Connect stand-in over real HTTP with the real SDK.
Amounts cross this boundary in minor units (cents), as Stripe counts them; callers convert from micros.
A charge's processing fee is read where Stripe reports it: the charge's balance transaction, summing its
`fee_details` of type `stripe_fee` (a payment intent has no `charges` list since API version 2022-11-15).
"""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from payments.errors import PaymentsError, RailDeclined, RailUnavailable

WEBHOOK_TOLERANCE_S = 300  # an event signed longer ago than this is refused as stale (Stripe's default)


@dataclass(frozen=True)
class PaymentIntent:
    id: str
    status: str  # requires_payment_method, requires_confirmation, requires_action, processing, succeeded, canceled
    amount_minor: int
    currency: str
    fee_minor: int | None = None  # None until the charge's balance transaction exists
    metadata: dict = field(default_factory=dict)
    client_secret: str | None = None
    charge_id: str | None = None
    error_message: str | None = None  # the last payment error, for a failed attempt


@dataclass(frozen=True)
class Refund:
    id: str
    status: str  # pending, requires_action, succeeded, failed, canceled
    amount_minor: int
    payment_intent: str
    metadata: dict = field(default_factory=dict)
    failure_reason: str | None = None  # for a failed refund: lost_or_stolen_card, expired_or_canceled_card, unknown


@dataclass(frozen=True)
class Dispute:
    id: str
    status: str  # warning_needs_response, needs_response, under_review, won, lost, ...
    amount_minor: int
    currency: str
    payment_intent: str | None
    charge: str | None
    fee_minor: int  # net dispute fees over its balance transactions (0 again if a won dispute's fee came back)


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
                              payment_method: str | None = None, metadata: dict | None = None,
                              description: str | None = None) -> PaymentIntent:
        """With a payment method, confirmed at once (server side); without one, left for Stripe.js's card
        element to confirm with the returned `client_secret`."""
        ...

    def retrieve_payment_intent(self, intent_id: str) -> PaymentIntent:
        """The intent with its latest charge's balance transaction expanded, so `fee_minor` is the fee."""
        ...

    def confirm_payment_intent(self, intent_id: str, *, payment_method: str) -> PaymentIntent:
        """Attach a tokenised card and confirm server side (status succeeded, requires_action, or a decline)."""
        ...

    def refund(self, *, payment_intent: str, idempotency_key: str, amount_minor: int | None = None,
               metadata: dict | None = None) -> Refund: ...

    def list_refunds(self, payment_intent: str) -> list[Refund]: ...

    def retrieve_dispute(self, dispute_id: str) -> Dispute: ...

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


def _pooled_http_client(api_base: str):
    """The SDK's HTTP transport for `api_base` (see `_pooled_http_client_class`)."""
    return _pooled_http_client_class()(api_base)


@functools.cache
def _pooled_http_client_class() -> type:
    """The SDK's HTTP transport, a class made once (it subclasses the lazily imported SDK's): one urllib3 pool
    per client, shared by every thread, instead of a `requests` session per thread. Same wire, TLS
    verification (Stripe's CA bundle), timeout and error mapping as the SDK's own RequestsClient, without
    requests' per-call work (preparing the request again, reading the proxy environment on every call): on a
    webhook burst, that was a third of the worker's CPU. The proxy environment (HTTPS_PROXY, NO_PROXY) is
    read once, when a client is made."""
    import urllib.request
    from urllib.parse import urlsplit

    import stripe
    import urllib3

    class PooledHTTPClient(stripe.HTTPClient):
        name = "urllib3"

        def __init__(self, api_base: str, timeout_s: float = 80.0) -> None:
            host = urlsplit(api_base or "https://api.stripe.com").hostname or ""
            proxies = urllib.request.getproxies()
            proxy = None if urllib.request.proxy_bypass(host) else proxies.get("https") or proxies.get("http")
            super().__init__(proxy=proxy)
            options: dict[str, Any] = {"timeout": urllib3.Timeout(connect=30.0, read=timeout_s), "retries": False,
                                       "maxsize": 32, "cert_reqs": "CERT_REQUIRED", "ca_certs": stripe.ca_bundle_path}
            self._pool = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)

        def _send(self, method: str, url: str, headers, post_data, *, stream: bool):
            try:
                response = self._pool.request(method.upper(), url, body=post_data, headers=dict(headers or {}),
                                              redirect=False, preload_content=not stream)
            except urllib3.exceptions.HTTPError as exc:
                # A connection that could not be made or timed out may be retried (as the SDK's own
                # clients do); anything else is not.
                retry = isinstance(exc, (urllib3.exceptions.TimeoutError, urllib3.exceptions.NewConnectionError,
                                         urllib3.exceptions.ProtocolError))
                raise stripe.APIConnectionError(
                    f"Unexpected error communicating with Stripe. (Network error: {type(exc).__name__}: {exc})",
                    should_retry=retry) from exc
            return (response if stream else response.data), response.status, response.headers

        def request(self, method, url, headers, post_data=None, *, _usage=None):
            return self._send(method, url, headers, post_data, stream=False)

        def request_stream(self, method, url, headers, post_data=None, *, _usage=None):
            return self._send(method, url, headers, post_data, stream=True)

        def close(self) -> None:
            self._pool.clear()

    return PooledHTTPClient


class SdkStripeClient:
    """StripeClient over `stripe.StripeClient`, pointed at `api_base` when one is given."""

    def __init__(self, api_key: str, *, api_base: str = "", max_network_retries: int = 0) -> None:
        import stripe

        options: dict[str, Any] = {"max_network_retries": max_network_retries,
                                   "http_client": _pooled_http_client(api_base)}
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
    def create_payment_intent(self, *, amount_minor, currency, idempotency_key, payment_method=None,
                              metadata=None, description=None) -> PaymentIntent:
        params: dict[str, Any] = {"amount": amount_minor, "currency": currency.lower(), "metadata": metadata or {},
                                  "payment_method_types": ["card"]}
        if payment_method:
            params["payment_method"] = payment_method
            params["confirm"] = True
        if description:
            params["description"] = description
        intent = self._call(self._client.v1.payment_intents.create, params, idempotency_key)
        return _intent(intent)

    def retrieve_payment_intent(self, intent_id: str) -> PaymentIntent:
        # Every fulfilment asks this once: the JSON is read as plain dicts, without building the SDK's
        # StripeObject tree (a few milliseconds of CPU per call, for an object read once and dropped).
        path = f"/v1/payment_intents/{quote(intent_id, safe='')}"
        response = self._call(lambda params: self._client.raw_request("get", path, **params),
                              {"expand": ["latest_charge.balance_transaction"]})
        return _intent(json.loads(response.body))

    def confirm_payment_intent(self, intent_id: str, *, payment_method: str) -> PaymentIntent:
        # Set, then confirm: localstripe confirms only an intent that already has its payment method.
        self._call(lambda params: self._client.v1.payment_intents.update(intent_id, params),
                   {"payment_method": payment_method})
        return _intent(self._call(lambda params: self._client.v1.payment_intents.confirm(intent_id, params), {}))

    def refund(self, *, payment_intent, idempotency_key, amount_minor=None, metadata=None) -> Refund:
        params: dict[str, Any] = {"payment_intent": payment_intent}
        if amount_minor is not None:
            params["amount"] = amount_minor
        if metadata:
            params["metadata"] = metadata
        return _refund(self._call(self._client.v1.refunds.create, params, idempotency_key), payment_intent)

    def list_refunds(self, payment_intent: str) -> list[Refund]:
        found = _plain(self._call(self._client.v1.refunds.list, {"payment_intent": payment_intent, "limit": 100}))
        return [_refund(item, payment_intent) for item in found.get("data") or []]

    def retrieve_dispute(self, dispute_id: str) -> Dispute:
        obj = _plain(self._call(lambda params: self._client.v1.disputes.retrieve(dispute_id, params), {}))
        fee = sum(_stripe_fee(txn) or 0 for txn in obj.get("balance_transactions") or [] if isinstance(txn, dict))
        return Dispute(id=obj["id"], status=str(obj.get("status", "")), amount_minor=int(obj["amount"]),
                       currency=str(obj["currency"]).upper(), payment_intent=_id_of(obj.get("payment_intent")),
                       charge=_id_of(obj.get("charge")), fee_minor=fee)

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

        if not secret:
            raise PaymentsError("No webhook secret is configured (STRIPE_WEBHOOK_SECRET).", code="webhook_unconfigured",
                                status=503)
        # The SDK's own check of the signature, then the JSON as plain dicts: what construct_event does, without
        # building the StripeObject tree that would only be turned back into dicts.
        try:
            stripe.WebhookSignature.verify_header(payload, signature_header or "", secret, WEBHOOK_TOLERANCE_S)
            event = json.loads(payload)
        except (ValueError, stripe.SignatureVerificationError) as exc:
            raise PaymentsError("The webhook signature does not verify (forged, altered or older than "
                                f"{WEBHOOK_TOLERANCE_S} s).", code="bad_webhook_signature") from exc
        return event


def _plain(obj) -> dict:
    """The SDK's object as plain nested dicts (StripeObject is not a dict since stripe 15)."""
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _id_of(value) -> str | None:
    if isinstance(value, dict):
        return value.get("id")
    return str(value) if value else None


def _stripe_fee(txn) -> int | None:
    """The processing fee of a balance transaction: its `fee_details` of type `stripe_fee` (None if unknown)."""
    if not isinstance(txn, dict):
        return None
    return sum(int(d.get("amount") or 0) for d in txn.get("fee_details") or [] if d.get("type") == "stripe_fee")


def _intent(obj) -> PaymentIntent:
    obj = _plain(obj)
    charge = obj.get("latest_charge")
    fee = _stripe_fee(charge.get("balance_transaction")) if isinstance(charge, dict) else None
    error = obj.get("last_payment_error") or {}
    return PaymentIntent(id=obj["id"], status=obj.get("status", ""), amount_minor=int(obj["amount"]),
                         currency=str(obj["currency"]).upper(), fee_minor=fee, metadata=dict(obj.get("metadata") or {}),
                         client_secret=obj.get("client_secret"), charge_id=_id_of(charge),
                         error_message=error.get("message") if isinstance(error, dict) else None)


def _refund(obj, payment_intent: str) -> Refund:
    obj = _plain(obj)
    return Refund(id=obj["id"], status=obj.get("status", ""), amount_minor=int(obj["amount"]),
                  payment_intent=str(_id_of(obj.get("payment_intent")) or payment_intent),
                  metadata=dict(obj.get("metadata") or {}), failure_reason=obj.get("failure_reason"))


def _account(obj) -> ConnectAccount:
    obj = _plain(obj)
    return ConnectAccount(id=obj["id"], email=obj.get("email"), country=obj.get("country"),
                          payouts_enabled=bool(obj.get("payouts_enabled")),
                          details_submitted=bool(obj.get("details_submitted")))


def intent_from_payload(obj: dict) -> PaymentIntent:
    """A PaymentIntent as a signed event carries it (`data.object`): `fee_minor` is known only when the
    payload holds the latest charge with its balance transaction expanded, which Stripe's own events do not."""
    return _intent(obj)


def make_stripe_client(api_key: str, api_base: str = "") -> StripeClient:
    """The composition root's factory (the app calls it with config.stripe_api_key/stripe_api_base)."""
    return SdkStripeClient(api_key, api_base=api_base)


_shared: dict[tuple[str, str], StripeClient] = {}
_shared_lock = threading.Lock()


def shared_stripe_client(api_key: str, api_base: str = "") -> StripeClient:
    """One client per key and base for the whole process, built on first use: the SDK's HTTP client keeps a
    connection per thread, so a request reuses it instead of opening a new one (and building a new
    `stripe.StripeClient`) each time. What the web app uses; scripts may call `make_stripe_client`."""
    key = (api_key, api_base)
    client = _shared.get(key)
    if client is None:
        with _shared_lock:
            client = _shared.get(key)
            if client is None:
                client = _shared[key] = make_stripe_client(api_key, api_base)
    return client
