"""Delivery: download grants, the download record, and the cleanly tagged copy that is served.

A grant is a row plus a token `<grant id>.<HMAC>`: forged tokens are refused before the database is
asked; a grant is redeemed once (an atomic UPDATE … WHERE redeemed_at IS NULL) and expires at its
`expires_at`. Redeeming records the download and returns a delivery token for the file itself, valid until
the grant would have expired, so a browser or download manager can resume with Range requests without
the grant becoming reusable.

These functions never commit: the caller owns the transaction (DESIGN.md). A refused redemption leaves the
caller's transaction as it was (the claim runs in a savepoint).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text, update
from sqlalchemy.orm import Session

from catalog.errors import CatalogNotFound, GrantRefused, RangeNotSatisfiable, TrackUnavailable
from catalog.models import GRANT_VIAS, Download, DownloadGrant, Release, Track
from catalog.storage import MediaStore
from core.clock import Clock

LICENCE = {
    "ad": "free download paid for by an advertisement",
    "key": "free download in key mode (paid for by advertising while browsing)",
    "purchase": "purchased download",
    "preview": "artist's preview copy, not for distribution",
    "free": "free download",
}


def _sign(secret: str, purpose: str, payload: str) -> str:
    mac = hmac.new(secret.encode(), f"{purpose}:{payload}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode().rstrip("=")


# --- grants -----------------------------------------------------------------------------------------------
def issue_grant(session: Session, *, track_id: int, listener_id: str, via: str, secret: str, clock: Clock,
                ttl_s: int, decision_id: str | None = None) -> str:
    """A signed, expiring, single-use token allowing `listener_id` to download the track once (the grant row
    is flushed; the caller commits)."""
    if via not in GRANT_VIAS:
        raise ValueError(f"via must be one of {GRANT_VIAS}")
    if not listener_id or len(listener_id) > 64:
        raise GrantRefused("A download needs a listener.", code="grant_invalid")
    track = session.get(Track, track_id)
    if track is None:
        raise CatalogNotFound("There is no such track.", code="track_not_found")
    release = track.release
    if track.status == "taken_down" or release.status == "taken_down":
        raise TrackUnavailable("This track has been taken down and cannot be downloaded.",
                               code="track_taken_down")
    if track.asset_id is None:
        raise TrackUnavailable("This track has no audio yet.", code="track_without_audio")
    if via != "preview" and not _is_public(release, clock.now()):
        raise TrackUnavailable("This track is not published yet.", code="track_not_published")
    now = clock.now()
    grant = DownloadGrant(id=secrets.token_urlsafe(16), track_id=track.id, listener_id=listener_id, via=via,
                          decision_id=decision_id, issued_at=now, expires_at=now + timedelta(seconds=ttl_s))
    session.add(grant)
    session.flush()
    return f"{grant.id}.{_sign(secret, 'grant', grant.id)}"


def _is_public(release: Release, now: datetime) -> bool:
    return release.status == "published" or (
        release.status == "scheduled" and release.publish_at is not None and release.publish_at <= now)


def _grant_id(token: str, secret: str) -> str:
    if not isinstance(token, str) or len(token) > 200 or token.count(".") != 1:
        raise GrantRefused("This download link is not valid.", code="grant_invalid")
    grant_id, signature = token.split(".")
    if not hmac.compare_digest(signature, _sign(secret, "grant", grant_id)):
        raise GrantRefused("This download link is not valid.", code="grant_invalid")
    return grant_id


def redeem_grant(session: Session, token: str, *, secret: str, clock: Clock) -> Download:
    """Use a grant (once), record the download, and return it; refuses forged, used and expired grants.

    The claim and the download row are flushed in a savepoint of the caller's transaction; a refusal rolls
    back only that savepoint and raises, so the grant stays unused unless the caller commits a success."""
    grant_id = _grant_id(token, secret)
    now = clock.now()
    scope = session.begin_nested()
    try:
        download = _claim(session, grant_id, now, clock)
    except BaseException:
        if scope.is_active:
            scope.rollback()
        raise
    scope.commit()
    return download


def _claim(session: Session, grant_id: str, now: datetime, clock: Clock) -> Download:
    claimed = session.execute(
        update(DownloadGrant)
        .where(DownloadGrant.id == grant_id, DownloadGrant.redeemed_at.is_(None), DownloadGrant.expires_at > now)
        .values(redeemed_at=now).returning(DownloadGrant.id)).first()
    if claimed is None:
        grant = session.get(DownloadGrant, grant_id, populate_existing=True)
        if grant is None:
            raise GrantRefused("This download link is not valid.", code="grant_invalid")
        if grant.redeemed_at is not None:
            raise GrantRefused("This download link has already been used. Get a new one from the track's page.",
                               code="grant_used", status=410)
        raise GrantRefused("This download link has expired. Get a new one from the track's page.",
                           code="grant_expired", status=410)
    grant = session.get(DownloadGrant, grant_id)
    session.refresh(grant)
    track = session.get(Track, grant.track_id)
    if track.status == "taken_down" or track.release.status == "taken_down":
        raise TrackUnavailable("This track has been taken down and cannot be downloaded.",
                               code="track_taken_down")
    return record_download(session, grant, clock=clock)


def record_download(session: Session, grant: DownloadGrant, *, clock: Clock) -> Download:
    """One row per completed download (track, listener, how it was granted, when)."""
    download = Download(track_id=grant.track_id, listener_id=grant.listener_id, via=grant.via,
                        grant_id=grant.id, decision_id=grant.decision_id, granted_at=grant.issued_at,
                        completed_at=clock.now())
    session.add(download)
    session.flush()
    return download


# --- delivery tokens: the file URL a redeemed grant leads to ---------------------------------------------
def delivery_token(download_id: int, expires_at: datetime, secret: str) -> str:
    payload = f"{download_id}-{int(expires_at.timestamp())}"
    return f"{payload}.{_sign(secret, 'delivery', payload)}"


def verify_delivery_token(token: str, *, secret: str, clock: Clock) -> int:
    match = re.fullmatch(r"(\d{1,12})-(\d{1,12})\.([A-Za-z0-9_-]{1,64})", token or "")
    if not match:
        raise GrantRefused("This download link is not valid.", code="grant_invalid")
    payload = f"{match[1]}-{match[2]}"
    if not hmac.compare_digest(match[3], _sign(secret, "delivery", payload)):
        raise GrantRefused("This download link is not valid.", code="grant_invalid")
    if datetime.fromtimestamp(int(match[2]), UTC) <= clock.now():
        raise GrantRefused("This download link has expired. Get a new one from the track's page.",
                           code="grant_expired", status=410)
    return int(match[1])


def is_deliverable(session: Session, track_id: int) -> bool:
    """Whether the track (and its release) may be served now: one primary-key read, asked by every file
    request, so a takedown stops open file links at once whatever a cache of the download's facts says."""
    return session.execute(text(
        "SELECT 1 FROM tracks t JOIN releases r ON r.id = t.release_id WHERE t.id = :id "
        "AND t.status <> 'taken_down' AND r.status <> 'taken_down'"), {"id": track_id}).first() is not None


