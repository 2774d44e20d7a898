"""Repeat infringers and abuse: strikes, suspension pending review, appeals (DSA Art. 20), flagged claimants.

An upheld notice is one strike against each artist whose track it upheld (one per notice and artist, however
many tracks). Strikes count for `strike_window_days` from their issue and then expire; an appeal granted by
a person voids one. When an artist holds `strikes_to_suspend` active strikes, their uploads and releases
are suspended (`Artist.suspended_at`, which the catalog checks) until an admin reviews the suspension.

A claimant with `abuse_rejections` rejected notices inside the window is flagged for review (§512(f)).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from catalog.models import Artist, ArtistMember
from core.clock import Clock
from core.errors import ValidationError
from core.users import User
from rights.audit import record_event
from rights.errors import AppealRefused, CaseStateConflict, NotAllowed, RightsNotFound
from rights.models import Appeal, Case, ClaimantFlag, Notice, Strike, Suspension
from rights.settings import RightsSettings


def _admin(user: User | None) -> User:
    if user is None or not user.has_role("admin"):
        raise NotAllowed("Only an admin can decide this.", code="admin_only")
    return user


def _member(session: Session, artist_id: int, user: User | None) -> bool:
    return user is not None and session.scalar(select(func.count()).select_from(ArtistMember).where(
        ArtistMember.artist_id == artist_id, ArtistMember.user_id == user.id)) > 0


def issue_strikes(session: Session, cases: list[Case], *, at: datetime, settings: RightsSettings) -> list[int]:
    """One strike per (artist, notice) among these upheld cases; suspends artists who reach the threshold.

    Returns the ids of artists newly suspended."""
    seen: dict[tuple[int, int], int] = {}
    for case in cases:
        seen.setdefault((case.artist_id, case.notice_id), case.id)
    if not seen:
        return []
    expires = at + timedelta(days=settings.strike_window_days)
    inserted = session.execute(pg_insert(Strike).values([
        {"artist_id": a, "notice_id": n, "case_id": c, "issued_at": at, "expires_at": expires}
        for (a, n), c in sorted(seen.items())]).on_conflict_do_nothing(
        constraint="uq_rights_strikes_artist_notice").returning(Strike.id, Strike.artist_id, Strike.notice_id,
                                                              Strike.case_id)).all()
    for strike_id, artist_id, notice_id, case_id in inserted:
        record_event(session, notice_id=notice_id, case_id=case_id, at=at, actor=None, role="system",
                     action="strike", reason="upheld notice", details={"strike_id": strike_id, "artist_id": artist_id})
    suspended = []
    for artist_id in sorted({a for _, a, _, _ in inserted}):
        if suspend_if_due(session, artist_id, at=at, settings=settings):
            suspended.append(artist_id)
    return suspended


def active_strikes(session: Session, artist_id: int, now: datetime) -> list[Strike]:
    return list(session.scalars(select(Strike).where(Strike.artist_id == artist_id, Strike.voided_at.is_(None),
                                                     Strike.expires_at > now).order_by(Strike.issued_at)))


def active_strike_count(session: Session, artist_id: int, now: datetime) -> int:
    return len(active_strikes(session, artist_id, now))


def strikes_for_artist(session: Session, artist_id: int, *, now: datetime | None = None) -> list[Strike]:
    return list(session.scalars(select(Strike).where(Strike.artist_id == artist_id).order_by(Strike.id.desc())))


def suspend_if_due(session: Session, artist_id: int, *, at: datetime, settings: RightsSettings) -> bool:
    strikes = active_strikes(session, artist_id, at)
    if len(strikes) < settings.strikes_to_suspend:
        return False
    if session.scalar(select(Suspension.id).where(Suspension.artist_id == artist_id,
                                                  Suspension.reviewed_at.is_(None))) is not None:
        return False
    suspension = Suspension(artist_id=artist_id, started_at=at, strike_ids=[s.id for s in strikes],
                            reason=f"{len(strikes)} upheld notices within {settings.strike_window_days} days")
    session.add(suspension)
    artist = session.get(Artist, artist_id)
    artist.suspended_at = at
    session.flush()
    for strike in strikes:
        record_event(session, notice_id=strike.notice_id, case_id=strike.case_id, at=at, actor=None, role="system",
                     action="suspended", reason=suspension.reason,
                     details={"artist_id": artist_id, "suspension_id": suspension.id})
    return True


def is_suspended(session: Session, artist_id: int) -> bool:
    return session.scalar(select(Artist.suspended_at).where(Artist.id == artist_id)) is not None


def pending_suspensions(session: Session) -> list[Suspension]:
    return list(session.scalars(select(Suspension).where(Suspension.reviewed_at.is_(None))
                                .order_by(Suspension.started_at)))


def review_suspension(session: Session, suspension_id: int, admin: User, *, lift: bool, reason: str,
                      clock: Clock) -> Suspension:
    """An admin's review: lift the suspension (uploads and releases allowed again) or keep it (recorded)."""
    _admin(admin)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Say why (the artist is told).", code="reason_required", field="reason")
    suspension = session.get(Suspension, suspension_id)
    if suspension is None:
        raise RightsNotFound("There is no such suspension.", code="suspension_not_found")
    if suspension.reviewed_at is not None:
        raise CaseStateConflict("This suspension was already reviewed.", code="already_reviewed")
    now = clock.now()
    suspension.reviewed_at, suspension.reviewed_by_user_id = now, admin.id
    suspension.lifted, suspension.review_reason = lift, reason[:2000]
    if lift:
        session.get(Artist, suspension.artist_id).suspended_at = None
    session.flush()
    return suspension


