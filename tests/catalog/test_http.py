"""The catalog over HTTP: the artist's journey through the JSON API, and delivery of the tagged file."""

import hashlib
import io

import pytest

from catalog import services
from catalog.inspection import inspect_file
from catalog.models import AudioAsset, Download, Track
from core.clock import FrozenClock
from tests.catalog.conftest import tone
from tests.conftest import csrf_headers, login


@pytest.fixture
def clock():
    return FrozenClock()


@pytest.fixture
def app(make_app, clock):
    return make_app(clock=clock)


@pytest.fixture
def artist_client(app, make_user):
    client = app.test_client()
    user = make_user(roles=("artist",), email="ada@artists.example.com")
    login(client, user)
    return client


def _post(client, url, **kwargs):
    return client.post(url, headers=csrf_headers(), **kwargs)


def _release_with_tracks(client, files):
    artist = _post(client, "/api/v1/artists", json={"name": "Ada & The Sines", "currency": "USD"}).get_json()
    release = _post(client, f"/api/v1/artists/{artist['id']}/releases",
                    json={"title": "Waves", "kind": "ep", "genre": "Ambient", "tags": ["drone", "sine"]}).get_json()
    data = {"files": [(io.BytesIO(content), name) for name, content in files]}
    uploaded = _post(client, f"/api/v1/releases/{release['id']}/tracks", data=data,
                     content_type="multipart/form-data")
    assert uploaded.status_code == 201, uploaded.get_json()
    return artist, release, uploaded.get_json()["items"]


def test_artist_journey_over_the_api(artist_client, app):
    client = artist_client
    artist, release, tracks = _release_with_tracks(client, [("01 - Low Tide.flac", tone("flac", 1.0)),
                                                            ("02_High_Tide.mp3", tone("mp3", 1.5, 660))])
    assert [t["title"] for t in tracks] == ["Low Tide", "High Tide"]
    assert [t["audio"]["format"] for t in tracks] == ["flac", "mp3"]
    assert tracks[0]["audio"]["duration_ms"] == 1000 and tracks[0]["audio"]["sample_rate"] == 44100

    price = client.put(f"/api/v1/releases/{release['id']}/price", headers=csrf_headers(),
                       json={"price_model": "name_your_price", "minimum_price": "3.00", "suggested_price": "7.50"})
    assert price.status_code == 200, price.get_json()
    assert price.get_json()["price"]["minimum"]["micros"] == 3_000_000

    friend = _post(client, f"/api/v1/artists/{artist['id']}/payees",
                   json={"email": "bo@example.com", "display_name": "Bo"}).get_json()
    payees = client.get(f"/api/v1/artists/{artist['id']}/payees").get_json()["items"]
    own = next(p for p in payees if p["artist_id"] == artist["id"])
    split = client.put(f"/api/v1/releases/{release['id']}/split", headers=csrf_headers(),
                       json={"shares": [{"payee_id": own["id"], "share_bp": 7000},
                                        {"payee_id": friend["id"], "share_bp": 3000}]})
    assert split.status_code == 200, split.get_json()

    anonymous = app.test_client()
    assert anonymous.get(f"/api/v1/releases/{release['id']}").status_code == 404  # a draft is private
    published = _post(client, f"/api/v1/releases/{release['id']}/publish")
    assert published.status_code == 200 and published.get_json()["status"] == "published"

    public = anonymous.get(f"/api/v1/releases/{release['id']}").get_json()
    assert public["price"]["price_model"] == "name_your_price" and len(public["tracks"]) == 2
    page = anonymous.get(public["url"], headers={"Accept": "text/html"})
    assert page.status_code == 200 and b"Low Tide" in page.data and b"$3.00" in page.data

    hits = anonymous.get("/api/v1/search?q=tide").get_json()["items"]
    assert {h["title"] for h in hits} == {"Low Tide", "High Tide"}
    assert anonymous.get("/api/v1/search?q=ada sines hi").get_json()["items"][0]["title"] == "High Tide"
    assert anonymous.get("/api/v1/releases?genre=ambient").get_json()["items"][0]["title"] == "Waves"

    with app.app_context():
        session = app.extensions["ninety"].sessions()
        at = app.extensions["ninety"].clock.now()
        assert services.split_sheet_at(session, tracks[0]["id"], at) == [(own["id"], 7000), (friend["id"], 3000)]
        session.close()