def delivery_expiry(session: Session, download: Download) -> datetime:
    grant = session.get(DownloadGrant, download.grant_id) if download.grant_id else None
    return grant.expires_at if grant is not None else download.completed_at + timedelta(minutes=10)


# --- the served file: a cleanly tagged copy -----------------------------------------------------------------
def safe_filename(name: str, extension: str) -> str:
    """An ASCII-safe download name: no path separators, control characters or leading dots."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9 ._()&,'-]+", "", ascii_name).strip(" .")
    ascii_name = re.sub(r"\s+", " ", ascii_name)[:120] or "track"
    return f"{ascii_name}.{extension}"


def content_disposition(name: str, extension: str) -> str:
    """`attachment` with an ASCII fallback name and the UTF-8 name (RFC 6266/8187) when they differ."""
    from urllib.parse import quote

    fallback = safe_filename(name, extension)
    unicode_name = re.sub(r'[\x00-\x1f\x7f/\\"]+', "", name).strip(" .")[:120]
    value = f'attachment; filename="{fallback}"'
    if unicode_name and f"{unicode_name}.{extension}" != fallback:
        value += f"; filename*=UTF-8''{quote(f'{unicode_name}.{extension}', safe='')}"
    return value


def _tags(*, title, artist, album, position, total, isrc, genre, released, cover_sha256, cover_mime, via,
          public_url) -> dict:
    return {
        "title": title,
        "artist": artist,
        "album": album,
        "track_number": position,
        "track_total": total or None,
        "isrc": isrc,
        "genre": genre or None,
        "date": released.isoformat() if released else None,
        "comment": f"Downloaded from Ninety{(' (' + public_url + ')') if public_url else ''}. "
                   f"Licence: {LICENCE.get(via, via)}; personal listening only.",
        "cover_sha256": cover_sha256,
        "cover_mime": cover_mime,
    }


@dataclass(frozen=True)
class Delivery:
    """Everything serving one download needs, read in one query."""

    download_id: int
    track_id: int
    via: str
    unavailable: bool
    sha256: str
    extension: str
    mime: str
    format: str
    artist_name: str
    title: str
    tags: dict


def delivery_facts(session: Session, download_id: int, public_url: str = "") -> Delivery:
    row = session.execute(text("""
        SELECT d.id, d.track_id, d.via, t.title, t.position, t.isrc, t.status AS track_status,
               r.title AS album, r.genre, r.release_date, r.cover_sha256, r.cover_mime,
               r.status AS release_status, a.name AS artist, aa.sha256, aa.extension, aa.mime, aa.format,
               (SELECT count(*) FROM tracks t2 WHERE t2.release_id = r.id AND t2.status <> 'taken_down') AS total
        FROM downloads d JOIN tracks t ON t.id = d.track_id JOIN releases r ON r.id = t.release_id
        JOIN artists a ON a.id = r.artist_id JOIN audio_assets aa ON aa.id = t.asset_id
        WHERE d.id = :id"""), {"id": download_id}).mappings().first()
    if row is None:
        raise GrantRefused("This download link is not valid.", code="grant_invalid")
    tags = _tags(title=row["title"], artist=row["artist"], album=row["album"], position=row["position"],
                 total=row["total"], isrc=row["isrc"], genre=row["genre"], released=row["release_date"],
                 cover_sha256=row["cover_sha256"], cover_mime=row["cover_mime"], via=row["via"],
                 public_url=public_url)
    return Delivery(download_id=row["id"], track_id=row["track_id"], via=row["via"],
                    unavailable="taken_down" in (row["track_status"], row["release_status"]),
                    sha256=row["sha256"], extension=row["extension"], mime=row["mime"], format=row["format"],
                    artist_name=row["artist"], title=row["title"], tags=tags)


def tagged_copy(store: MediaStore, asset, values: dict) -> tuple[Path, str]:
    """The asset with exactly these tags, written by mutagen on a copy (cached); the original is untouched.

    Returns (path, fingerprint); the fingerprint names the tags and the audio, so it is a strong ETag.
    """
    from catalog import tagging

    fingerprint = hashlib.sha256(json.dumps([asset.sha256, values, tagging.VERSION], sort_keys=True,
                                            default=str).encode()).hexdigest()[:24]
    target = store.path_for("tagged", asset.sha256, f"-{fingerprint}.{asset.extension}")
    if target.exists():
        return target, fingerprint
    original = store.path_for("audio", asset.sha256)
    if not original.exists():
        raise TrackUnavailable("The audio file is missing from storage.", code="audio_missing", status=503)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix="tagged-", dir=store.temp_dir(), suffix=f".{asset.extension}")
    os.close(fd)
    try:
        shutil.copyfile(original, temp)
        cover = None
        if values.get("cover_sha256"):
            cover_path = store.path_for("images", values["cover_sha256"])
            if cover_path.exists():
                cover = (cover_path.read_bytes(), values.get("cover_mime") or "image/jpeg")
        tagging.write_tags(Path(temp), asset.format, values, cover)
        os.replace(temp, target)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return target, fingerprint


# --- byte ranges (RFC 9110 §14) ------------------------------------------------------------------------------
MAX_RANGES = 16
_RANGE_SPEC = re.compile(r"(\d{0,19})-(\d{0,19})")


def byte_ranges(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """The byte ranges [start, stop) a Range header asks of a `size`-byte representation, or None to send it
    whole (no header, or a range unit other than bytes, which a server must ignore).

    Raises RangeNotSatisfiable (416) when no range is satisfiable, when a range-spec is invalid (reversed
    like 500-100, or not a range at all: §14.2 lets a server reject those), or past MAX_RANGES ranges.
    Overlapping ranges are coalesced (§14.2 allows it), so a part is never sent twice."""
    if header is None:
        return None
    unit, sep, specs = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    if not sep:
        raise RangeNotSatisfiable("The Range header is malformed.", reason="malformed")
    parts = [part.strip() for part in specs.split(",") if part.strip()]
    if not parts:
        raise RangeNotSatisfiable("The Range header names no range.", reason="malformed")
    if len(parts) > MAX_RANGES:
        raise RangeNotSatisfiable(f"At most {MAX_RANGES} ranges at once.", reason="too_many_ranges")
    spans = []
    for part in parts:
        match = _RANGE_SPEC.fullmatch(part)
        if not match or not (match[1] or match[2]):
            raise RangeNotSatisfiable(f"{part!r} is not a byte range.", reason="malformed")
        first, last = match[1], match[2]
        if first:
            start = int(first)
            if last and int(last) < start:
                raise RangeNotSatisfiable(f"The range {part} ends before it starts.", reason="reversed")
            if start >= size:
                continue  # unsatisfiable; another range may still be
            spans.append((start, min(int(last) + 1, size) if last else size))
        else:
            length = int(last)
            if length == 0 or size == 0:
                continue
            spans.append((max(0, size - length), size))
    if not spans:
        raise RangeNotSatisfiable("The requested range lies beyond the end of the file.", reason="beyond_end")
    if len(spans) > 1:
        ordered = sorted(spans)
        if any(b[0] < a[1] for a, b in zip(ordered, ordered[1:], strict=False)):
            merged = [ordered[0]]
            for start, stop in ordered[1:]:
                if start < merged[-1][1]:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
                else:
                    merged.append((start, stop))
            spans = merged
    return spans
