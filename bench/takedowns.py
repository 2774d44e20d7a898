"""Takedowns: a bulk notice of 10,000 works validated and actioned (target <= 30 s); the stay-down check an
upload pays with 100,000 fingerprints on the list (target <= 100 ms p95); `ninety notices overdue` over
1,000,000 notices (target <= 50 ms).

Seeds a fresh database with SQL: 10,000 artists, each with a published release and a track with its own
content-addressed asset; then files one notice naming all 10,000 tracks through `rights.services.file_notice`
(validation, works, cases, the audit row) and actions it (`action_notice`: cases, takedowns, search documents,
stay-down entries, audit rows, 10,000 statements of reasons), committing each. For stay-down, 100,000 entries
with 120-code fingerprints and their bottom-k samples (GIN), then `screen_upload` on freshly generated 30-s
audio files (fpcalc included; each is a new SHA-256, so every check fingerprints). For the overdue query,
1,000,000 notices of which 1,000 are undecided and 100 overdue. NINETY_BENCH_SCALE=0.1 runs a tenth.
"""

from __future__ import annotations

import io
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import emit, fresh_database, log, peak_rss_mb

NOW = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)


def _scale() -> float:
    return float(os.environ.get("NINETY_BENCH_SCALE", "1"))


def seed_catalog(url: str, artists: int) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO users (email, display_name, password_hash, roles, is_active, session_version) VALUES "
                     "('holder@bench.test', 'Holder', 'x', ARRAY['rights_holder'], true, 1), "
                     "('admin@bench.test', 'Admin', 'x', ARRAY['admin'], true, 1)")
        conn.execute("INSERT INTO artists (slug, name, bio, location, links, currency) "
                     "SELECT 'a' || g, 'Artist ' || g, '', '', '[]'::jsonb, 'USD' FROM generate_series(1, %s) g",
                     (artists,))
        conn.execute("INSERT INTO users (email, display_name, password_hash, roles, is_active, session_version) "
                     "SELECT 'artist' || id || '@bench.test', name, 'x', ARRAY['artist'], true, 1 FROM artists")
        conn.execute("INSERT INTO artist_members (artist_id, user_id) SELECT a.id, u.id FROM artists a "
                     "JOIN users u ON u.email = 'artist' || a.id || '@bench.test'")
        conn.execute("INSERT INTO payees (display_name, artist_id) SELECT name, id FROM artists ORDER BY id")
        conn.execute("INSERT INTO releases (artist_id, slug, title, kind, genre, tags, description, status, currency, "
                     "price_model, published_at) SELECT id, 'r', 'Release ' || id, 'single', '', '{}', '', "
                     "'published', 'USD', 'free_with_ads', now() FROM artists ORDER BY id")
        conn.execute("INSERT INTO audio_assets (sha256, size_bytes, format, codec, mime, extension, duration_ms, "
                     "bitrate, sample_rate, channels, tags) SELECT encode(sha256(('bench' || g)::bytea), 'hex'), "
                     "1000000, 'wav', 'pcm_s16le', 'audio/wav', 'wav', 180000, 1411, 44100, 2, '{}'::jsonb "
                     "FROM generate_series(1, %s) g", (artists,))
        conn.execute("INSERT INTO tracks (release_id, position, title, explicit, original_filename, status, asset_id, "
                     "search_vector) SELECT r.id, 1, 'Track ' || r.id, false, '', 'published', r.id, "
                     "to_tsvector('simple', 'Track ' || r.id) FROM releases r ORDER BY r.id")
        conn.commit()