@pytest.mark.parametrize("body,code", [
    ({"price_model": "fixed", "price": "-1.00"}, "non_positive_price"),
    ({"price_model": "fixed", "price": "0"}, "non_positive_price"),
    ({"price_model": "fixed"}, "missing_price"),
    ({"price_model": "fixed", "price": "4.995"}, "fractional_minor_unit"),
    ({"price_model": "fixed", "price": "4.99", "currency": "EUR"}, "currency_mismatch"),
    ({"price_model": "fixed", "price": "four"}, "invalid_money"),
    ({"price_model": "name_your_price", "minimum_price": "0"}, "non_positive_price"),
    ({"price_model": "name_your_price"}, "missing_minimum"),
    ({"price_model": "name_your_price", "minimum_price": "5", "suggested_price": "4"}, "suggested_below_minimum"),
    ({"price_model": "gift"}, "invalid_input"),
])
def test_bad_prices_are_refused(artist_client, body, code):
    _, release, _ = _release_with_tracks(artist_client, [("a.wav", tone("wav", 0.5))])
    response = artist_client.put(f"/api/v1/releases/{release['id']}/price", json=body, headers=csrf_headers())
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json" and response.get_json()["code"] == code
    after = artist_client.get(f"/api/v1/releases/{release['id']}").get_json()
    assert after["price"]["price_model"] == "free_with_ads"


def test_bad_splits_and_empty_publish_are_refused(artist_client):
    artist = _post(artist_client, "/api/v1/artists", json={"name": "Solo"}).get_json()
    release = _post(artist_client, f"/api/v1/artists/{artist['id']}/releases", json={"title": "Nothing"}).get_json()
    response = _post(artist_client, f"/api/v1/releases/{release['id']}/publish")
    assert response.status_code == 409 and response.get_json()["code"] == "release_has_no_tracks"
    _, release, tracks = _release_with_tracks(artist_client, [("a.wav", tone("wav", 0.5))])
    url = f"/api/v1/tracks/{tracks[0]['id']}/split"
    for shares, code in [([{"payee_id": 1, "share_bp": 9000}], "split_sum_mismatch"),
                         ([{"payee_id": 424242, "share_bp": 10000}], "unknown_payee"),
                         ([{"payee_id": 1, "share_bp": "10000"}], "invalid_input")]:
        response = artist_client.put(url, json={"shares": shares}, headers=csrf_headers())
        assert response.status_code == 422 and response.get_json()["code"] == code, response.get_json()


def test_only_members_edit(artist_client, app, make_user):
    _, release, _ = _release_with_tracks(artist_client, [("a.wav", tone("wav", 0.5))])
    other = app.test_client()
    login(other, make_user(roles=("artist",)))
    response = other.patch(f"/api/v1/releases/{release['id']}", json={"title": "Mine now"}, headers=csrf_headers())
    assert response.status_code == 403 and response.get_json()["code"] == "not_artist_member"
    listener = app.test_client()
    login(listener, make_user(roles=("listener",)))
    assert listener.post("/api/v1/artists", json={"name": "x"}, headers=csrf_headers()).status_code == 403


@pytest.mark.parametrize("name,content,code", [
    ("cover.mp3", b"\xff\xd8\xff\xe0" + b"\x00" * 2000, "not_audio"),
    ("empty.flac", b"", "empty_file"),
    ("truncated.flac", None, "corrupt_audio"),
    ("../../etc/passwd.wav", b"root:x:0:0:root:/root:/bin/bash\n" * 20, "not_audio"),
])
def test_bad_uploads_are_refused_and_nothing_is_stored(artist_client, app, name, content, code):
    artist = _post(artist_client, "/api/v1/artists", json={"name": "Careful"}).get_json()
    release = _post(artist_client, f"/api/v1/artists/{artist['id']}/releases", json={"title": "T"}).get_json()
    if content is None:
        content = tone("flac", 1.0)[:60]
    response = _post(artist_client, f"/api/v1/releases/{release['id']}/tracks",
                     data={"files": [(io.BytesIO(content), name)]}, content_type="multipart/form-data")
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["code"] == code
    media = app.extensions["ninety"].config.media_path
    assert not list((media / "audio").rglob("*")) if (media / "audio").exists() else True
    assert not list((media / "tmp").glob("*")) if (media / "tmp").exists() else True
    with app.app_context():
        session = app.extensions["ninety"].sessions()
        assert session.query(Track).count() == 0 and session.query(AudioAsset).count() == 0
        session.close()


def test_oversized_upload_is_refused(make_app, make_user, clock):
    app = make_app(clock=clock, max_upload_bytes=50_000)
    client = app.test_client()
    login(client, make_user(roles=("artist",)))
    artist = _post(client, "/api/v1/artists", json={"name": "Big"}).get_json()
    release = _post(client, f"/api/v1/artists/{artist['id']}/releases", json={"title": "Huge"}).get_json()
    response = _post(client, f"/api/v1/releases/{release['id']}/tracks?filename=big.wav",
                     data=tone("wav", 2.0), content_type="audio/wav")
    assert response.status_code == 413 and response.mimetype == "application/problem+json"


