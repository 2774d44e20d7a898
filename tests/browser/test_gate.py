"""A listener walks the free-download gate in a real browser: the ad shows, its impression counts, and the
download starts only once the ad has been on screen for the minimum view time."""

from __future__ import annotations

import io
import time

import pytest
from sqlalchemy import select

from adserver import stream as ad_stream
from tests.browser.ads import approved_creative

pytestmark = pytest.mark.browser

BROWSER_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
              "Safari/537.36")
MIN_VIEW_S = 2


@pytest.fixture
def app(make_app):
    return make_app(ad_min_view_s=MIN_VIEW_S)


@pytest.fixture
def free_track(app, make_user):
    """A published free-with-ads track, and an approved display ad for the gate."""
    from catalog import services as catalog
    from catalog.storage import MediaStore
    from catalog.uploads import upload_track
    from core.users import get_user
    from tests.adserver.conftest import PNG, spot

    runtime = app.extensions["ninety"]
    session = runtime.sessions()
    try:
        artist_user = make_user(roles=("artist",))
        artist = catalog.create_artist(session, user=get_user(session, artist_user.id), name="Gate Testers")
        release = catalog.create_release(session, artist.id, title="Patience", kind="single", genre="ambient")
        track = upload_track(session, MediaStore(runtime.config.media_path), release, io.BytesIO(spot(1.0)),
                             "01 Patience.wav", clock=runtime.clock, max_bytes=None, title="Patience").track
        catalog.publish_release(session, release, clock=runtime.clock)
        adv_user = make_user(roles=("advertiser",))
        approved_creative(session, runtime, adv_user.id, advertiser="Gate Ads", campaign="Gate",
                          slots=("gate", "browse"), kind="display", name="Banner",
                          idempotency_key="browser-gate-fund", alt_text="Gate Ads banner", image=PNG)
        session.commit()
        return track.id
    finally:
        session.close()


def test_the_gate_shows_the_ad_then_starts_the_download(app, live_server, page, free_track):
    from catalog.models import Download

    # Headless Chromium announces itself as "HeadlessChrome", which the bot list rightly flags.
    page.set_extra_http_headers({"User-Agent": BROWSER_UA})
    gate_url = f"{live_server.url}/tracks/{free_track}/free"
    with page.expect_download(timeout=60_000) as download_info:
        opened = time.monotonic()
        page.goto(gate_url)
        ad = page.get_by_role("img", name="Gate Ads banner")
        assert ad.is_visible()
        assert "Your download starts in" in page.get_by_role("status").inner_text()
        # asking for the download straight away is refused: the ad has not been shown long enough
        link = page.get_by_role("link", name="Download now").get_attribute("href")
        early = page.request.get(live_server.url + link, headers={"Accept": "application/json",
                                                                  "User-Agent": BROWSER_UA})
        assert early.status == 425 and early.json()["code"] == "ad_view_too_short"
    download = download_info.value
    waited = time.monotonic() - opened
    assert download.suggested_filename.endswith("Patience.wav")
    assert waited >= MIN_VIEW_S  # the browser could not start it earlier: the server refuses until then

    runtime = app.extensions["ninety"]
    assert ad_stream.length(runtime.redis) == 1  # the beacon fired on render, and counted once
    with runtime.sessions() as session:
        row = session.scalar(select(Download))
        assert row.via == "ad" and row.track_id == free_track and row.decision_id


def test_the_gate_works_without_javascript(app, live_server, _playwright_browser, free_track):
    context = _playwright_browser.new_context(accept_downloads=True, java_script_enabled=False,
                                              user_agent=BROWSER_UA)
    try:
        page = context.new_page()
        with page.expect_download(timeout=60_000) as download_info:
            page.goto(f"{live_server.url}/tracks/{free_track}/free")
            assert page.get_by_role("img", name="Gate Ads banner").is_visible()
        assert download_info.value.suggested_filename.endswith("Patience.wav")
    finally:
        context.close()


def test_key_mode_is_earned_by_browsing_with_ads(app, live_server, page, free_track):
    from catalog.models import Download

    page.set_extra_http_headers({"User-Agent": BROWSER_UA})
    page.goto(f"{live_server.url}/key-mode")
    page.get_by_label("Key mode is on").check()
    page.get_by_role("button", name="Save").click()
    assert "Key mode is on." in page.get_by_role("status").inner_text()
    # A brand-new listener id's impressions are held until it is older than the minimum view.
    page.wait_for_timeout(int(MIN_VIEW_S * 1000) + 500)

    # Key mode on and nothing earned yet: the gate still shows the ad, and says what key mode needs.
    page.goto(f"{live_server.url}/tracks/{free_track}/free")
    assert page.get_by_role("img", name="Gate Ads banner").is_visible()
    assert "needs 3" in page.get_by_role("note").inner_text()

    for _ in range(3):  # each browse page shows an ad; its beacon counts once the page has loaded
        page.goto(f"{live_server.url}/music")
        assert page.get_by_role("complementary", name="Advertisement").is_visible()
    page.goto(f"{live_server.url}/key-mode")
    assert "You have 3 ad views" in page.get_by_role("status").inner_text()

    page.goto(f"{live_server.url}/tracks/{free_track}/free")
    assert "Key mode is on: no ad before this download" in page.content()
    with page.expect_download(timeout=30_000) as download_info:
        page.get_by_role("button", name="Download").click()
    assert download_info.value.suggested_filename.endswith("Patience.wav")
    with app.extensions["ninety"].sessions() as session:
        assert [row.via for row in session.scalars(select(Download))] == ["key"]
    page.goto(f"{live_server.url}/key-mode")
    # 3 spent of 4: the key-mode page read earlier showed an ad of its own
    assert "You have 1 ad view to spend" in page.get_by_role("status").inner_text()
