"""Renditions: the files made from a track's audio — stream and preview copies, the waveform, and the
download formats — and the background jobs (RQ, through core.jobs) that make them.

Which renditions an asset gets:
- every asset: `stream.opus` + `stream.mp3` (full length), `preview.opus` + `preview.mp3` (first 30 s), and
  `waveform.json` + `waveform.png`, made by the "streams" job that an upload defers until its commit;
- a lossless master (FLAC, ALAC, WAV, AIFF) is offered in every `DOWNLOAD_FORMATS`, each made on first
  request by a "download.<format>" job (or ahead of time: `premake_downloads`, `ninety media premake`);
- a lossy master (MP3, Vorbis, Opus, AAC) is offered only in its own format, served as the original
  itself (tagged): re-encoding lossy audio only loses more, and a "FLAC" of an MP3 would be a fake.

Storage is content-addressed: each file lives under the SHA-256 of its own bytes (storage kind
"renditions"), and its row (`media_renditions`, one per asset and kind) says what it is. A download is a
tagged copy of the rendition (cached under "tagged", named by the tags' fingerprint).

Services here never commit. The job functions (`run_streams_job`, `run_download_job`) are the documented
exception: they run in the worker, commit per step (progress, each finished file) and are resumable — a
retried job skips what exists. A master that cannot be decoded fails at once with the decoder's reason; any
other error is retried (`JOB_RETRY`), then recorded as failed with its reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mutagen
from rq import Retry
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from catalog import tagging
from catalog.delivery import tagged_copy
from catalog.errors import CatalogError, CatalogNotFound, TrackUnavailable
from catalog.models import AudioAsset, Download, Track
from catalog.rendition_models import MediaJob, Rendition
from catalog.storage import MediaStore
from core import jobs
from media import waveform
from media.errors import MediaError, Undecodable
from media.streams import PREVIEW_SECONDS, make_stream_copy
from media.transcode import ENCODINGS, transcode

log = logging.getLogger("ninety.media")

LOSSLESS_MASTERS = ("flac", "alac", "wav", "aiff")
DOWNLOAD_FORMATS = ("mp3_v0", "mp3_320", "flac", "alac", "aac", "vorbis", "opus", "wav")
# a lossy master's own format: asset.format -> format key
OWN_FORMAT = {"mp3": "mp3", "vorbis": "vorbis", "opus": "opus", "aac": "aac", "m4a": "aac"}
FORMAT_LABELS = {
    "mp3_v0": "MP3 V0 (VBR)", "mp3_320": "MP3 320 kbit/s", "flac": "FLAC (lossless)",
    "alac": "ALAC (Apple Lossless, .m4a)", "aac": "AAC (.m4a)", "vorbis": "Ogg Vorbis", "opus": "Opus",
    "wav": "WAV (uncompressed)", "mp3": "MP3 (as uploaded)",
}
# format key -> the tag writer's format (catalog.tagging)
_TAG_FORMATS = {"mp3_v0": "mp3", "mp3_320": "mp3", "flac": "flac", "alac": "alac", "aac": "m4a",
                "vorbis": "vorbis", "opus": "opus", "wav": "wav"}
STREAM_KINDS = {("opus", False): "stream.opus", ("mp3", False): "stream.mp3",
                ("opus", True): "preview.opus", ("mp3", True): "preview.mp3"}
WAVEFORM_KINDS = ("waveform.json", "waveform.png")
STREAMS = "streams"
JOB_RETRY = Retry(max=2, interval=[5, 30])
STALE_AFTER = timedelta(minutes=10)  # a queued/running job not heard from since is assumed lost
# (kind, weight in the streams job's progress)
_STREAM_STEPS = (("stream.opus", 30), ("stream.mp3", 35), ("preview.opus", 4), ("preview.mp3", 6),
                 ("waveform", 25))


class FormatUnavailable(CatalogError):
    code = "format_unavailable"
    status = 422
    title = "This format is not available for this track"


class RenditionPending(CatalogError):
    code = "rendition_pending"
    status = 409
    title = "The file is being made"


@dataclass(frozen=True)
class DownloadFile:
    path: Path
    etag: str
    mime: str
    extension: str


# --- what a master offers ---------------------------------------------------------------------------------
def is_lossless(asset: AudioAsset) -> bool:
    return asset.format in LOSSLESS_MASTERS


def offered_formats(asset: AudioAsset) -> list[str]:
    """The download formats this master can honestly give, in the chooser's order."""
    if is_lossless(asset):
        return list(DOWNLOAD_FORMATS)
    own = OWN_FORMAT.get(asset.format)
    return [own] if own else []


