"""Premium over HTTP: plans and terms, subscribing through the JSON steps the card form uses, Stripe's signed
webhook at /webhooks/stripe (forged and replayed deliveries change nothing), the account page, cancelling
(someone else's is a 404), the receipt, finance's console, and the gate without an ad for a subscriber."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from sqlalchemy import select

from core.money import share_ceil
from sales.subscription_models import Subscription
from sales.subscriptions import subscriber_pool
from tests.conftest import csrf_headers, login
from tests.subscriptions.conftest import CARD_DECLINED_ON_CHARGE

HTML = {"Accept": "text/html"}


def post_webhook(client, world, event, *, forge=False):
    payload, signature = world.signed(event)
    if forge:
        signature = signature.replace("v1=", "v1=0")
    return client.post("/webhooks/stripe", data=payload, headers={"Stripe-Signature": signature,
                                                                  "Content-Type": "application/json"})


def subscribe_over_http(client, world, number="4242424242424242", currency="USD"):
    setup = client.post("/premium/setup", json={"currency": currency}, headers=csrf_headers())
    assert setup.status_code == 201, setup.get_data(as_text=True)
    seti = world.confirm_card(setup.get_json()["client_secret"], number)
    return client.post("/premium/subscribe", json={"currency": currency, "setup_intent": seti},
                       headers=csrf_headers())


def test_plans_and_terms_are_public_and_say_what_happens_to_unplayed_pools(pworld):
    client = pworld.app.test_client()
    page = client.get("/premium", headers=HTML)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "$4.99" in text and "Sign in to subscribe" in text
    terms = client.get("/premium/terms", headers=HTML).get_data(as_text=True)
    assert "three months in a row" in terms and "carried to the next month" in terms


def test_subscribe_then_the_signed_webhook_turns_premium_on_once(pworld):
    client = pworld.app.test_client()
    user = pworld.listener("ana")
    login(client, user)
    answer = subscribe_over_http(client, pworld)
    assert answer.status_code == 201 and answer.get_json()["status"] == "active"
    account = client.get("/account/premium", headers=HTML).get_data(as_text=True)
    assert 'data-status="incomplete"' in account and 'data-premium="0"' in account
    with pworld.session() as s:
        stripe_sub = s.scalars(select(Subscription.stripe_subscription_id)
                               .where(Subscription.user_id == user.id)).one()
    now = pworld.clock.now()
    event = pworld.invoice_event("invoice.payment_succeeded", stripe_sub, amount_minor=499, start=now,
                                 end=now + timedelta(days=31))
    forged = post_webhook(client, pworld, event, forge=True)
    assert forged.status_code == 400 and forged.get_json()["code"] == "bad_webhook_signature"
    assert pworld.balance(subscriber_pool("2026-10")) == 0
    first = post_webhook(client, pworld, event)
    assert first.status_code == 200 and first.get_json()["outcome"] == "invoice_paid"
    replay = post_webhook(client, pworld, event)
    assert replay.status_code == 200 and replay.get_json()["outcome"] == "duplicate"
    assert pworld.balance(subscriber_pool("2026-10")) == share_ceil(4_990_000, 9, 10)
    account = client.get("/account/premium", headers=HTML).get_data(as_text=True)
    assert 'data-premium="1"' in account and 'id="renews-at"' in account and "$4.99" in account
    assert re.search(r"<td>paid</td>", account)
    # Subscribing twice: a clear 409.
    again = client.post("/premium/setup", json={"currency": "USD"}, headers=csrf_headers())
    assert again.status_code == 409 and again.get_json()["code"] == "already_subscribed"


def test_a_declined_card_is_a_402_and_nothing_is_kept(pworld):
    client = pworld.app.test_client()
    user = pworld.listener()
    login(client, user)
    answer = subscribe_over_http(client, pworld, number=CARD_DECLINED_ON_CHARGE)
    assert answer.status_code == 402 and answer.get_json()["code"] == "card_declined"
    with pworld.session() as s:
        assert s.scalars(select(Subscription).where(Subscription.user_id == user.id)).all() == []


def test_bad_input_is_a_clear_4xx(pworld):
    client = pworld.app.test_client()
    login(client, pworld.listener())
    assert client.post("/premium/setup", json={"currency": "XXX"}, headers=csrf_headers()).status_code == 422
    bad = client.post("/premium/subscribe", json={"currency": "USD", "setup_intent": "nope"}, headers=csrf_headers())
    assert bad.status_code == 409 and bad.get_json()["code"] == "card_not_confirmed"
    assert client.get("/premium/receipt?period=2026-13", headers=HTML).status_code == 422
    anonymous = pworld.app.test_client()
    assert anonymous.post("/premium/setup", json={"currency": "USD"}).status_code in (401, 403)


def test_cancelling_someone_elses_subscription_is_a_404_and_ones_own_keeps_the_period(pworld):
    ana, bo = pworld.listener("ana"), pworld.listener("bo")
    sub_id, stripe_sub, _, _ = pworld.subscribe(ana)
    now = pworld.clock.now()
    pworld.apply(pworld.invoice_event("invoice.payment_succeeded", stripe_sub, amount_minor=499, start=now,
                                      end=now + timedelta(days=31)))
    thief = pworld.app.test_client()
    login(thief, bo)
    refused = thief.post(f"/account/premium/{sub_id}/cancel", data={"csrf_token": "test-csrf"}, headers=HTML)
    assert refused.status_code == 404
    owner = pworld.app.test_client()
    login(owner, ana)
    done = owner.post(f"/account/premium/{sub_id}/cancel", data={"csrf_token": "test-csrf"})
    assert done.status_code == 303
    page = owner.get("/account/premium", headers=HTML).get_data(as_text=True)
    assert "ends at the end of the paid period" in page and 'data-premium="1"' in page


def test_the_receipt_page_lists_the_artists_played(pworld):
    artist = pworld.artist("Mina Kato")
    user = pworld.listener()
    _, stripe_sub, _, _ = pworld.subscribe(user)
    now = pworld.clock.now()
    pworld.apply(pworld.invoice_event("invoice.payment_succeeded", stripe_sub, amount_minor=499, start=now,
                                      end=now + timedelta(days=31)))
    pworld.play(user.id, artist["tracks"][0], now + timedelta(hours=2), 150_000)
    pworld.clock.advance(days=1)
    client = pworld.app.test_client()
    login(client, user)
    page = client.get("/premium/receipt", headers=HTML).get_data(as_text=True)
    assert 'data-artist="Mina Kato"' in page and "2.5" in page and 'id="open-month"' in page


def test_finance_cancels_at_once_and_others_may_not(pworld):
    user = pworld.listener()
    sub_id, stripe_sub, _, _ = pworld.subscribe(user)
    now = pworld.clock.now()
    pworld.apply(pworld.invoice_event("invoice.payment_succeeded", stripe_sub, amount_minor=499, start=now,
                                      end=now + timedelta(days=30)))
    listener = pworld.app.test_client()
    login(listener, user)
    assert listener.get("/finance/premium", headers=HTML).status_code == 403
    assert listener.post(f"/finance/premium/{sub_id}/cancel-now", data={"csrf_token": "test-csrf"},
                         headers=HTML).status_code == 403
    finance = pworld.app.test_client()
    login(finance, pworld.finance("fin"))
    assert f'data-subscription="{sub_id}"' in finance.get("/finance/premium", headers=HTML).get_data(as_text=True)
    pworld.clock.advance(days=15)
    assert finance.post(f"/finance/premium/{sub_id}/cancel-now", data={"csrf_token": "test-csrf"}).status_code == 303
    with pworld.session() as s:
        assert s.get(Subscription, sub_id).status == "canceled"
    # Half the period unused: about half the pool went back with the refund (exact figures: test_lifecycle).
    assert 0 < pworld.balance(subscriber_pool("2026-10")) < share_ceil(4_990_000, 9, 10)


def test_a_subscriber_downloads_a_free_track_without_an_ad(pworld):
    track_id = pworld.audio_track()
    user, other = pworld.listener("premium"), pworld.listener("free")
    _, stripe_sub, _, _ = pworld.subscribe(user)
    now = pworld.clock.now()
    pworld.apply(pworld.invoice_event("invoice.payment_succeeded", stripe_sub, amount_minor=499, start=now,
                                      end=now + timedelta(days=31)))
    client = pworld.app.test_client()
    login(client, user)
    gate = client.get(f"/tracks/{track_id}/free", headers=HTML).get_data(as_text=True)
    assert "data-premium" in gate and "Advertisement" not in gate
    got = client.post(f"/tracks/{track_id}/free/without-ad", data={"csrf_token": "test-csrf", "via": "subscriber"})
    assert got.status_code == 303 and "/download/" in got.headers["Location"], got.get_data(as_text=True)[:600]
    as_json = client.post("/api/v1/ads/gate", json={"track_id": track_id}, headers=csrf_headers())
    assert as_json.status_code == 200 and as_json.get_json()["state"] == "subscriber"
    # Without premium, asking for the subscriber's way is refused.
    free = pworld.app.test_client()
    login(free, other)
    refused = free.post(f"/tracks/{track_id}/free/without-ad", data={"csrf_token": "test-csrf", "via": "subscriber"},
                        headers={"Accept": "application/json"})
    assert refused.status_code == 403 and json.loads(refused.get_data())["code"] == "not_a_subscriber"
