"""Demo sales, made through the real path: listeners buy Lamplight EP and Neon Rain (one with 3-D Secure),
finance refunds half of one sale, and a listener redeems a download code.

Each purchase is what the checkout page does: the order and its PaymentIntent on the embedded localstripe
(`sales.services.start_checkout`), the card tokenised with the publishable key as Stripe.js does, the intent
confirmed through Ninety (`confirm_checkout`) and, for the 3-D Secure card, authenticated as localstripe's
Stripe.js does. Nothing is granted by the seed itself: localstripe sends its signed `payment_intent.succeeded`
events to a loopback endpoint of the seed's, which hands each one, as sent (body and Stripe-Signature), to the
service the webhook endpoint calls (`sales.services.handle_webhook`). The seed runs only against localstripe
(the demo's embedded Stripe, started here if the demo did not): with a real Stripe key it seeds no sales.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from app.seed.accounts import DEMO_PASSWORD
from core.embedded import configure_localstripe_webhook
from core.money import Money
from core.users import User, create_user

ORDER = 45  # after the royalties seed closes last month (40): these sales are this month's; before rights (50), which reads none of them
CARD = "4242424242424242"
CARD_3DS = "4000002500003155"  # localstripe (like Stripe) asks for 3-D Secure on this one
BUYERS = [("sam@listeners.ninety.test", "Sam Sound"), ("kim@listeners.ninety.test", "Kim Keys")]
# buyer, artist slug (its demo release), name-your-price amount (None: the fixed price), card
PURCHASES = [
    ("listener@ninety.test", "the-night-owls", None, CARD),
    ("listener@ninety.test", "mina-kato", "6.00", CARD_3DS),
    ("sam@listeners.ninety.test", "the-night-owls", None, CARD),
    ("kim@listeners.ninety.test", "mina-kato", "3.00", CARD),
]
REFUNDED = 2  # finance refunds half of this purchase (Sam's Lamplight EP)
CODES = 5
WEBHOOK_WAIT_S = 30


class _Hooks:
    """A loopback endpoint that keeps what localstripe POSTs: each event's body and Stripe-Signature."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, str]] = []
        self._arrived = threading.Condition()
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's hook name
                payload = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with hooks._arrived:
                    hooks.received.append((payload, self.headers.get("Stripe-Signature", "")))
                    hooks._arrived.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/webhooks/stripe"

    def __enter__(self) -> _Hooks:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, event_type: str, object_id: str) -> tuple[bytes, str]:
        deadline = time.monotonic() + WEBHOOK_WAIT_S
        with self._arrived:
            while True:
                for payload, signature in self.received:
                    event = json.loads(payload)
                    if event.get("type") == event_type and event["data"]["object"].get("id") == object_id:
                        return payload, signature
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"localstripe sent no {event_type} for {object_id}")
                self._arrived.wait(left)


def _is_localstripe(api_base: str) -> bool:
    try:
        script = requests.get(f"{api_base.rstrip('/')}/js.stripe.com/v3/", timeout=5)
    except requests.RequestException:
        return False
    return script.status_code == 200 and "localstripe" in script.text


def card_token(api_base: str, publishable_key: str, number: str) -> str:
    """What Stripe.js's createToken does with the card element: the card's id (card_…)."""
    response = requests.post(f"{api_base.rstrip('/')}/v1/tokens", timeout=10, data={
        "card[number]": number, "card[exp_month]": "12", "card[exp_year]": "2034", "card[cvc]": "123",
        "key": publishable_key})
    response.raise_for_status()
    return response.json()["card"]["id"]


def authenticate(api_base: str, publishable_key: str, payment_intent_id: str, client_secret: str) -> None:
    """What localstripe's Stripe.js does when the buyer completes 3-D Secure in its dialog."""
    response = requests.post(f"{api_base.rstrip('/')}/v1/payment_intents/{payment_intent_id}/_authenticate",
                             params={"success": "true"}, timeout=10,
                             json={"key": publishable_key, "client_secret": client_secret})
    response.raise_for_status()


def seed(runtime, state: dict) -> None:
    with_localstripe_hooks(runtime, state, _seed, what="sales")


