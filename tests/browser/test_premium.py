"""Premium in a browser: a listener sees an ad at the free-download gate, subscribes by typing the test card
into the card element localstripe serves (the SetupIntent confirmed by its Stripe.js), localstripe's signed
invoice webhook reaches the live app and turns premium on, the gate then shows no ad and the track downloads
without one; the listener cancels at the end of the period and keeps premium until then."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.browser.test_gate import BROWSER_UA, free_track  # noqa: F401 - the gate's track and its ad campaign
from tests.browser.test_sales import sign_in, type_card

pytestmark = pytest.mark.browser
SECRET = "whsec_browser_premium_secret"


@pytest.fixture
def app(make_app, localstripe):
    return make_app(stripe_api_base=localstripe.url, stripe_webhook_secret=SECRET, ad_min_view_s=2)


def test_a_listener_subscribes_with_the_test_card_the_gate_shows_no_ad_and_they_cancel(
        app, live_server, page, localstripe, free_track, make_user, tmp_path):  # noqa: F811
    from catalog.models import Download
    from sales.subscription_models import Invoice, Subscription

    localstripe.send_webhooks_to(f"{live_server.url}/webhooks/stripe", SECRET)
    listener = make_user(email="premium@example.com")
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.set_extra_http_headers({"User-Agent": BROWSER_UA})  # headless Chromium's own is on the bot list
    sign_in(page, live_server.url, listener.email)

    gate_url = f"{live_server.url}/tracks/{free_track}/free"
    page.goto(gate_url)
    assert page.get_by_role("img", name="Gate Ads banner").is_visible()  # without premium: the ad

    page.goto(f"{live_server.url}/premium")
    page.locator('[data-subscribe="USD"]').click()
    page.wait_for_url(re.compile(r"/premium/subscribe\?currency=USD$"))
    assert page.locator("[data-needs-js]").is_hidden()
    type_card(page, "4242424242424242")
    page.get_by_role("button", name="Subscribe for $4.99 a month").click()
    page.wait_for_url(re.compile(r"/account/premium$"))
    # The page waits for localstripe's signed invoice.payment_succeeded to reach the app, then shows premium.
    page.wait_for_selector('#subscription[data-premium="1"]', timeout=30_000)
    assert page.locator("#premium-now").inner_text() == "yes"
    assert page.locator("#status").inner_text().strip() == "active"
    assert page.locator("#renews-at").is_visible()
    invoices = page.locator("#invoices tbody tr")
    assert invoices.count() == 1 and "$4.99" in invoices.first.inner_text() and "paid" in invoices.first.inner_text()

    page.goto(gate_url)
    assert page.locator("[data-premium]").is_visible()
    assert page.get_by_role("img", name="Gate Ads banner").count() == 0
    assert page.locator("#ad-label").count() == 0  # no "Advertisement" at all
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download").click()
    saved = tmp_path / "track"
    download_info.value.save_as(saved)
    assert saved.read_bytes()[:4] == b"RIFF"

    page.goto(f"{live_server.url}/account/premium")
    page.get_by_role("button", name="Cancel at the end of the period").click()
    assert "premium lasts to the end of the paid period" in page.get_by_role("status").first.inner_text()
    assert "cancelled: ends at the end of the paid period" in page.locator("#status").inner_text()
    assert page.locator("#premium-now").inner_text() == "yes"  # the paid month still counts
    assert page.locator("#ends-at").is_visible() and page.locator("#renews-at").count() == 0
    assert page.get_by_role("button", name="Keep premium (renew again)").is_visible()

    runtime = app.extensions["ninety"]
    with runtime.sessions() as s:
        sub = s.scalars(select(Subscription).where(Subscription.user_id == listener.id)).one()
        assert sub.status == "active" and sub.cancel_at_period_end
        invoice = s.scalars(select(Invoice).where(Invoice.subscription_id == sub.id)).one()
        assert invoice.status == "paid" and invoice.entry_id is not None  # booked from the webhook, once
        download = s.scalars(select(Download).where(Download.track_id == free_track)
                             .order_by(Download.id.desc())).first()
        assert download is not None and download.via == "subscriber"
    assert not [e for e in errors if "Content Security Policy" in e], errors
