"""Plays: listening sessions, the full-stream allowance of priced tracks, counted plays and their figures.

A play counts once 30 seconds of its audio have been heard. The player reports how much of one play it
has heard (a cumulative figure, so a lost or repeated report does no harm); `record_heard` bounds the
claim by the wall-clock time since the play started, adds what is new to the listening session, and
counts the play the first time it crosses 30 s: the play id goes into `play_ids` (a plain unique table:
a replayed report finds it there and counts nothing), the play row is written, and the listener's count
for the track goes up. Later reports only raise the play's `heard_ms` (listening time for subscriber pools).

The checks that are about who sent a report (signatures, bots) are the caller's (entitlements.listening).
These functions never commit: the caller owns the transaction.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Connection, text
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.orm import Session

from catalog.models import Track
from catalog.play_models import COUNT_AFTER_MS, PLAY_KINDS, ListeningSession

SESSION_IDLE = timedelta(minutes=30)
# A report may run ahead of the wall clock by this much (timer granularity, the first beacon's latency).
CLOCK_SLACK_MS = 2_000
MAX_HEARD_MS = 6 * 3600 * 1000

__all__ = [
    "COUNT_AFTER_MS", "PlayReport", "SessionStart", "bounded_heard", "claim_full_stream", "full_streams",
    "listening_seconds_by_track", "open_session", "payee_daily_plays", "plays_by_track", "plays_by_track_and_day",
    "record_heard", "record_heard_many", "set_previews_only", "tracks_of_payee",
]


@dataclass(frozen=True)
class SessionStart:
    session_id: str
    is_new: bool  # a new listening session: a free track's pre-roll ad plays before its first play


def open_session(session: Session, *, listener_id: str, user_id: int | None, session_id: str | None,
                 now: datetime) -> SessionStart:
    """The listener's current listening session (`session_id`, if it is theirs and not idle for 30 minutes)
    or a new one."""
    if session_id:
        current = session.get(ListeningSession, session_id) if len(session_id) <= 32 else None
        if current is not None and current.listener_id == listener_id and now - current.last_heard_at < SESSION_IDLE:
            current.last_heard_at = max(current.last_heard_at, now)
            return SessionStart(current.id, False)
    new = ListeningSession(id=secrets.token_hex(16), listener_id=listener_id, user_id=user_id, started_at=now,
                           last_heard_at=now, heard_ms=0)
    session.add(new)
    session.flush()
    return SessionStart(new.id, True)


def set_previews_only(session: Session, track: Track, previews_only: bool) -> Track:
    """The artist's choice: the track is only ever heard as its 30-second preview (priced tracks)."""
    track.previews_only = bool(previews_only)
    session.flush()
    return track


def note_ad(session: Session, session_id: str, decision_id: str) -> None:
    """Remember the pre-roll ad the session's first play was preceded by."""
    session.execute(text("UPDATE listening_sessions SET ad_decision_id = :d WHERE id = :s AND ad_decision_id IS NULL"),
                    {"d": decision_id[:64], "s": session_id})


def full_streams(session: Session, listener_id: str, track_ids: list[int]) -> dict[int, int]:
    """How many full streams of each track the listener has been given (tracks never streamed are absent)."""
    if not track_ids:
        return {}
    rows = session.execute(text("SELECT track_id, full_streams FROM listener_track_plays "
                                "WHERE listener_id = :l AND track_id = ANY(:t)"),
                           {"l": listener_id, "t": list(track_ids)})
    return {track_id: n for track_id, n in rows}


