"""Listening in a real browser: a listener presses Play on a free track; the audio ad (VAST, from the
player slot) plays first, then the track's stream (the <audio> element gets data and its currentTime
advances); a seek far into the track asks the stream for a byte range that is served 206; the waveform is
drawn; and once 30 seconds have been heard the artist's play count rises.

The track plays at 8x speed (30 s heard in under 4 s) and the app's frozen clock is moved on, so the
server's wall-clock bound on "heard" holds without the test waiting 30 real seconds."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import PASSWORD
from tests.listening.conftest import app, clock, make_track  # noqa: F401  (the listening fixtures)

pytestmark = pytest.mark.browser
TRACK_SECONDS = 240.0  # long enough that the browser has not fetched all of it when the test seeks


def _campaign(app, slot: str, kind: str):  # noqa: F811
    """An approved creative (`kind`) for `slot`, from a funded campaign."""
    from adserver import services as ads
    from tests.adserver.conftest import PNG, spot

    runtime = app.extensions["ninety"]
    session = runtime.sessions()
    try:
        from core.users import create_user

        adv_user = create_user(session, email=f"{slot}-ads@example.com", password=PASSWORD, roles=("advertiser",))
        advertiser = ads.create_advertiser(session, name="Player Ads", currency="USD", member_user_ids=[adv_user.id])
        ads.fund(session, runtime.redis, advertiser_id=advertiser.id, amount_micros=10_000_000, currency="USD",
                 clock=runtime.clock, idempotency_key=f"browser-{slot}-fund")
        campaign = ads.create_campaign(session, runtime.redis, advertiser.id, ads.CampaignInput(
            name=slot.title(), starts_at=runtime.clock.now() - timedelta(hours=1), ends_at=None,
            total_budget_micros=5_000_000, daily_budget_micros=5_000_000, bid_cpm_micros=2_000_000, pacing="asap",
            slots=(slot,)), floor_cpm_micros=500_000)
        media = {"audio": spot(1.0)} if kind == "audio" else {"image": PNG, "alt_text": "A banner"}
        creative = ads.create_creative(session, runtime.redis, campaign.id, kind=kind, name="Jingle",
                                       click_url="https://example.com/", media_root=runtime.config.media_path,
                                       **media)
        ads.review_creative(session, runtime.redis, creative.id, approve=True, reviewer_id=adv_user.id,
                            clock=runtime.clock)
        session.commit()
        return creative.id
    finally:
        session.close()


@pytest.fixture
def listener_page(page):
    """A browser tab that says it is Chrome: the beacons' bot filter (rightly) refuses HeadlessChrome."""
    from tests.listening.conftest import BROWSER_UA

    context = page.context.browser.new_context(user_agent=BROWSER_UA)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()


@pytest.fixture
def player_ad(app):  # noqa: F811
    return _campaign(app, "player", "audio")


def _plays(app, track_id: int) -> int:  # noqa: F811
    from catalog.play_models import Play

    with app.extensions["ninety"].sessions() as session:
        return session.scalar(select(func.count()).select_from(Play).where(Play.track_id == track_id))


