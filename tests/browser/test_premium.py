"""Premium in a browser: a listener sees an ad at the free-download gate, subscribes by typing the test card
into the card element localstripe serves (the SetupIntent confirmed by its Stripe.js), localstripe's signed
invoice webhook reaches the live app and turns premium on, the gate then shows no ad and the track downloads
without one; the listener cancels at the end of the period and keeps premium until then.

Then the money: a subscriber (made premium by a signed invoice webhook posted to the live app) plays a priced
track in full in the player, the month closes (`ninety royalties close`), and the receipt page lists the
track's artist with the subscriber's pool and the minutes listened. That test runs on the app's frozen clock:
the track plays at 8x speed while the clock is moved on (the server bounds "heard" by its clock), and the
clock then moves into the next month so the month can close."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.browser.test_gate import BROWSER_UA, free_track  # noqa: F401 - the gate's track and its ad campaign
from tests.browser.test_sales import sign_in, type_card
from tests.browser.waiting import wait_for
from tests.listening.conftest import clock, make_track  # noqa: F401 - the listening fixtures

pytestmark = pytest.mark.browser
SECRET = "whsec_browser_premium_secret"
TRACK_SECONDS = 75.0  # well past the 30-second preview


@pytest.fixture
def app(request, make_app, localstripe):
    """The app against this test's localstripe. A test that asks for `clock` runs it on that frozen clock (the
    subscribe-with-the-card test needs the real one: localstripe's invoice and the gate's view time are real).
    No full plays of priced tracks without premium: a full play of one is premium's doing."""
    frozen = request.getfixturevalue("clock") if "clock" in request.fixturenames else None
    return make_app(clock=frozen, stripe_api_base=localstripe.url, stripe_webhook_secret=SECRET, ad_min_view_s=2,
                    preview_full_plays=0)


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


