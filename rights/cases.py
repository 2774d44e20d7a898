"""Deciding notices and moving cases: action or rejection, counter-notice, acceptance, court action,
withdrawal, and the timers (restore after the counter-notice period, uphold when no counter-notice came).

Case states (one case per affected track):

    pending ──action──▶ disabled ──counter-notice──▶ countered ──restore_at passed──▶ restored
       │                  │  │                          │  │
       └─reject─▶ rejected│  └─accepted / window closed─┼──┴─accepted / court action──▶ upheld
                          └──────────withdrawn──────────┴──withdrawn──▶ withdrawn

Disabled and countered cases hold the track's new earnings (rights.escrow); upheld pays them to the claimant
and is a strike; restored, withdrawn and rejected release them to the track's payees. Every transition is an
audit row. Services never commit; `tick` is idempotent and is run by `ninety notices tick` and the publisher.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from catalog.models import ArtistMember, Release, Track
from catalog.services import refresh_search
from core.clock import Clock
from core.errors import ValidationError
from core.jobs import send_mail_later
from core.mail import Message
from core.users import User
from rights import escrow, staydown, strikes
from rights.audit import record_event, record_events
from rights.errors import CaseStateConflict, CounterNoticeIncomplete, NotAllowed, RightsNotFound
from rights.models import HOLDING_STATES, OPEN_STATES, Case, CaseEvent, CounterNotice, Notice
from rights.notices import EMAIL_RE, _text, _truthy, get_notice
from rights.settings import RightsSettings
from rights.timers import add_business_days


def _admin(user: User | None) -> User:
    if user is None or not user.has_role("admin"):
        raise NotAllowed("Only an admin can decide a notice.", code="admin_only")
    return user


def _is_member(session: Session, artist_id: int, user: User | None) -> bool:
    return user is not None and (session.scalar(select(func.count()).select_from(ArtistMember).where(
        ArtistMember.artist_id == artist_id, ArtistMember.user_id == user.id)) or 0) > 0


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Give the reasons for the decision (they are sent to both parties).",
                              code="reason_required", field="reason")
    return reason[:5000]


def _undecided(session: Session, notice_id: int, admin: User) -> Notice:
    _admin(admin)
    notice = get_notice(session, notice_id, admin)
    session.refresh(notice, with_for_update=True)
    if notice.decided_at is not None:
        raise CaseStateConflict(f"Notice {notice.id} was already decided ({notice.status}).", code="already_decided")
    return notice


def _member_emails(session: Session, artist_ids) -> dict[int, list[str]]:
    rows = session.execute(text("SELECT m.artist_id, u.email FROM artist_members m JOIN users u ON u.id = m.user_id "
                                "WHERE m.artist_id = ANY(:ids) ORDER BY m.artist_id, u.id"),
                           {"ids": sorted(set(artist_ids))}).all()
    emails: dict[int, list[str]] = defaultdict(list)
    for artist_id, email in rows:
        emails[artist_id].append(email)
    return emails


# --- decisions ------------------------------------------------------------------------------------------------
def action_notice(session: Session, notice_id: int, admin: User, *, reason: str, clock: Clock,
                  settings: RightsSettings, audio_path=None) -> Notice:
    """Disable every track the notice names and every track with the same audio (SHA-256), start holding
    their earnings, put their audio on the stay-down list, and send each artist the statement of reasons
    (DSA Art. 17). Set-based, so a bulk notice of 10,000 works is a few statements. Never commits."""
    reason = _reason(reason)
    notice = _undecided(session, notice_id, admin)
    now = clock.now()
    params = {"notice": notice.id, "now": now,
              "counter_deadline": now + timedelta(days=settings.counter_window_days)}
    # Identical copies go too: tracks whose audio has the same SHA-256 as a named one, not already under notice.
    session.execute(text("""
        INSERT INTO rights_cases (notice_id, work_id, track_id, release_id, artist_id, via, whole_release, state,
                                  created_at)
        SELECT DISTINCT ON (t2.id) c.notice_id, c.work_id, t2.id, t2.release_id, r2.artist_id, 'same_audio', false,
               'pending', :now
          FROM rights_cases c JOIN tracks t ON t.id = c.track_id
          JOIN tracks t2 ON t2.asset_id = t.asset_id AND t2.id <> t.id
          JOIN releases r2 ON r2.id = t2.release_id
         WHERE c.notice_id = :notice AND c.state = 'pending' AND t.asset_id IS NOT NULL
           AND t2.status <> 'taken_down' AND r2.status <> 'taken_down'
           AND NOT EXISTS (SELECT 1 FROM rights_cases o WHERE o.track_id = t2.id
                            AND o.state IN ('pending', 'disabled', 'countered'))
         ORDER BY t2.id, c.id
        ON CONFLICT DO NOTHING"""), params)
    session.execute(text("""
        UPDATE rights_cases c SET prior_track_status = t.status, prior_release_status = r.status,
               state = 'disabled', actioned_at = :now, counter_deadline_at = :counter_deadline
          FROM tracks t JOIN releases r ON r.id = t.release_id
         WHERE c.notice_id = :notice AND c.state = 'pending' AND t.id = c.track_id"""), params)
    session.execute(text("""
        UPDATE tracks t SET status = 'taken_down', search_vector = NULL
          FROM rights_cases c WHERE c.notice_id = :notice AND c.state = 'disabled' AND t.id = c.track_id"""), params)
    session.execute(text("""
        UPDATE releases r SET status = 'taken_down'
         WHERE r.id IN (SELECT release_id FROM rights_cases WHERE notice_id = :notice AND state = 'disabled'
                          AND whole_release)"""), params)
    notice.status, notice.decided_at, notice.decided_by_user_id, notice.decision_reason = (
        "actioned", now, admin.id, reason)
    session.flush()
    cases = list(session.scalars(select(Case).where(Case.notice_id == notice.id, Case.state == "disabled")
                                 .order_by(Case.id).execution_options(populate_existing=True)))
    staydown.block_cases(session, cases, audio_path=audio_path)
    record_event(session, notice_id=notice.id, at=now, actor=admin, role="admin", action="actioned", reason=reason,
                 details={"cases": len(cases)})
    record_events(session, ({"notice_id": notice.id, "case_id": c.id, "action": "disabled", "reason": reason,
                             "details": {"track_id": c.track_id, "via": c.via}} for c in cases),
                  at=now, actor=admin, role="admin")
    _statement_of_reasons(session, notice, cases, reason)
    session.expire(notice, ["cases"])
    return notice


def _statement_of_reasons(session: Session, notice: Notice, cases: list[Case], reason: str) -> None:
    by_artist: dict[int, list[Case]] = defaultdict(list)
    for case in cases:
        by_artist[case.artist_id].append(case)
    emails = _member_emails(session, by_artist)
    titles = dict(session.execute(select(Track.id, Track.title).where(Track.id.in_([c.track_id for c in cases]))).all())
    for artist_id, artist_cases in sorted(by_artist.items()):
        deadline = artist_cases[0].counter_deadline_at
        lines = "\n".join(f"  - {titles.get(c.track_id, c.track_id)!s} (case {c.id}"
                          + {"same_audio": ", the same audio as a named track",
                             "fingerprint": ", the same recording as the claimant's reference file, by its acoustic "
                                            "fingerprint"}.get(c.via, "") + ")"
                          for c in artist_cases[:200])
        more = f"\n  … and {len(artist_cases) - 200} more" if len(artist_cases) > 200 else ""
        body = (f"Statement of reasons (DSA Art. 17) for notice {notice.id}\n\n"
                f"What we did: we disabled access to these tracks; their new earnings are held until the case "
                f"ends:\n{lines}{more}\n\n"
                f"Why: a copyright notice from {notice.acting_for or notice.claimant_name} (received "
                f"{notice.received_at:%Y-%m-%d %H:%M} UTC) says they infringe "
                f"{artist_cases[0].work.title!r}. Our decision: {reason}\n"
                "Legal ground: copyright (17 U.S.C. §512(c); the EU Digital Services Act, Art. 16). The decision "
                "was taken by a person, on the notice; no automated means decided it.\n\n"
                f"What you can do: counter-notify by {deadline:%Y-%m-%d %H:%M} UTC if you believe the tracks were "
                "disabled by mistake (they come back 10 business days later unless the claimant goes to court), "
                "accept the notice, or complain through your dashboard's Rights section (within six months).\n")
        for email in emails.get(artist_id, []):
            send_mail_later(session, Message(to=email, subject=f"Tracks disabled after notice {notice.id}", body=body))


def reject_notice(session: Session, notice_id: int, admin: User, *, reason: str, clock: Clock,
                  settings: RightsSettings) -> Notice:
    """Reject with reasons: nothing is disabled or held; repeatedly rejected claimants are flagged (§512(f))."""
    reason = _reason(reason)
    notice = _undecided(session, notice_id, admin)
    now = clock.now()
    notice.status, notice.decided_at, notice.decided_by_user_id, notice.decision_reason = (
        "rejected", now, admin.id, reason)
    session.execute(text("UPDATE rights_cases SET state = 'rejected', outcome_reason = 'rejected', resolved_at = :now "
                         "WHERE notice_id = :notice AND state = 'pending'"), {"notice": notice.id, "now": now})
    session.flush()
    for case in notice.cases:
        session.expire(case)
    record_event(session, notice_id=notice.id, at=now, actor=admin, role="admin", action="rejected", reason=reason)
    strikes.flag_claimant_if_due(session, notice.claimant_user_id, at=now, settings=settings)
    send_mail_later(session, Message(to=notice.claimant_email, subject=f"Your notice {notice.id} was rejected",
                                     body=f"We did not act on your notice {notice.id}.\n\nReasons: {reason}\n"))
    session.expire(notice, ["cases"])
    return notice


# --- reads for both parties ------------------------------------------------------------------------------------
def get_case(session: Session, case_id: int, user: User | None) -> Case:
    """The case, for the notice's claimant, a member of the track's artist, or an admin; else not found."""
    case = session.get(Case, case_id) if isinstance(case_id, int) and 0 < case_id < 2**31 else None
    if case is None or user is None or not (
            user.has_role("admin") or case.notice.claimant_user_id == user.id
            or _is_member(session, case.artist_id, user)):
        raise RightsNotFound("There is no such case.", code="case_not_found")
    return case


def cases_for_artist(session: Session, artist_id: int, *, limit: int = 500) -> list[Case]:
    return list(session.scalars(select(Case).where(Case.artist_id == artist_id, Case.state != "pending")
                                .order_by(Case.id.desc()).limit(limit)))


def cases_for_user(session: Session, user_id: int, *, limit: int = 500) -> list[Case]:
    """Cases against tracks of the artists this user is a member of (decided ones: pending notices are not
    shown to the artist before a person has looked at them)."""
    artists = select(ArtistMember.artist_id).where(ArtistMember.user_id == user_id)
    return list(session.scalars(select(Case).where(Case.artist_id.in_(artists), Case.state != "pending")
                                .order_by(Case.id.desc()).limit(limit)))


def case_events(session: Session, case_id: int, user: User | None) -> list[CaseEvent]:
    """The case's audit rows and its notice's own (received, actioned, …), oldest first."""
    case = get_case(session, case_id, user)
    return list(session.scalars(select(CaseEvent).where(
        CaseEvent.notice_id == case.notice_id,
        (CaseEvent.case_id == case.id) | CaseEvent.case_id.is_(None)).order_by(CaseEvent.id)))


def notice_events(session: Session, notice_id: int, user: User | None, *, limit: int = 1000) -> list[CaseEvent]:
    notice = get_notice(session, notice_id, user)
    return list(session.scalars(select(CaseEvent).where(CaseEvent.notice_id == notice.id)
                                .order_by(CaseEvent.id).limit(limit)))


def track_notice(session: Session, track_id: int) -> Case | None:
    """The case that makes this track unavailable: open (disabled or countered) or upheld while it is down."""
    return session.scalar(select(Case).join(Track, Track.id == Case.track_id).where(
        Case.track_id == track_id,
        Case.state.in_(HOLDING_STATES) | ((Case.state == "upheld") & (Track.status == "taken_down")))
        .order_by(Case.id.desc()).limit(1))


# --- the artist's and claimant's moves -------------------------------------------------------------------------
COUNTER_ELEMENTS = (
    ("name", "missing_name", "your full name"),
    ("address", "missing_address", "your postal address (§512(g)(3)(D))"),
    ("phone", "missing_phone", "your telephone number (§512(g)(3)(D))"),
    ("email", "missing_email", "your email address"),
    ("signature", "missing_signature", "your physical or electronic signature (§512(g)(3)(A))"),
)


def file_counter_notice(session: Session, case_id: int, user: User, payload: Mapping, *, clock: Clock,
                        settings: RightsSettings) -> CounterNotice:
    """The artist's counter-notification: only a member of the track's artist, only while the case is
    disabled and its counter window open. Forwarded to the claimant; the track comes back
    `restore_business_days` business days later unless the claimant reports a court action first."""
    case = get_case(session, case_id, user)
    if not _is_member(session, case.artist_id, user):
        raise NotAllowed("Only the track's artist can counter-notify.", code="not_the_artist")
    payload = payload if isinstance(payload, Mapping) else {}
    values = {k: _text(payload.get(k), 1000 if k == "address" else 200) for k, _, _ in COUNTER_ELEMENTS}
    missing = [{"code": code, "field": k, "message": message} for k, code, message in COUNTER_ELEMENTS
               if not values[k]]
    if values["email"] and not EMAIL_RE.match(values["email"]):
        missing.append({"code": "invalid_email", "field": "email", "message": "a valid email address"})
    if not _truthy(payload.get("statement_mistake")):
        missing.append({"code": "missing_mistake_statement", "field": "statement_mistake",
                        "message": "the statement under penalty of perjury that the track was disabled by mistake "
                                   "or misidentification (§512(g)(3)(C))"})
    if not _truthy(payload.get("consent_jurisdiction")):
        missing.append({"code": "missing_jurisdiction_consent", "field": "consent_jurisdiction",
                        "message": "consent to the jurisdiction of the court and to accept service from the "
                                   "claimant (§512(g)(3)(D))"})
    if missing:
        raise CounterNoticeIncomplete(missing)
    now = clock.now()
    session.refresh(case, with_for_update=True)
    if case.state != "disabled":
        raise CaseStateConflict(f"Case {case.id} is {case.state}; a counter-notice is possible only while the "
                                "track is disabled and not yet counter-notified.", code="not_disabled")
    if case.counter_deadline_at is None or now > case.counter_deadline_at:
        raise CaseStateConflict(f"The counter-notice window closed on {case.counter_deadline_at:%Y-%m-%d %H:%M} UTC.",
                                code="counter_window_closed")
    counter = CounterNotice(case_id=case.id, user_id=user.id, name=values["name"], address=values["address"],
                            phone=values["phone"], email=values["email"], statement_mistake=True,
                            consent_jurisdiction=True, explanation=_text(payload.get("explanation")),
                            signature=values["signature"], filed_at=now)
    session.add(counter)
    case.state, case.countered_at = "countered", now
    case.restore_at = add_business_days(now, settings.restore_business_days, settings.holiday_country)
    session.flush()
    record_event(session, notice_id=case.notice_id, case_id=case.id, at=now, actor=user, role="artist",
                 action="counter_noticed", reason=counter.explanation[:500],
                 details={"restore_at": case.restore_at.isoformat()})
    notice = case.notice
    send_mail_later(session, Message(
        to=notice.claimant_email, subject=f"Counter-notice for case {case.id} (notice {notice.id})",
        body=(f"The artist has counter-notified case {case.id} of your notice {notice.id} (17 U.S.C. §512(g)).\n\n"
              f"Name: {counter.name}\nAddress: {counter.address}\nTelephone: {counter.phone}\nEmail: {counter.email}\n"
              f"Signature: {counter.signature}\n"
              "Statement: under penalty of perjury, the track was disabled as a result of mistake or "
              "misidentification. The artist consents to the jurisdiction of the court and will accept service.\n"
              f"Explanation: {counter.explanation or '(none)'}\n\n"
              f"The track will be restored on {case.restore_at:%Y-%m-%d %H:%M} UTC unless you tell us before then that "
              "you have filed an action seeking a court order (Rights > your notice > report court action).\n")))
    session.refresh(case)
    return counter


def accept_notice(session: Session, case_id: int, user: User, *, clock: Clock, settings: RightsSettings,
                  reason: str = "") -> Case:
    """The artist accepts the notice: upheld; the held earnings go to the claimant; a strike."""
    case = get_case(session, case_id, user)
    if not _is_member(session, case.artist_id, user):
        raise NotAllowed("Only the track's artist can accept the notice.", code="not_the_artist")
    _lock_holding(session, case)
    _uphold(session, [case], outcome="accepted", at=clock.now(), actor=user, role="artist",
            reason=reason or "the artist accepted the notice", settings=settings)
    return case


def report_court_action(session: Session, case_id: int, user: User, *, clock: Clock, settings: RightsSettings,
                        reference: str) -> Case:
    """The claimant reports a court action before the restore date: upheld (the track stays down)."""
    case = get_case(session, case_id, user)
    if case.notice.claimant_user_id != user.id:
        raise NotAllowed("Only the claimant can report a court action.", code="not_the_claimant")
    reference = (reference or "").strip()
    if not reference:
        raise ValidationError("Name the court and the case number.", code="reference_required", field="reference")
    now = clock.now()
    session.refresh(case, with_for_update=True)
    if case.state != "countered":
        raise CaseStateConflict("A court action can be reported only after a counter-notice, before the restore date.",
                                code="not_countered")
    if case.restore_at is not None and now >= case.restore_at:
        raise CaseStateConflict("The restore date has passed.", code="restore_date_passed")
    _uphold(session, [case], outcome="court_action", at=now, actor=user, role="claimant",
            reason=f"court action: {reference[:500]}", settings=settings)
    return case


def withdraw_notice(session: Session, notice_id: int, user: User, *, clock: Clock, settings: RightsSettings,
                    reason: str = "") -> Notice:
    """The claimant withdraws: every open case ends, tracks come back, held earnings go to the artists."""
    notice = get_notice(session, notice_id, user)
    if notice.claimant_user_id != user.id:
        raise NotAllowed("Only the claimant can withdraw the notice.", code="not_the_claimant")
    session.refresh(notice, with_for_update=True)
    now = clock.now()
    cases = list(session.scalars(select(Case).where(Case.notice_id == notice.id, Case.state.in_(OPEN_STATES))
                                 .order_by(Case.id).with_for_update()))
    if not cases and notice.status != "received":
        raise CaseStateConflict("Nothing of this notice is open any more.", code="nothing_open")
    reason = (reason or "").strip()[:2000] or "withdrawn by the claimant"
    if notice.decided_at is None:
        notice.decided_at = now  # out of the decision queue; not a decision by a person (decided_by stays NULL)
    notice.status = "withdrawn" if notice.status == "received" else notice.status
    pending = [c for c in cases if c.state == "pending"]
    for case in pending:
        case.state, case.outcome_reason, case.resolved_at = "withdrawn", "withdrawn", now
    session.flush()
    _release(session, [c for c in cases if c.state in HOLDING_STATES], outcome="withdrawn", at=now, actor=user,
             role="claimant", reason=reason)
    if notice.status == "actioned" and not session.scalar(select(func.count()).select_from(Case).where(
            Case.notice_id == notice.id, Case.state.in_(("upheld",)))):
        notice.status = "withdrawn"
    record_event(session, notice_id=notice.id, at=now, actor=user, role="claimant", action="withdrawn", reason=reason)
    session.flush()
    session.expire(notice, ["cases"])
    return notice


def _lock_holding(session: Session, case: Case) -> None:
    session.refresh(case, with_for_update=True)
    if case.state not in HOLDING_STATES:
        raise CaseStateConflict(f"Case {case.id} is {case.state}; it is no longer open.", code="case_closed")


# --- outcomes ----------------------------------------------------------------------------------------------
def _uphold(session: Session, cases: list[Case], *, outcome: str, at: datetime, actor: User | None, role: str,
            reason: str, settings: RightsSettings) -> None:
    for case in cases:
        payee = escrow.claimant_payee(session, case.notice)
        case.state, case.outcome_reason, case.resolved_at, case.claimant_payee_id = "upheld", outcome, at, payee.id
        session.flush()
        entry_id = escrow.settle_case(session, case, to_claimant_payee_id=payee.id, at=at, reason=outcome)
        record_event(session, notice_id=case.notice_id, case_id=case.id, at=at, actor=actor, role=role,
                     action="upheld", reason=reason, details={"outcome": outcome, "entry_id": entry_id})
    strikes.issue_strikes(session, cases, at=at, settings=settings)
    _outcome_mail(session, cases, "upheld", reason)


def _release(session: Session, cases: list[Case], *, outcome: str, at: datetime, actor: User | None, role: str,
             reason: str) -> None:
    """Restore the tracks (to what they were), lift stay-down, release held earnings to the track's payees."""
    if not cases:
        return
    for case in cases:
        case.state, case.outcome_reason, case.resolved_at = outcome, outcome, at
    session.flush()
    releases = set()
    for case in cases:
        track = session.get(Track, case.track_id)
        if track.status == "taken_down" and case.prior_track_status and case.prior_track_status != "taken_down":
            track.status = case.prior_track_status
        release = session.get(Release, case.release_id)
        if (case.whole_release and release.status == "taken_down" and case.prior_release_status
                and case.prior_release_status != "taken_down"):
            still_held = session.scalar(select(func.count()).select_from(Case).where(
                Case.release_id == release.id, Case.whole_release, Case.state.in_(HOLDING_STATES)))
            if not still_held:
                release.status = case.prior_release_status
        releases.add(case.release_id)
    session.flush()
    for release_id in sorted(releases):
        refresh_search(session, release_id)
    staydown.lift_cases(session, [c.id for c in cases])
    for case in cases:
        entry_id = escrow.settle_case(session, case, to_claimant_payee_id=None, at=at, reason=outcome)
        record_event(session, notice_id=case.notice_id, case_id=case.id, at=at, actor=actor, role=role,
                     action=outcome, reason=reason, details={"entry_id": entry_id})
    session.flush()
    _outcome_mail(session, cases, outcome, reason)