def test_raw_upload_deduplicates_identical_audio(artist_client, app):
    artist = _post(artist_client, "/api/v1/artists", json={"name": "Twice"}).get_json()
    release = _post(artist_client, f"/api/v1/artists/{artist['id']}/releases", json={"title": "Echo"}).get_json()
    audio = tone("ogg", 1.0)
    first = _post(artist_client, f"/api/v1/releases/{release['id']}/tracks?filename=echo.ogg", data=audio,
                  content_type="audio/ogg").get_json()["items"][0]
    second = _post(artist_client, f"/api/v1/releases/{release['id']}/tracks?filename=echo-again.ogg", data=audio,
                   content_type="audio/ogg").get_json()["items"][0]
    assert first["audio"]["sha256"] == second["audio"]["sha256"] == hashlib.sha256(audio).hexdigest()
    assert second["deduplicated"] and first["audio"]["format"] == "vorbis"
    media = app.extensions["ninety"].config.media_path
    assert len([p for p in (media / "audio").rglob("*") if p.is_file()]) == 1


def _published_track(client, fmt="flac"):
    artist, release, tracks = _release_with_tracks(client, [(f"01 Song.{fmt}", tone(fmt, 1.0))])
    _post(client, f"/api/v1/releases/{release['id']}/publish")
    return artist, release, tracks[0]


def _grant(app, track_id, *, via="ad", ttl_s=600, listener="a-listener"):
    with app.app_context():
        session = app.extensions["ninety"].sessions()
        runtime = app.extensions["ninety"]
        token = services.issue_grant(session, track_id=track_id, listener_id=listener, via=via,
                                     secret=runtime.config.secret_key, clock=runtime.clock, ttl_s=ttl_s)
        session.commit()
        session.close()
    return token


@pytest.mark.parametrize("fmt", ["flac", "mp3", "ogg", "wav", "aiff"])
def test_grant_downloads_once_with_catalog_tags_and_original_untouched(artist_client, app, fmt, tmp_path):
    _, release, track = _published_track(artist_client, fmt)
    token = _grant(app, track["id"])
    listener = app.test_client()
    first = listener.get(f"/download/{token}")
    assert first.status_code == 303
    file_url = first.headers["Location"]
    served = listener.get(file_url)
    assert served.status_code == 200
    assert served.headers["Content-Disposition"].startswith("attachment;")
    assert "Ada & The Sines - Song." in served.headers["Content-Disposition"]
    assert served.headers["ETag"]

    saved = tmp_path / f"served.{fmt}"
    saved.write_bytes(served.data)
    tags = inspect_file(saved).tags
    assert (tags["title"], tags["artist"], tags["album"], tags["track_number"]) == \
        ("Song", "Ada & The Sines", "Waves", 1)
    assert b"Downloaded from Ninety" in served.data and b"free download paid for by an advertisement" in served.data

    media = app.extensions["ninety"].config.media_path
    sha = track["audio"]["sha256"]
    original = media / "audio" / sha[:2] / sha
    assert hashlib.sha256(original.read_bytes()).hexdigest() == sha  # the stored original is unchanged

    again = listener.get(f"/download/{token}")
    assert again.status_code == 410 and again.get_json()["code"] == "grant_used"
    with app.app_context():
        session = app.extensions["ninety"].sessions()
        rows = session.query(Download).all()
        assert [(r.track_id, r.listener_id, r.via) for r in rows] == [(track["id"], "a-listener", "ad")]
        session.close()


