"""Buying in a browser: a listener buys Lamplight EP by typing the test card into the card element that
localstripe serves, Stripe's signed webhook (sent by localstripe to the live app) fulfils the order, the
listener sees it in the collection and downloads it; the artist sees the sale on the dashboard; finance
refunds half and both pages show it. A second purchase passes 3-D Secure in localstripe's dialog."""

from __future__ import annotations

import io
import re

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser
SECRET = "whsec_browser_sales_secret"


@pytest.fixture
def app(make_app, localstripe):
    return make_app(stripe_api_base=localstripe.url, stripe_webhook_secret=SECRET)


@pytest.fixture
def lamplight(app, make_user):
    """The Night Owls' Lamplight EP (fixed 5.00 USD, two tracks), published; and Neon Rain (name your price)."""
    from catalog import services as catalog
    from catalog.storage import MediaStore
    from catalog.uploads import upload_track
    from core.users import get_user
    from tests.catalog.conftest import tone

    runtime = app.extensions["ninety"]
    artist_user = make_user(roles=("artist",), email="owls@example.com", display_name="The Night Owls")
    session = runtime.sessions()
    try:
        artist = catalog.create_artist(session, user=get_user(session, artist_user.id), name="The Night Owls")
        ids = {}
        for title, tracks, price in (("Lamplight EP", ("Streetlight Serenade", "Last Bus Home"), ("fixed", "5.00")),
                                     ("Neon Rain", ("Neon Rain",), ("name_your_price", "1.00", "3.00"))):
            release = catalog.create_release(session, artist.id, title=title, kind="ep")
            for position, name in enumerate(tracks, start=1):
                upload_track(session, MediaStore(runtime.config.media_path), release,
                             io.BytesIO(tone("wav", seconds=0.5)), f"{position:02d} {name}.wav", clock=runtime.clock,
                             max_bytes=None, title=name, position=position)
            if price[0] == "fixed":
                catalog.set_release_price(session, release, "fixed", price=price[1])
            else:
                catalog.set_release_price(session, release, "name_your_price", minimum=price[1], suggested=price[2])
            catalog.publish_release(session, release, clock=runtime.clock)
            ids[title] = release.id
        session.commit()
        return {"artist_user": artist_user, "slug": artist.slug, "releases": ids}
    finally:
        session.close()


def sign_in(page, url, email):
    page.goto(url + "/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/account$"))


def sign_out(page):
    page.get_by_role("button", name="Sign out").click()


def type_card(page, number: str):
    """Type into the card element's fields, which localstripe's Stripe.js puts in the page."""
    card = page.locator("[data-card-element]")
    card.get_by_placeholder("number").press_sequentially(number)
    card.get_by_placeholder("exp_month").press_sequentially("12")
    card.get_by_placeholder("exp_year").press_sequentially("34")
    card.get_by_placeholder("cvc").press_sequentially("123")