def test_a_subscriber_plays_a_priced_track_in_full_the_month_closes_and_the_receipt_shows_the_artist(
        app, clock, live_server, page, localstripe, make_track, make_user, runner):  # noqa: F811
    import requests

    from app.templating import money
    from catalog import services as catalog
    from catalog.models import Track
    from catalog.play_models import Play
    from catalog.rendition_models import Rendition
    from core.money import share_ceil
    from ledger.accounts import payee_payable
    from sales.subscription_models import Invoice, SubscriberPoolShare
    from tests.payments.connect_standin import ConnectStandIn
    from tests.subscriptions.conftest import PremiumWorld

    runtime = app.extensions["ninety"]
    track_id = make_track(price_model="fixed", seconds=TRACK_SECONDS, title="Long Night",
                          artist_name="Mina Kato")
    listener = make_user(email="subscriber@example.com")

    # Premium through the path the card test proves: a Stripe subscription at localstripe, then Stripe's signed
    # invoice.payment_succeeded posted to the live app's webhook (localstripe sends none here).
    world = PremiumWorld(app, clock, base=localstripe.url)
    _, stripe_sub, status, _ = world.subscribe(listener)
    assert status == "active"
    now = clock.now()
    event = world.invoice_event("invoice.payment_succeeded", stripe_sub, amount_minor=499, start=now,
                                end=now + timedelta(days=31))
    payload = json.dumps(event).encode()
    delivered = requests.post(f"{live_server.url}/webhooks/stripe", data=payload, timeout=30, headers={
        "Stripe-Signature": ConnectStandIn.sign(payload, SECRET), "Content-Type": "application/json"})
    assert delivered.status_code == 200 and delivered.json()["outcome"] == "invoice_paid", delivered.text

    with runtime.sessions() as s:
        track = s.get(Track, track_id)
        copies = {r.sha256: r.kind for r in s.scalars(select(Rendition).where(Rendition.asset_id == track.asset_id))}
        payee_id = catalog.artist_payee(s, track.release.artist_id).id
    full = {sha for sha, kind in copies.items() if kind.startswith("stream.")}
    previews = {sha for sha, kind in copies.items() if kind.startswith("preview.")}
    assert full and previews and not full & previews

    # A tab that says it is Chrome: the beacons' bot filter (rightly) refuses HeadlessChrome.
    context = page.context.browser.new_context(user_agent=BROWSER_UA)
    try:
        tab = context.new_page()
        tab.set_default_timeout(15_000)
        fetched = []
        tab.on("request", lambda r: fetched.append(re.sub(r"^https?://[^/]+", "", r.url)))
        sign_in(tab, live_server.url, listener.email)
        tab.goto(f"{live_server.url}/tracks/{track_id}")
        tab.locator(f'.listen[data-track-id="{track_id}"] .listen-play').click()
        tab.wait_for_function("() => window.ninetyPlayer.state.phase === 'track' && "
                              "window.ninetyPlayer.audio.readyState >= 1 && window.ninetyPlayer.audio.currentTime > 0")
        ticket = tab.evaluate("window.ninetyPlayer.state.ticket")
        assert (ticket["access"], ticket["reason"], ticket["ad_first"]) == ("full", "subscriber", False), ticket
        assert ticket["buy_url"] is None and not any(u.startswith("/ads/") for u in fetched), fetched
        # the full stream copy, not the 30-second preview, and as long as the track
        src = tab.evaluate("window.ninetyPlayer.audio.src")
        sha = re.search(r"/stream/([0-9a-f]{64})-", src).group(1)
        assert sha in full, (src, copies)
        assert abs(tab.evaluate("window.ninetyPlayer.audio.duration") - TRACK_SECONDS) < 1.0
        assert abs(ticket["duration_ms"] - TRACK_SECONDS * 1000) < 1000

        # to the end, at 8x (the app's clock moves on, so the server takes all of it as heard)
        clock.advance(seconds=TRACK_SECONDS + 60)
        tab.evaluate("window.ninetyPlayer.audio.playbackRate = 8")
        tab.wait_for_function("() => window.ninetyPlayer.audio.ended", timeout=30_000)
        assert tab.evaluate("window.ninetyPlayer.state.reported") >= (TRACK_SECONDS - 5) * 1000

        def counted_play():
            with runtime.sessions() as s:
                return s.scalars(select(Play).where(Play.track_id == track_id, Play.user_id == listener.id)).all()

        wait_for(tab, lambda: [p.heard_ms >= (TRACK_SECONDS - 5) * 1000 for p in counted_play()] == [True],
                  what="the subscriber's play counted with the whole track heard")
        (play,) = counted_play()
        assert play.kind == "full"

        # The month closes with the command finance runs, once October is over.
        clock.set(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
        closed = runner.invoke(["royalties", "close", "2026-10"])
        assert closed.exit_code == 0 and "2026-10 closed" in closed.output, closed.output
        checked = runner.invoke(["ledger", "check"])
        assert checked.exit_code == 0, checked.output

        with runtime.sessions() as s:
            invoice = s.scalars(select(Invoice).where(Invoice.stripe_invoice_id == event["data"]["object"]["id"])
                                ).one()
            assert invoice.pool_period == "2026-10"
            assert invoice.pool_micros == share_ceil(invoice.gross_micros - invoice.fee_micros, 9, 10) > 0
            shares = s.scalars(select(SubscriberPoolShare).where(SubscriberPoolShare.subscriber_id == listener.id,
                                                                 SubscriberPoolShare.period == "2026-10")).all()
            assert [(x.kind, x.track_id, x.payee_id, x.amount_micros) for x in shares] == [
                ("track", track_id, payee_id, invoice.pool_micros)]
        assert world.balance(payee_payable(payee_id)) == invoice.pool_micros  # the whole pool reached the artist

        # The receipt, in the browser: the artist played, the subscriber's pool, the minutes listened.
        tab.goto(f"{live_server.url}/premium/receipt?period=2026-10")
        assert tab.locator("#open-month").count() == 0  # closed, not "if the month closed now"
        rows = tab.locator("#receipt tbody tr")
        assert rows.count() == 1
        cells = rows.first.locator("td").all_inner_texts()
        assert cells == ["Mina Kato", str(round(play.heard_ms / 60000, 1)), money(invoice.pool_micros, "USD", full=True)]
        assert float(cells[1]) >= round((TRACK_SECONDS - 5) / 60, 1)  # more than the 30-second preview's half minute
    finally:
        context.close()
