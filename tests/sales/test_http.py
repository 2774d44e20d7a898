"""The webhook endpoint and the sales API over HTTP (the test client and a live server for concurrency)."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from sqlalchemy import func, select, text

from ledger.accounts import STRIPE, payee_payable
from sales.models import WebhookEvent
from tests.conftest import csrf_headers, login
from tests.sales.conftest import WEBHOOK_SECRET


def _post_event(client, shop, event, **sign):
    payload, header = shop.signed(event, **sign)
    return client.post("/webhooks/stripe", data=payload, headers={"Stripe-Signature": header,
                                                                  "Content-Type": "application/json"})


def test_a_signed_webhook_fulfils_and_a_forged_or_stale_one_is_a_400_that_changes_nothing(shop):
    client = shop.app.test_client()
    release = shop.release(price="6.00", tracks=1)
    checkout = shop.checkout(shop.user(), release)
    event = shop.pay(checkout)
    forged = _post_event(client, shop, event, secret="whsec_someone_else")
    stale = _post_event(client, shop, event, timestamp=int(time.time()) - 3600)
    unsigned = client.post("/webhooks/stripe", json=event)
    payload, header = shop.signed(event)
    tampered = client.post("/webhooks/stripe", data=payload.replace(b'"succeeded"', b'"succeeded" '),
                           headers={"Stripe-Signature": header})
    for response in (forged, stale, unsigned, tampered):
        assert response.status_code == 400, response.get_data(as_text=True)
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["code"] == "bad_webhook_signature"
    assert shop.order(checkout.order_id).status == "pending"
    assert shop.balance(STRIPE) == 0
    with shop.sessions() as s:
        assert s.scalar(select(func.count()).select_from(WebhookEvent)) == 0

    ok = _post_event(client, shop, event)
    assert ok.status_code == 200 and ok.get_json()["outcome"] == "fulfilled"
    replay = _post_event(client, shop, event)
    assert replay.status_code == 200 and replay.get_json()["outcome"] == "duplicate"
    assert shop.order(checkout.order_id).status == "paid"
    assert shop.balance(STRIPE) == 6_000_000 - shop.standin.fee_for(600) * 10_000


def test_the_same_webhook_delivered_20_times_at_once_fulfils_once(shop):
    from werkzeug.serving import make_server

    from tests.conftest import free_port

    release = shop.release(price="9.00", tracks=2)
    checkout = shop.checkout(shop.user(), release)
    payload, header = shop.signed(shop.pay(checkout))
    port = free_port()
    server = make_server("127.0.0.1", port, shop.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    outcomes: list = []
    start = threading.Barrier(20)

    def deliver():
        start.wait()
        response = requests.post(f"http://127.0.0.1:{port}/webhooks/stripe", data=payload, timeout=30,
                                 headers={"Stripe-Signature": header, "Content-Type": "application/json"})
        outcomes.append((response.status_code, response.json().get("outcome")))

    try:
        workers = [threading.Thread(target=deliver) for _ in range(20)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
    finally:
        server.shutdown()
        thread.join(timeout=5)
    assert len(outcomes) == 20
    assert sorted(o for _, o in outcomes) == ["duplicate"] * 19 + ["fulfilled"]
    assert {status for status, _ in outcomes} == {200}
    from ledger.services import get_entry
    from sales.models import Order

    with shop.sessions() as s:
        order = s.get(Order, checkout.order_id)
        assert order.status == "paid"
        entry = get_entry(s, order.sale_entry_id)
        assert s.scalar(text("SELECT count(*) FROM ledger_entries")) == 1
    fee = shop.standin.fee_for(900) * 10_000
    assert shop.balance(STRIPE) == 9_000_000 - fee
    assert entry.metadata["event"] == "sale"
    shop.books_ok()


def test_the_checkout_api_and_the_collection(shop):
    client = shop.app.test_client()
    release = shop.release(model="name_your_price", price=None, minimum="2.00", suggested="4.00", tracks=1)
    buyer = shop.user()
    login(client, buyer)
    bad = {"1.99": "below_minimum", "-1": "non_positive_amount", "0": "non_positive_amount",
           "four": "invalid_amount", "4.005": "too_precise", "99999999": "amount_too_large"}
    for amount, code in bad.items():
        response = client.post("/api/v1/sales/checkout", json={"release_id": release["release_id"], "amount": amount},
                               headers=csrf_headers())
        assert response.status_code == 422 and response.get_json()["code"] == code, (amount, response.get_json())
    as_number = client.post("/api/v1/sales/checkout", json={"release_id": release["release_id"], "amount": 4},
                            headers=csrf_headers())
    assert as_number.status_code == 422
    missing = client.post("/api/v1/sales/checkout", json={"release_id": 2**31 - 1}, headers=csrf_headers())
    assert missing.status_code == 404 and missing.get_json()["code"] == "release_not_found"
    no_csrf = client.post("/api/v1/sales/checkout", json={"release_id": release["release_id"]})
    assert no_csrf.status_code == 403
    made = client.post("/api/v1/sales/checkout", json={"release_id": release["release_id"], "amount": "6.50"},
                       headers=csrf_headers())
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert body["client_secret"] and body["amount"]["micros"] == 6_500_000 and body["status"] == "requires_payment_method"
    order = client.get(f"/api/v1/sales/orders/{body['order_id']}").get_json()
    assert (order["status"], order["owned"]) == ("pending", False)
    other = shop.app.test_client()
    login(other, shop.user())
    assert other.get(f"/api/v1/sales/orders/{body['order_id']}").status_code == 404
    assert client.get("/api/v1/sales/purchases").get_json()["orders"] == []
    shop.standin.confirm(body["payment_intent_id"])
    intent = shop.standin.payment_intents[body["payment_intent_id"]]
    assert _post_event(client, shop, shop.standin.event("payment_intent.succeeded", intent)).status_code == 200
    [bought] = client.get("/api/v1/sales/purchases").get_json()["orders"]
    assert (bought["id"], bought["owned"], bought["amount"]["micros"]) == (body["order_id"], True, 6_500_000)


def test_refunds_over_the_api_by_finance_and_by_the_artist_within_the_window(shop):
    release = shop.release(price="10.00", tracks=1)
    buyer = shop.user()
    order_id = shop.buy(buyer, release).order_id
    artist = shop.app.test_client()
    login(artist, release["artist_user"])
    stranger_artist = shop.app.test_client()
    login(stranger_artist, shop.release(price="1.00")["artist_user"])
    listener = shop.app.test_client()
    login(listener, buyer)
    url = f"/api/v1/sales/orders/{order_id}/refunds"
    assert listener.post(url, json={}, headers=csrf_headers()).status_code == 403
    refused = stranger_artist.post(url, json={"amount": "1.00"}, headers=csrf_headers())
    assert refused.status_code == 403 and refused.get_json()["code"] == "not_your_sale"
    partial = artist.post(url, json={"amount": "2.50", "reason": "asked nicely"}, headers=csrf_headers())
    assert partial.status_code == 201, partial.get_json()
    assert partial.get_json()["order"]["refundable"]["micros"] == 7_500_000
    over = artist.post(url, json={"amount": "7.51"}, headers=csrf_headers())
    assert over.status_code == 409 and over.get_json()["code"] == "refund_exceeds_remaining"
    for amount, code in {"-1": "non_positive_amount", "0": "non_positive_amount", "x": "invalid_amount",
                         "1.001": "too_precise"}.items():
        response = artist.post(url, json={"amount": amount}, headers=csrf_headers())
        assert response.status_code == 422 and response.get_json()["code"] == code, amount
    shop.clock.advance(days=15)
    late = artist.post(url, json={"amount": "1.00"}, headers=csrf_headers())
    assert late.status_code == 409 and late.get_json()["code"] == "refund_window_closed"
    finance = shop.app.test_client()
    login(finance, shop.user(roles=("finance",)))
    rest = finance.post(url, json={}, headers=csrf_headers())
    assert rest.status_code == 201 and rest.get_json()["order"]["owned"] is False
    assert finance.post(url, json={}, headers=csrf_headers()).get_json()["code"] == "refund_exceeds_remaining"
    assert sum(r["amount"] for r in shop.standin.refunds.values()) == 1000
    assert shop.balance(payee_payable(release["payee_id"])) == 0
    assert shop.balance(payee_payable(release["collaborator_id"])) == 0
    shop.books_ok()


def test_codes_over_the_api(shop):
    release = shop.release(price="5.00", tracks=2)
    artist = shop.app.test_client()
    login(artist, release["artist_user"])
    url = f"/api/v1/sales/releases/{release['release_id']}/codes"
    for count in (0, 1001, "5", True):
        assert artist.post(url, json={"count": count}, headers=csrf_headers()).status_code == 422, count
    made = artist.post(url, json={"count": 3}, headers=csrf_headers())
    assert made.status_code == 201
    codes = [c["code"] for c in made.get_json()["codes"]]
    assert len(set(codes)) == 3
    csv_text = artist.get(url + "?format=csv").get_data(as_text=True)
    assert csv_text.splitlines()[0] == "code,batch,created_at,redeemed,redeemed_at"
    assert all(code in csv_text for code in codes)
    other = shop.app.test_client()
    login(other, shop.release(price="1.00")["artist_user"])
    assert other.get(url).status_code == 403
    assert other.post(url, json={"count": 1}, headers=csrf_headers()).status_code == 403

    listener = shop.app.test_client()
    login(listener, shop.user())
    redeemed = listener.post("/api/v1/sales/redeem", json={"code": codes[0].lower().replace("-", " ")},
                             headers=csrf_headers())
    assert redeemed.status_code == 201, redeemed.get_json()
    assert redeemed.get_json()["amount"]["micros"] == 0 and redeemed.get_json()["owned"] is True
    again = shop.app.test_client()
    login(again, shop.user())
    used = again.post("/api/v1/sales/redeem", json={"code": codes[0]}, headers=csrf_headers())
    assert used.status_code == 409 and used.get_json()["code"] == "code_used"
    unknown = again.post("/api/v1/sales/redeem", json={"code": "ZZZZZ-ZZZZZ"}, headers=csrf_headers())
    assert unknown.status_code == 404 and unknown.get_json()["code"] == "code_not_found"
    statuses = [again.post("/api/v1/sales/redeem", json={"code": f"AAAAA-AAA{i:02d}"}, headers=csrf_headers()).status_code
                for i in range(12)]
    assert statuses.count(429) >= 3 and set(statuses) <= {404, 429}
    limited = again.post("/api/v1/sales/redeem", json={"code": codes[1]}, headers=csrf_headers())
    assert limited.status_code == 429 and "Retry-After" in limited.headers  # even a good code, once limited
    assert shop.balance(STRIPE) == 0  # no money moved


@pytest.mark.parametrize("secret", [""])
def test_without_a_webhook_secret_nothing_is_accepted(make_app, clock, standin, secret):
    app = make_app(clock=clock, stripe_api_base=standin.url, stripe_api_key=standin.api_key,
                   stripe_webhook_secret=secret)
    event = standin.event("payment_intent.succeeded", {"id": "pi_x", "object": "payment_intent"})
    import json

    payload = json.dumps(event).encode()
    response = app.test_client().post("/webhooks/stripe", data=payload,
                                      headers={"Stripe-Signature": standin.sign(payload, WEBHOOK_SECRET)})
    assert response.status_code == 503 and response.get_json()["code"] == "webhook_unconfigured"
