"""The sales pages over HTTP: checkout (fixed and name-your-price, signed out and in, the basket kept through
sign-up), the card confirmation against a real localstripe with its signed webhooks delivered to the live
app, the order page, the collection and its re-downloads, codes, refunds, top-up, and the demo mail page."""

from __future__ import annotations

import io
import re
import time

import pytest
import requests
from sqlalchemy import func, select

from tests.conftest import PASSWORD, csrf_headers, login

SECRET = "whsec_pages_test_secret"


@pytest.fixture(scope="module")
def localstripe():
    """One localstripe for this module's tests (each test's intents are its own; the webhook is re-pointed)."""
    from core.embedded import spawn_localstripe, stop_process
    from tests.conftest import LocalStripe

    process, port = spawn_localstripe()
    try:
        yield LocalStripe(port)
    finally:
        stop_process(process)


@pytest.fixture
def app(make_app, localstripe, smtp):
    return make_app(stripe_api_base=localstripe.url, stripe_webhook_secret=SECRET, smtp_url=smtp.url)


@pytest.fixture
def shop(app, make_user):
    """shop.release(...) -> ids of a published, priced release with audio; shop.artist_user its member."""
    from catalog import services as catalog
    from catalog.storage import MediaStore
    from catalog.uploads import upload_track
    from core.users import get_user
    from tests.catalog.conftest import tone

    runtime = app.extensions["ninety"]

    class Shop:
        def release(self, *, model="fixed", price="5.00", minimum=None, suggested=None, title="Lamplight EP",
                    tracks=("Streetlight Serenade", "Last Bus Home"), publish=True):
            user = make_user(roles=("artist",))
            session = runtime.sessions()
            try:
                artist = catalog.create_artist(session, user=get_user(session, user.id), name=f"Owls {user.id}")
                release = catalog.create_release(session, artist.id, title=title, kind="ep")
                for position, name in enumerate(tracks, start=1):
                    upload_track(session, MediaStore(runtime.config.media_path), release,
                                 io.BytesIO(tone("wav", seconds=0.5)), f"{position:02d} {name}.wav",
                                 clock=runtime.clock, max_bytes=None, title=name, position=position)
                catalog.set_release_price(session, release, model, price=price if model == "fixed" else None,
                                          minimum=minimum, suggested=suggested)
                if publish:
                    catalog.publish_release(session, release, clock=runtime.clock)
                session.commit()
                self.artist_user = user
                return {"release_id": release.id, "artist_id": artist.id, "slug": artist.slug,
                        "tracks": [t.id for t in release.tracks], "user": user}
            finally:
                session.close()

    return Shop()


def _csrf(client) -> str:
    with client.session_transaction() as sess:
        return sess.get("_csrf") or "test-csrf"


def _order(app, order_id):
    from sales.models import Order

    with app.extensions["ninety"].sessions() as s:
        order = s.get(Order, order_id)
        s.expunge(order)
        return order


def _policy(response) -> dict:
    header = response.headers.get("Content-Security-Policy", "")
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


# --- the checkout page ---------------------------------------------------------------------------------------
def test_the_release_page_links_to_the_checkout(app, client, shop):
    release = shop.release()
    page = client.get(f"/artists/{release['slug']}/lamplight-ep")
    assert page.status_code == 200
    assert f'href="/checkout/releases/{release["release_id"]}"' in page.text


def test_a_single_track_has_a_checkout_of_its_own(app, client, shop, make_user):
    release = shop.release()
    login(client, make_user())
    page = client.get(f"/checkout/tracks/{release['tracks'][1]}")
    assert page.status_code == 200
    assert "Buy Last Bus Home" in page.text and "Track from" in page.text
    assert f'name="track_id" value="{release["tracks"][1]}"' in page.text


def test_a_signed_out_listener_sees_the_price_and_a_way_to_sign_up_without_stripe_js(app, client, shop, localstripe):
    release = shop.release()
    page = client.get(f"/checkout/releases/{release['release_id']}")
    assert page.status_code == 200
    assert "Buy Lamplight EP" in page.text and "$5.00" in page.text and "(USD)" in page.text
    assert "Create an account and continue" in page.text
    assert localstripe.url not in page.text  # no card form before there is a buyer
    assert _policy(page)["script-src"] == ["'self'"]