def bulk_notice(sessions, works: int) -> dict:
    from sqlalchemy import select

    from catalog.models import Track
    from core.clock import FrozenClock
    from core.users import User
    from rights import services
    from rights.settings import RightsSettings

    settings = RightsSettings()
    clock = FrozenClock(NOW)
    with sessions() as session:
        track_ids = list(session.scalars(select(Track.id).order_by(Track.id).limit(works)))
    payload = {"claimant": {"name": "Bench Label", "email": "legal@label.test", "address": "1 Label St"},
               "works": [{"title": f"Work {i}", "description": "An unlicensed copy of our recording.",
                          "tracks": [f"track:{t}"]} for i, t in enumerate(track_ids)],
               "statements": {"good_faith": True, "accurate": True, "authorized": True},
               "signature": "Bench Label"}
    started = time.perf_counter()
    with sessions() as session:
        holder = session.scalar(select(User).where(User.email == "holder@bench.test"))
        notice = services.file_notice(session, holder, payload, clock=clock, settings=settings,
                                      idempotency_key="bench-bulk")
        notice_id = notice.id
        session.commit()
    filed = time.perf_counter() - started
    with sessions() as session:
        admin = session.scalar(select(User).where(User.email == "admin@bench.test"))
        services.action_notice(session, notice_id, admin, reason="Matches the claimant's catalogue.", clock=clock,
                               settings=settings)
        session.commit()
    total = time.perf_counter() - started
    with sessions() as session:
        from sqlalchemy import text

        down = session.scalar(text("SELECT count(*) FROM tracks WHERE status = 'taken_down'"))
    assert down == len(track_ids), (down, len(track_ids))
    return {"works": len(track_ids), "file_s": filed, "total_s": total}


def seed_staydown(url: str, entries: int, codes_per_entry: int = 120) -> None:
    import psycopg

    from media.fingerprint import sample, to_int32

    rng = random.Random(11)
    with psycopg.connect(url) as conn:
        notice_id, case_id = conn.execute("SELECT notice_id, id FROM rights_cases ORDER BY id LIMIT 1").fetchone()
        conn.execute("ALTER TABLE rights_staydown DROP CONSTRAINT uq_rights_staydown_case")  # synthetic rows
        conn.execute("DROP INDEX ix_rights_staydown_sample")
        with conn.cursor().copy("COPY rights_staydown (case_id, notice_id, sha256, codes, sample, active) "
                                "FROM STDIN") as cp:
            for i in range(entries):
                codes = [to_int32(rng.getrandbits(32)) for _ in range(codes_per_entry)]
                cp.write_row((case_id, notice_id, f"{i:064x}", codes, sample(codes), True))
        conn.execute("CREATE INDEX ix_rights_staydown_sample ON rights_staydown USING gin (sample) WHERE active")
        conn.execute("ANALYZE rights_staydown")
        conn.commit()


def staydown_checks(sessions, runs: int) -> tuple[list[float], list[float]]:
    import numpy as np
    import soundfile

    from media.fingerprint import fingerprint_file
    from rights import staydown

    totals, lookups = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            rng = np.random.default_rng(1000 + i)
            rate = 22050
            t = np.arange(30 * rate) / rate
            freqs = rng.uniform(200, 1200, size=121)
            signal = (0.25 * np.sin(2 * np.pi * freqs[(t * 4).astype(int)] * t)
                      + 0.1 * rng.standard_normal(t.size)).astype(np.float32)
            path = Path(tmp) / f"u{i}.wav"
            buffer = io.BytesIO()
            soundfile.write(buffer, np.stack([signal, signal], axis=1), rate, format="WAV", subtype="PCM_16")
            path.write_bytes(buffer.getvalue())
            sha = f"{random.Random(i).getrandbits(256):064x}"
            with sessions() as session:
                started = time.perf_counter()
                staydown.screen_upload(session, sha256=sha, path=path)
                totals.append(time.perf_counter() - started)
                session.rollback()
            codes = list(fingerprint_file(path).codes)
            with sessions() as session:
                started = time.perf_counter()
                assert staydown._fingerprint_match(session, codes) is None
                lookups.append(time.perf_counter() - started)
    return totals, lookups


