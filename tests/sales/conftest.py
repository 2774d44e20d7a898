"""Sales fixtures: a shop (published, priced releases with audio and split sheets), buyers, the Stripe-wire
stand-in (non-zero fees, refunds, disputes) and signed webhook delivery (localstripe: tests/conftest.py)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from core.clock import FrozenClock
from core.db import transaction
from tests.adserver.conftest import tone_wav
from tests.payments.connect_standin import ConnectStandIn, RunningStandIn

WEBHOOK_SECRET = "whsec_ninety_test_secret"
START = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    return FrozenClock(START)


@pytest.fixture
def standin():
    """The Stripe-wire stand-in over HTTP: payment intents with a fee of 2.9% + 30, refunds, disputes."""
    with RunningStandIn() as running:
        yield running


@pytest.fixture
def stripe(standin):
    from payments.stripe_client import SdkStripeClient

    return SdkStripeClient(standin.api_key, api_base=standin.url)


@pytest.fixture
def sales_app(make_app, clock, standin, smtp):
    return make_app(clock=clock, stripe_api_key=standin.api_key, stripe_api_base=standin.url,
                    stripe_webhook_secret=WEBHOOK_SECRET, smtp_url=smtp.url)


@dataclass
class Shop:
    app: object
    clock: FrozenClock
    standin: ConnectStandIn
    stripe: object
    media: str
    counter: list = field(default_factory=lambda: [0])

    @property
    def sessions(self):
        return self.app.extensions["ninety"].sessions

    @property
    def redis(self):
        return self.app.extensions["ninety"].redis

    def unit(self):
        return transaction(self.sessions)

    def _n(self) -> int:
        self.counter[0] += 1
        return self.counter[0]

    def user(self, roles=("listener",), name: str | None = None):
        from core.users import create_user

        n = self._n()
        with self.unit() as s:
            user = create_user(s, email=f"{name or 'user'}{n}@example.com", password="correct horse battery",
                               display_name=name or f"User {n}", roles=list(roles))
            s.flush()
            s.expunge(user)
        return user

    def release(self, *, model: str = "fixed", price: str | None = "7.00", minimum: str | None = None,
                suggested: str | None = None, tracks: int = 2, currency: str = "USD",
                shares: tuple[int, int] | None = (7000, 3000), publish: bool = True, title: str | None = None) -> dict:
        """An artist (member user), a collaborator payee, a release of `tracks` tracks with audio, priced,
        each track's split sheet giving the artist and the collaborator `shares`."""
        from catalog import services as catalog
        from catalog.storage import MediaStore
        from catalog.uploads import upload_track
        from core.users import get_user

        artist_user = self.user(roles=("artist",), name="artist")
        n = self._n()
        with self.unit() as s:
            artist = catalog.create_artist(s, user=get_user(s, artist_user.id), name=f"Artist {n}", currency=currency)
            collaborator = catalog.invite_payee(s, artist.id, email=f"collab{n}@example.com")
            release = catalog.create_release(s, artist.id, title=title or f"Release {n}", kind="ep")
            track_ids = []
            for i in range(tracks):
                track = upload_track(s, MediaStore(self.media), release, io.BytesIO(tone_wav(0.5)), f"{i + 1:02d}.wav",
                                     clock=self.clock, max_bytes=None, title=f"Song {n}.{i + 1}").track
                track_ids.append(track.id)
            payee = catalog.artist_payee(s, artist.id)
            if shares is not None:
                for track_id in track_ids:
                    catalog.set_split_sheet(s, catalog.get_track(s, track_id),
                                            [(payee.id, shares[0]), (collaborator.id, shares[1])], clock=self.clock)
            if model != "free_with_ads":
                catalog.set_release_price(s, release, model, price=price if model == "fixed" else None,
                                          minimum=minimum, suggested=suggested)
            if publish:
                catalog.publish_release(s, release, clock=self.clock)
            info = {"release_id": release.id, "tracks": track_ids, "artist_id": artist.id, "artist_user": artist_user,
                    "payee_id": payee.id, "collaborator_id": collaborator.id, "currency": currency}
        return info

    # buying ----------------------------------------------------------------------------------------------
    def checkout(self, buyer, release: dict, *, track_id=None, amount=None):
        from sales.services import start_checkout

        with self.unit() as s:
            from core.users import get_user

            return start_checkout(s, self.stripe, buyer=get_user(s, buyer.id), release_id=release["release_id"],
                                  track_id=track_id, amount=amount, clock=self.clock)

    def pay(self, checkout, payment_method: str = "pm_card_visa") -> dict:
        """The card element confirms the intent (as Stripe.js would) and Stripe sends payment_intent.succeeded."""
        intent = self.standin.confirm(checkout.payment_intent_id, payment_method)
        return self.standin.event(f"payment_intent.{'succeeded' if intent['status'] == 'succeeded' else 'payment_failed'}",
                                  intent)

    def deliver(self, event: dict) -> str:
        """Apply one event as the webhook endpoint does, in its own transaction."""
        from sales.webhooks import WebhookContext, process_event

        with self.unit() as s:
            return process_event(s, WebhookContext(self.stripe, self.clock, self.redis), event)

    def buy(self, buyer, release: dict, *, track_id=None, amount=None):
        checkout = self.checkout(buyer, release, track_id=track_id, amount=amount)
        assert self.deliver(self.pay(checkout)) == "fulfilled"
        return checkout

    def order(self, order_id: int):
        from sales.models import Order

        with self.sessions() as s:
            order = s.get(Order, order_id)
            s.expunge(order)
            return order

    def refund(self, order_id: int, amount=None, *, by=None, as_finance=True, window_days=14):
        from core.users import get_user
        from sales.services import refund_order

        by = by or self.user(roles=("finance",), name="finance")
        with self.unit() as s:
            refund = refund_order(s, self.stripe, order_id, amount=amount, by=get_user(s, by.id),
                                  as_finance=as_finance, window_days=window_days, clock=self.clock)
            return refund.stripe_refund_id

    def balance(self, code: str, currency: str = "USD") -> int:
        from ledger import services as ledger

        with self.sessions() as s:
            return ledger.balance(s, code, currency)

    def books_ok(self):
        from ledger.checks import check_books

        with self.sessions() as s:
            report = check_books(s)
        assert report.ok, report.problems
        return report

    def signed(self, event: dict, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None):
        payload = json.dumps(event).encode()
        return payload, self.standin.sign(payload, secret, timestamp=timestamp)


@pytest.fixture
def shop(sales_app, clock, standin, stripe, tmp_path):
    return Shop(sales_app, clock, standin, stripe, str(tmp_path / "media"))


@pytest.fixture
def live_server_factory():
    """live_server_factory(app) -> a server with `.url`: the app over real HTTP on a free loopback port."""
    import threading

    from werkzeug.serving import make_server

    from tests.conftest import free_port

    running = []

    def serve(app):
        port = free_port()
        server = make_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        server.url = f"http://127.0.0.1:{port}"
        running.append((server, thread))
        return server

    yield serve
    for server, thread in running:
        server.shutdown()
        thread.join(timeout=5)