def test_a_signed_in_listener_gets_the_card_form_from_localstripe_and_its_origin_in_the_csp(
        app, client, shop, make_user, localstripe):
    release = shop.release()
    login(client, make_user())
    page = client.get(f"/checkout/releases/{release['release_id']}")
    assert page.status_code == 200
    assert f'<script src="{localstripe.url}/js.stripe.com/v3/" defer></script>' in page.text
    assert 'data-stripe-key="pk_test_ninety_local"' in page.text and 'data-stripe-local="1"' in page.text
    assert "Card payment needs JavaScript" in page.text  # shown until the script hides it
    assert re.search(r'<button type="submit" data-pay data-label="Pay" hidden>', page.text)
    policy = _policy(page)
    assert localstripe.url in policy["script-src"] and localstripe.url in policy["connect-src"]
    assert localstripe.url in policy["frame-src"]


def test_name_your_price_is_prefilled_with_the_suggestion_and_keeps_the_amount_given(app, client, shop, make_user):
    release = shop.release(model="name_your_price", minimum="1.00", suggested="3.00", title="Neon Rain",
                           tracks=("Neon Rain",))
    login(client, make_user())
    page = client.get(f"/checkout/releases/{release['release_id']}")
    assert 'value="3.00"' in page.text and "at least $1.00" in page.text and "suggests $3.00" in page.text
    again = client.get(f"/checkout/releases/{release['release_id']}?amount=7.25")
    assert 'value="7.25"' in again.text


def test_the_basket_survives_signing_up_on_the_way(app, client, shop):
    release = shop.release(model="name_your_price", minimum="1.00", suggested="3.00")
    onward = client.get(f"/checkout/continue?release_id={release['release_id']}&amount=4.50&to=signup")
    assert onward.status_code == 303
    signup_url = onward.headers["Location"]
    assert signup_url.startswith("/signup?next=")
    form = client.get(signup_url)
    assert 'name="next" value="/checkout/releases/' in form.text
    created = client.post("/signup", data={"email": "new.listener@example.com", "password": PASSWORD,
                                           "roles": "listener", "csrf_token": _csrf(client),
                                           "next": f"/checkout/releases/{release['release_id']}?amount=4.50"})
    assert created.status_code == 302
    assert created.headers["Location"] == f"/checkout/releases/{release['release_id']}?amount=4.50"
    back = client.get(created.headers["Location"])
    assert 'value="4.50"' in back.text and "data-card-form" in back.text


def test_the_checkout_continues_only_to_this_site(app, client, shop):
    release = shop.release()
    client.get("/signup")
    created = client.post("/signup", data={"email": "x@example.com", "password": PASSWORD, "roles": "listener",
                                           "csrf_token": _csrf(client), "next": "https://evil.example/"})
    assert created.headers["Location"] == "/account"
    assert client.get("/checkout/continue?release_id=abc").status_code == 422
    assert client.get(f"/checkout/continue?release_id={release['release_id']}&to=signin").headers[
        "Location"].startswith("/signin?next=")


def test_things_that_cannot_be_bought_say_why(app, client, shop, make_user):
    draft = shop.release(publish=False, title="Unfinished")
    free = shop.release(model="free_with_ads", price=None, title="Free Songs")
    login(client, make_user())
    page = client.get(f"/checkout/releases/{draft['release_id']}")
    assert page.status_code == 409 and "not out yet" in page.text
    page = client.get(f"/checkout/releases/{free['release_id']}")
    assert page.status_code == 409 and "free with ads" in page.text
    assert client.get("/checkout/releases/999999").status_code == 404
    assert client.get("/checkout/tracks/999999").status_code == 404


def test_an_artist_is_told_they_cannot_buy_their_own_release(app, client, shop):
    release = shop.release()
    login(client, release["user"])
    page = client.get(f"/checkout/releases/{release['release_id']}")
    assert "your own release" in page.text and "data-card-form" not in page.text
    refused = client.post("/checkout/orders", json={"release_id": release["release_id"]}, headers=csrf_headers())
    assert refused.status_code == 403 and refused.json["code"] == "own_release"