def claim_full_stream(session: Session, *, listener_id: str, track_id: int, session_id: str, allowance: int,
                      now: datetime) -> int | None:
    """Spend one of the listener's `allowance` full streams of a priced track, atomically; asking again in
    the same listening session spends nothing. The number of full streams given so far, or None when the
    allowance is used up."""
    row = session.execute(text("""
        INSERT INTO listener_track_plays AS p (listener_id, track_id, full_streams, counted_plays, last_session_id,
                                               last_played_at)
        SELECT :l, :t, 1, 0, :s, :now WHERE :n > 0
        ON CONFLICT (listener_id, track_id) DO UPDATE
           SET full_streams = p.full_streams + CASE WHEN p.last_session_id IS DISTINCT FROM :s THEN 1 ELSE 0 END,
               last_session_id = :s, last_played_at = :now
         WHERE p.last_session_id IS NOT DISTINCT FROM :s OR p.full_streams < :n
        RETURNING full_streams"""), {"l": listener_id, "t": track_id, "s": session_id, "n": allowance,
                                     "now": now}).first()
    return None if row is None else row[0]


@dataclass(frozen=True)
class PlayReport:
    """One play as its signed token names it (verified by the caller)."""

    play_id: uuid.UUID
    track_id: int
    kind: str
    listener_id: str
    user_id: int | None
    session_id: str
    started_at: datetime


def bounded_heard(report: PlayReport, heard_ms: int, now: datetime) -> int:
    """A report's claim, bounded by the wall-clock time since the play started (plus a little slack)."""
    elapsed_ms = int((now - report.started_at).total_seconds() * 1000)
    return max(0, min(int(heard_ms), elapsed_ms + CLOCK_SLACK_MS, MAX_HEARD_MS))


def record_heard(session, report: PlayReport, heard_ms: int, *, previous_ms: int, now: datetime) -> str:
    """Record that `heard_ms` of the play have been heard (cumulative); `previous_ms` is the most the play
    had reported before (kept by the caller in Redis). Returns "counted" (this report made it count),
    "updated" (it had counted already), "listening" (under 30 s so far) or "stale" (nothing new).
    `record_heard_many` for one report."""
    return record_heard_many(session, [(report, heard_ms, previous_ms, now)])[0]


def record_heard_many(session, reports: list[tuple[PlayReport, int, int, datetime]]) -> list[str]:
    """`record_heard` for many reports, (report, heard ms, previous ms, now) each, in one statement; one
    outcome per report, in order. Reports of the same play may be among them, in the order they were heard.

    The claim is bounded by the wall clock: no more can have been heard than the time since the play started
    (plus a little slack), so a script cannot count a play by reporting 30 s after one. `session` is an ORM
    session, a Connection, or a DB-API connection in autocommit (the beacons'; see `_execute`)."""
    outcomes: list[str] = []
    rows: dict[uuid.UUID, dict] = {}  # one row per play: what is new in it, the most heard, whether it counts
    for report, heard_ms, previous_ms, now in reports:
        if report.kind not in PLAY_KINDS:
            raise ValueError("kind is full or preview")
        heard = bounded_heard(report, heard_ms, now)
        delta = heard - max(previous_ms, 0)
        if delta <= 0:
            outcomes.append("stale")
            continue
        counts = heard >= COUNT_AFTER_MS and report.kind == "full"
        outcomes.append("counts" if counts else "listening")
        row = rows.get(report.play_id)
        if row is None:
            rows[report.play_id] = {"report": report, "d": delta, "h": heard, "now": now, "c": counts}
        else:
            row.update(d=row["d"] + delta, h=max(row["h"], heard), now=max(row["now"], now), c=row["c"] or counts)
    if not rows:
        return outcomes
    values = {"p": [], "t": [], "l": [], "u": [], "s": [], "k": [], "started": [], "now": [], "h": [], "d": [],
              "c": []}
    for play_id, row in rows.items():
        report = row["report"]
        for key, value in (("p", play_id), ("t", report.track_id), ("l", report.listener_id), ("u", report.user_id),
                           ("s", report.session_id), ("k", report.kind), ("started", report.started_at),
                           ("now", row["now"]), ("h", row["h"]), ("d", row["d"]), ("c", row["c"])):
            values[key].append(value)
    fresh = set(_execute(session, _HEARD, values)[0])
    for index, (report, *_) in enumerate(reports):  # the first report of a fresh play to count counted it
        if outcomes[index] == "counts":
            outcomes[index] = "counted" if report.play_id in fresh else "updated"
            fresh.discard(report.play_id)
    return outcomes