def seed_notices(url: str, notices: int, undecided: int, overdue: int) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        holder = conn.execute("SELECT id FROM users WHERE email = 'holder@bench.test'").fetchone()[0]
        conn.execute("""
            INSERT INTO rights_notices (claimant_user_id, claimant_name, claimant_email, claimant_address,
                claimant_phone, acting_for, statement_good_faith, statement_accurate, statement_authorized, signature,
                source, content_hash, received_at, deadline_at, decided_at, decided_by_user_id, status,
                decision_reason)
            SELECT %(holder)s, 'Bench Label', 'legal@label.test', '1 Label St', '', '', true, true, true, 'B', 'api',
                   md5(g::text) || md5(g::text),
                   %(now)s - make_interval(secs => g * 30), %(now)s - make_interval(secs => g * 30) + interval '24 hours',
                   CASE WHEN g > %(undecided)s THEN %(now)s - make_interval(secs => g * 30) + interval '3 hours' END,
                   CASE WHEN g > %(undecided)s THEN %(holder)s END,
                   CASE WHEN g > %(undecided)s THEN 'rejected' ELSE 'received' END, ''
              FROM generate_series(1, %(n)s) g""", {"holder": holder, "now": NOW, "undecided": undecided, "n": notices})
        # Of the undecided, the oldest `overdue` are past their deadline.
        conn.execute("UPDATE rights_notices SET received_at = %(now)s - interval '30 hours', "
                     "deadline_at = %(now)s - interval '6 hours' WHERE id IN (SELECT id FROM rights_notices "
                     "WHERE decided_at IS NULL ORDER BY id LIMIT %(k)s)", {"now": NOW, "k": overdue})
        conn.execute("ANALYZE rights_notices")
        conn.commit()


def overdue_queries(sessions, runs: int) -> tuple[list[float], int]:
    from rights.services import overdue_count, overdue_notices

    timings, found = [], 0
    for _ in range(runs):
        with sessions() as session:
            started = time.perf_counter()
            rows = overdue_notices(session, now=NOW, limit=1000)
            overdue_count(session, now=NOW)
            timings.append(time.perf_counter() - started)
            found = len(rows)
    return timings, found


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)] if len(values) > 1 else values[0]


def main() -> None:
    from core.db import import_all_models, make_engine, make_session_factory

    scale = _scale()
    works = max(100, int(10_000 * scale))
    fingerprints = max(1000, int(100_000 * scale))
    notices = max(10_000, int(1_000_000 * scale))
    import_all_models()
    url = fresh_database("ninety_bench_takedowns")
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    try:
        log(f"seeding {works} artists and tracks")
        seed_catalog(url, works)
        result = bulk_notice(sessions, works)
        emit("takedowns.bulk_notice.seconds", result["total_s"], 30.0, "lower", "s", works=result["works"],
             filed_s=round(result["file_s"], 3))
        log(f"seeding {fingerprints} stay-down fingerprints")
        seed_staydown(url, fingerprints)
        totals, lookups = staydown_checks(sessions, runs=20)
        emit("takedowns.staydown_check.p95_ms", p95(totals) * 1000, 100.0, "lower", "ms", fingerprints=fingerprints,
             median_ms=round(statistics.median(totals) * 1000, 2), includes="sha256 + fpcalc of 30 s + index + verify")
        emit("takedowns.staydown_lookup.p95_ms", p95(lookups) * 1000, None, "lower", "ms", fingerprints=fingerprints)
        log(f"seeding {notices} notices")
        seed_notices(url, notices, undecided=1000, overdue=100)
        timings, found = overdue_queries(sessions, runs=30)
        assert found == 100, found
        emit("takedowns.overdue_query.p95_ms", p95(timings) * 1000, 50.0, "lower", "ms", notices=notices,
             overdue=found)
        emit("takedowns.peak_rss_mb", peak_rss_mb(), None, "lower", "MB")
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
