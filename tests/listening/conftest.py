"""Listening fixtures: published tracks with real stream copies (made by the streams job, synchronously),
free with ads or priced, and an app on a frozen clock."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
import pytest
import soundfile

from core.clock import FrozenClock

BROWSER_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
              "Safari/537.36")
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def music(seconds: float, rate: int = 22050, seed: int = 1) -> bytes:
    """A short chord with a beat (not silence: the stream copies must carry audio)."""
    t = np.arange(int(seconds * rate)) / rate
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0 * (1 + seed % 3 / 10), 277.2, 329.6)) / 3
    beat = 0.5 + 0.5 * (np.sin(2 * np.pi * 2 * t) > 0)
    samples = (0.3 * chord * beat).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@pytest.fixture
def clock():
    return FrozenClock(datetime(2026, 10, 15, 12, 0, tzinfo=UTC))


@pytest.fixture
def app(make_app, clock):
    return make_app(clock=clock)


@pytest.fixture
def make_track(app, make_user):
    """make_track(price_model="free_with_ads"|"fixed", seconds=40) -> track id of a published track whose
    stream and preview copies exist."""
    from catalog import renditions
    from catalog import services as catalog
    from catalog.storage import MediaStore
    from catalog.uploads import upload_track
    from core.users import get_user

    runtime = app.extensions["ninety"]
    made = {}

    def make(price_model: str = "free_with_ads", seconds: float = 40.0, title: str = "Night Drive",
             artist_name: str = "Listening Testers", previews_only: bool = False) -> int:
        session = runtime.sessions()
        try:
            artist = made.get(artist_name)
            if artist is None:
                user = make_user(roles=("artist",))
                artist = catalog.create_artist(session, user=get_user(session, user.id), name=artist_name)
                made[artist_name] = artist
                made[artist_name + ":user"] = user
            else:
                artist = session.merge(artist)
            release = catalog.create_release(session, artist.id, title=f"{title} (single)", kind="single",
                                             genre="electronic")
            if price_model == "fixed":
                catalog.set_release_price(session, release, "fixed", price="1.50")
            store = MediaStore(runtime.config.media_path)
            track = upload_track(session, store, release, io.BytesIO(music(seconds)), f"01 {title}.wav",
                                 clock=runtime.clock, max_bytes=None, title=title).track
            track.previews_only = previews_only
            catalog.publish_release(session, release, clock=runtime.clock)
            session.commit()
            track_id, asset_id = track.id, track.asset_id
        finally:
            session.close()
        renditions.perform(runtime.sessions, MediaStore(runtime.config.media_path), asset_id, renditions.STREAMS)
        return track_id

    make.users = made
    return make


def start_play(client, track_id: int, session_id: str | None = None, ua: str = BROWSER_UA):
    from tests.conftest import csrf_headers

    with client.session_transaction() as sess:
        sess["_csrf"] = "test-csrf"
    return client.post(f"/listen/tracks/{track_id}/play", json={"session_id": session_id},
                       headers={**csrf_headers(), "User-Agent": ua})


def beacon(client, token: str, heard_ms: int, ua: str = BROWSER_UA):
    """POST a play beacon, then wait until the app's beacon batches have written what they were offered (the
    beacon is answered before its report is written)."""
    response = client.post("/listen/beacon", data={"token": token, "heard_ms": str(heard_ms)},
                           headers={"User-Agent": ua})
    drain_beacons(client.application)
    return response


def drain_beacons(app) -> None:
    from app.web.listening import beacon_batches

    beacon_batches(app.extensions["ninety"]).drain()