def _outcome_mail(session: Session, cases: list[Case], outcome: str, reason: str) -> None:
    if not cases:
        return
    words = {"upheld": "was upheld: the track stays disabled and its held earnings go to the claimant",
             "restored": "ended: the track is available again and its held earnings are released to its payees",
             "withdrawn": "was withdrawn by the claimant: the track is available again and its held earnings are "
                          "released to its payees"}[outcome]
    emails = _member_emails(session, {c.artist_id for c in cases})
    by_notice: dict[int, list[Case]] = defaultdict(list)
    for case in cases:
        by_notice[case.notice_id].append(case)
    for notice_id, group in by_notice.items():
        notice = group[0].notice
        ids = ", ".join(str(c.id) for c in group[:50])
        body = f"Case(s) {ids} of notice {notice_id} {words}.\n\nReason: {reason}\n"
        send_mail_later(session, Message(to=notice.claimant_email, subject=f"Notice {notice_id}: case {outcome}",
                                         body=body))
        for email in sorted({e for c in group for e in emails.get(c.artist_id, [])}):
            send_mail_later(session, Message(to=email, subject=f"Notice {notice_id}: case {outcome}", body=body))


# --- timers ---------------------------------------------------------------------------------------------------
@dataclass
class TickResult:
    restored: list[int] = field(default_factory=list)
    upheld: list[int] = field(default_factory=list)
    late_settlements: int = 0

    def as_dict(self) -> dict:
        return {"restored": self.restored, "upheld": self.upheld, "late_settlements": self.late_settlements}