def _execute(db, statement, values: dict):
    """Run one of the statements below and return its first row. `db` is an ORM session or a Connection,
    or (the play beacon, the hottest write on the site) a pooled DB-API connection: then the statement goes
    to the driver as it is, compiled once, with none of SQLAlchemy's per-execution work, and prepared on
    the connection."""
    if isinstance(db, Session | Connection):
        return db.execute(statement, values).first()
    cursor = db.cursor()
    try:
        cursor.execute(_DRIVER_SQL[statement], values, prepare=True)
        return cursor.fetchone()
    finally:
        cursor.close()


# One round trip for any number of reports, one row per play: the listening sessions' time, then, for the plays
# that count (30 s of a full stream heard), the de-duplication id and either the new play with the listener's
# count or (a play that counted already) its growing time. Data-modifying CTEs all run, once each, and see
# each other's RETURNING rows, not each other's writes. The statement also turns off the wait for the disk at
# commit, for its own transaction only (set_config(..., is_local => true) is SET LOCAL inside the statement:
# no round trip of its own). A database crash may lose the last moment's reports, never count one twice
# (play_ids holds that); the impression stream in Redis makes the same trade. Answers the plays counted now.
_HEARD = text("""
    WITH r AS (
        SELECT * FROM unnest(CAST(:p AS uuid[]), CAST(:t AS integer[]), CAST(:l AS varchar[]), CAST(:u AS integer[]),
                             CAST(:s AS varchar[]), CAST(:k AS varchar[]), CAST(:started AS timestamptz[]),
                             CAST(:now AS timestamptz[]), CAST(:h AS integer[]), CAST(:d AS integer[]),
                             CAST(:c AS boolean[]))
               AS r (p, t, l, u, s, k, started, now, h, d, c)),
    heard AS (
        UPDATE listening_sessions ls SET heard_ms = ls.heard_ms + x.d, last_heard_at = greatest(ls.last_heard_at, x.now)
          FROM (SELECT s, l, sum(d) AS d, max(now) AS now FROM r GROUP BY s, l) x
         WHERE ls.id = x.s AND ls.listener_id = x.l RETURNING 1),
    fresh AS (
        INSERT INTO play_ids (play_id, counted_at) SELECT p, now FROM r WHERE c
        ON CONFLICT DO NOTHING RETURNING play_id),
    play AS (
        INSERT INTO plays (play_id, track_id, listener_id, user_id, session_id, kind, started_at, counted_at, heard_ms)
        SELECT r.p, r.t, r.l, r.u, r.s, r.k, r.started, r.now, r.h FROM r JOIN fresh ON fresh.play_id = r.p
        RETURNING 1),
    tally AS (
        INSERT INTO listener_track_plays AS c (listener_id, track_id, full_streams, counted_plays, last_played_at)
        SELECT r.l, r.t, 0, count(*), max(r.now) FROM r JOIN fresh ON fresh.play_id = r.p GROUP BY r.l, r.t
        ON CONFLICT (listener_id, track_id) DO UPDATE
           SET counted_plays = c.counted_plays + excluded.counted_plays,
               last_played_at = greatest(c.last_played_at, excluded.last_played_at)
        RETURNING 1),
    grown AS (
        UPDATE plays SET heard_ms = greatest(plays.heard_ms, r.h) FROM r
         WHERE r.c AND plays.play_id = r.p AND plays.counted_at >= r.started
           AND NOT EXISTS (SELECT 1 FROM fresh WHERE fresh.play_id = r.p)
        RETURNING 1)
    SELECT coalesce((SELECT array_agg(play_id) FROM fresh), CAST('{}' AS uuid[])),
           set_config('synchronous_commit', 'off', true)""")
