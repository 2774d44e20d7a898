"""Listening in a real browser: a listener presses Play on a free track; the audio ad (VAST, from the
player slot) plays first, then the track's stream (the <audio> element gets data and its currentTime
advances); a seek far into the track asks the stream for a byte range that is served 206; the waveform is
drawn; and once 30 seconds have been heard the artist's play count rises. A priced track, once the
listener has used up its full plays, plays only as its 30-second preview: the audio ends at 30 s and the
player offers the purchase.

The track plays at 8x speed (30 s heard in under 4 s) and the app's frozen clock is moved on, so the
server's wall-clock bound on "heard" holds without the test waiting 30 real seconds."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from tests.browser.ads import approved_creative
from tests.browser.waiting import wait_for
from tests.conftest import PASSWORD
from tests.listening.conftest import clock, make_track  # noqa: F401  (the listening fixtures)

pytestmark = pytest.mark.browser
TRACK_SECONDS = 240.0  # long enough that the browser has not fetched all of it when the test seeks


@pytest.fixture
def app(make_app, clock, request):  # noqa: F811
    """The listening app (tests.listening.conftest's, on its frozen clock), with any settings a test names:
    @pytest.mark.parametrize("app", [{"preview_full_plays": 1}], indirect=True)."""
    return make_app(clock=clock, **getattr(request, "param", {}))


def _campaign(app, slot: str, kind: str):  # noqa: F811
    """An approved creative (`kind`) for `slot`, from a funded campaign."""
    from tests.adserver.conftest import PNG, spot

    runtime = app.extensions["ninety"]
    session = runtime.sessions()
    try:
        from core.users import create_user

        adv_user = create_user(session, email=f"{slot}-ads@example.com", password=PASSWORD, roles=("advertiser",))
        media = {"audio": spot(1.0)} if kind == "audio" else {"image": PNG, "alt_text": "A banner"}
        creative_id = approved_creative(session, runtime, adv_user.id, advertiser="Player Ads", campaign=slot.title(),
                                        slots=(slot,), kind=kind, name="Jingle",
                                        idempotency_key=f"browser-{slot}-fund", **media)
        session.commit()
        return creative_id
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
    wait_for(page, lambda: any("/stream/" in u for u, _, _ in requests), what="the track's stream")
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
    wait_for(page, lambda: _plays(app, track_id) == 1, what="the counted play")

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


def _stream_copies(app, track_id: int) -> dict[str, str]:  # noqa: F811
    """The track's stream and preview copies: kind ("stream.opus", "preview.mp3", …) -> sha256."""
    from catalog.models import Track
    from catalog.rendition_models import Rendition

    with app.extensions["ninety"].sessions() as session:
        asset_id = session.get(Track, track_id).asset_id
        return {r.kind: r.sha256 for r in session.scalars(select(Rendition).where(Rendition.asset_id == asset_id))}


@pytest.mark.parametrize("app", [{"preview_full_plays": 1}], indirect=True)
def test_a_priced_track_past_its_full_plays_stops_at_30_s_and_offers_the_purchase(app, make_track,  # noqa: F811
                                                                                    live_server, listener_page):
    """One full play allowed (PREVIEW_FULL_PLAYS=1): the player's first play spends it; the next listening
    session (a new tab: the same listener, a new session) gets the preview, which ends at 30 s with the buy
    link to the track's checkout. The preview's signed URL does not open the full copy."""
    page = listener_page
    track_id = make_track("fixed", seconds=75.0, title="Paid Drive")
    copies = _stream_copies(app, track_id)
    previews = {sha for kind, sha in copies.items() if kind.startswith("preview.")}
    fulls = {sha for kind, sha in copies.items() if kind.startswith("stream.")}
    assert len(previews) == 2 and len(fulls) == 2 and not previews & fulls
    buy_path = f"/checkout/tracks/{track_id}"

    # the first play is the listener's one full play: the whole 75 s track
    page.goto(f"{live_server.url}/tracks/{track_id}")
    page.locator(f'.listen[data-track-id="{track_id}"] .listen-play').click()
    page.wait_for_function("() => window.ninetyPlayer.state.ticket && window.ninetyPlayer.audio.readyState >= 1")
    ticket = page.evaluate("window.ninetyPlayer.state.ticket")
    assert (ticket["access"], ticket["reason"], ticket["full_plays_left"]) == ("full", "full_plays_left", 0)
    assert ticket["ad_first"] is False  # a priced track never plays an ad
    assert page.evaluate("window.ninetyPlayer.audio.src").split("/stream/")[1][:64] in fulls
    assert abs(page.evaluate("window.ninetyPlayer.audio.duration") - 75.0) < 0.5
    page.locator("#player-toggle").click()  # pause
    page.wait_for_function("() => window.ninetyPlayer.audio.paused")

    # later, a new listening session: the full play is spent, so the page and the player give the preview
    later = page.context.new_page()
    later.set_default_timeout(15_000)
    later.goto(f"{live_server.url}/tracks/{track_id}")
    note = later.locator(f'.listen[data-track-id="{track_id}"] .listen-note')
    assert "30-second preview" in note.inner_text()
    assert note.locator("a").get_attribute("href") == buy_path
    # every load resets playbackRate to defaultPlaybackRate: 8x (30 s in under 4 s), noted when it ends
    later.evaluate("""() => { const a = window.ninetyPlayer.audio; a.defaultPlaybackRate = 8;
        a.addEventListener('ended', () => { window.previewEnded = {at: a.currentTime, duration: a.duration,
            src: a.src}; }, {once: true}); }""")
    later.locator(f'.listen[data-track-id="{track_id}"] .listen-play').click()
    later.wait_for_function("() => window.ninetyPlayer.state.ticket !== null")
    ticket = later.evaluate("window.ninetyPlayer.state.ticket")
    assert (ticket["access"], ticket["reason"], ticket["full_plays_left"]) == ("preview", "full_plays_used", 0)
    assert ticket["buy_url"] == buy_path
    assert ticket["duration_ms"] <= 30_000
    assert {s["url"].split("/stream/")[1][:64] for s in ticket["sources"]} <= previews

    # it plays, then stops at 30 s: `ended` fires at the preview's end, not the track's
    later.wait_for_function("() => window.ninetyPlayer.audio.currentTime > 1", timeout=15_000)
    later.wait_for_function("() => window.previewEnded !== undefined", timeout=30_000)
    ended = later.evaluate("window.previewEnded")
    assert abs(ended["duration"] - 30.0) < 0.5, ended
    assert 29.0 < ended["at"] <= 30.5, ended
    assert ended["src"].split("/stream/")[1][:64] in previews
    assert later.evaluate("window.ninetyPlayer.audio.paused && window.ninetyPlayer.audio.ended")
    assert later.evaluate("window.ninetyPlayer.state.heard") <= 30.5

    # and the player offers the purchase of that track
    buy = later.locator("#player-buy")
    assert buy.is_visible()
    assert buy.inner_text() == "Buy to hear it all"
    assert buy.get_attribute("href") == buy_path
    assert later.evaluate("document.activeElement && document.activeElement.id") == "player-buy"
    assert "Buy the track to hear all of it" in later.locator("#player-status").inner_text()

    # the preview's signed URL opens the preview only: the same signature on the full copy is refused, and
    # nothing past the preview's end is served
    name = ended["src"].split("/stream/")[1]
    preview = later.request.get(f"{live_server.url}/stream/{name}")
    assert preview.status == 200
    size = len(preview.body())
    assert later.request.get(f"{live_server.url}/stream/{name}",
                             headers={"Range": f"bytes={size}-"}).status == 416
    extension = name.rsplit(".", 1)[1]
    full_sha = copies[f"stream.{extension}"]
    refused = later.request.get(f"{live_server.url}/stream/{full_sha}{name[64:]}")
    assert refused.status == 403, refused.status

    # the buy link leads to the track's checkout
    buy.click()
    later.wait_for_url(re.compile(rf"{re.escape(buy_path)}$"))
    assert "Paid Drive" in later.locator("main").inner_text()