def tick(session: Session, *, clock: Clock, settings: RightsSettings, limit: int = 500) -> TickResult:
    """Run the timers once: restore counter-noticed tracks whose restore date passed (no court action came),
    uphold disabled cases whose counter window closed, settle late credits of closed cases. Idempotent."""
    now = clock.now()
    result = TickResult()
    due_restore = list(session.scalars(select(Case).where(Case.state == "countered", Case.restore_at <= now)
                                       .order_by(Case.restore_at, Case.id).limit(limit)
                                       .with_for_update(skip_locked=True)))
    if due_restore:
        _release(session, due_restore, outcome="restored", at=now, actor=None, role="system",
                 reason=f"counter-notice not answered by a court action within {settings.restore_business_days} "
                        "business days")
        result.restored = [c.id for c in due_restore]
    due_uphold = list(session.scalars(select(Case).where(Case.state == "disabled", Case.counter_deadline_at < now)
                                      .order_by(Case.counter_deadline_at, Case.id).limit(limit)
                                      .with_for_update(skip_locked=True)))
    if due_uphold:
        _uphold(session, due_uphold, outcome="not_countered", at=now, actor=None, role="system",
                reason=f"no counter-notice within {settings.counter_window_days} days", settings=settings)
        result.upheld = [c.id for c in due_uphold]
    result.late_settlements = escrow.settle_residuals(session, at=now)
    return result


def next_timer_at(session: Session) -> datetime | None:
    """When the next timer falls due (for a scheduler, and for tests moving the clock)."""
    restore = session.scalar(select(func.min(Case.restore_at)).where(Case.state == "countered"))
    uphold = session.scalar(select(func.min(Case.counter_deadline_at)).where(Case.state == "disabled"))
    times = [t for t in (restore, uphold) if t is not None]
    return min(times) if times else None
