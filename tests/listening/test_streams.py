"""The stream endpoint: short-lived signed URLs, byte ranges (RFC 9110 §14) and conditional requests."""

from __future__ import annotations

import re

import pytest

from tests.listening.conftest import BROWSER_UA, start_play

pytestmark = pytest.mark.usefixtures("app")


@pytest.fixture
def stream(app, client, make_track):
    """(url, bytes of the file) of a free track's Opus stream copy."""
    from catalog.storage import MediaStore

    track_id = make_track()
    ticket = start_play(client, track_id).get_json()
    source = next(s for s in ticket["sources"] if s["codec"] == "opus")
    sha = re.match(r"/stream/([0-9a-f]{64})-", source["url"])[1]
    path = MediaStore(app.extensions["ninety"].config.media_path).path_for("renditions", sha, ".opus")
    return source["url"], path.read_bytes(), sha


def get(client, url, **headers):
    return client.get(url, headers={"User-Agent": BROWSER_UA, **headers})


def test_the_whole_file_with_its_validators(client, stream):
    url, data, sha = stream
    response = get(client, url)
    assert response.status_code == 200
    assert response.data == data and response.headers["Content-Length"] == str(len(data))
    assert response.headers["ETag"] == f'"{sha}"' and response.headers["Accept-Ranges"] == "bytes"
    assert response.mimetype == "audio/ogg"
    assert data[:4] == b"OggS"  # a stream copy, never the uploaded WAV
    head = client.head(url, headers={"User-Agent": BROWSER_UA})
    assert head.status_code == 200 and head.data == b"" and head.headers["Content-Length"] == str(len(data))


def test_the_first_byte_and_a_suffix(client, stream):
    url, data, _ = stream
    first = get(client, url, Range="bytes=0-0")
    assert first.status_code == 206 and first.data == data[:1]
    assert first.headers["Content-Range"] == f"bytes 0-0/{len(data)}"
    suffix = get(client, url, Range="bytes=-500")
    assert suffix.status_code == 206 and suffix.data == data[-500:]
    assert suffix.headers["Content-Range"] == f"bytes {len(data) - 500}-{len(data) - 1}/{len(data)}"
    open_ended = get(client, url, Range="bytes=1000-")
    assert open_ended.status_code == 206 and open_ended.data == data[1000:]
    past_the_end = get(client, url, Range=f"bytes=10-{len(data) * 2}")  # a last-pos past the end is clipped
    assert past_the_end.status_code == 206 and past_the_end.data == data[10:]


def test_several_ranges_come_as_multipart_byteranges(client, stream):
    url, data, _ = stream
    response = get(client, url, Range="bytes=0-9, 20-29, -5")
    assert response.status_code == 206
    assert response.mimetype == "multipart/byteranges"
    boundary = response.mimetype_params["boundary"]
    assert response.headers["Content-Length"] == str(len(response.data))
    parts = [p for p in response.data.split(f"--{boundary}".encode()) if p.strip(b"\r\n-")]
    assert len(parts) == 3
    bodies = []
    for part in parts:
        head, _, body = part.partition(b"\r\n\r\n")
        assert b"Content-Type: audio/ogg" in head
        bodies.append((re.search(rb"Content-Range: bytes (\d+)-(\d+)/(\d+)", head).groups(), body[:-2]))
    assert bodies[0] == ((b"0", b"9", str(len(data)).encode()), data[0:10])
    assert bodies[1][1] == data[20:30] and bodies[2][1] == data[-5:]
    overlapping = get(client, url, Range="bytes=0-99,50-149")  # coalesced: nothing is sent twice
    assert overlapping.status_code == 206 and overlapping.data == data[:150]


@pytest.mark.parametrize("header, reason", [
    ("bytes={size}-", "beyond_end"), ("bytes={size}-{size2}", "beyond_end"), ("bytes=-0", "beyond_end"),
    ("bytes=500-100", "reversed"), ("bytes=abc", "malformed"), ("bytes=", "malformed"), ("bytes=1-2-3", "malformed"),
    ("bytes 0-10", "malformed"),
])
def test_bad_ranges_are_416_with_the_size(client, stream, header, reason):
    url, data, _ = stream
    response = get(client, url, Range=header.format(size=len(data), size2=len(data) + 10))
    if header == "bytes 0-10":  # no "=": not a bytes range at all, so ignored (RFC 9110 §14.2)
        assert response.status_code == 200 and response.data == data
        return
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(data)}"
    body = response.get_json()
    assert body["code"] == "range_not_satisfiable" and body["reason"] == reason