# The same statement in the driver's own parameter style (psycopg: %(name)s), for DB-API connections.
_DRIVER_SQL = {_HEARD: str(_HEARD.compile(dialect=postgresql_psycopg.dialect()))}


# --- figures ------------------------------------------------------------------------------------------------
def plays_by_track(session: Session, track_ids: list[int], *, since: datetime | None = None) -> dict[int, int]:
    """Counted plays per track (since a time, or ever)."""
    if not track_ids:
        return {}
    rows = session.execute(text("""SELECT track_id, count(*) FROM plays
                                    WHERE track_id = ANY(:t) AND (CAST(:since AS timestamptz) IS NULL
                                                                  OR counted_at >= :since)
                                    GROUP BY track_id"""), {"t": list(track_ids), "since": since})
    return {track_id: n for track_id, n in rows}


def plays_by_track_and_day(session: Session, track_ids: list[int], *, start: datetime,
                           end: datetime) -> list[tuple[int, date, int]]:
    """(track id, UTC day, counted plays) for plays counted in [start, end), by track then day."""
    if not track_ids:
        return []
    rows = session.execute(text("""
        SELECT track_id, (counted_at AT TIME ZONE 'UTC')::date AS day, count(*) FROM plays
         WHERE track_id = ANY(:t) AND counted_at >= :start AND counted_at < :end
         GROUP BY 1, 2 ORDER BY 1, 2"""), {"t": list(track_ids), "start": start, "end": end})
    return [(track_id, day, n) for track_id, day, n in rows]


def tracks_of_payee(session: Session, payee_id: int) -> list[dict]:
    """The tracks whose plays a payee may see: its artist's tracks and every track whose split sheet (any
    version) names it, by release and position."""
    rows = session.execute(text("""
        SELECT t.id, t.title, r.id, r.title FROM tracks t JOIN releases r ON r.id = t.release_id
         WHERE r.artist_id = (SELECT artist_id FROM payees WHERE id = :p)
            OR EXISTS (SELECT 1 FROM split_sheets s JOIN split_shares x ON x.sheet_id = s.id
                        WHERE s.track_id = t.id AND x.payee_id = :p)
         ORDER BY r.id, t.position, t.id"""), {"p": payee_id})
    return [{"track_id": t, "title": title, "release_id": r, "release_title": release} for t, title, r, release in rows]


def payee_daily_plays(session: Session, payee_id: int, *, first_day: date, last_day: date) -> list[dict]:
    """Per track the payee may see (`tracks_of_payee`): counted plays from `first_day` to `last_day` (UTC
    days, both included), their total, and one (day, plays) pair for every day of the span, zeros too, so a
    chart has no gaps."""
    tracks = tracks_of_payee(session, payee_id)
    start = datetime.combine(first_day, time.min, UTC)
    end = datetime.combine(last_day + timedelta(days=1), time.min, UTC)
    counted: dict[tuple[int, date], int] = {}
    for track_id, day, n in plays_by_track_and_day(session, [t["track_id"] for t in tracks], start=start, end=end):
        counted[(track_id, day)] = n
    days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    result = []
    for track in tracks:
        series = [(day, counted.get((track["track_id"], day), 0)) for day in days]
        result.append({**track, "total": sum(n for _, n in series), "days": series})
    return result


def listening_seconds_by_track(session: Session, listener_id: str, *, start: datetime,
                               end: datetime) -> dict[int, int]:
    """Seconds of counted listening per track for one listener, plays counted in [start, end): what a
    subscriber's pool is shared by (issue 13)."""
    rows = session.execute(text("""
        SELECT track_id, sum(heard_ms) / 1000 FROM plays
         WHERE listener_id = :l AND counted_at >= :start AND counted_at < :end AND kind = 'full'
         GROUP BY track_id"""), {"l": listener_id, "start": start, "end": end})
    return {track_id: int(seconds) for track_id, seconds in rows}
