"""listening_totals: per month, listener and track, the sum of the full plays' heard time, kept by triggers on
plays (migration 0016) through every way plays are written: the beacons' statement, growth, SQL, deletes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from catalog.plays import PlayReport, record_heard_many


def totals(session) -> dict:
    return {(p, listener, track): (int(ms), n) for p, listener, track, ms, n in session.execute(text(
        "SELECT period, listener_id, track_id, heard_ms, plays FROM listening_totals WHERE plays <> 0"))}


def grouped_plays(session) -> dict:
    """What the totals must equal: the plays themselves, grouped."""
    return {(p, listener, track): (int(ms), n) for p, listener, track, ms, n in session.execute(text(
        "SELECT to_char(counted_at AT TIME ZONE 'UTC', 'YYYY-MM'), listener_id, track_id, sum(heard_ms), count(*) "
        "FROM plays WHERE kind = 'full' GROUP BY 1, 2, 3"))}


def report(track_id: int, listener: str, started_at: datetime) -> PlayReport:
    return PlayReport(play_id=uuid.uuid4(), track_id=track_id, kind="full", listener_id=listener, user_id=None,
                      session_id="s" * 32, started_at=started_at)


def test_counted_and_growing_plays_add_what_is_new_once(app, make_track):
    track_id = make_track()
    start = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)
    first, second = report(track_id, "u1", start), report(track_id, "u1", start)
    with app.extensions["ninety"].sessions() as session:
        outcomes = record_heard_many(session, [
            (first, 31_000, 0, start + timedelta(seconds=31)),
            (second, 40_000, 0, start + timedelta(seconds=40)),
            (first, 35_000, 31_000, start + timedelta(seconds=35)),  # the same play, grown in the same batch
        ])
        assert outcomes == ["counted", "counted", "updated"]
        assert totals(session) == {("2026-10", "u1", track_id): (75_000, 2)}
        # Later reports only add what is new; a stale or replayed one adds nothing.
        record_heard_many(session, [(first, 95_000, 35_000, start + timedelta(seconds=95))])
        record_heard_many(session, [(first, 95_000, 95_000, start + timedelta(seconds=96))])
        record_heard_many(session, [(second, 50_000, 0, start + timedelta(seconds=97))])  # replayed: no new play
        assert totals(session) == {("2026-10", "u1", track_id): (95_000 + 50_000, 2)} == grouped_plays(session)
        session.rollback()


def test_any_writer_keeps_them_by_the_utc_month_of_counting(app, make_track):
    track_id, other = make_track(), make_track()
    with app.extensions["ninety"].sessions() as session:
        session.execute(text("SELECT ninety_month_partition('plays'::regclass, 'counted_at', :d)"),
                        {"d": datetime(2026, 11, 1).date()})
        # A seed's INSERT ... SELECT: two months, two listeners, two tracks; one play each side of midnight UTC.
        session.execute(text("""
            INSERT INTO plays (play_id, track_id, listener_id, kind, started_at, counted_at, heard_ms)
            SELECT gen_random_uuid(), CASE WHEN g % 3 = 0 THEN :o ELSE :t END, 'u' || (g % 2), 'full',
                   at - interval '30 seconds', at, 30000 + g * 1000
              FROM (SELECT g, CASE WHEN g < 6 THEN timestamptz '2026-10-31 23:59:59+00'
                                   ELSE timestamptz '2026-11-01 00:00:00+00' END AS at
                      FROM generate_series(0, 9) g) x
        """), {"t": track_id, "o": other})
        assert totals(session) == grouped_plays(session)
        assert {key[0] for key in totals(session)} == {"2026-10", "2026-11"}
        session.execute(text("UPDATE plays SET heard_ms = heard_ms + 500 WHERE listener_id = 'u1'"))
        assert totals(session) == grouped_plays(session)
        session.execute(text("DELETE FROM plays WHERE track_id = :o"), {"o": other})
        assert totals(session) == grouped_plays(session)
        assert {key[2] for key in totals(session)} == {track_id}
        session.rollback()
