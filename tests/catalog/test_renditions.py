"""Renditions: the upload queues the streams job after commit; the job makes stream and preview copies and
the waveform with stored progress; downloads in formats, tagged; a lossy master only in its own format;
a corrupt master and a failing job are recorded with their reason (retried first)."""

from __future__ import annotations

import io

import pytest
from mutagen import File as MutagenFile
from rq import Retry, SimpleWorker

from catalog import renditions, services
from catalog.delivery import delivery_facts, issue_grant, redeem_grant
from catalog.rendition_models import MediaJob, Rendition
from catalog.uploads import upload_track
from core import jobs
from tests.catalog.conftest import tone


@pytest.fixture
def worker_context(app, store):
    """The job worker's context as `ninety jobs work` sets it, pointed at the test's store."""
    context = jobs.worker_context()
    saved = dict(context.extras)
    jobs.configure(mailer=context.mailer, sessions=app.extensions["ninety"].sessions, media_path=store.root)
    yield context
    context.extras.clear()
    context.extras.update(saved)


@pytest.fixture
def queue(app):
    connection = jobs.connect(app.extensions["ninety"].config.redis_url)
    yield jobs.make_queue(connection)
    connection.close()


def _upload(db_session, store, clock, artist, fmt="flac", seconds=3.0, data=None):
    release = services.create_release(db_session, artist.id, title="Renditions", genre="ambient", tags=[])
    result = upload_track(db_session, store, release, io.BytesIO(data or tone(fmt, seconds=seconds)),
                          f"01 Song.{fmt}", clock=clock, max_bytes=None, title="Song")
    services.publish_release(db_session, release, clock=clock)
    return result


def _work(queue):
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def test_upload_queues_streams_job_after_commit_only(db_session, store, clock, artist, queue):
    result = _upload(db_session, store, clock, artist)
    assert queue.count == 0  # nothing before the commit
    db_session.commit()
    assert [job.func_name for job in queue.jobs] == ["catalog.renditions.run_streams_job"]
    assert queue.jobs[0].args == (result.asset.id,)
    job = renditions.job_status(db_session, result.asset.id)
    assert job.status == "queued" and job.progress == 0
    assert not renditions.is_playable(db_session, result.asset.id)


def test_rolled_back_upload_queues_nothing(db_session, store, clock, artist, queue):
    _upload(db_session, store, clock, artist)
    db_session.rollback()
    assert queue.count == 0


def test_streams_job_makes_copies_waveform_and_progress(db_session, store, clock, artist, queue, worker_context):
    result = _upload(db_session, store, clock, artist, seconds=4.0)
    db_session.commit()
    _work(queue)
    db_session.expire_all()
    asset_id = result.asset.id
    job = renditions.job_status(db_session, asset_id)
    assert job.status == "done" and job.progress == 100 and job.attempts == 1 and job.error_code is None
    assert renditions.is_playable(db_session, asset_id)
    opus = renditions.stream_rendition(db_session, asset_id, preview=False, codec="opus")
    mp3 = renditions.stream_rendition(db_session, asset_id, preview=False, codec="mp3")
    preview = renditions.stream_rendition(db_session, asset_id, preview=True, codec="opus")
    assert (opus.mime, opus.extension, opus.sample_rate) == ("audio/ogg", "opus", 48000)
    assert mp3.mime == "audio/mpeg" and abs(mp3.bitrate - 128_000) <= 1000
    assert abs(opus.duration_ms - 4000) <= 50 and preview.duration_ms <= 30_000
    for item in (opus, mp3, preview):
        path = renditions.rendition_path(store, item)
        assert path.exists() and path.name.startswith(item.sha256)
        assert item.sha256 != result.asset.sha256  # the original is never a stream
    peaks = renditions.waveform_peaks(db_session, store, asset_id)
    assert len(peaks["max"]) == 1000 and abs(peaks["duration_ms"] - 4000) <= 1
    png = renditions.rendition(db_session, asset_id, "waveform.png")
    assert renditions.rendition_path(store, png).read_bytes().startswith(b"\x89PNG")


