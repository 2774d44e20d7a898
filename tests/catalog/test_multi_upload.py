"""A multi-file upload is a per-file process: each accepted file is kept when a later one is refused."""

import io

from catalog.models import AudioAsset, Track
from tests.catalog.conftest import tone
from tests.conftest import csrf_headers, login


def _release(client):
    artist = client.post("/api/v1/artists", json={"name": "Three Files"}, headers=csrf_headers()).get_json()
    return client.post(f"/api/v1/artists/{artist['id']}/releases", json={"title": "Batch"},
                       headers=csrf_headers()).get_json()


def _tracks(app):
    session = app.extensions["ninety"].sessions()
    try:
        return sorted(t.original_filename for t in session.query(Track)), session.query(AudioAsset).count()
    finally:
        session.close()


def _files():
    return [(io.BytesIO(tone("wav", 0.5, frequency=440.0)), "01 Good.wav"),
            (io.BytesIO(tone("flac", 0.5, frequency=660.0)), "02 Also Good.flac"),
            (io.BytesIO(b"this is not audio at all" * 40), "03 Bad.wav")]


def test_two_good_files_then_a_bad_one_over_the_api_keeps_two(app, make_user):
    client = app.test_client()
    login(client, make_user(roles=("artist",)))
    release = _release(client)
    response = client.post(f"/api/v1/releases/{release['id']}/tracks", data={"files": _files()},
                           content_type="multipart/form-data", headers=csrf_headers())
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["code"] == "not_audio"
    assert problem["filename"] == "03 Bad.wav" and problem["uploaded"] == 2
    assert problem["detail"].startswith("03 Bad.wav: ") and "The 2 files before it were uploaded and kept." \
        in problem["detail"]
    assert _tracks(app) == (["01 Good.wav", "02 Also Good.flac"], 2)
    listed = client.get(f"/api/v1/releases/{release['id']}").get_json()
    assert [t["title"] for t in listed["tracks"]] == ["Good", "Also Good"]


def test_two_good_files_then_a_bad_one_in_the_studio_form_keeps_two(app, make_user):
    client = app.test_client()
    login(client, make_user(roles=("artist",)))
    release = _release(client)
    response = client.post(f"/studio/releases/{release['id']}/tracks",
                           data={"csrf_token": "test-csrf", "files": _files()}, content_type="multipart/form-data",
                           headers={"Accept": "text/html"})
    assert response.status_code == 422
    assert b"03 Bad.wav" in response.data and b"uploaded and kept" in response.data
    assert _tracks(app) == (["01 Good.wav", "02 Also Good.flac"], 2)
