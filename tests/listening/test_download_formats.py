"""Downloads in the format the listener chooses: the track page and the gate offer the master's formats,
the choice travels with the single-use grant to the file, a format not made yet shows its progress while
the job (RQ, run here by a burst worker) makes it, and a format the master cannot give is refused without
spending the grant."""

from __future__ import annotations

import io
import re

import mutagen
import pytest
from rq import SimpleWorker

from core import jobs


@pytest.fixture
def worker(app):
    """Run the queued jobs as `ninety worker` would (the job worker's context pointed at the app's store)."""
    context = jobs.worker_context()
    saved = dict(context.extras)
    runtime = app.extensions["ninety"]
    jobs.configure(mailer=context.mailer, sessions=runtime.sessions, media_path=runtime.config.media_path)
    connection = jobs.connect(runtime.config.redis_url)
    queue = jobs.make_queue(connection)
    yield lambda: SimpleWorker([queue], connection=connection).work(burst=True)
    connection.close()
    context.extras.clear()
    context.extras.update(saved)


def _csrf(client) -> str:
    with client.session_transaction() as sess:
        sess["_csrf"] = "test-csrf"
    return "test-csrf"


def _grant(client, track_id: int, fmt: str | None):
    """The gate finds no ad to show (no campaign), so its form asks for the grant, with the chosen format."""
    client.get(f"/tracks/{track_id}/free")
    data = {"csrf_token": _csrf(client)}
    if fmt is not None:
        data["format"] = fmt
    return client.post(f"/tracks/{track_id}/free/without-ad", data=data)


def test_the_listener_chooses_a_format_which_is_made_by_the_job_then_served(app, client, make_track, worker):
    track_id = make_track(title="Choose")
    page = client.get(f"/tracks/{track_id}").get_data(as_text=True)
    start = page.index(f'<form method="get" action="/tracks/{track_id}/free" class="row" id="download-form">')
    form = page[start:page.index("</form>", start)]
    options = re.findall(r'<option value="([a-z0-9_]*)"', form)
    assert options == ["", "mp3_v0", "mp3_320", "flac", "alac", "aac", "vorbis", "opus", "wav"]
    gate = client.get(f"/tracks/{track_id}/free?format=flac").get_data(as_text=True)
    assert '<option value="flac" selected>' in gate and 'name="format"' in gate

    to_download = _grant(client, track_id, "flac")
    assert to_download.status_code == 303 and to_download.headers["Location"].endswith("?format=flac")
    to_file = client.get(to_download.headers["Location"])
    assert to_file.status_code == 303
    file_url = to_file.headers["Location"]
    assert re.search(r"/files/[^/]+/Listening%20Testers%20-%20Choose\.flac\?format=flac$", file_url) or \
        re.search(r"/files/[^/]+/Listening Testers - Choose\.flac\?format=flac$", file_url)

    waiting = client.get(file_url, headers={"Accept": "text/html,*/*"})
    assert waiting.status_code == 202 and waiting.headers["Retry-After"] == "3"
    html = waiting.get_data(as_text=True)
    assert "is being prepared" in html and "<progress" in html and 'http-equiv="refresh"' in html
    assert client.get(file_url, headers={"Accept": "application/json"}).get_json()["status"] == "queued"

    worker()  # the job queued by the first request makes the FLAC

    served = client.get(file_url)
    assert served.status_code == 200 and served.mimetype == "audio/flac"
    assert 'filename="Listening Testers - Choose.flac"' in served.headers["Content-Disposition"]
    audio = mutagen.File(io.BytesIO(served.data))
    assert type(audio).__name__ == "FLAC" and audio["title"] == ["Choose"]
    assert abs(audio.info.length - 40.0) < 0.05
    # the grant was single-use; the file link serves ranges of the same file
    assert client.get(to_download.headers["Location"]).status_code >= 400
    ranged = client.get(file_url, headers={"Range": "bytes=0-3"})
    assert ranged.status_code == 206 and ranged.data == b"fLaC"

    # no format chosen: the file as uploaded, as before
    again = _grant(client, track_id, None)
    assert again.status_code == 303, again.get_data(as_text=True)
    original = client.get(client.get(again.headers["Location"]).headers["Location"])
    assert original.status_code == 200 and original.mimetype in ("audio/wav", "audio/x-wav", "audio/wave")


def test_a_format_the_master_cannot_give_is_refused_and_the_grant_kept(app, client, make_track):
    track_id = make_track(title="Refuse")
    assert _grant(client, track_id, "dsd").status_code == 422  # refused before the grant is issued
    assert client.get(f"/tracks/{track_id}/free?format=dsd").status_code == 422
    link = _grant(client, track_id, None).headers["Location"]
    refused = client.get(link + "?format=mp3_999")
    assert refused.status_code == 422 and refused.get_json()["code"] == "format_unknown"
    assert client.get(link + "?format=wav").status_code == 303  # the grant was not spent by the refusal