def test_progress_is_stored_while_the_job_runs(app, db_session, store, clock, artist, monkeypatch):
    result = _upload(db_session, store, clock, artist, seconds=3.0)
    db_session.commit()
    sessions = app.extensions["ninety"].sessions
    seen = []
    original = renditions._Progress.set

    def spy(self, percent, step, *, force=False):
        original(self, percent, step, force=force)
        with sessions() as other:
            job = other.get(MediaJob, self.job_id)
            seen.append((job.status, job.progress, job.step))

    monkeypatch.setattr(renditions._Progress, "set", spy)
    renditions.perform(sessions, store, result.asset.id, renditions.STREAMS)
    assert all(status == "running" for status, _, _ in seen)
    progress = [p for _, p, _ in seen]
    assert progress == sorted(progress) and progress[0] == 0 and 50 < max(progress) < 100
    assert {"stream.opus", "stream.mp3", "waveform"} <= {step for _, _, step in seen}


def test_corrupt_master_fails_at_once_with_reason(app, db_session, store, clock, artist):
    result = _upload(db_session, store, clock, artist)
    db_session.commit()
    master = store.path_for("audio", result.asset.sha256)
    master.chmod(0o644)
    data = master.read_bytes()
    master.write_bytes(data[:300] + b"\x00\x13" * (len(data) // 2))  # the bytes rot in storage
    job = renditions.perform(app.extensions["ninety"].sessions, store, result.asset.id, renditions.STREAMS,
                             final_attempt=False)
    assert job.status == "failed" and job.error_code == "undecodable" and job.attempts == 1
    assert "cannot be decoded" in job.error_detail
    db_session.expire_all()
    assert db_session.query(Rendition).filter_by(asset_id=result.asset.id).count() == 0
    assert not list((store.root / "renditions").rglob("*.opus")) if (store.root / "renditions").exists() else True


def test_failing_job_is_retried_then_recorded(db_session, store, clock, artist, queue, worker_context,
                                              monkeypatch):
    monkeypatch.setattr(renditions, "JOB_RETRY", Retry(max=2))  # no waiting between attempts here
    calls = []

    def broken(*args, **kwargs):
        calls.append(args)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(renditions, "make_stream_copy", broken)
    result = _upload(db_session, store, clock, artist)
    db_session.commit()
    _work(queue)
    db_session.expire_all()
    job = renditions.job_status(db_session, result.asset.id)
    assert len(calls) == 3 and job.attempts == 3
    assert job.status == "failed" and job.error_code == "job_failed" and "No space left" in job.error_detail
    assert queue.failed_job_registry.count == 1
    # asking again (a new upload of the same bytes, or the studio's retry) queues it afresh
    monkeypatch.undo()
    renditions.request_streams(db_session, result.asset.id)
    db_session.commit()
    _work(queue)
    db_session.expire_all()
    assert renditions.job_status(db_session, result.asset.id).status == "done"


def test_download_formats_made_on_request_and_tagged(app, db_session, store, clock, artist, queue,
                                                     worker_context):
    result = _upload(db_session, store, clock, artist, seconds=2.0)
    track = result.track
    track.isrc = "GBAYE2600001"
    db_session.commit()
    _work(queue)
    asset = db_session.get(type(result.asset), result.asset.id)
    assert renditions.offered_formats(asset) == list(renditions.DOWNLOAD_FORMATS)
    values = _tags(app, db_session, track.id, clock)
    with pytest.raises(renditions.RenditionPending):
        renditions.download_file(db_session, store, track.id, "mp3_v0", values)
    item, job = renditions.request_download(db_session, asset.id, "mp3_v0")
    assert item is None and job.status == "queued"
    db_session.commit()
    assert [j.func_name for j in queue.jobs] == ["catalog.renditions.run_download_job"]
    again_item, again_job = renditions.request_download(db_session, asset.id, "mp3_v0")
    db_session.commit()
    assert again_job.id == job.id and queue.count == 1  # one job, not one per click
    _work(queue)
    db_session.expire_all()
    item, job = renditions.request_download(db_session, asset.id, "mp3_v0")
    assert item is not None and job is None and item.kind == "download.mp3_v0"
    served = renditions.download_file(db_session, store, track.id, "mp3_v0", values)
    tags = MutagenFile(served.path)
    assert served.mime == "audio/mpeg" and served.extension == "mp3"
    assert str(tags["TIT2"]) == "Song" and str(tags["TPE1"]) == "The Tones" and str(tags["TALB"]) == "Renditions"
    assert str(tags["TRCK"]).startswith("1") and str(tags["TSRC"]) == "GBAYE2600001"
    assert tags.tags.getall("APIC") == [] or tags.tags.getall("APIC")[0].data
    assert renditions.download_file(db_session, store, track.id, "mp3_v0", values).etag == served.etag
    untagged = renditions.rendition_path(store, item)
    assert "TIT2" not in (MutagenFile(untagged).tags or {})  # the cached transcode stays clean


def test_every_format_tagged_with_cover(app, db_session, store, clock, artist, worker_context):
    from app.seed.catalog import cover_png
    from catalog.uploads import store_cover

    result = _upload(db_session, store, clock, artist, seconds=1.5)
    sha, mime = store_cover(store, cover_png((10, 120, 200), size=32))
    services.set_cover(db_session, result.track.release, sha, mime)
    result.track.isrc = "GBAYE2600002"
    db_session.commit()
    sessions = app.extensions["ninety"].sessions
    made = renditions.make_all_now(sessions, store, result.asset.id)
    assert [j.status for j in made] == ["done"] * 9
    values = _tags(app, db_session, result.track.id, clock)
    for fmt in renditions.DOWNLOAD_FORMATS:
        served = renditions.download_file(db_session, store, result.track.id, fmt, values)
        parsed = MutagenFile(served.path)
        assert abs(parsed.info.length - 1.5) <= 0.050, fmt
        text = repr(parsed.tags)
        assert "Song" in text and "The Tones" in text and "Renditions" in text and "GBAYE2600002" in text, fmt
        has_cover = (bool(getattr(parsed, "pictures", None)) or "APIC" in text or "covr" in text
                     or "METADATA_BLOCK_PICTURE" in text.upper())
        assert has_cover, fmt


def test_lossy_master_only_in_its_own_format(app, db_session, store, clock, artist, queue):
    result = _upload(db_session, store, clock, artist, fmt="mp3", seconds=2.0)
    db_session.commit()
    asset = result.asset
    assert renditions.offered_formats(asset) == ["mp3"]
    for fmt in ("flac", "wav", "alac", "mp3_320"):
        with pytest.raises(renditions.FormatUnavailable) as refused:
            renditions.request_download(db_session, asset.id, fmt)
        assert refused.value.code == "format_unavailable" and refused.value.status == 422
        assert "lossy" in refused.value.message
    with pytest.raises(renditions.FormatUnavailable) as unknown:
        renditions.check_format(asset, "../../etc/passwd")
    assert unknown.value.code == "format_unknown"
    assert renditions.request_download(db_session, asset.id, "mp3") == (None, None)
    values = _tags(app, db_session, result.track.id, clock)
    served = renditions.download_file(db_session, store, result.track.id, "mp3", values)
    assert served.extension == "mp3" and str(MutagenFile(served.path)["TIT2"]) == "Song"


def test_premake_for_popular_tracks(app, db_session, store, clock, artist, queue):
    result = _upload(db_session, store, clock, artist, seconds=1.0)
    db_session.commit()
    _tags(app, db_session, result.track.id, clock)  # one download recorded
    db_session.commit()
    popular = renditions.popular_assets(db_session, limit=5, since=clock.now().replace(year=2000))
    assert popular == [result.asset.id]
    queued = renditions.premake_downloads(db_session, popular)
    db_session.commit()
    assert queued == len(renditions.DOWNLOAD_FORMATS)
    assert sorted(j.args[1] for j in queue.jobs if j.func_name.endswith("run_download_job")) == sorted(
        renditions.DOWNLOAD_FORMATS)


def _tags(app, db_session, track_id, clock):
    secret = app.extensions["ninety"].config.secret_key
    token = issue_grant(db_session, track_id=track_id, listener_id="listener-1", via="free", secret=secret,
                        clock=clock, ttl_s=600)
    download = redeem_grant(db_session, token, secret=secret, clock=clock)
    return delivery_facts(db_session, download.id).tags


def test_demo_media_seeder_makes_everything(app, db_session, store, clock, artist, monkeypatch):
    from app.seed import media

    result = _upload(db_session, store, clock, artist, seconds=2.0)
    db_session.commit()
    runtime = app.extensions["ninety"]
    monkeypatch.setattr(runtime.config, "media_root", store.root)
    state = {"tracks": [result.track.id]}
    media.seed(runtime, state)
    db_session.expire_all()
    kinds = {r.kind for r in db_session.query(Rendition).filter_by(asset_id=result.asset.id)}
    assert kinds == ({*renditions.STREAM_KINDS.values(), *renditions.WAVEFORM_KINDS}
                     | {f"download.{fmt}" for fmt in renditions.DOWNLOAD_FORMATS})
    assert renditions.job_status(db_session, result.asset.id).status == "done"


def test_studio_shows_progress_failure_and_retries(app, db_session, clock, artist_user, artist, queue,
                                                   worker_context):
    from catalog.storage import MediaStore
    from tests.conftest import csrf_headers, login

    runtime = app.extensions["ninety"]
    app_store = MediaStore(runtime.config.media_path)
    worker_context.extras["media_path"] = app_store.root
    result = _upload(db_session, app_store, clock, artist, seconds=2.0)
    db_session.commit()
    client = app.test_client()
    login(client, artist_user)
    page = client.get(f"/studio/releases/{result.track.release_id}")
    assert page.status_code == 200
    assert b"Waiting to make stream copies" in page.data and b'max="100" value="0"' in page.data
    status = client.get(f"/studio/releases/{result.track.release_id}/media-status").get_json()
    assert status["tracks"][str(result.track.id)]["status"] == "queued"
    # the job fails for good: the page says why and offers to try again
    job = renditions.job_status(db_session, result.asset.id)
    job.status, job.error_code, job.error_detail = "failed", "undecodable", "The audio cannot be decoded: bad frame"
    db_session.commit()
    page = client.get(f"/studio/releases/{result.track.release_id}")
    assert b"Stream copies failed:" in page.data and b"bad frame" in page.data and b"Try again" in page.data
    queue.empty()
    again = client.post(f"/studio/tracks/{result.track.id}/media-retry", headers=csrf_headers())
    assert again.status_code == 303
    assert [j.func_name for j in queue.jobs] == ["catalog.renditions.run_streams_job"]
    _work(queue)
    page = client.get(f"/studio/releases/{result.track.release_id}")
    assert b"Ready to stream" in page.data
    # another artist cannot read or retry this release's jobs
    stranger = app.test_client()
    from core.users import create_user

    with runtime.sessions() as session:
        other = create_user(session, email="other@artists.example.com", password="correct horse battery",
                            display_name="Other", roles=["artist"])
        session.commit()
        session.refresh(other)
    login(stranger, other)
    assert stranger.get(f"/studio/releases/{result.track.release_id}/media-status").status_code in (403, 404)
    assert stranger.post(f"/studio/tracks/{result.track.id}/media-retry",
                         headers=csrf_headers()).status_code in (403, 404)


def test_media_cli_premake_make_and_status(app, db_session, clock, artist, queue, runner):
    from catalog.storage import MediaStore

    app_store = MediaStore(app.extensions["ninety"].config.media_path)
    result = _upload(db_session, app_store, clock, artist, seconds=1.0)
    db_session.commit()
    _tags(app, db_session, result.track.id, clock)
    db_session.commit()
    queue.empty()
    out = runner.invoke(["media", "premake", "--top", "5", "--days", "3650", "--format", "flac", "--format", "mp3_v0"])
    assert out.exit_code == 0 and "1 popular tracks; 2 download jobs queued" in out.output
    assert sorted(j.args[1] for j in queue.jobs) == ["flac", "mp3_v0"]
    assert runner.invoke(["media", "premake", "--format", "flac24"]).exit_code != 0
    made = runner.invoke(["media", "make", str(result.track.id)])
    assert made.exit_code == 0 and "streams: done" in made.output and "download.wav: done" in made.output
    assert "done 9 · failed 0" in runner.invoke(["media", "status"]).output  # streams + 8 formats
    assert runner.invoke(["media", "make", "999999"]).exit_code != 0
