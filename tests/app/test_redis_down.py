"""Redis down: pages that do not need it keep working; those that do answer 503 problem+json with Retry-After.

A real client pointed at a closed local port, not a mock: the connection is refused as in an outage, through
every layer that talks to Redis (pipelines, scripts, rate limits, the ad server's budgets).
"""

from __future__ import annotations

import io
import socket

import pytest
import redis as redis_lib

from catalog import services as catalog
from catalog.storage import MediaStore
from catalog.uploads import upload_track
from core.users import get_user
from tests.catalog.conftest import tone
from tests.conftest import PASSWORD

HTML = {"Accept": "text/html"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed on leaving the block: nothing listens there


@pytest.fixture
def down(make_app):
    app = make_app(redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    with pytest.raises(redis_lib.ConnectionError):
        app.extensions["ninety"].redis.ping()
    return app


@pytest.fixture
def published(down, make_user):
    """A published free-with-ads track, written straight to the database (which is up)."""
    session = down.extensions["ninety"].sessions()
    user = make_user(roles=("artist",))
    artist = catalog.create_artist(session, user=get_user(session, user.id), name="Outage Orchestra")
    release = catalog.create_release(session, artist.id, title="Quiet Day", genre="ambient", kind="single")
    track = upload_track(session, MediaStore(down.extensions["ninety"].config.media_path), release,
                         io.BytesIO(tone()), "01 Hum.wav", clock=down.extensions["ninety"].clock, max_bytes=None,
                         title="Hum").track
    catalog.publish_release(session, release, clock=down.extensions["ninety"].clock)
    session.commit()
    ids = {"track": track.id, "release": release.id, "artist": artist.id,
           "release_url": f"/artists/{artist.slug}/{release.slug}", "artist_url": f"/artists/{artist.slug}"}
    session.close()
    return ids


def _assert_unavailable(response, what):
    assert response.status_code == 503, (what, response.status_code, response.get_data(as_text=True)[:300])
    assert int(response.headers["Retry-After"]) >= 1, what


def test_pages_and_reads_that_do_not_need_redis_keep_working(down, published):
    client = down.test_client()
    pages = ["/", "/music", "/search?q=hum", published["release_url"], published["artist_url"], "/signin",
             "/signup"]
    for path in pages:
        response = client.get(path, headers=HTML)
        assert response.status_code == 200, (path, response.status_code)
        assert "Advertisement" not in response.get_data(as_text=True), path  # no ad slot, no failure
    assert "Quiet Day" in client.get("/music", headers=HTML).get_data(as_text=True)
    assert "Hum" in client.get("/search?q=hum", headers=HTML).get_data(as_text=True)
    reads = ["/api/v1/releases", f"/api/v1/releases/{published['release']}", "/api/v1/search?q=hum",
             f"/api/v1/artists/{published['artist']}", "/api/v1/openapi.json"]
    for path in reads:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
    assert client.get("/api/v1/search?q=hum").get_json()["items"][0]["track_id"] == published["track"]


def test_a_download_reads_its_facts_from_the_database_when_their_cache_is_down(down, published):
    """Serving a file caches its delivery facts in Redis for a minute; without Redis they come from the DB."""
    runtime = down.extensions["ninety"]
    session = runtime.sessions()
    token = catalog.issue_grant(session, track_id=published["track"], listener_id="l-outage", via="preview",
                                secret=runtime.config.secret_key, clock=runtime.clock, ttl_s=60)
    session.commit()
    session.close()
    client = down.test_client()
    started = client.get(f"/download/{token}", headers=HTML)
    assert started.status_code == 303, started.get_data(as_text=True)[:300]
    served = client.get(started.headers["Location"])
    assert served.status_code == 200 and served.data[:4] == b"RIFF"


def test_what_needs_redis_answers_503_problem_with_retry_after(down, published, make_user, token_for):
    client = down.test_client()
    track = published["track"]
    listener = {"Authorization": f"Bearer {token_for(make_user(roles=('listener',)))}"}
    api = [("post", "/api/v1/ads/decisions", {"slot": "player"}),
           ("post", "/api/v1/ads/decisions", {"slot": "gate", "track_id": track}),
           ("post", "/api/v1/ads/gate", {"track_id": track}),
           ("put", "/api/v1/ads/key-mode", {"enabled": True})]
    for method, path, body in api:
        response = client.open(path, method=method.upper(), json=body, headers=listener)
        _assert_unavailable(response, (method, path))
        assert response.mimetype == "application/problem+json", path
        assert response.get_json()["code"] == "service_unavailable", path
    for path in ["/ads/vast", f"/ads/vast?track={track}"]:
        response = client.get(path)
        _assert_unavailable(response, path)
        assert response.mimetype == "application/problem+json", path
    # The download gate and the key-mode switch are pages: the same problem, rendered for a browser.
    for path in [f"/tracks/{track}/free", "/key-mode"]:
        page = client.get(path, headers=HTML)
        _assert_unavailable(page, path)
        assert page.mimetype == "text/html", path
    # Beacons are counted (and rate-limited) in Redis.
    _assert_unavailable(client.get("/ads/i/not-a-decision"), "impression beacon")


def test_sign_in_needs_its_throttle_and_says_so(down, make_user):
    """The login throttle lives in Redis; signing in without it would open the door to guessing passwords."""
    user = make_user(roles=("listener",))
    client = down.test_client()
    client.get("/signin", headers=HTML)
    with client.session_transaction() as sess:
        sess["_csrf"] = "test-csrf"
    response = client.post("/signin", data={"email": user.email, "password": PASSWORD, "csrf_token": "test-csrf"},
                           headers=HTML)
    _assert_unavailable(response, "sign-in")
    with client.session_transaction() as sess:
        assert "uid" not in sess


def test_healthz_reports_redis_down(down):
    response = down.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"].startswith("down")



def test_sign_up_is_throttled_in_redis_and_says_so_while_tokens_keep_working(down, make_user, token_for):
    from core.users import User

    client = down.test_client()
    signup = client.post("/api/v1/users", json={"email": "new@example.com", "password": "long enough pw"})
    _assert_unavailable(signup, "sign-up")
    session = down.extensions["ninety"].sessions()
    assert session.query(User).filter_by(email="new@example.com").count() == 0
    session.close()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token_for(make_user())}"})
    assert me.status_code == 200  # a token is checked against the database alone
