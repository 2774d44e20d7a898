"""Month close plus payout draft for 100,000 payees and 10,000,000 impressions (target: <= 60 s).

Seeds a fresh database: 100,000 artists (each a payee with a release, a track and a split sheet), 250,000
key-mode listeners with 1,000,000 downloads, 10,000,000 impression rows written with COPY, and the books the
flush would have posted for them (gate revenue per payee, the key-mode pool per listener, via ledger.post_many).
Then times `close_period` (pool distribution in SQL, its journal entries, the ledger period close) and
`draft_batch` (every payee's balance at the cut-off, threshold, method, hold, reference), printing each phase's
time and the peak memory as JSON lines. NINETY_BENCH_SCALE=0.1 runs a tenth of it.

Premium (issue 13): beside those impressions the month also has 200,000 subscribers (users whose first invoice
of 4.99 USD, less a card fee, funded `liabilities:pool:subscriber:2026-10`, booked as the invoice webhook
books it) and 20,000,000 counted plays of theirs (a tenth of the subscribers play nothing and carry on), so
the close includes its subscriber phase. Target: the whole close in <= 90 s with peak memory <= 1.5 GB; the
subscriber phases are printed one by one (`royalties.close.subscribers_*_s`).
"""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime

from adserver import keys
from bench.common import emit, fresh_database, log, peak_rss_mb, redis_url

PERIOD = "2026-10"
START = datetime(2026, 10, 1, tzinfo=UTC)
CUTOFF = datetime(2026, 11, 1, tzinfo=UTC)
# A low threshold so that most payees get an item: the draft's heavy path (items, references) is what is timed.
BENCH_THRESHOLD_MICROS = 100_000
# Premium: one monthly invoice per subscriber, Stripe's card fee of 2.9% + 0.30 USD off it.
PREMIUM_GROSS_MICROS = 4_990_000
PREMIUM_FEE_MICROS = 4_990_000 * 29 // 1000 + 300_000


def _scale() -> float:
    return float(os.environ.get("NINETY_BENCH_SCALE", "1"))


def seed(url: str, payees: int, impressions: int, listeners: int, downloads: int) -> dict:
    import psycopg

    rng = random.Random(90)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO users (email, display_name, password_hash, roles, is_active, session_version) VALUES "
                     "('fin@bench.test', 'Fin', 'x', ARRAY['finance'], true, 1), ('ap@bench.test', 'Ap', 'x', ARRAY['finance'], true, 1)")
        conn.execute("INSERT INTO artists (slug, name, bio, location, links, currency) "
                     "SELECT 'a' || g, 'Artist ' || g, '', '', '[]'::jsonb, 'USD' FROM generate_series(1, %s) g",
                     (payees,))
        conn.execute("INSERT INTO payees (display_name, artist_id) SELECT name, id FROM artists ORDER BY id")
        conn.execute("INSERT INTO releases (artist_id, slug, title, kind, genre, tags, description, status, currency, "
                     "price_model) SELECT id, 'r', 'Release ' || id, 'single', '', '{}', '', 'published', 'USD', "
                     "'free_with_ads' FROM artists ORDER BY id")
        conn.execute("INSERT INTO tracks (release_id, position, title, explicit, original_filename, status) "
                     "SELECT id, 1, 'Track ' || id, false, '', 'published' FROM releases ORDER BY id")
        conn.execute("INSERT INTO split_sheets (track_id, version, effective_at) "
                     "SELECT id, 1, %s FROM tracks ORDER BY id", (START,))
        conn.execute("INSERT INTO split_shares (sheet_id, payee_id, share_bp, position, role) "
                     "SELECT s.id, p.id, 10000, 0, 'artist' FROM split_sheets s JOIN tracks t ON t.id = s.track_id "
                     "JOIN releases r ON r.id = t.release_id JOIN payees p ON p.artist_id = r.artist_id")
        # Most payees have a verified method; some are on hold; the rest have none.
        conn.execute("INSERT INTO payout_methods (payee_id, kind, status, holder_name, instructions, verified_at) "
                     "SELECT id, 'manual', 'verified', display_name, 'by hand', now() FROM payees WHERE id % 10 <> 0")
        conn.execute("INSERT INTO royalty_payee_holds (payee_id, reason, placed_at) "
                     "SELECT id, 'bench hold', now() FROM payees WHERE id % 97 = 0")
        track_ids = [row[0] for row in conn.execute("SELECT id FROM tracks ORDER BY id")]
        with conn.cursor().copy("COPY downloads (track_id, listener_id, via, granted_at, completed_at) FROM STDIN") as cp:
            for i in range(downloads):
                listener = rng.randrange(int(listeners * 0.9))  # the last tenth download nothing
                at = START.replace(day=1 + i % 28).isoformat()
                cp.write(f"{track_ids[rng.randrange(len(track_ids))]}\tl{listener}\tkey\t{at}\t{at}\n")
        conn.commit()
    return {"track_ids": track_ids}