def check_format(asset: AudioAsset, fmt: str) -> None:
    """Raise FormatUnavailable, with a reason a listener can read, unless the master offers `fmt`."""
    if fmt in offered_formats(asset):
        return
    if fmt not in DOWNLOAD_FORMATS and fmt not in OWN_FORMAT.values():
        raise FormatUnavailable(f"There is no download format called {fmt[:20]!r}.", code="format_unknown",
                                format=fmt[:20])
    own = OWN_FORMAT.get(asset.format, asset.format)
    raise FormatUnavailable(
        f"This track was uploaded as {FORMAT_LABELS.get(own, own).split(' (')[0]}, a lossy format, so it is "
        f"offered only as that file: a {FORMAT_LABELS.get(fmt, fmt)} copy would not be better than the upload.",
        format=fmt, offered=offered_formats(asset))


def format_file(fmt: str, asset: AudioAsset | None = None) -> tuple[str, str]:
    """(extension, mime) of a download in `fmt` (a lossy master's own format: the original's)."""
    if fmt in ENCODINGS:
        spec = ENCODINGS[fmt]
        return spec.extension, spec.mime
    if asset is not None:
        return asset.extension, asset.mime
    raise FormatUnavailable(f"There is no download format called {fmt[:20]!r}.", code="format_unknown")


# --- reading renditions -----------------------------------------------------------------------------------
def rendition(session: Session, asset_id: int, kind: str) -> Rendition | None:
    return session.scalar(select(Rendition).where(Rendition.asset_id == asset_id, Rendition.kind == kind))


def stream_rendition(session: Session, asset_id: int, *, preview: bool, codec: str = "opus") -> Rendition | None:
    """The stream copy (or the 30-second preview copy) in "opus" or "mp3"; None until it is made."""
    kind = STREAM_KINDS.get((codec, bool(preview)))
    if kind is None:
        raise ValueError("codec must be opus or mp3")
    return rendition(session, asset_id, kind)


def rendition_path(store: MediaStore, item: Rendition) -> Path:
    return store.path_for("renditions", item.sha256, f".{item.extension}")


def is_playable(session: Session, asset_id: int) -> bool:
    """True once all four stream and preview copies exist."""
    count = session.scalar(select(func.count()).select_from(Rendition).where(
        Rendition.asset_id == asset_id, Rendition.kind.in_(list(STREAM_KINDS.values()))))
    return count == len(STREAM_KINDS)


def job_status(session: Session, asset_id: int, purpose: str = STREAMS) -> MediaJob | None:
    return session.scalar(select(MediaJob).where(MediaJob.asset_id == asset_id, MediaJob.purpose == purpose))


def stream_jobs(session: Session, asset_ids: list[int]) -> dict[int, MediaJob]:
    """The "streams" job of each asset that has one (the studio shows their progress)."""
    if not asset_ids:
        return {}
    rows = session.scalars(select(MediaJob).where(MediaJob.asset_id.in_(asset_ids), MediaJob.purpose == STREAMS))
    return {row.asset_id: row for row in rows}


def waveform_peaks(session: Session, store: MediaStore, asset_id: int) -> dict | None:
    item = rendition(session, asset_id, "waveform.json")
    if item is None:
        return None
    try:
        return json.loads(rendition_path(store, item).read_text())
    except (OSError, ValueError):
        return None


# --- asking for renditions (services: never commit) -------------------------------------------------------
def _job_row(session: Session, asset_id: int, purpose: str) -> tuple[MediaJob, bool]:
    """The job row of (asset, purpose), and whether this call created it."""
    created = session.execute(insert(MediaJob).values(asset_id=asset_id, purpose=purpose, status="queued")
                              .on_conflict_do_nothing(index_elements=["asset_id", "purpose"])
                              .returning(MediaJob.id)).first()
    job = session.scalar(select(MediaJob).where(MediaJob.asset_id == asset_id, MediaJob.purpose == purpose)
                         .execution_options(populate_existing=True))
    return job, created is not None