def test_an_unknown_range_unit_is_ignored(client, stream):
    url, data, _ = stream
    response = get(client, url, Range="items=0-5")
    assert response.status_code == 200 and response.data == data


def test_too_many_ranges_are_refused(client, stream):
    url, data, _ = stream
    response = get(client, url, Range="bytes=" + ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(17)))
    assert response.status_code == 416 and response.get_json()["reason"] == "too_many_ranges"


def test_conditional_requests(client, stream):
    url, data, sha = stream
    assert get(client, url, **{"If-None-Match": f'"{sha}"'}).status_code == 304
    assert get(client, url, **{"If-None-Match": "*"}).status_code == 304
    assert get(client, url, **{"If-None-Match": '"other"'}).status_code == 200
    # If-Range: the range only while the validator still holds, else the whole (new) representation
    same = get(client, url, Range="bytes=0-9", **{"If-Range": f'"{sha}"'})
    assert same.status_code == 206 and same.data == data[:10]
    changed = get(client, url, Range="bytes=0-9", **{"If-Range": '"an-older-version"'})
    assert changed.status_code == 200 and changed.data == data
    weak = get(client, url, Range="bytes=0-9", **{"If-Range": f'W/"{sha}"'})
    assert weak.status_code == 200  # a weak validator never satisfies If-Range
    modified = get(client, url).headers["Last-Modified"]
    dated = get(client, url, Range="bytes=0-9", **{"If-Range": modified})
    assert dated.status_code == 206 and dated.data == data[:10]


def test_forged_and_expired_urls(client, stream, clock):
    url, _, sha = stream
    forged = re.sub(r"-([A-Za-z0-9_-]{24})\.", lambda m: "-" + "A" * 24 + ".", url)
    response = get(client, forged)
    assert response.status_code == 403 and response.get_json()["code"] == "stream_invalid"
    other_file = url.replace(sha, "0" * 64)  # a valid signature names exactly one file
    assert get(client, other_file).status_code == 403
    longer = re.sub(r"-(\d+)-", lambda m: f"-{int(m[1]) + 86400}-", url)  # the expiry is signed too
    assert get(client, longer).status_code == 403
    assert get(client, "/stream/../../etc/passwd").status_code in (403, 404)
    assert get(client, "/stream/not-a-stream").status_code == 403
    clock.advance(hours=3)
    expired = get(client, url)
    assert expired.status_code == 410 and expired.get_json()["code"] == "stream_expired"


def test_the_original_upload_is_never_a_stream(app, client, make_track):
    from sqlalchemy import select

    from catalog.models import AudioAsset, Track

    track_id = make_track()
    ticket = start_play(client, track_id).get_json()
    with app.extensions["ninety"].sessions() as session:
        original = session.scalar(select(AudioAsset.sha256).join(Track, Track.asset_id == AudioAsset.id)
                                  .where(Track.id == track_id))
    assert all(original not in s["url"] for s in ticket["sources"])
    assert {s["codec"] for s in ticket["sources"]} == {"opus", "mp3"}


def test_a_preview_cannot_be_read_past_30_seconds(app, client, make_track):
    import io

    import mutagen

    track_id = make_track("fixed", seconds=45, previews_only=True)
    ticket = start_play(client, track_id).get_json()
    assert ticket["access"] == "preview"
    for source in ticket["sources"]:
        whole = get(client, source["url"])
        assert whole.status_code == 200
        audio = mutagen.File(io.BytesIO(whole.data))
        assert audio.info.length <= 30.05  # the preview copy holds 30 s, never more
        beyond = get(client, source["url"], Range=f"bytes={len(whole.data)}-")
        assert beyond.status_code == 416  # nothing past the preview's end exists to be asked for