def seed_impressions_and_books(url: str, sessions, payees: int, impressions: int, listeners: int,
                               track_ids: list[int]) -> dict:
    """10M impression rows by COPY, and the books the flush posts for them (aggregated per payee / listener)."""
    import psycopg

    from core.db import transaction
    from core.money import share_ceil
    from ledger import services as ledger
    from ledger.accounts import INCOME_ADS, STRIPE, advertiser_prepaid, listener_pool, payee_payable

    rng = random.Random(10)
    gate_by_track: dict[int, int] = {}
    key_by_listener: dict[str, int] = {}
    with psycopg.connect(url) as conn:
        with conn.cursor().copy("COPY ad_impressions (decision_id, campaign_id, advertiser_id, creative_id, slot, "
                                "track_id, listener_id, mode, price_micros, currency, at, entry_id) FROM STDIN") as cp:
            chunk = []
            for i in range(impressions):
                price = 1000 + rng.randrange(4000)
                at = START.replace(day=1 + i % 28, hour=i % 24).isoformat()
                if i % 10 < 3:
                    lid = f"l{rng.randrange(listeners)}"
                    key_by_listener[lid] = key_by_listener.get(lid, 0) + price
                    chunk.append(f"{i:032x}\t1\t1\t1\tbrowse\t\\N\t{lid}\tkey\t{price}\tUSD\t{at}\t1\n")
                else:
                    track = track_ids[rng.randrange(len(track_ids))]
                    gate_by_track[track] = gate_by_track.get(track, 0) + price
                    chunk.append(f"{i:032x}\t1\t1\t1\tgate\t{track}\tg{i % 5000}\tgate\t{price}\tUSD\t{at}\t1\n")
                if len(chunk) >= 50_000:
                    cp.write("".join(chunk))
                    chunk.clear()
            cp.write("".join(chunk))
        conn.commit()
        payee_of_track = dict(conn.execute("SELECT t.id, p.id FROM tracks t JOIN releases r ON r.id = t.release_id "
                                           "JOIN payees p ON p.artist_id = r.artist_id").fetchall())
    total = sum(gate_by_track.values()) + sum(key_by_listener.values())
    at = datetime(2026, 10, 28, tzinfo=UTC)
    entries = [ledger.Entry("bench:fund", datetime(2026, 9, 1, tzinfo=UTC), "funding", [
        ledger.Posting(STRIPE, "debit", total, "USD"), ledger.Posting(advertiser_prepaid(1), "credit", total, "USD")],
        metadata={"event": "advertiser_funding"})]
    gate = sorted(gate_by_track.items())
    for n in range(0, len(gate), 9_000):
        part = gate[n:n + 9_000]
        credits = [ledger.Posting(payee_payable(payee_of_track[t]), "credit", share_ceil(v, 9, 10), "USD",
                                  ref=f"track:{t}") for t, v in part]
        gross = sum(v for _, v in part)
        rest = gross - sum(p.amount_micros for p in credits)
        entries.append(ledger.Entry(f"bench:gate:{n}", at, "ad flush (bench)", [
            ledger.Posting(advertiser_prepaid(1), "debit", gross, "USD"), *credits,
            ledger.Posting(INCOME_ADS, "credit", rest, "USD")], metadata={"event": "ad_flush"}))
    keyed = sorted(key_by_listener.items())
    for n in range(0, len(keyed), 9_000):
        part = keyed[n:n + 9_000]
        credits = [ledger.Posting(listener_pool(PERIOD), "credit", share_ceil(v, 9, 10), "USD", ref=f"listener:{lid}")
                   for lid, v in part]
        gross = sum(v for _, v in part)
        rest = gross - sum(p.amount_micros for p in credits)
        entries.append(ledger.Entry(f"bench:key:{n}", at, "ad flush key (bench)", [
            ledger.Posting(advertiser_prepaid(1), "debit", gross, "USD"), *credits,
            ledger.Posting(INCOME_ADS, "credit", rest, "USD")], metadata={"event": "ad_flush"}))
    with transaction(sessions) as session:
        ledger.post_many(session, entries)
    return {"gate_tracks": len(gate), "key_listeners": len(keyed)}


