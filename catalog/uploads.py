"""Uploads: stream, hash, inspect, store once, and turn into a track pre-filled from the file's tags."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog import renditions, services
from catalog.common import clean_isrc
from catalog.errors import AudioRejected, CatalogConflict
from catalog.inspection import AudioInfo, describe, inspect_file
from catalog.models import AudioAsset, Release, Track
from catalog.storage import MediaStore, PendingBlob
from core.clock import Clock

IMAGE_SIGNATURES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}
MAX_COVER_BYTES = 10 * 1024 * 1024


@dataclass
class UploadResult:
    track: Track
    asset: AudioAsset
    info: AudioInfo
    deduplicated: bool


def clean_filename(filename: str | None) -> str:
    """The last path component only, without control characters: a label, never a path we open."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()
    return name[:255] or "upload"


def title_from_filename(filename: str) -> str:
    stem = clean_filename(filename).rsplit(".", 1)[0]
    stem = re.sub(r"^\s*\d{1,3}(?:\s*[-._)]\s*|\s+)(?=\S)", "", stem)  # "01 - Song" -> "Song"
    stem = re.sub(r"[_]+", " ", stem).strip()
    return stem[:300] or "Untitled"


def receive_and_inspect(store: MediaStore, stream: BinaryIO, *, max_bytes: int | None,
                        filename: str = "") -> tuple[PendingBlob, AudioInfo]:
    """Stream to storage with SHA-256, then inspect; a rejected file is discarded, never stored."""
    pending = store.receive(stream, kind="audio", max_bytes=max_bytes)
    try:
        info = inspect_file(pending.temp_path)
    except AudioRejected as exc:
        pending.discard()
        if filename:
            exc.details["filename"] = clean_filename(filename)
        raise
    except BaseException:
        pending.discard()
        raise
    return pending, info


def _asset_for(session: Session, pending: PendingBlob, info: AudioInfo) -> tuple[AudioAsset, bool]:
    asset = session.scalar(select(AudioAsset).where(AudioAsset.sha256 == pending.sha256))
    if asset is not None:
        return asset, True
    asset = AudioAsset(sha256=pending.sha256, size_bytes=pending.size_bytes, mime=info.mime,
                       extension=info.extension, tags={k: v for k, v in info.tags.items()}, **describe(info))
    session.add(asset)
    session.flush()
    return asset, False


def image_mime(data: bytes) -> str | None:
    for signature, mime in IMAGE_SIGNATURES.items():
        if data.startswith(signature):
            return mime
    return None


def store_cover(store: MediaStore, data: bytes) -> tuple[str, str]:
    from catalog.errors import InvalidCatalogInput

    mime = image_mime(data)
    if mime is None:
        raise InvalidCatalogInput("Cover art must be a JPEG or PNG image.", code="invalid_image", field="cover")
    if len(data) > MAX_COVER_BYTES:
        raise InvalidCatalogInput("Cover art must be under 10 MB.", code="image_too_large", field="cover")
    return store.put_bytes(data, kind="images"), mime


def upload_track(session: Session, store: MediaStore, release: Release, stream: BinaryIO, filename: str, *,
                 clock: Clock, max_bytes: int | None, user_id: int | None = None, title: str | None = None,
                 position: int | None = None, screen: Callable[..., None] | None = None) -> UploadResult:
    """Add one uploaded file to a release as a new track, or store nothing of it in the database at all.

    Never commits (the caller owns the transaction). Order: the rows are flushed in a savepoint first, then
    the file is moved under its content address, then the caller commits. A refusal rolls back only this
    upload's savepoint; if the caller's commit fails afterwards, the stored file is harmless (content-addressed,
    reused by the next upload of the same bytes).

    `screen(session, sha256=, path=)` may refuse the file by raising (the app passes the stay-down check,
    rights.staydown.screen_upload, which the catalog cannot import)."""
    if release.status == "taken_down":
        raise CatalogConflict("This release was taken down.", code="release_taken_down")
    services.refuse_if_suspended(release.artist)
    pending, info = receive_and_inspect(store, stream, max_bytes=max_bytes, filename=filename)
    scope = session.begin_nested()
    try:
        if screen is not None:
            screen(session, sha256=pending.sha256, path=pending.temp_path)
        asset, dedup = _asset_for(session, pending, info)
        taken = {t.position for t in release.tracks}
        wanted = position or info.tags.get("track_number")
        if wanted in taken:
            wanted = None
        track = services.add_track(session, release, title=title or info.tags.get("title")
                                   or title_from_filename(filename), clock=clock, position=wanted,
                                   isrc=_isrc_or_none(info.tags.get("isrc")), asset_id=asset.id,
                                   original_filename=clean_filename(filename), user_id=user_id)
        if release.cover_sha256 is None and info.cover is not None and image_mime(info.cover[0]):
            try:
                sha, mime = store_cover(store, info.cover[0])
                services.set_cover(session, release, sha, mime)
            except Exception:  # noqa: BLE001 - a bad embedded picture never blocks the audio
                pass
        session.flush()
        pending.commit()  # the file move (not a database commit), once the rows are in
        renditions.request_streams(session, asset.id)  # stream copies and waveform, queued after commit
    except BaseException:
        if scope.is_active:
            scope.rollback()
        pending.discard()
        raise
    scope.commit()
    session.refresh(release)
    return UploadResult(track=track, asset=asset, info=info, deduplicated=dedup)


def _isrc_or_none(value: str | None) -> str | None:
    try:
        return clean_isrc(value)
    except Exception:  # noqa: BLE001 - a malformed ISRC tag is just not pre-filled
        return None