def file_appeal(session: Session, strike_id: int, user: User, *, grounds: str, clock: Clock,
                settings: RightsSettings) -> Appeal:
    """An internal complaint against a strike (DSA Art. 20), by a member of the artist, within the window."""
    strike = session.get(Strike, strike_id) if isinstance(strike_id, int) else None
    if strike is None or not _member(session, strike.artist_id, user):
        raise RightsNotFound("There is no such strike.", code="strike_not_found")
    grounds = (grounds or "").strip()
    if not grounds:
        raise ValidationError("Say why the decision was wrong.", code="grounds_required", field="grounds")
    now = clock.now()
    if strike.voided_at is not None:
        raise AppealRefused("This strike was already withdrawn.", code="strike_voided")
    if now > strike.issued_at + timedelta(days=settings.appeal_window_days):
        raise AppealRefused(f"An appeal must be filed within {settings.appeal_window_days} days of the strike.",
                            code="appeal_window_closed")
    if session.scalar(select(Appeal.id).where(Appeal.strike_id == strike.id, Appeal.decided_at.is_(None))):
        raise AppealRefused("An appeal of this strike is already waiting for a decision.", code="appeal_exists")
    appeal = Appeal(strike_id=strike.id, artist_id=strike.artist_id, user_id=user.id, grounds=grounds[:5000],
                    filed_at=now)
    session.add(appeal)
    session.flush()
    record_event(session, notice_id=strike.notice_id, case_id=strike.case_id, at=now, actor=user, role="artist",
                 action="appeal_filed", reason=grounds[:500], details={"appeal_id": appeal.id, "strike_id": strike.id})
    return appeal