def _needs_enqueue(job: MediaJob, created: bool) -> bool:
    """Queue unless a live job is making it already (one not heard from in STALE_AFTER is assumed lost)."""
    if created or job.status in ("failed", "done"):
        return True
    return job.updated_at is None or job.updated_at < datetime.now(UTC) - STALE_AFTER


def _schedule(session: Session, job: MediaJob, func_name: str, *args) -> None:
    job.status, job.progress, job.step = "queued", 0, ""
    job.error_code = job.error_detail = None
    job.attempts, job.finished_at = 0, None
    job.updated_at = datetime.now(UTC)
    session.flush()
    jobs.defer(session, func_name, *args, retry=JOB_RETRY)


def request_streams(session: Session, asset_id: int) -> MediaJob:
    """Make sure the stream copies, previews and waveform get made: (re)queues the "streams" job after the
    caller's commit unless it is already done (with its files) or under way."""
    job, created = _job_row(session, asset_id, STREAMS)
    complete = is_playable(session, asset_id) and all(rendition(session, asset_id, k) for k in WAVEFORM_KINDS)
    if job.status == "done" and complete:
        return job
    if _needs_enqueue(job, created):
        _schedule(session, job, "catalog.renditions.run_streams_job", asset_id)
    return job


def request_download(session: Session, asset_id: int, fmt: str) -> tuple[Rendition | None, MediaJob | None]:
    """(rendition, None) when the transcode exists; (None, job) while it is being made (queued after the
    caller's commit if nothing is making it); (None, None) for a lossy master's own format (the original
    is the file). Raises FormatUnavailable."""
    asset = session.get(AudioAsset, asset_id)
    if asset is None:
        raise CatalogNotFound("There is no such audio.", code="audio_not_found")
    check_format(asset, fmt)
    if not is_lossless(asset):
        return None, None
    existing = rendition(session, asset_id, f"download.{fmt}")
    if existing is not None:
        return existing, None
    purpose = f"download.{fmt}"
    job, created = _job_row(session, asset_id, purpose)
    if _needs_enqueue(job, created):
        _schedule(session, job, "catalog.renditions.run_download_job", asset_id, fmt)
    return None, job


def download_file(session: Session, store: MediaStore, track_id: int, fmt: str, values: dict) -> DownloadFile:
    """The file to serve for track T in format F, tagged with `values` (catalog.delivery's tag dict:
    title, artist, album, track number, ISRC, cover, …). Raises FormatUnavailable, or RenditionPending
    while the transcode is not made yet (call `request_download`, which queues it)."""
    track = session.get(Track, track_id)
    if track is None or track.asset is None:
        raise CatalogNotFound("There is no such track.", code="track_not_found")
    asset = track.asset
    check_format(asset, fmt)
    if not is_lossless(asset):
        path, fingerprint = tagged_copy(store, asset, values)
        return DownloadFile(path, fingerprint, asset.mime, asset.extension)
    item = rendition(session, asset.id, f"download.{fmt}")
    if item is None:
        raise RenditionPending("This format is being made; try again in a few seconds.", format=fmt,
                               retry_after=5)
    source = rendition_path(store, item)
    if not source.exists():
        raise TrackUnavailable("The file is missing from storage.", code="audio_missing", status=503)
    path, fingerprint = _tagged(store, source, item.sha256, _TAG_FORMATS[fmt], item.extension, values)
    return DownloadFile(path, fingerprint, item.mime, item.extension)


def format_choices(session: Session, track_id: int) -> list[tuple[str, str]]:
    """(format key, label) of every download format the track's master honestly offers, in the chooser's
    order; empty for a track with no audio."""
    track = session.get(Track, track_id) if isinstance(track_id, int) else None
    if track is None or track.asset is None:
        return []
    return [(fmt, FORMAT_LABELS.get(fmt, fmt)) for fmt in offered_formats(track.asset)]


def chosen_format(session: Session, track_id: int, raw: str | None) -> str | None:
    """The listener's choice, checked against what the track offers (None: the file as uploaded). Raises
    FormatUnavailable with the reason, so a bad choice is refused before a single-use grant is spent."""
    if not raw:
        return None
    track = session.get(Track, track_id) if isinstance(track_id, int) else None
    if track is None or track.asset is None:
        raise CatalogNotFound("There is no such track.", code="track_not_found")
    check_format(track.asset, str(raw)[:40])
    return str(raw)


