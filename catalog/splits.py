"""Split sheets: who gets what share of a track's earnings, versioned by the time they take effect."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from catalog.common import clean_text
from catalog.errors import CatalogNotFound, InvalidSplitSheet
from catalog.models import Release, SplitShare, SplitSheet, Track
from catalog.payees import payees_for_artist
from core.clock import Clock

FULL_SHARE_BP = 10_000
MAX_SHARES = 50


def set_split_sheet(session: Session, track: Track, shares: Sequence[tuple[int, int]], *, clock: Clock,
                    user_id: int | None = None, effective_at: datetime | None = None,
                    roles: Sequence[str] | None = None) -> SplitSheet:
    """A new version of the track's split sheet, in force from `effective_at` (default: now).

    `shares` is [(payee_id, share_bp)]: payees this track's artist may credit (its own payee, collaborators it
    invited, payees already on its split sheets), each share above zero, summing to exactly 10,000.
    Earlier versions stay, so money earned before keeps the split it was earned under.
    """
    now = clock.now()
    if effective_at is None:
        effective_at = now
    if effective_at < now:
        raise InvalidSplitSheet("A split sheet cannot change the past; it takes effect now or later.",
                                code="split_in_past", field="effective_at")
    cleaned = _check_shares(session, shares, artist_id=track.release.artist_id)
    latest = session.scalar(select(func.max(SplitSheet.version)).where(SplitSheet.track_id == track.id)) or 0
    later = session.scalar(select(func.count()).select_from(SplitSheet).where(
        SplitSheet.track_id == track.id, SplitSheet.effective_at > effective_at))
    if later:
        raise InvalidSplitSheet("A later split sheet is already scheduled for this track.",
                                code="split_superseded", field="effective_at")
    sheet = SplitSheet(track_id=track.id, version=latest + 1, effective_at=effective_at,
                       created_by_user_id=user_id)
    roles = list(roles or [])
    sheet.shares = [SplitShare(payee_id=payee_id, share_bp=bp, position=i,
                               role=clean_text(roles[i] if i < len(roles) else "", "role", max_len=60))
                    for i, (payee_id, bp) in enumerate(cleaned)]
    session.add(sheet)
    session.flush()
    return sheet


def _check_shares(session: Session, shares: Sequence[tuple[int, int]], *,
                  artist_id: int) -> list[tuple[int, int]]:
    if not shares:
        raise InvalidSplitSheet("A split sheet needs at least one payee.", code="empty_split_sheet")
    if len(shares) > MAX_SHARES:
        raise InvalidSplitSheet(f"A split sheet can name at most {MAX_SHARES} payees.", code="too_many_payees")
    cleaned = []
    seen = set()
    for entry in shares:
        try:
            payee_id, bp = entry
        except (TypeError, ValueError):
            raise InvalidSplitSheet("Each share is a payee and a share in basis points.",
                                    code="invalid_share") from None
        if isinstance(bp, bool) or not isinstance(bp, int) or isinstance(payee_id, bool) \
                or not isinstance(payee_id, int):
            raise InvalidSplitSheet("Shares are whole numbers of basis points (1% = 100).", code="invalid_share")
        if bp <= 0 or bp > FULL_SHARE_BP:
            raise InvalidSplitSheet("Each share must be more than 0 and at most 100%.", code="invalid_share")
        if payee_id in seen:
            raise InvalidSplitSheet("A payee appears twice on the split sheet; combine their shares.",
                                    code="duplicate_payee")
        seen.add(payee_id)
        cleaned.append((payee_id, bp))
    total = sum(bp for _, bp in cleaned)
    if total != FULL_SHARE_BP:
        raise InvalidSplitSheet(f"The shares add up to {total / 100:g}%, not 100%. Adjust them so they sum to "
                                "exactly 100% (10,000 basis points).", code="split_sum_mismatch", total_bp=total)
    # Another artist's payee (or someone else's invitation) is "unknown" here: its id proves nothing.
    known = {payee.id for payee in payees_for_artist(session, artist_id)} & seen
    unknown = sorted(seen - known)
    if unknown:
        raise InvalidSplitSheet(f"Unknown payee {unknown[0]}: invite collaborators by email first.",
                                code="unknown_payee", payee_ids=unknown)
    return cleaned


def set_release_split(session: Session, release: Release, shares: Sequence[tuple[int, int]], *,
                      clock: Clock, user_id: int | None = None, roles: Sequence[str] | None = None
                      ) -> list[SplitSheet]:
    """The same split for every track of a release (one new sheet version per track)."""
    if not release.tracks:
        raise InvalidSplitSheet("Add tracks before setting their split.", code="release_has_no_tracks")
    sheets = [set_split_sheet(session, track, shares, clock=clock, user_id=user_id, roles=roles)
              for track in release.tracks if track.status != "taken_down"]
    session.flush()
    return sheets


def current_split_sheet(session: Session, track_id: int, at: datetime) -> SplitSheet | None:
    sheet = session.scalar(select(SplitSheet).where(SplitSheet.track_id == track_id,
                                                    SplitSheet.effective_at <= at)
                           .order_by(SplitSheet.effective_at.desc(), SplitSheet.version.desc()).limit(1))
    if sheet is None:  # before the first version: the first version applies
        sheet = session.scalar(select(SplitSheet).where(SplitSheet.track_id == track_id)
                               .order_by(SplitSheet.version).limit(1))
    return sheet


def split_sheet_at(session: Session, track_id: int, at: datetime) -> list[tuple[int, int]]:
    """[(payee_id, share_bp)] in force for the track at `at`; the shares sum to 10,000."""
    sheet = current_split_sheet(session, track_id, at)
    if sheet is None:
        raise CatalogNotFound(f"Track {track_id} has no split sheet.", code="track_not_found")
    return [(share.payee_id, share.share_bp) for share in sheet.shares]


def split_sheets_at(session: Session, track_ids: Iterable[int], at: datetime) -> dict[int, list[tuple[int, int]]]:
    """The batch form for the flush: one query for every track."""
    ids = sorted(set(int(t) for t in track_ids))
    if not ids:
        return {}
    rows = session.execute(text("""
        WITH chosen AS (
            SELECT DISTINCT ON (s.track_id) s.track_id, s.id
            FROM split_sheets s
            WHERE s.track_id = ANY(:ids)
            ORDER BY s.track_id, (s.effective_at <= :at) DESC,
                     CASE WHEN s.effective_at <= :at THEN s.effective_at END DESC NULLS LAST,
                     s.version DESC
        )
        SELECT c.track_id, sh.payee_id, sh.share_bp
        FROM chosen c JOIN split_shares sh ON sh.sheet_id = c.id
        ORDER BY c.track_id, sh.position, sh.id
    """), {"ids": ids, "at": at})
    result: dict[int, list[tuple[int, int]]] = {}
    for track_id, payee_id, share_bp in rows:
        result.setdefault(track_id, []).append((payee_id, share_bp))
    return result