def _wait_for(page, condition, timeout_s: float = 15.0, what: str = "condition"):
    """Poll `condition` while Playwright keeps handling the page's events (a plain sleep would stall them)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_listener_hears_the_ad_then_the_track_seeks_and_the_play_counts(app, clock, make_track, player_ad,  # noqa: F811
                                                                          live_server, listener_page):
    page = listener_page
    track_id = make_track(title="Night Drive", seconds=TRACK_SECONDS)
    requests = []  # (url path, Range header, status) in order
    page.on("response", lambda r: requests.append((re.sub(r"^https?://[^/]+", "", r.url),
                                                   r.request.headers.get("range"), r.status)))

    # a listener's line, not loopback's: the browser cannot have fetched the whole stream when it seeks
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 20, "downloadThroughput": 150_000,
                                                  "uploadThroughput": -1})
    page.goto(f"{live_server.url}/tracks/{track_id}")
    play = page.locator(f'.listen[data-track-id="{track_id}"] .listen-play')
    play.click()

    # the ad first: the player asked for VAST, fetched the ad's audio, and only then the track's stream
    _wait_for(page, lambda: any("/stream/" in u for u, _, _ in requests), what="the track's stream")
    paths = [u for u, _, _ in requests]
    vast = next(i for i, u in enumerate(paths) if u.startswith(f"/ads/vast?slot=player&track={track_id}"))
    stream = next(i for i, u in enumerate(paths) if "/stream/" in u)
    assert vast < stream
    assert any(i > vast and i < stream and "/ads/" in u and "vast" not in u for i, u in enumerate(paths)), paths

    # the track plays: data arrives and currentTime advances
    page.wait_for_function("() => window.ninetyPlayer.state.phase === 'track' && "
                           "window.ninetyPlayer.audio.readyState >= 3 && window.ninetyPlayer.audio.currentTime > 0.5")
    first = page.evaluate("window.ninetyPlayer.audio.currentTime")
    page.wait_for_function(f"() => window.ninetyPlayer.audio.currentTime > {first} + 0.5")
    assert page.evaluate("window.ninetyPlayer.audio.src").startswith(f"{live_server.url}/stream/")

    # the waveform is drawn from the track's peaks: far more than the flat placeholder line
    page.wait_for_function("() => window.ninetyPlayer.state.peaks && window.ninetyPlayer.state.peaks.max.length > 0")
    inked = page.evaluate("""() => { const c = document.getElementById('player-wave');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
        for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) n++; } return [n, c.width]; }""")
    assert inked[0] > inked[1] * 6, inked

    # seeking far ahead asks for a byte range of the stream, which is served 206
    before = len(requests)
    page.locator("#player-wave").click(position={"x": int(page.locator("#player-wave").bounding_box()["width"] * 0.8),
                                                 "y": 5})
    page.wait_for_function("() => window.ninetyPlayer.audio.currentTime > 150 && !window.ninetyPlayer.audio.seeking")
    ranged = [(u, rng, status) for u, rng, status in requests[before:] if "/stream/" in u]
    assert any(rng and re.fullmatch(r"bytes=[1-9]\d*-\d*", rng) and status == 206 for _, rng, status in ranged), \
        requests[before:]

    # 30 seconds heard (at 8x: a few real seconds; the app's clock moves on too), then the play counts
    assert _plays(app, track_id) == 0
    page.evaluate("window.ninetyPlayer.audio.playbackRate = 8")
    clock.advance(seconds=60)
    page.wait_for_function("() => window.ninetyPlayer.state.reported >= 30000", timeout=30_000)
    _wait_for(page, lambda: _plays(app, track_id) == 1, what="the counted play")

    # and the artist sees it on the dashboard
    artist = make_track.users["Listening Testers:user"]
    other = page.context.browser.new_context()
    try:
        dash = other.new_page()
        dash.goto(f"{live_server.url}/signin")
        dash.get_by_label("Email").fill(artist.email)
        dash.get_by_label("Password").fill(PASSWORD)
        dash.get_by_role("button", name="Sign in").click()
        dash.wait_for_url(re.compile(r"/account$"))
        dash.goto(f"{live_server.url}/dashboard")
        row = dash.locator(f"#plays-track-{track_id}")
        assert row.locator("td.num").inner_text() == "1"
    finally:
        other.close()


def test_the_gate_carries_the_chosen_format_to_the_download_link(app, make_track, live_server, page):  # noqa: F811
    """While the ad shows, choosing a format rewrites the download link in place (no reload: the ad keeps its
    time); the no-JavaScript "Use this format" button is gone."""
    _campaign(app, "gate", "display")
    track_id = make_track(title="Gate Formats")
    page.goto(f"{live_server.url}/tracks/{track_id}/free")
    link = page.locator("[data-download-link]")
    assert "format=" not in link.get_attribute("href")
    assert page.locator("[data-format-apply]").count() == 0
    page.get_by_label("Format").select_option("flac")
    assert re.search(r"[?&]format=flac(&|$)", link.get_attribute("href"))
    assert re.search(r"[?&]d=", link.get_attribute("href"))  # the ad's decision stays in it
    page.get_by_label("Format").select_option("")
    assert "format=" not in link.get_attribute("href")