def download_extension(session: Session, track_id: int, fmt: str) -> str:
    """The file name extension of the track's download in `fmt`."""
    track = session.get(Track, track_id)
    return format_file(fmt, track.asset)[0]


def download_or_job(session: Session, store: MediaStore, track_id: int, fmt: str, values: dict, *,
                    retry: bool = False) -> DownloadFile | MediaJob:
    """The tagged file of the track in `fmt`, or, while that format is not made yet, its job (queued after
    the caller's commit unless one is making it already). A job that failed (after RQ's retries) is
    returned as it is, with its reason, unless `retry` asks for another go."""
    try:
        return download_file(session, store, track_id, fmt, values)
    except RenditionPending:
        asset_id = session.get(Track, track_id).asset_id
        failed = job_status(session, asset_id, f"download.{fmt}")
        if failed is not None and failed.status == "failed" and not retry:
            return failed
        _, job = request_download(session, asset_id, fmt)
        if job is None:  # made meanwhile
            return download_file(session, store, track_id, fmt, values)
        return job


def _tagged(store: MediaStore, source: Path, sha256: str, tag_format: str, extension: str,
            values: dict) -> tuple[Path, str]:
    fingerprint = hashlib.sha256(json.dumps([sha256, values, tagging.VERSION], sort_keys=True,
                                            default=str).encode()).hexdigest()[:24]
    target = store.path_for("tagged", sha256, f"-{fingerprint}.{extension}")
    if target.exists():
        return target, fingerprint
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix="tagged-", dir=store.temp_dir(), suffix=f".{extension}")
    os.close(fd)
    try:
        shutil.copyfile(source, temp)
        cover = None
        if values.get("cover_sha256"):
            cover_path = store.path_for("images", values["cover_sha256"])
            if cover_path.exists():
                cover = (cover_path.read_bytes(), values.get("cover_mime") or "image/jpeg")
        tagging.write_tags(Path(temp), tag_format, values, cover)
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return target, fingerprint


def popular_assets(session: Session, *, limit: int, since: datetime) -> list[int]:
    """Lossless assets by downloads since `since`, most first (the ones worth making ahead of time)."""
    rows = session.execute(
        select(Track.asset_id, func.count(Download.id).label("n"))
        .join(Download, Download.track_id == Track.id).join(AudioAsset, AudioAsset.id == Track.asset_id)
        .where(Download.completed_at >= since, AudioAsset.format.in_(LOSSLESS_MASTERS))
        .group_by(Track.asset_id).order_by(func.count(Download.id).desc(), Track.asset_id).limit(limit))
    return [row.asset_id for row in rows]


def premake_downloads(session: Session, asset_ids: list[int], formats: list[str] | None = None) -> int:
    """Queue (after the caller's commit) every missing download format of these assets; returns how many."""
    queued = 0
    for asset_id in asset_ids:
        asset = session.get(AudioAsset, asset_id)
        if asset is None or not is_lossless(asset):
            continue
        for fmt in formats or DOWNLOAD_FORMATS:
            item, job = request_download(session, asset_id, fmt)
            if item is None and job is not None and job.status == "queued" and job.attempts == 0:
                queued += 1
    return queued