def decide_appeal(session: Session, appeal_id: int, admin: User, *, granted: bool, reason: str, clock: Clock,
                  settings: RightsSettings) -> Appeal:
    """Decided by a person (an admin): granted voids the strike and lifts a suspension it no longer supports."""
    _admin(admin)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Give the reasons for the decision.", code="reason_required", field="reason")
    appeal = session.get(Appeal, appeal_id) if isinstance(appeal_id, int) else None
    if appeal is None:
        raise RightsNotFound("There is no such appeal.", code="appeal_not_found")
    if appeal.decided_at is not None:
        raise CaseStateConflict("This appeal was already decided.", code="already_decided")
    now = clock.now()
    appeal.decided_at, appeal.decided_by_user_id, appeal.granted, appeal.reason = now, admin.id, granted, reason[:5000]
    strike = session.get(Strike, appeal.strike_id)
    if granted:
        strike.voided_at, strike.void_reason = now, f"appeal {appeal.id} granted: {reason[:500]}"
        session.flush()
        if active_strike_count(session, strike.artist_id, now) < settings.strikes_to_suspend:
            for suspension in session.scalars(select(Suspension).where(Suspension.artist_id == strike.artist_id,
                                                                       Suspension.reviewed_at.is_(None))):
                suspension.reviewed_at, suspension.reviewed_by_user_id = now, admin.id
                suspension.lifted, suspension.review_reason = True, f"appeal {appeal.id} granted"
                session.get(Artist, strike.artist_id).suspended_at = None
    session.flush()
    record_event(session, notice_id=strike.notice_id, case_id=strike.case_id, at=now, actor=admin, role="admin",
                 action="appeal_decided", reason=reason[:500],
                 details={"appeal_id": appeal.id, "granted": granted, "strike_id": strike.id})
    return appeal


def pending_appeals(session: Session) -> list[Appeal]:
    return list(session.scalars(select(Appeal).where(Appeal.decided_at.is_(None)).order_by(Appeal.filed_at)))


def appeals_for_artist(session: Session, artist_id: int) -> list[Appeal]:
    return list(session.scalars(select(Appeal).where(Appeal.artist_id == artist_id).order_by(Appeal.id.desc())))


# --- claimants ---------------------------------------------------------------------------------------------
def flag_claimant_if_due(session: Session, user_id: int, *, at: datetime, settings: RightsSettings) -> bool:
    since = at - timedelta(days=settings.strike_window_days)
    rejected = list(session.scalars(select(Notice.id).where(Notice.claimant_user_id == user_id,
                                                            Notice.status == "rejected",
                                                            Notice.decided_at > since).order_by(Notice.id)))
    if len(rejected) < settings.abuse_rejections:
        return False
    if session.scalar(select(ClaimantFlag.id).where(ClaimantFlag.user_id == user_id,
                                                    ClaimantFlag.cleared_at.is_(None))) is not None:
        return False
    session.add(ClaimantFlag(user_id=user_id, raised_at=at, rejected_count=len(rejected), notice_ids=rejected))
    session.flush()
    return True


def flagged_claimants(session: Session) -> list[ClaimantFlag]:
    return list(session.scalars(select(ClaimantFlag).where(ClaimantFlag.cleared_at.is_(None))
                                .order_by(ClaimantFlag.raised_at)))


def is_flagged(session: Session, user_id: int) -> bool:
    return session.scalar(select(ClaimantFlag.id).where(ClaimantFlag.user_id == user_id,
                                                        ClaimantFlag.cleared_at.is_(None))) is not None


def clear_claimant_flag(session: Session, flag_id: int, admin: User, *, reason: str, clock: Clock) -> ClaimantFlag:
    _admin(admin)
    flag = session.get(ClaimantFlag, flag_id)
    if flag is None:
        raise RightsNotFound("There is no such flag.", code="flag_not_found")
    if flag.cleared_at is not None:
        raise CaseStateConflict("This flag was already cleared.", code="already_cleared")
    flag.cleared_at, flag.cleared_by_user_id, flag.reason = clock.now(), admin.id, (reason or "").strip()[:2000]
    session.flush()
    return flag


def expired_strikes(session: Session, *, now: datetime, since: datetime) -> int:
    """How many strikes expired between `since` and `now` (expiry is by date; nothing to write)."""
    return session.scalar(text("SELECT count(*) FROM rights_strikes WHERE voided_at IS NULL "
                               "AND expires_at > :since AND expires_at <= :now"), {"since": since, "now": now}) or 0