@pytest.mark.parametrize(("amount", "code"), [
    ("0.50", "below_minimum"), ("0", "non_positive_amount"), ("-3", "invalid_amount"), ("abc", "invalid_amount"),
    ("99999999999", "amount_too_large"), ("3.001", "too_precise"), ("1e3", "invalid_amount"),
])
def test_bad_amounts_are_refused_with_their_reason_and_no_order(app, client, shop, make_user, amount, code):
    from sales.models import Order

    release = shop.release(model="name_your_price", minimum="1.00", suggested="3.00")
    login(client, make_user())
    refused = client.post("/checkout/orders", json={"release_id": release["release_id"], "amount": amount},
                          headers={**csrf_headers(), "Accept": "application/json"})
    assert refused.status_code == 422, refused.text
    assert refused.mimetype == "application/problem+json"
    if code != "invalid_amount" or amount != "-3":
        assert refused.json["code"] == code
    with app.extensions["ninety"].sessions() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 0


def test_creating_an_order_needs_a_session_and_the_csrf_token(app, client, shop, make_user):
    release = shop.release()
    assert client.post("/checkout/orders", json={"release_id": release["release_id"]}).status_code == 401
    login(client, make_user())
    refused = client.post("/checkout/orders", json={"release_id": release["release_id"]})
    assert refused.status_code == 403 and refused.json["code"] == "csrf_failed"
    assert client.post("/checkout/orders", json=["not", "an", "object"], headers=csrf_headers()).status_code == 422
    assert client.post("/checkout/orders", json={"release_id": 2**40}, headers=csrf_headers()).status_code == 422


# --- paying against localstripe, fulfilled by its signed webhook -----------------------------------------
def _token(localstripe, number="4242424242424242") -> str:
    response = requests.post(f"{localstripe.url}/v1/tokens", timeout=10, data={
        "card[number]": number, "card[exp_month]": "12", "card[exp_year]": "2034", "card[cvc]": "123",
        "key": localstripe.publishable_key})
    assert response.status_code == 200, response.text
    return response.json()["card"]["id"]


def _wait_paid(client, order_id, timeout_s=20) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = client.get(f"/checkout/orders/{order_id}/status").json
        if state["status"] != "pending":
            return state
        time.sleep(0.2)
    raise AssertionError("the webhook did not fulfil the order")


@pytest.fixture
def live(app, live_server, localstripe):
    localstripe.send_webhooks_to(f"{live_server.url}/webhooks/stripe", SECRET)
    return live_server


def test_a_purchase_is_fulfilled_by_the_webhook_never_by_the_confirmation(app, client, shop, make_user, live,
                                                                          localstripe):
    release = shop.release()
    buyer = make_user()
    login(client, buyer)
    created = client.post("/checkout/orders", json={"release_id": release["release_id"]}, headers=csrf_headers())
    assert created.status_code == 201, created.text
    body = created.json
    assert body["amount"]["micros"] == 5_000_000 and body["client_secret"].startswith("pi_")
    order_id = body["order_id"]
    assert body["next_url"] == f"/checkout/orders/{order_id}"

    confirmed = client.post(body["confirm_url"], json={"payment_method": _token(localstripe)}, headers=csrf_headers())
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json["status"] == "succeeded"
    # Stripe says succeeded, but nothing is owned until the signed webhook arrives (localstripe waits 1 s).
    assert _order(app, order_id).status == "pending"
    page = client.get(f"/checkout/orders/{order_id}")
    assert "Processing your payment" in page.text and 'data-status="pending"' in page.text
    assert '<meta http-equiv="refresh" content="3">' in page.text  # without JavaScript it refreshes itself

    assert _wait_paid(client, order_id) == {"order_id": order_id, "status": "paid", "owned": True}
    page = client.get(f"/checkout/orders/{order_id}")
    assert "is yours" in page.text and 'data-status="paid"' in page.text

    collection = client.get("/collection")
    assert collection.status_code == 200
    assert f'id="order-{order_id}"' in collection.text and "Streetlight Serenade" in collection.text
    download = client.post(f"/collection/tracks/{release['tracks'][0]}/download", data={"csrf_token": "test-csrf"})
    assert download.status_code == 303 and download.headers["Location"].startswith("/download/")
    file_link = client.get(download.headers["Location"])
    assert file_link.status_code == 303
    audio = client.get(file_link.headers["Location"])
    assert audio.status_code == 200 and audio.data[:4] == b"RIFF"
    # The grant is single-use; the collection gives a new one each time.
    assert client.get(download.headers["Location"]).status_code in (404, 409, 410)
    again = client.post(f"/collection/tracks/{release['tracks'][1]}/download", data={"csrf_token": "test-csrf"})
    assert again.status_code == 303
    # In the format chosen beside the track: the master is lossless, so every format is offered.
    first = release["tracks"][0]
    assert f'<select id="format-{first}" name="format">' in collection.text
    assert '<option value="flac">' in collection.text
    flac = client.post(f"/collection/tracks/{first}/download", data={"csrf_token": "test-csrf", "format": "flac"})
    assert flac.status_code == 303 and flac.headers["Location"].endswith("?format=flac")
    to_file = client.get(flac.headers["Location"])
    assert to_file.status_code == 303 and to_file.headers["Location"].endswith(".flac?format=flac")
    refused = client.post(f"/collection/tracks/{first}/download", data={"csrf_token": "test-csrf", "format": "dsd"})
    assert refused.status_code == 422  # refused before a grant is made

    # Bought already: the checkout says so instead of charging twice.
    assert "You own this already" in client.get(f"/checkout/releases/{release['release_id']}").text


