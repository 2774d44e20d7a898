"""Demo premium, made through the real path: three listeners subscribe early in the history month, two of them
listen to the catalog through that month, and the month the royalties seeder closes shares their pools.

Each subscription is what the premium page does: `sales.subscriptions.start_subscription` (the plan at the
embedded localstripe, the Stripe customer and a SetupIntent), the card confirmed with the publishable key as
Stripe.js's `confirmCardSetup` does, then `subscribe` (the Stripe subscription, its first invoice charged).
Premium is not turned on by the seed: localstripe sends its signed `invoice.payment_succeeded` events to a
loopback endpoint of the seed's, which hands each one, as sent, to the service POST /webhooks/stripe calls.
The seed's clock stands in the history month (as the royalties seeder's does), so the invoices fund that
month's subscriber pools. Plays are listening sessions reported the way the player's beacons are
(`catalog.plays.record_heard`, on the simulated clock).

After the close (ORDER 40, royalties): Nora's and Omar's pools went to the artists they played; Pia played
nothing, so hers carries to this month. /premium/receipt shows each of them where the money went.
Runs only against localstripe (the demo's embedded Stripe); with a real Stripe key it seeds no premium.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import timedelta

import requests

from app.seed.accounts import DEMO_PASSWORD
from app.seed.sales import WEBHOOK_WAIT_S, _Hooks, with_localstripe_hooks
from core.clock import FrozenClock
from core.users import User, create_user

ORDER = 35  # after the catalog (20), media (25) and ads (30); before the royalties seeder closes the month (40)
CARD = "4242424242424242"
# email, name, plays in the history month (Pia plays nothing: her pool carries forward)
SUBSCRIBERS = [
    ("nora@listeners.ninety.test", "Nora North", 24),
    ("omar@listeners.ninety.test", "Omar Ortiz", 9),
    ("pia@listeners.ninety.test", "Pia Park", 0),
]
TRACKS_PER_SUBSCRIBER = 4


class _SubscriptionHooks(_Hooks):
    def wait_for_subscription(self, event_type: str, stripe_subscription_id: str) -> tuple[bytes, str]:
        """The first `event_type` event localstripe sent about an invoice of that subscription."""
        deadline = time.monotonic() + WEBHOOK_WAIT_S
        while time.monotonic() < deadline:
            for payload, signature in list(self.received):
                event = json.loads(payload)
                if event.get("type") == event_type \
                        and event["data"]["object"].get("subscription") == stripe_subscription_id:
                    return payload, signature
            time.sleep(0.05)
        raise RuntimeError(f"localstripe sent no {event_type} for {stripe_subscription_id}")


def confirm_card_setup(api_base: str, publishable_key: str, client_secret: str, number: str = CARD) -> str:
    """What Stripe.js's confirmCardSetup does with the card element; returns the SetupIntent's id."""
    setup_intent = client_secret.split("_secret_")[0]
    response = requests.post(f"{api_base.rstrip('/')}/v1/setup_intents/{setup_intent}/confirm", timeout=10, json={
        "key": publishable_key, "client_secret": client_secret, "use_stripe_sdk": True,
        "payment_method_data": {"type": "card", "card": {"number": number, "exp_month": "12", "exp_year": "2034",
                                                         "cvc": "123"}}})
    response.raise_for_status()
    return setup_intent


def seed(runtime, state: dict) -> None:
    if state.get("tracks"):
        with_localstripe_hooks(runtime, state, _seed, what="premium", hooks_class=_SubscriptionHooks)


def _seed(runtime, state: dict, hooks: _SubscriptionHooks) -> None:
    from payments.stripe_client import make_stripe_client
    from payments.subscriptions import make_subscription_gateway
    from royalties.periods import bounds, period_of, previous
    from sales import services as sales
    from sales import subscriptions

    config = runtime.config
    gateway = make_subscription_gateway(config.stripe_api_key, config.stripe_api_base)
    stripe = make_stripe_client(config.stripe_api_key, config.stripe_api_base)
    settings = subscriptions.SubscriptionSettings.parse(config.subscription_prices, config.subscription_grace_days)
    history = previous(period_of(runtime.clock.now()))
    start, cutoff = bounds(history)
    clock = FrozenClock(start + timedelta(hours=9))
    rng = random.Random(13)
    tracks = list(state["tracks"])
    session = runtime.sessions()
    seeded = []
    try:
        users = dict(state.get("users") or {})
        for email, name, _ in SUBSCRIBERS:
            users[email] = create_user(session, email=email, password=DEMO_PASSWORD, display_name=name,
                                       roles=["listener"]).id
        session.commit()
        state["users"] = users

        ctx = sales.WebhookContext(stripe=stripe, clock=clock, redis=runtime.redis)
        for index, (email, _, plays) in enumerate(SUBSCRIBERS):
            clock.set(start + timedelta(days=index, hours=9))
            user = session.get(User, users[email])
            started = subscriptions.start_subscription(session, gateway, user, config.currency, settings=settings,
                                                       clock=clock)
            session.commit()
            setup_intent = confirm_card_setup(config.stripe_api_base, config.stripe_publishable_key,
                                              started["client_secret"])
            result = subscriptions.subscribe(session, gateway, user, config.currency, setup_intent,
                                             settings=settings, clock=clock)
            session.commit()
            if result.status != "active":
                raise RuntimeError(f"the demo subscription of {email} is {result.status}")
            payload, signature = hooks.wait_for_subscription("invoice.payment_succeeded",
                                                             result.subscription.stripe_subscription_id)
            sales.handle_webhook(session, ctx, payload, signature, secret=config.stripe_webhook_secret)
            session.commit()
            _listen(session, user, rng.sample(tracks, k=min(TRACKS_PER_SUBSCRIBER, len(tracks))), plays,
                    rng, start + timedelta(days=index + 1), cutoff)
            session.commit()
            seeded.append(user.id)
    finally:
        session.close()
    state["subscribers"] = seeded
    state["subscription_period"] = history


def _listen(session, user: User, tracks: list[int], plays: int, rng: random.Random, start, cutoff) -> None:
    """`plays` listening sessions through the month, each heard as the player reports it: a first report
    under 30 s, then the rest (a third of them stop part-way through the track)."""
    from catalog import plays as listening
    from catalog.models import AudioAsset, Track

    durations = {t.id: a.duration_ms for t, a in session.query(Track, AudioAsset)
                 .join(AudioAsset, AudioAsset.id == Track.asset_id).filter(Track.id.in_(tracks))}
    playable = [t for t in tracks if durations.get(t, 0) > listening.COUNT_AFTER_MS]
    if not playable:
        return
    span_s = int((cutoff - start).total_seconds()) - 3 * 3600
    for _ in range(plays):
        track_id = rng.choice(playable)
        started_at = start + timedelta(seconds=rng.randrange(span_s))
        opened = listening.open_session(session, listener_id=f"u{user.id}", user_id=user.id, session_id=None,
                                        now=started_at)
        report = listening.PlayReport(play_id=uuid.uuid4(), track_id=track_id, kind="full",
                                      listener_id=f"u{user.id}", user_id=user.id, session_id=opened.session_id,
                                      started_at=started_at)
        whole = durations[track_id]
        heard = whole if rng.random() < 2 / 3 else rng.randrange(listening.COUNT_AFTER_MS, whole)
        first = listening.COUNT_AFTER_MS // 2
        listening.record_heard(session, report, first, previous_ms=0, now=started_at + timedelta(milliseconds=first))
        listening.record_heard(session, report, heard, previous_ms=first,
                               now=started_at + timedelta(milliseconds=heard))