# --- making renditions (pure audio in media/, files and rows here) -----------------------------------------
def _store_file(session: Session, store: MediaStore, asset_id: int, kind: str, temp: Path, *, mime: str,
                extension: str, **facts) -> Rendition:
    digest = hashlib.sha256()
    with open(temp, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    sha = digest.hexdigest()
    final = store.path_for("renditions", sha, f".{extension}")
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        os.unlink(temp)
    else:
        os.chmod(temp, 0o444)
        os.replace(temp, final)
    session.execute(insert(Rendition).values(asset_id=asset_id, kind=kind, sha256=sha, size_bytes=final.stat().st_size,
                                             mime=mime, extension=extension, **facts)
                    .on_conflict_do_nothing(index_elements=["asset_id", "kind"]))
    return rendition(session, asset_id, kind)


def _slack(seconds: float) -> float:
    """How far a made file's length may be from the master's: encoder priming and padding (tens of ms)."""
    return max(0.1, seconds * 0.002)


def _verify(path: Path, expected_s: float, kind: str) -> int:
    """A made file must parse and hold the length it should: never a broken file delivered. Returns the
    measured bit rate (bit/s)."""
    try:
        parsed = mutagen.File(path)
    except Exception as exc:  # noqa: BLE001 - any parser failure means the file is not deliverable
        raise MediaError(f"the {kind} file does not parse: {exc}", code="output_invalid") from None
    if parsed is None or parsed.info is None:
        raise MediaError(f"the {kind} file is not recognisable audio", code="output_invalid")
    length = float(parsed.info.length or 0)
    if abs(length - expected_s) > _slack(expected_s):
        raise MediaError(f"the {kind} file holds {length:.3f} s, not {expected_s:.3f} s", code="output_invalid")
    return int(getattr(parsed.info, "bitrate", 0) or 0)


def _encode_one(session: Session, store: MediaStore, asset: AudioAsset, kind: str, master: Path,
                progress: Callable[[float], None]) -> Rendition:
    existing = rendition(session, asset.id, kind)
    if existing is not None and rendition_path(store, existing).exists():
        return existing
    if existing is not None:
        session.delete(existing)
        session.flush()
    fd, name = tempfile.mkstemp(prefix="rendition-", dir=store.temp_dir())
    os.close(fd)
    temp = Path(name)
    try:
        if kind.startswith("download."):
            fmt = kind.split(".", 1)[1]
            made = transcode(master, temp, fmt, progress=progress)
        else:
            codec, preview = kind.split(".")[1], kind.startswith("preview.")
            made = make_stream_copy(master, temp, codec, preview=preview, progress=progress)
        spec = ENCODINGS[made.encoding]
        master_s = asset.duration_ms / 1000
        expected = min(master_s, PREVIEW_SECONDS) if kind.startswith("preview.") else master_s
        if abs(made.seconds - expected) > _slack(expected):
            # FFmpeg's decoders skip what they cannot read: a master that decodes short has rotted
            raise Undecodable(f"the master decodes to {made.seconds:.3f} s of its {master_s:.3f} s")
        if kind.startswith("preview.") and made.seconds > PREVIEW_SECONDS + 0.001:
            raise MediaError("the preview came out longer than 30 s", code="output_invalid")
        bitrate = _verify(temp, expected, kind)
        return _store_file(session, store, asset.id, kind, temp, mime=spec.mime, extension=spec.extension,
                           codec=made.codec, bitrate=bitrate, sample_rate=made.sample_rate,
                           channels=made.channels, bits_per_sample=made.bits_per_sample,
                           duration_ms=round(made.seconds * 1000))
    finally:
        if temp.exists():
            os.unlink(temp)


def _make_waveform(session: Session, store: MediaStore, asset: AudioAsset, master: Path) -> None:
    if rendition(session, asset.id, "waveform.json") and rendition(session, asset.id, "waveform.png"):
        return
    data = waveform.peaks(master)
    for kind, body, mime, ext in (("waveform.json", json.dumps(data, separators=(",", ":")).encode(),
                                   "application/json", "json"),
                                  ("waveform.png", waveform.png(data), "image/png", "png")):
        if rendition(session, asset.id, kind):
            continue
        fd, name = tempfile.mkstemp(prefix="waveform-", dir=store.temp_dir())
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        _store_file(session, store, asset.id, kind, Path(name), mime=mime, extension=ext,
                    duration_ms=data["duration_ms"])


class _Progress:
    """Writes a job's progress in its own short transactions (the studio reads it while the job runs)."""

    def __init__(self, sessions: sessionmaker[Session], job_id: int) -> None:
        self.sessions, self.job_id, self.last = sessions, job_id, -1

    def set(self, percent: int, step: str, *, force: bool = False) -> None:
        percent = max(0, min(100, int(percent)))
        if not force and percent < self.last + 3:
            return
        self.last = percent
        with self.sessions() as session:
            job = session.get(MediaJob, self.job_id)
            job.progress, job.step, job.updated_at = percent, step[:40], datetime.now(UTC)
            session.commit()


def _final_attempt() -> bool:
    from rq import get_current_job

    current = get_current_job()
    return current is None or not current.retries_left


def perform(sessions: sessionmaker[Session], store: MediaStore, asset_id: int, purpose: str, *,
            final_attempt: bool = True) -> MediaJob | None:
    """Run one media job now: the "streams" job or a "download.<fmt>" job. Resumable: commits each step.

    Undecodable masters are recorded as failed at once (retrying cannot help); other errors are recorded
    ("retrying", or "failed" on the final attempt) and raised so that RQ retries."""
    with sessions() as session:
        asset = session.get(AudioAsset, asset_id)
        if asset is None:
            log.warning("media job for a deleted asset", extra={"asset_id": asset_id})
            return None
        job, _ = _job_row(session, asset_id, purpose)
        job.status, job.attempts, job.updated_at = "running", job.attempts + 1, datetime.now(UTC)
        job.error_code = job.error_detail = None
        session.commit()
        job_id = job.id
    progress = _Progress(sessions, job_id)
    try:
        _work(sessions, store, asset_id, purpose, progress)
    except Exception as exc:
        permanent = isinstance(exc, Undecodable)
        code = getattr(exc, "code", None) or "job_failed"
        detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        failed = permanent or final_attempt
        with sessions() as session:
            job = session.get(MediaJob, job_id)
            job.status = "failed" if failed else "retrying"
            job.error_code, job.error_detail = code[:40], detail[:1000]
            job.updated_at = datetime.now(UTC)
            job.finished_at = datetime.now(UTC) if failed else None
            session.commit()
        log.warning("media job failed", extra={"asset_id": asset_id, "purpose": purpose, "code": code,
                                               "final": failed})
        if permanent:
            return _reload(sessions, job_id)
        raise
    with sessions() as session:
        job = session.get(MediaJob, job_id)
        job.status, job.progress, job.step = "done", 100, ""
        job.updated_at = job.finished_at = datetime.now(UTC)
        session.commit()
    return _reload(sessions, job_id)


def _reload(sessions: sessionmaker[Session], job_id: int) -> MediaJob:
    with sessions() as session:
        job = session.get(MediaJob, job_id)
        session.expunge(job)
        return job


def _work(sessions: sessionmaker[Session], store: MediaStore, asset_id: int, purpose: str,
          progress: _Progress) -> None:
    with sessions() as session:
        asset = session.get(AudioAsset, asset_id)
        master = store.path_for("audio", asset.sha256)
        if not master.exists():
            raise MediaError("the uploaded file is missing from storage", code="audio_missing")
        if purpose == STREAMS:
            steps = _STREAM_STEPS
        else:
            fmt = purpose.split(".", 1)[1]
            check_format(asset, fmt)
            steps = ((purpose, 100),)
        done = 0
        for kind, weight in steps:
            progress.set(done, kind, force=True)
            if kind == "waveform":
                _make_waveform(session, store, asset, master)
            else:
                base = done
                _encode_one(session, store, asset, kind, master,
                            lambda fraction, base=base, weight=weight, kind=kind:
                            progress.set(base + fraction * weight, kind))
            session.commit()  # each finished file is kept: a retry resumes after it
            done += weight


def _worker_store() -> tuple[sessionmaker[Session], MediaStore]:
    extras = jobs.worker_context().extras
    sessions, media_path = extras.get("sessions"), extras.get("media_path")
    if sessions is None or media_path is None:
        raise RuntimeError("no sessions or media root configured in this worker: run it with `ninety jobs work`")
    engine = sessions.kw.get("bind")
    if engine is not None:
        engine.dispose(close=False)  # a forked work horse never reuses its parent's connections
    return sessions, MediaStore(media_path)


def run_streams_job(asset_id: int) -> str:
    """The RQ job: the stream and preview copies and the waveform of one asset."""
    sessions, store = _worker_store()
    job = perform(sessions, store, asset_id, STREAMS, final_attempt=_final_attempt())
    return job.status if job else "gone"


def run_download_job(asset_id: int, fmt: str) -> str:
    """The RQ job: one download format of one asset."""
    sessions, store = _worker_store()
    job = perform(sessions, store, asset_id, f"download.{fmt}", final_attempt=_final_attempt())
    return job.status if job else "gone"


def make_all_now(sessions: sessionmaker[Session], store: MediaStore, asset_id: int,
                 formats: list[str] | None = None) -> list[MediaJob]:
    """Synchronously: the streams job and every offered download format (the demo seed; `--now` CLI)."""
    done = [perform(sessions, store, asset_id, STREAMS)]
    with sessions() as session:
        asset = session.get(AudioAsset, asset_id)
        offered = [f for f in offered_formats(asset) if f in DOWNLOAD_FORMATS] if asset else []
    for fmt in formats or offered:
        if fmt in offered:
            done.append(perform(sessions, store, asset_id, f"download.{fmt}"))
    return [job for job in done if job is not None]