def test_range_etag_and_refusals(artist_client, app, clock):
    _, _, track = _published_track(artist_client, "wav")
    client = app.test_client()
    file_url = client.get(f"/download/{_grant(app, track['id'])}").headers["Location"]
    whole = client.get(file_url)
    etag = whole.headers["ETag"]
    part = client.get(file_url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == whole.data[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(whole.data)}"
    tail = client.get(file_url, headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.data == whole.data[-50:]
    assert client.get(file_url, headers={"If-None-Match": etag}).status_code == 304

    forged = client.get(f"/download/{_grant(app, track['id']).split('.')[0]}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert forged.status_code == 403 and forged.get_json()["code"] == "grant_invalid"
    assert client.get("/download/nonsense").status_code == 403
    assert client.get(file_url.replace("/files/", "/files/9").replace(".", "x", 1)).status_code in (403, 404)

    expiring = _grant(app, track["id"], ttl_s=60)
    clock.advance(seconds=61)
    expired = client.get(f"/download/{expiring}")
    assert expired.status_code == 410 and expired.get_json()["code"] == "grant_expired"
    assert client.get(file_url).status_code == 200  # the file link lives as long as its grant would have
    clock.advance(seconds=600)
    assert client.get(file_url).status_code == 410


def test_takedown_stops_delivery(artist_client, app):
    _, _, track = _published_track(artist_client, "mp3")
    token = _grant(app, track["id"])
    with app.app_context():
        session = app.extensions["ninety"].sessions()
        services.take_down_track(session, session.get(Track, track["id"]))
        session.commit()
        session.close()
    response = app.test_client().get(f"/download/{token}")
    assert response.status_code == 410 and response.get_json()["code"] == "track_taken_down"


def test_x_accel_redirect(make_app, make_user, clock):
    app = make_app(clock=clock, x_accel_redirect="/internal-media/")
    client = app.test_client()
    login(client, make_user(roles=("artist",)))
    _, _, track = _published_track(client, "ogg")
    response = client.get(client.get(f"/download/{_grant(app, track['id'])}").headers["Location"])
    assert response.status_code == 200 and response.data == b""
    assert response.headers["X-Accel-Redirect"].startswith("/internal-media/tagged/")


def test_invalid_cursor_and_limit_are_4xx(client):
    assert client.get("/api/v1/search?q=x&cursor=!!!").get_json()["code"] == "invalid_cursor"
    assert client.get("/api/v1/search?q=x&limit=1000").status_code == 422
    assert client.get("/api/v1/releases?cursor=WzFd").status_code == 422
    assert client.get("/api/v1/search?q=%27%3B--%20%26%7C%21").get_json()["items"] == []


def test_range_edges_and_unicode_names(artist_client, app):
    artist = _post(artist_client, "/api/v1/artists", json={"name": "Sigur Þögn"}).get_json()
    release = _post(artist_client, f"/api/v1/artists/{artist['id']}/releases", json={"title": "Ró"}).get_json()
    track = _post(artist_client, f"/api/v1/releases/{release['id']}/tracks?filename=x.wav", data=tone("wav", 1.0),
                  content_type="audio/wav").get_json()["items"][0]
    artist_client.patch(f"/api/v1/tracks/{track['id']}", json={"title": 'Hó "/../" pa'}, headers=csrf_headers())
    _post(artist_client, f"/api/v1/releases/{release['id']}/publish")
    client = app.test_client()
    file_url = client.get(f"/download/{_grant(app, track['id'])}").headers["Location"]
    whole = client.get(file_url)
    disposition = whole.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="Sigur ogn - Ho .. pa.wav"')
    assert "filename*=UTF-8''Sigur%20%C3%9E%C3%B6gn%20-%20H%C3%B3%20..%20pa.wav" in disposition
    assert "/" not in disposition.split("filename*")[0].replace("attachment; ", "")
    size = len(whole.data)
    assert client.get(file_url, headers={"Range": f"bytes={size + 10}-"}).status_code == 416
    stale = client.get(file_url, headers={"Range": "bytes=0-9", "If-Range": '"not-the-etag"'})
    assert stale.status_code == 200 and len(stale.data) == size
    fresh = client.get(file_url, headers={"Range": "bytes=0-9", "If-Range": whole.headers["ETag"]})
    assert fresh.status_code == 206 and fresh.data == whole.data[:10]
    head = client.head(file_url)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(size) and head.data == b""


def test_cover_art_over_the_api(artist_client, app):
    from app.seed.catalog import cover_png

    _, release, _ = _release_with_tracks(artist_client, [("a.wav", tone("wav", 0.5))])
    png = cover_png((200, 10, 10), size=8)
    response = artist_client.put(f"/api/v1/releases/{release['id']}/cover", data=png, content_type="image/png",
                                 headers=csrf_headers())
    assert response.status_code == 200 and response.get_json()["cover_url"].endswith(hashlib.sha256(png).hexdigest())
    assert app.test_client().get(response.get_json()["cover_url"]).data == png
    bad = artist_client.put(f"/api/v1/releases/{release['id']}/cover", data=b"<svg onload=alert(1)>",
                            content_type="image/svg+xml", headers=csrf_headers())
    assert bad.status_code == 422 and bad.get_json()["code"] == "invalid_image"


def test_takedown_reaches_open_file_links_when_their_cached_facts_expire(artist_client, app):
    _, _, track = _published_track(artist_client, "wav")
    client = app.test_client()
    file_url = client.get(f"/download/{_grant(app, track['id'])}").headers["Location"]
    assert client.get(file_url).status_code == 200
    with app.app_context():
        session = app.extensions["ninety"].sessions()
        services.take_down_track(session, session.get(Track, track["id"]))
        session.commit()
        session.close()
    app.extensions["ninety"].redis.flushdb()  # the minute of cached facts has passed
    gone = client.get(file_url)
    assert gone.status_code == 410 and gone.get_json()["code"] == "track_taken_down"
