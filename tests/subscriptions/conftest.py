"""Premium fixtures: a localstripe per module, an app pointed at it with a frozen clock, and a world that
subscribes listeners for real (customer, SetupIntent confirmed as Stripe.js does, Stripe subscription) and
then drives the state machine with signed synthetic invoice events, as Stripe would send for renewals."""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import requests

from core.clock import FrozenClock
from core.embedded import spawn_localstripe, stop_process
from payments.stripe_client import make_stripe_client
from payments.subscriptions import make_subscription_gateway
from sales.subscriptions import SubscriptionSettings
from tests.royalties.conftest import World

WEBHOOK_SECRET = "whsec_test_premium"
API_KEY = "sk_test_premium"
CARD_OK = "4242424242424242"
CARD_3DS = "4000002760003184"
CARD_DECLINED_ON_CHARGE = "4000000000000341"
CARD_DECLINED = "4000000000000002"


@pytest.fixture(scope="module")
def localstripe_url():
    process, port = spawn_localstripe()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


@pytest.fixture
def clock():
    return FrozenClock(datetime(2026, 10, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def papp(make_app, clock, localstripe_url):
    return make_app(clock=clock, stripe_api_base=localstripe_url, stripe_api_key=API_KEY,
                    stripe_webhook_secret=WEBHOOK_SECRET)


@dataclass
class PremiumWorld(World):
    base: str = ""
    settings: SubscriptionSettings = field(default_factory=lambda: SubscriptionSettings(
        prices={"USD": 4_990_000, "EUR": 3_990_000}, grace_days=7))
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def gateway(self):
        return make_subscription_gateway(API_KEY, self.base)

    @property
    def stripe(self):
        return make_stripe_client(API_KEY, self.base)

    def audio_track(self, name: str = "Audio Artist", *, price_model: str = "free_with_ads",
                    seconds: float = 1.0) -> int:
        """A published track with real audio (a generated WAV), free with ads or at a fixed price."""
        import io

        from catalog import services as catalog
        from catalog.storage import MediaStore
        from catalog.uploads import upload_track
        from core.users import create_user
        from tests.adserver.conftest import spot

        runtime = self.app.extensions["ninety"]
        with self.session() as s:
            user = create_user(s, email=f"{uuid.uuid4().hex[:8]}@artists.test", password="correct horse battery",
                               display_name=name, roles=["artist"])
            artist = catalog.create_artist(s, user=user, name=name)
            release = catalog.create_release(s, artist.id, title=f"{name} single", kind="single", genre="ambient")
            track = upload_track(s, MediaStore(runtime.config.media_path), release, io.BytesIO(spot(seconds)),
                                 "01 Song.wav", clock=self.clock, max_bytes=None, title="Song").track
            if price_model != "free_with_ads":
                track.price_model, track.price_micros = price_model, 1_000_000
            catalog.publish_release(s, release, clock=self.clock)
            s.commit()
            return track.id

    def listener(self, name: str = "listener"):
        from core.users import create_user

        with self.session() as s:
            user = create_user(s, email=f"{name}-{uuid.uuid4().hex[:6]}@listeners.test", password="correct horse battery",
                               display_name=name, roles=["listener"])
            s.commit()
            s.expunge(user)
            return user

    def confirm_card(self, client_secret: str, number: str = CARD_OK) -> str:
        """What Stripe.js's confirmCardSetup does with the card element: confirm the SetupIntent."""
        seti = client_secret.split("_secret_")[0]
        response = requests.post(f"{self.base}/v1/setup_intents/{seti}/confirm", json={
            "key": "pk_test_premium", "client_secret": client_secret, "use_stripe_sdk": True,
            "payment_method_data": {"type": "card", "card": {"number": number, "exp_month": "12",
                                                             "exp_year": "2031", "cvc": "123"}}}, timeout=10)
        if number in (CARD_3DS,) and response.ok:  # the 3-D Secure modal's "Complete authentication"
            response = requests.post(f"{self.base}/v1/setup_intents/{seti}/confirm", json={
                "key": "pk_test_premium", "client_secret": client_secret, "use_stripe_sdk": True}, timeout=10)
        return seti

    def subscribe(self, user, currency: str = "USD", number: str = CARD_OK):
        from sales import subscriptions

        with self.unit() as s:
            started = subscriptions.start_subscription(s, self.gateway, user, currency, settings=self.settings,
                                                       clock=self.clock)
        seti = self.confirm_card(started["client_secret"], number)
        with self.unit() as s:
            result = subscriptions.subscribe(s, self.gateway, user, currency, seti, settings=self.settings,
                                             clock=self.clock)
            return result.subscription.id, result.subscription.stripe_subscription_id, result.status, \
                result.client_secret

    def payment_intent(self, amount_minor: int, currency: str = "USD") -> str:
        """A real, paid PaymentIntent at localstripe (what a renewal invoice's charge is)."""
        response = requests.post(f"{self.base}/v1/payment_intents", data={
            "amount": amount_minor, "currency": currency.lower(), "payment_method": "pm_card_visa",
            "confirm": "true"}, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
        response.raise_for_status()
        return response.json()["id"]

    def invoice_event(self, kind: str, stripe_sub: str, *, amount_minor: int, start: datetime, end: datetime,
                      invoice_id: str | None = None, intent: str | None = None, currency: str = "USD",
                      event_id: str | None = None) -> dict:
        invoice_id = invoice_id or f"in_synthetic_{next(self.counter)}_{uuid.uuid4().hex[:8]}"
        paid = kind == "invoice.payment_succeeded"
        obj = {"id": invoice_id, "object": "invoice", "subscription": stripe_sub, "currency": currency.lower(),
               "amount_due": amount_minor, "amount_paid": amount_minor if paid else 0,
               "payment_intent": intent if intent is not None else (self.payment_intent(amount_minor, currency)
                                                                   if paid and amount_minor else None),
               "status": "paid" if paid else "open", "billing_reason": "subscription_cycle",
               "lines": {"data": [{"period": {"start": int(start.timestamp()), "end": int(end.timestamp())}}]}}
        return {"id": event_id or f"evt_{uuid.uuid4().hex}", "object": "event", "type": kind,
                "created": int(self.clock.now().timestamp()), "data": {"object": obj}}

    def deleted_event(self, stripe_sub: str, ended_at: datetime | None = None) -> dict:
        return {"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": "customer.subscription.deleted",
                "created": int(self.clock.now().timestamp()),
                "data": {"object": {"id": stripe_sub, "object": "subscription", "status": "canceled",
                                    "ended_at": int((ended_at or self.clock.now()).timestamp())}}}

    def apply(self, event: dict, stripe=None) -> str:
        """Apply an event through the subscription handlers, in a unit of work (what the dispatcher does)."""
        from sales.subscriptions import WEBHOOK_HANDLERS

        ctx = type("Ctx", (), {"stripe": stripe or self.stripe, "clock": self.clock})()
        with self.unit() as s:
            return WEBHOOK_HANDLERS[event["type"]](s, ctx, event)

    def play(self, user_id: int, track_id: int, at: datetime, heard_ms: int):
        from sqlalchemy import text

        with self.unit() as s:
            s.execute(text("INSERT INTO plays (play_id, track_id, listener_id, user_id, kind, started_at, counted_at, "
                           "heard_ms) VALUES (:pid, :t, :l, :u, 'full', :at, :at, :ms)"),
                      {"pid": uuid.uuid4(), "t": track_id, "l": f"u{user_id}", "u": user_id, "at": at, "ms": heard_ms})

    @staticmethod
    def signed(event: dict) -> tuple[bytes, str]:
        from tests.payments.connect_standin import ConnectStandIn

        payload = json.dumps(event).encode()
        return payload, ConnectStandIn.sign(payload, WEBHOOK_SECRET)


@pytest.fixture
def pworld(papp, clock, localstripe_url):
    return PremiumWorld(papp, clock, base=localstripe_url)