def seed_subscribers(url: str, sessions, subscribers: int, plays: int) -> dict:
    """`subscribers` listener accounts, each with a paid premium invoice booked to the month's subscriber pool,
    and `plays` counted full plays by nine tenths of them, spread over the catalog (made in SQL)."""
    import psycopg

    from core.db import transaction
    from core.money import share_ceil
    from ledger import services as ledger
    from ledger.accounts import PROCESSING_FEES, STRIPE
    from sales.subscriptions import INCOME_SUBSCRIPTIONS, subscriber_pool, subscriber_ref

    with psycopg.connect(url) as conn:
        first = conn.execute(
            "INSERT INTO users (email, display_name, password_hash, roles, is_active, session_version) "
            "SELECT 's' || g || '@bench.test', 'Subscriber ' || g, 'x', ARRAY['listener'], true, 1 "
            "FROM generate_series(1, %s) g RETURNING id", (subscribers,)).fetchall()
        subscriber_ids = sorted(row[0] for row in first)
        low, high = subscriber_ids[0], subscriber_ids[-1]
        assert high - low + 1 == subscribers  # one identity run: the plays below address them arithmetically
        tracks = conn.execute("SELECT min(id), max(id), count(*) FROM tracks").fetchone()
        assert tracks[1] - tracks[0] + 1 == tracks[2]
        conn.execute("SELECT ninety_month_partition('plays'::regclass, 'counted_at', %s)", (START.date(),))
        playing = max(1, subscribers * 9 // 10)  # the last tenth play nothing: their pools carry on
        # Each play: a subscriber (round robin), a track drawn from that subscriber's own few dozen (so the
        # pools spread over many payees but each subscriber's over few), a listening time of 30 s to 4 min.
        # A bulk load: the plays go in with the listening-totals trigger off, and the totals are then summed
        # in one sorted pass, the same rows the trigger keeps a few plays at a time (migration 0016). Through
        # the trigger, 20,000,000 plays in one statement upsert 6,600,000 totals in random order: 20+ minutes.
        conn.execute("ALTER TABLE plays DISABLE TRIGGER plays_totals_insert")
        conn.execute("""
            INSERT INTO plays (play_id, track_id, listener_id, user_id, session_id, kind, started_at, counted_at,
                               heard_ms)
            SELECT gen_random_uuid(), %(t0)s + ((s * 7919 + (g / %(playing)s) %% 37 * 104729) %% %(tracks)s),
                   'u' || (%(low)s + s), %(low)s + s, NULL, 'full', at, at + interval '30 seconds',
                   30000 + (g * 48271) %% 210000
              FROM (SELECT g, g %% %(playing)s AS s,
                           %(start)s::timestamptz + ((g * 7) %% (27 * 86400)) * interval '1 second' AS at
                      FROM generate_series(0::bigint, %(plays)s - 1) g) x
        """, {"t0": tracks[0], "tracks": tracks[2], "playing": playing, "low": low, "plays": plays,
              "start": START})
        conn.execute("ALTER TABLE plays ENABLE TRIGGER plays_totals_insert")
        conn.execute("SET LOCAL work_mem = '512MB'")
        conn.execute("""
            INSERT INTO listening_totals (period, listener_id, track_id, heard_ms, plays)
            SELECT to_char(counted_at AT TIME ZONE 'UTC', 'YYYY-MM'), listener_id, track_id, sum(heard_ms), count(*)
              FROM plays WHERE kind = 'full' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""")
        conn.commit()
    net = PREMIUM_GROSS_MICROS - PREMIUM_FEE_MICROS
    pool = share_ceil(net, 9, 10)
    at = datetime(2026, 10, 2, 9, 0, tzinfo=UTC)
    entries = []
    for n in range(0, subscribers, 9_000):
        part = subscriber_ids[n:n + 9_000]
        credits = [ledger.Posting(subscriber_pool(PERIOD), "credit", pool, "USD", ref=subscriber_ref(uid))
                   for uid in part]
        entries.append(ledger.Entry(f"bench:premium:{n}", at, "premium invoices (bench)", [
            ledger.Posting(STRIPE, "debit", net * len(part), "USD"),
            ledger.Posting(PROCESSING_FEES, "debit", PREMIUM_FEE_MICROS * len(part), "USD"),
            *credits,
            ledger.Posting(INCOME_SUBSCRIPTIONS, "credit", (PREMIUM_GROSS_MICROS - pool) * len(part), "USD")],
            metadata={"event": "subscription_invoice"}))
    with transaction(sessions) as session:
        ledger.post_many(session, entries)
    return {"subscribers": subscribers, "playing": playing, "plays": plays, "pool_micros": pool * subscribers}


def _backend_peak_mb(pid: int) -> float | None:
    """The PostgreSQL backend's peak resident size (VmHWM), when it runs on this machine."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _exists(name: str) -> bool:
    import psycopg

    from bench.common import server_url

    with psycopg.connect(server_url(), autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def _clone(source: str, target: str) -> str:
    """CREATE DATABASE target TEMPLATE source (NINETY_BENCH_REUSE=1 keeps a seeded copy between runs)."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    from bench.common import server_url

    base = server_url()
    with psycopg.connect(base, autocommit=True) as conn:
        for name in (source, target):
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.execute(f'DROP DATABASE IF EXISTS "{target}"')
        conn.execute(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, "/" + target, parts.query, ""))