def test_three_d_secure_is_asked_for_and_completed_in_the_page(app, client, shop, make_user, live, localstripe):
    release = shop.release(model="name_your_price", minimum="1.00", suggested="3.00", title="Neon Rain",
                           tracks=("Neon Rain",))
    login(client, make_user())
    body = client.post("/checkout/orders", json={"release_id": release["release_id"], "amount": "6.00"},
                       headers=csrf_headers()).json
    confirmed = client.post(body["confirm_url"], json={"payment_method": _token(localstripe, "4000002500003155")},
                            headers=csrf_headers()).json
    assert confirmed["status"] == "requires_action" and confirmed["client_secret"]
    time.sleep(1.5)
    assert _order(app, body["order_id"]).status == "pending"
    # What localstripe's Stripe.js does when the buyer completes the 3-D Secure dialog.
    passed = requests.post(f"{localstripe.url}/v1/payment_intents/{confirmed['client_secret'].split('_secret_')[0]}"
                           "/_authenticate", params={"success": "true"}, timeout=10,
                           json={"key": localstripe.publishable_key, "client_secret": confirmed["client_secret"]})
    assert passed.status_code == 200 and passed.json()["status"] == "succeeded"
    assert _wait_paid(client, body["order_id"])["status"] == "paid"
    assert _order(app, body["order_id"]).amount_micros == 6_000_000


def test_a_declined_card_is_refused_with_the_reason_and_nothing_owned(app, client, shop, make_user, live,
                                                                    localstripe):
    release = shop.release()
    login(client, make_user())
    body = client.post("/checkout/orders", json={"release_id": release["release_id"]}, headers=csrf_headers()).json
    declined = client.post(body["confirm_url"], json={"payment_method": _token(localstripe, "4000000000000341")},
                           headers=csrf_headers())
    assert 400 <= declined.status_code < 500, declined.text
    assert declined.json["detail"]
    time.sleep(2)
    assert _order(app, body["order_id"]).status in ("pending", "failed")
    assert "You own this already" not in client.get(f"/checkout/releases/{release['release_id']}").text


def test_an_order_is_only_its_buyers(app, client, shop, make_user):
    from sales.models import Order

    release = shop.release()
    buyer, other = make_user(), make_user()
    with app.extensions["ninety"].sessions() as s:
        order = Order(kind="sale", buyer_user_id=buyer.id, artist_id=release["artist_id"],
                      release_id=release["release_id"], currency="USD", amount_micros=5_000_000, status="pending")
        s.add(order)
        s.commit()
        order_id = order.id
    login(client, other)
    assert client.get(f"/checkout/orders/{order_id}").status_code == 404
    assert client.get(f"/checkout/orders/{order_id}/status").status_code == 404
    refused = client.post(f"/checkout/orders/{order_id}/card", json={"payment_method": "card_x"},
                          headers=csrf_headers())
    assert refused.status_code == 404
    assert client.post(f"/collection/tracks/{release['tracks'][0]}/download",
                       data={"csrf_token": "test-csrf"}).status_code in (403, 404, 409)


def test_the_collection_is_empty_at_first_and_needs_a_sign_in(app, client, make_user):
    assert client.get("/collection").status_code in (302, 401)
    login(client, make_user())
    page = client.get("/collection")
    assert page.status_code == 200 and 'id="empty-collection"' in page.text