def test_a_listener_buys_lamplight_downloads_it_and_finance_refunds_half(app, live_server, page, localstripe,
                                                                       lamplight, make_user, tmp_path):
    localstripe.send_webhooks_to(f"{live_server.url}/webhooks/stripe", SECRET)
    listener = make_user(email="listener@example.com")
    finance = make_user(roles=("finance",), email="finance@example.com")
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    sign_in(page, live_server.url, listener.email)
    page.goto(f"{live_server.url}/artists/{lamplight['slug']}/lamplight-ep")
    page.get_by_role("link", name="Buy the EP").click()
    page.wait_for_url(re.compile(r"/checkout/releases/\d+$"))
    assert "$5.00" in page.locator("#price").inner_text()
    assert page.locator("[data-needs-js]").is_hidden()  # the script took over from the no-JS notice
    type_card(page, "4242424242424242")
    page.get_by_role("button", name="Pay").click()
    page.wait_for_url(re.compile(r"/checkout/orders/\d+$"))
    order_id = int(page.url.rsplit("/", 1)[1])
    # Processing until localstripe's signed webhook reaches the app; the page then shows the outcome.
    page.wait_for_selector('[data-status="paid"]', timeout=20_000)
    assert "Lamplight EP is yours" in page.get_by_role("status").first.inner_text()

    page.get_by_role("link", name="Download from your collection").click()
    section = page.locator(f"#order-{order_id}")
    assert "bought for $5.00" in section.inner_text()
    with page.expect_download() as download_info:
        section.get_by_role("button", name="Download Streetlight Serenade").click()
    saved = tmp_path / "track"
    download_info.value.save_as(saved)
    assert saved.read_bytes()[:4] == b"RIFF" and "Streetlight Serenade" in download_info.value.suggested_filename
    sign_out(page)

    sign_in(page, live_server.url, lamplight["artist_user"].email)
    page.get_by_role("link", name="Dashboard").click()
    row = page.locator("#tracks-h + table tr", has_text="Streetlight Serenade")
    assert row.locator("[data-sales]").inner_text() == "1"
    assert row.locator("[data-sales_micros]").inner_text() == "$2.25"  # 90% of the sale, half on each track
    page.goto(f"{live_server.url}/studio/sales")
    assert "$5.00" in page.locator(f"#order-{order_id}").inner_text()
    sign_out(page)

    sign_in(page, live_server.url, finance.email)
    page.get_by_role("link", name="Sales").click()
    page.get_by_role("link", name=str(order_id), exact=True).click()
    assert page.locator("#refundable").inner_text() == "$5.00"
    page.get_by_label("Amount (USD)").fill("2.50")
    page.get_by_label("Reason").fill("asked for half back")
    page.get_by_role("button", name="Refund").click()
    assert "Refunded $2.50" in page.get_by_role("status").first.inner_text()
    assert page.locator("#refunded").inner_text() == "$2.50"
    assert page.locator("#refundable").inner_text() == "$2.50"
    sign_out(page)

    sign_in(page, live_server.url, listener.email)
    page.goto(f"{live_server.url}/collection")
    assert "refunded $2.50" in page.locator(f"#order-{order_id}").inner_text()
    sign_out(page)
    sign_in(page, live_server.url, lamplight["artist_user"].email)
    page.goto(f"{live_server.url}/studio/sales")
    assert "$2.50" in page.locator(f"#order-{order_id} td:nth-child(6)").inner_text()
    page.get_by_role("link", name="Dashboard").click()
    row = page.locator("#tracks-h + table tr", has_text="Streetlight Serenade")
    assert row.locator("[data-refunds_micros]").inner_text() == "$1.125"  # half of each track's share, back
    assert not [e for e in errors if "Content Security Policy" in e], errors


def test_three_d_secure_in_localstripes_dialog_and_a_name_your_price_amount(app, live_server, page, localstripe,
                                                                         lamplight, make_user):
    localstripe.send_webhooks_to(f"{live_server.url}/webhooks/stripe", SECRET)
    listener = make_user(email="fan@example.com")
    sign_in(page, live_server.url, listener.email)
    page.goto(f"{live_server.url}/checkout/releases/{lamplight['releases']['Neon Rain']}")
    amount = page.get_by_label("Your price (USD)")
    assert amount.input_value() == "3.00"
    amount.fill("0.50")
    type_card(page, "4000002500003155")
    page.get_by_role("button", name="Pay").click()
    page.locator("[data-card-error]", has_text="at least $1.00").wait_for()
    amount.fill("6.00")
    page.get_by_role("button", name="Pay").click()
    page.get_by_role("button", name="Complete authentication").click()  # localstripe's 3-D Secure dialog
    page.wait_for_url(re.compile(r"/checkout/orders/\d+$"))
    page.wait_for_selector('[data-status="paid"]', timeout=20_000)
    page.goto(f"{live_server.url}/collection")
    assert "bought for $6.00" in page.locator("main").inner_text()


def test_without_javascript_the_checkout_says_card_payment_needs_it(app, live_server, localstripe, lamplight,
                                                                  make_user, _playwright_browser):
    context = _playwright_browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        listener = make_user(email="nojs@example.com")
        sign_in(page, live_server.url, listener.email)
        page.goto(f"{live_server.url}/checkout/releases/{lamplight['releases']['Lamplight EP']}")
        assert "Card payment needs JavaScript" in page.locator("[data-needs-js]").inner_text()
        assert page.locator("[data-pay]").is_hidden()
    finally:
        context.close()