def main() -> None:
    import redis as redis_lib

    from core.clock import FrozenClock
    from core.db import import_all_models, make_engine, make_session_factory
    from royalties.services import close_period, draft_batch

    scale = _scale()
    payees, impressions = int(100_000 * scale), int(10_000_000 * scale)
    listeners, downloads = int(250_000 * scale), int(1_000_000 * scale)
    subscribers, plays = int(200_000 * scale), int(20_000_000 * scale)
    import_all_models()
    template = f"ninety_bench_royalties_seed_{int(scale * 1000)}_premium"
    t0 = time.perf_counter()
    if os.environ.get("NINETY_BENCH_REUSE") and _exists(template):
        url = _clone(template, "ninety_bench_royalties")  # the same seeded month again, for iterating
        from app.cli.core import upgrade_database

        upgrade_database(url)  # a copy seeded before a later migration is brought up to date
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        log(f"cloned the seeded database in {time.perf_counter() - t0:.1f}s")
    else:
        url = fresh_database("ninety_bench_royalties")
        ids = seed(url, payees, impressions, listeners, downloads)
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        books = seed_impressions_and_books(url, sessions, payees, impressions, listeners, ids["track_ids"])
        premium = seed_subscribers(url, sessions, subscribers, plays)
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # a production database has statistics; a fresh one has none yet
        log(f"seeded {payees} payees, {impressions} impressions, {listeners} listeners, {downloads} downloads, "
            f"{subscribers} subscribers, {plays} plays in {time.perf_counter() - t0:.1f}s ({books}, {premium})")
        if os.environ.get("NINETY_BENCH_REUSE"):
            engine.dispose()
            _clone("ninety_bench_royalties", template)
            engine = make_engine(url)
            sessions = make_session_factory(engine)
    redis = redis_lib.Redis.from_url(redis_url(15))
    redis.delete(*keys.impression_streams())
    clock = FrozenClock(datetime(2026, 11, 2, 6, 0, tzinfo=UTC))

    with sessions() as session:
        backend = session.execute(__import__("sqlalchemy").text("SELECT pg_backend_pid()")).scalar()
        started = time.perf_counter()
        phases: dict = {}
        record = close_period(session, redis, PERIOD, clock=clock, timings=phases)
        close_s = time.perf_counter() - started
        backend_peak_mb = _backend_peak_mb(backend)
    for name, seconds in phases.items():
        emit(f"royalties.close.{name}_s", seconds, None, "lower", "s")
    emit("royalties.close_s", close_s, None, "lower", "s", payees=payees, impressions=impressions,
         pool_micros=record.summary.get("USD", {}).get("pool_micros"), peak_rss_mb=round(peak_rss_mb(), 1))
    # Issue 13: the whole close, with its subscriber phase, beside the impressions.
    premium = record.summary.get("USD", {}).get("subscribers") or {}
    emit("royalties.subscribers.phase_s", sum(v for k, v in phases.items() if k.startswith("subscribers_")), None,
         "lower", "s", subscribers=subscribers, plays=plays)
    emit("royalties.close_with_subscribers_s", close_s, 90.0, "lower", "s", subscribers=subscribers, plays=plays,
         impressions=impressions, payees=payees, subscriber_summary=premium)
    # The close's memory: this process's peak and, when it runs here, the PostgreSQL backend's, together.
    emit("royalties.close_peak_rss_mb", peak_rss_mb() + (backend_peak_mb or 0), 1536.0, "lower", "MB",
         python_peak_mb=round(peak_rss_mb(), 1), postgres_backend_peak_mb=backend_peak_mb)
    with sessions() as session:
        finance = session.execute(__import__("sqlalchemy").text("SELECT id FROM users ORDER BY id LIMIT 1")).scalar()
        started = time.perf_counter()
        batch = draft_batch(session, PERIOD, currency="USD", drafted_by=finance, clock=clock,
                            threshold_micros=BENCH_THRESHOLD_MICROS)
        session.commit()
        draft_s = time.perf_counter() - started
    emit("royalties.draft_s", draft_s, None, "lower", "s", items=batch.item_count, peak_rss_mb=round(peak_rss_mb(), 1))
    # Issue 9's figure; since issue 13 the close also shares the subscriber pools, so the time without the
    # subscriber phases is given beside it.
    subscriber_s = sum(v for k, v in phases.items() if k.startswith("subscribers_"))
    emit("royalties.close_and_draft_s", close_s + draft_s, 60.0, "lower", "s", payees=payees,
         impressions=impressions, items=batch.item_count,
         without_subscriber_phases_s=round(close_s + draft_s - subscriber_s, 3))
    emit("royalties.peak_rss_mb", peak_rss_mb(), None, "lower", "MB")
    engine.dispose()


if __name__ == "__main__":
    main()