def with_localstripe_hooks(runtime, state: dict, seed_fn, *, what: str, hooks_class: type[_Hooks] = _Hooks) -> None:
    """Run `seed_fn(runtime, state, hooks)` against the embedded localstripe, its signed webhooks arriving at
    `hooks` (a `hooks_class`); with any other Stripe, say so and seed nothing (the sales and premium seeds)."""
    from app.cli.demo import embedded_stripe

    config = runtime.config
    with embedded_stripe(config):
        if not config.stripe_api_base or not _is_localstripe(config.stripe_api_base) \
                or not config.stripe_webhook_secret:
            print(f"{what}: Stripe is not the embedded localstripe; no demo {what} seeded")  # noqa: T201
            return
        with hooks_class() as hooks:
            configure_localstripe_webhook(config.stripe_api_base, hooks.url, config.stripe_webhook_secret)
            seed_fn(runtime, state, hooks)


def _seed(runtime, state: dict, hooks: _Hooks) -> None:
    from payments.stripe_client import make_stripe_client
    from sales import services as sales

    config, clock = runtime.config, runtime.clock
    stripe = make_stripe_client(config.stripe_api_key, config.stripe_api_base)
    base, key = config.stripe_api_base, config.stripe_publishable_key
    by_slug = state["catalog"]["by_slug"]
    session = runtime.sessions()
    try:
        users = dict(state["users"])
        for email, name in BUYERS:
            users[email] = create_user(session, email=email, password=DEMO_PASSWORD, display_name=name,
                                       roles=["listener"]).id
        session.commit()
        state["users"] = users

        # The checkouts, as the page makes them; then the webhooks localstripe sends, as the endpoint takes them.
        orders = []
        for email, slug, amount, number in PURCHASES:
            buyer = session.get(User, users[email])
            checkout = sales.start_checkout(session, stripe, buyer=buyer, release_id=by_slug[slug]["release_id"],
                                            amount=amount, clock=clock)
            session.commit()
            confirmed = sales.confirm_checkout(session, stripe, checkout.order_id, user=buyer,
                                               payment_method=card_token(base, key, number))
            session.commit()
            if confirmed.status == "requires_action":
                authenticate(base, key, checkout.payment_intent_id, confirmed.client_secret)
            orders.append(checkout)
        ctx = sales.WebhookContext(stripe=stripe, clock=clock, redis=runtime.redis)
        for checkout in orders:
            _deliver(session, ctx, config.stripe_webhook_secret, hooks, "payment_intent.succeeded",
                     checkout.payment_intent_id)

        # Finance refunds half of one sale.
        finance = session.get(User, users["finance@ninety.test"])
        refunded = sales.get_order(session, orders[REFUNDED].order_id)
        half = Money(refunded.amount_micros // 2, refunded.currency)
        sales.refund_order(session, stripe, refunded.id, amount=half, by=finance, as_finance=True,
                           window_days=config.sales_refund_window_days, clock=clock,
                           reason="Demo: the buyer asked for half back")
        session.commit()

        # The Night Owls hand out download codes; Kim redeems one.
        owls = by_slug["the-night-owls"]
        artist = session.get(User, _member(session, owls["artist_id"]))
        codes = [c.code for c in sales.generate_codes(session, release_id=owls["release_id"], user=artist,
                                                      count=CODES, clock=clock)]
        session.commit()
        kim = session.get(User, users["kim@listeners.ninety.test"])
        sales.redeem_code(session, runtime.redis, code=codes[0], user=kim, ip="198.18.0.77", clock=clock)
        session.commit()
    finally:
        session.close()
    state["sales"] = {"orders": [c.order_id for c in orders], "refunded_order": orders[REFUNDED].order_id,
                      "codes": codes}


def _deliver(session, ctx, secret: str, hooks: _Hooks, event_type: str, payment_intent_id: str) -> None:
    """Hand the event localstripe sent, as it sent it, to what POST /webhooks/stripe calls."""
    from sales import services as sales

    payload, signature = hooks.wait_for(event_type, payment_intent_id)
    sales.handle_webhook(session, ctx, payload, signature, secret=secret)
    session.commit()


def _member(session, artist_id: int) -> int:
    from sqlalchemy import select

    from catalog.models import ArtistMember

    return session.scalar(select(ArtistMember.user_id).where(ArtistMember.artist_id == artist_id)
                          .order_by(ArtistMember.user_id).limit(1))