# --- download codes ------------------------------------------------------------------------------------------
def test_the_artist_makes_codes_exports_them_and_a_listener_redeems_one_once(app, client, shop, make_user):
    release = shop.release()
    login(client, release["user"])
    made = client.post(f"/studio/releases/{release['release_id']}/codes", data={"count": "3",
                                                                               "csrf_token": "test-csrf"})
    assert made.status_code == 303
    page = client.get(f"/studio/releases/{release['release_id']}/codes")
    assert page.status_code == 200 and "3 codes, 3 not yet used" in page.text
    csv = client.get(f"/studio/releases/{release['release_id']}/codes.csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert csv.headers["Content-Disposition"].startswith("attachment; filename=")
    assert csv.headers["Content-Disposition"].endswith('.csv"')
    lines = csv.text.strip().splitlines()
    assert len(lines) == 4  # a header and three codes
    codes = re.findall(r'<td class="codes">([^<]+)</td>', page.text)
    assert len(codes) == 3 and all(code in csv.text for code in codes)
    assert client.post(f"/studio/releases/{release['release_id']}/codes",
                       data={"count": "0", "csrf_token": "test-csrf"}).status_code == 303
    assert "3 codes" in client.get(f"/studio/releases/{release['release_id']}/codes").text

    listener = make_user()
    other = app.test_client()
    login(other, listener)
    assert 'name="code"' in other.get("/redeem").text
    redeemed = other.post("/redeem", data={"code": codes[0], "csrf_token": "test-csrf"})
    assert redeemed.status_code == 303 and redeemed.headers["Location"].startswith("/collection#order-")
    assert "Streetlight Serenade" in other.get("/collection").text
    third = app.test_client()
    login(third, make_user())
    used = third.post("/redeem", data={"code": codes[0], "csrf_token": "test-csrf"})
    assert used.status_code == 409 and 'id="redeem-error"' in used.text
    unknown = third.post("/redeem", data={"code": "NOPE-NOPE-NOPE", "csrf_token": "test-csrf"})
    assert unknown.status_code == 404 and 'id="redeem-error"' in unknown.text


def test_guessing_codes_is_rate_limited(app, client, make_user):
    login(client, make_user())
    statuses = [client.post("/redeem", data={"code": f"GUESS-{n:04d}", "csrf_token": "test-csrf"}).status_code
                for n in range(40)]
    assert statuses[0] == 404 and statuses[-1] == 429
    last = client.post("/redeem", data={"code": "GUESS-LAST", "csrf_token": "test-csrf"})
    assert last.status_code == 429 and int(last.headers["Retry-After"]) >= 1 and 'id="redeem-error"' in last.text


def test_codes_are_only_for_the_artists_members(app, client, shop, make_user):
    release = shop.release()
    login(client, make_user(roles=("artist",)))
    assert client.get(f"/studio/releases/{release['release_id']}/codes").status_code == 403
    assert client.get(f"/studio/releases/{release['release_id']}/codes.csv").status_code == 403
    login(client, make_user())
    assert client.get(f"/studio/releases/{release['release_id']}/codes").status_code == 403


# --- refunds -------------------------------------------------------------------------------------------------
def _paid_order(app, client, shop, make_user, localstripe, live, **release_args):
    release = shop.release(**release_args)
    buyer = make_user()
    buyer_client = app.test_client()
    login(buyer_client, buyer)
    body = buyer_client.post("/checkout/orders", json={"release_id": release["release_id"]},
                             headers=csrf_headers()).json
    buyer_client.post(body["confirm_url"], json={"payment_method": _token(localstripe)}, headers=csrf_headers())
    assert _wait_paid(buyer_client, body["order_id"])["status"] == "paid"
    return release, buyer_client, body["order_id"]


def test_finance_refunds_part_then_cannot_refund_more_than_is_left(app, client, shop, make_user, localstripe, live):
    release, buyer_client, order_id = _paid_order(app, client, shop, make_user, localstripe, live)
    login(client, make_user(roles=("finance",)))
    listing = client.get("/finance/sales")
    assert listing.status_code == 200 and f'/finance/sales/orders/{order_id}"' in listing.text
    page = client.get(f"/finance/sales/orders/{order_id}")
    assert '<dd id="refundable">$5.00</dd>' in page.text
    half = client.post(f"/finance/sales/orders/{order_id}/refunds",
                       data={"amount": "2.50", "reason": "half back", "csrf_token": "test-csrf"})
    assert half.status_code == 303
    page = client.get(f"/finance/sales/orders/{order_id}")
    assert '<dd id="refunded">$2.50</dd>' in page.text and '<dd id="refundable">$2.50</dd>' in page.text
    assert "half back" in page.text
    too_much = client.post(f"/finance/sales/orders/{order_id}/refunds",
                           data={"amount": "3.00", "csrf_token": "test-csrf"}, follow_redirects=True)
    assert "Only $2.50 is left to refund" in too_much.text
    assert _order(app, order_id).refunded_micros == 2_500_000
    # The buyer still owns it (half was refunded) and sees the refund.
    collection = buyer_client.get("/collection").text
    assert "refunded $2.50" in collection and "Streetlight Serenade" in collection
    assert client.get("/finance/sales?order=abc").status_code == 422


def test_the_artist_refunds_their_own_sale_in_the_window(app, client, shop, make_user, localstripe, live):
    release, buyer_client, order_id = _paid_order(app, client, shop, make_user, localstripe, live)
    login(client, release["user"])
    page = client.get("/studio/sales")
    assert page.status_code == 200 and f'id="order-{order_id}"' in page.text
    done = client.post(f"/studio/sales/{order_id}/refund", data={"csrf_token": "test-csrf"})
    assert done.status_code == 303
    assert _order(app, order_id).refunded_micros == 5_000_000
    assert "no longer in your collection" in buyer_client.get("/collection").text
    stranger = app.test_client()
    login(stranger, make_user(roles=("artist",)))
    refused = stranger.post(f"/studio/sales/{order_id}/refund", data={"csrf_token": "test-csrf"},
                            follow_redirects=True)
    assert "Only finance" in refused.text or "nothing" in refused.text.lower()


def test_refund_pages_are_for_finance_only(app, client, make_user):
    login(client, make_user(roles=("artist",)))
    assert client.get("/finance/sales").status_code == 403
    assert client.post("/finance/sales/orders/1/refunds", data={"csrf_token": "test-csrf"}).status_code == 403


# --- top-up by card --------------------------------------------------------------------------------------
def test_the_advertiser_console_offers_a_card_top_up(app, client, make_user, localstripe):
    from adserver import services as ads

    user = make_user(roles=("advertiser",))
    with app.extensions["ninety"].sessions() as s:
        advertiser = ads.create_advertiser(s, name="Bright Sound", currency="USD", member_user_ids=[user.id])
        s.commit()
        advertiser_id = advertiser.id
    login(client, user)
    console = client.get(f"/advertise/{advertiser_id}")
    assert f'href="/advertise/{advertiser_id}/topup"' in console.text
    page = client.get(f"/advertise/{advertiser_id}/topup")
    assert page.status_code == 200 and "data-card-form" in page.text and localstripe.url in page.text
    login(client, make_user(roles=("advertiser",)))
    assert client.get(f"/advertise/{advertiser_id}/topup").status_code in (403, 404)


# --- the demo mail page ----------------------------------------------------------------------------------
def test_admins_read_the_captured_demo_mail(app, client, make_user):
    folder = app.extensions["ninety"].config.var_dir / "mail"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "20261202T074000.123456Z.eml").write_bytes(
        b"From: Ninety <no-reply@ninety.test>\r\nTo: listener@ninety.test\r\nSubject: Your receipt: Lamplight EP\r\n"
        b"Date: Wed, 02 Dec 2026 07:40:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"Thank you. <script>alert(1)</script> Your collection: http://127.0.0.1:8000/collection\r\n")
    login(client, make_user(roles=("listener",)))
    assert client.get("/admin/mail").status_code == 403
    login(client, make_user(roles=("admin",)))
    index = client.get("/admin/mail")
    assert index.status_code == 200 and "Your receipt: Lamplight EP" in index.text
    message = client.get("/admin/mail/20261202T074000.123456Z.eml")
    assert message.status_code == 200
    assert "&lt;script&gt;" in message.text and "<script>alert" not in message.text
    assert '<a href="http://127.0.0.1:8000/collection"' in message.text
    assert client.get("/admin/mail/..%2F..%2Fsecret.eml").status_code == 404
    assert client.get("/admin/mail/nothing.eml").status_code == 404
