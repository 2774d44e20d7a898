"""Month close: check the impression stream is flushed to the cut-off, distribute each key-mode listener's
pool over the tracks that listener downloaded (by downloads, then by each track's split sheet), send pools of
listeners who downloaded nothing to income:unattributed, and close the ledger period. Idempotent.

Transaction: closing a month is one of the processes that own their transaction (DESIGN.md "Who owns the
transaction"). `close_month` commits itself, once, when the month is closed; a crash before that leaves
nothing behind, and running it again resumes from the start (a closed month is returned unchanged).

The arithmetic is set-based SQL (largest remainder, as `core.money.allocate`, with the same tie-breaks:
largest remainder first, then position), so a month of millions of impressions closes in seconds.
"""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from adserver import keys
from adserver.stream import arrived_before
from core.clock import Clock
from core.money import Money
from ledger import services as ledger
from rights.escrow import routes_for
from royalties import subscriber_pool, suspense
from royalties.errors import EarlierPeriodOpen, ImpressionsNotFlushed, ParkedEntriesUnsettled, PeriodNotOver
from royalties.models import RoyaltyPeriod
from royalties.periods import ONE_MICROSECOND, bounds
from royalties.staging import stage_split_sheets

IMPRESSION_STREAM = None  # every shard of the impression stream (adserver.keys.impression_streams)
POSTINGS_PER_ENTRY = 5000
# Downloads that count for key-mode attribution: every completed download except a preview.
COUNTED_VIAS = ("ad", "key", "purchase", "free")


def _stream_id_ms(message_id) -> int:
    raw = message_id.decode() if isinstance(message_id, bytes) else str(message_id)
    return int(raw.split("-", 1)[0])


def unflushed_before(redis, cutoff: datetime, stream: str | None = IMPRESSION_STREAM) -> int:
    """How many stream entries before the cut-off no consumer group has read and acknowledged yet, in every
    shard of the impression stream (or in the one `stream` named).

    Entries are counted when they were added before the cut-off (the stream id is the arrival time) or carry
    an `at` before it. Pending (read, not acknowledged) entries count too: their batch may not be posted.
    """
    if stream is None:
        return sum(unflushed_before(redis, cutoff, name) for name in keys.impression_streams())
    cutoff_ms = int(cutoff.timestamp() * 1000)
    if not redis.exists(stream):
        return 0
    groups = redis.xinfo_groups(stream)
    if not groups:
        return sum(1 for _ in _entries_before(redis, stream, "-", cutoff))
    worst = 0
    for group in groups:
        name = group["name"]
        count = 0
        pending = redis.xpending_range(stream, name, min="-", max="+", count=100_000)
        for entry in pending:
            if _stream_id_ms(entry["message_id"]) < cutoff_ms:
                count += 1
            else:
                fields = redis.xrange(stream, entry["message_id"], entry["message_id"])
                if fields and arrived_before(fields[0][1], cutoff):
                    count += 1
        last = group["last-delivered-id"]
        last = last.decode() if isinstance(last, bytes) else str(last)
        count += sum(1 for _ in _entries_before(redis, stream, "(" + last, cutoff))
        worst = max(worst, count)
    return worst


def _entries_before(redis, stream: str, start: str, cutoff: datetime, page: int = 1000):
    """Unread entries from `start` on that belong before the cut-off (by arrival, or by `at` shortly after)."""
    cutoff_ms = int(cutoff.timestamp() * 1000)
    grace_ms = 15 * 60 * 1000  # a beacon counted just before midnight may reach the stream a little later
    while True:
        batch = redis.xrange(stream, min=start, max=str(cutoff_ms + grace_ms), count=page)
        if not batch:
            return
        for message_id, fields in batch:
            if _stream_id_ms(message_id) < cutoff_ms or arrived_before(fields, cutoff):
                yield message_id
        last = batch[-1][0]
        start = "(" + (last.decode() if isinstance(last, bytes) else str(last))
        if len(batch) < page:
            return


def get_period(session: Session, period: str) -> RoyaltyPeriod | None:
    return session.get(RoyaltyPeriod, period)


def close_month(session: Session, redis, period: str, *, clock: Clock, closed_by: int | None = None,
                stream: str | None = IMPRESSION_STREAM, timings: dict | None = None) -> RoyaltyPeriod:
    """Close `period` (YYYY-MM); closing a closed month returns it unchanged. `timings` collects phase times.

    Commits the close itself (see the module docstring); refuses, changing nothing, while the month is not
    over, impressions before its end wait in the stream, or flush entries of it are parked unsettled."""
    timings = {} if timings is None else timings
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now_s = time.perf_counter()
        timings[name] = round(now_s - mark, 3)
        mark = now_s

    start, cutoff = bounds(period)
    existing = session.get(RoyaltyPeriod, period)
    if existing is not None:
        return existing
    now = clock.now()
    if now < cutoff:
        raise PeriodNotOver(f"{period} is not over yet: it can be closed from {cutoff:%Y-%m-%d %H:%M} UTC.")
    waiting = unflushed_before(redis, cutoff, stream)
    if waiting:
        raise ImpressionsNotFlushed(
            f"{waiting} impression(s) before the cut-off are still waiting in the stream; let the flush worker "
            f"(`ninety worker`) catch up, then close {period} again.", waiting=waiting)
    parked = suspense.unsettled(session, through_period=period)
    if parked:
        # Closing would shut the books on revenue still owed to artists: each parked entry is settled first.
        count = sum(n for n, _ in parked.values())
        owed = ", ".join(str(Money(micros, currency)) for currency, (_, micros) in sorted(parked.items()))
        raise ParkedEntriesUnsettled(
            f"{count} ad flush entr{'y' if count == 1 else 'ies'} of {period} or earlier ({owed}) "
            f"{'is' if count == 1 else 'are'} parked because the ledger refused them. Settle each one on the "
            f"finance console or with `ninety royalties parked` (retry after the advertiser tops up, or write it "
            f"off), then close {period} again.", parked=count)
    # Closing the books for this month closes every earlier month too; an earlier pool still holding money
    # could then never be distributed, so those months must be closed first.
    earlier = session.execute(text(
        "SELECT min(substr(code, 27)) FROM ledger_accounts WHERE code LIKE 'liabilities:pool:listener:%' "
        "AND substr(code, 27) < :period AND balance_micros <> 0"), {"period": period}).scalar()
    if earlier:
        raise EarlierPeriodOpen(f"{earlier} still has key-mode pool money to distribute; close {earlier} first.",
                                period=earlier)
    earlier = subscriber_pool.earliest_open_pool(session, period)
    if earlier:
        raise EarlierPeriodOpen(f"{earlier} still has subscriber pool money to distribute; close {earlier} first.",
                                period=earlier)
    # One closer at a time; a second caller waits here and then finds the month closed.
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext('royalties.close'))"))
    existing = session.get(RoyaltyPeriod, period, populate_existing=True)
    if existing is not None:
        return existing

    lap("checks")
    summary, credits, held = _distribute(session, period, start, cutoff, lap)
    entries = _entries(period, cutoff - ONE_MICROSECOND, credits, held)
    lap("pool_entries")
    # Premium: each subscriber's pool over what that subscriber played (royalties.subscriber_pool).
    subscribers, subscriber_entries = subscriber_pool.distribute(session, period, lap=lap)
    entries += subscriber_entries
    for currency, figures in subscribers.items():
        summary.setdefault(currency, {"pool_micros": 0, "listeners": 0, "attributed_micros": 0,
                                      "unattributed_micros": 0, "unattributed_listeners": 0})["subscribers"] = figures
    lap("build_entries")
    if entries:
        ledger.post_many(session, entries)
    lap("post_entries")
    if not ledger.is_period_closed(session, period):
        ledger.close_period(session, period)
    lap("close_ledger_period")
    record = RoyaltyPeriod(period=period, cutoff=cutoff, closed_at=now, closed_by=closed_by, summary=summary)
    session.add(record)
    session.commit()
    lap("commit")
    return record


def _distribute(session: Session, period: str, start: datetime, cutoff: datetime, lap=lambda name: None) -> tuple:
    """Fill royalty_pool_shares for the month; return (per-currency totals, credits, taken-down track ids)."""
    from ledger.accounts import listener_pool

    pool_code = listener_pool(period)
    session.execute(text("DROP TABLE IF EXISTS tmp_pool, tmp_downloads, tmp_sheets, tmp_track_alloc, tmp_multi"))
    # The allocation sorts a million rows or more: let them sort in memory, for this transaction only.
    session.execute(text("SET LOCAL work_mem = '256MB'"))
    # Each listener's part of the pool: the credits (less any debits) to the pool account, by posting ref.
    # `lid` numbers the (currency, listener) pairs in listener order, so that the allocation below sorts and
    # partitions integers rather than text, and writes the shares in index order.
    session.execute(text("""
        CREATE TEMP TABLE tmp_pool ON COMMIT DROP AS
        SELECT row_number() OVER (ORDER BY listener_id, currency) AS lid, currency, listener_id, amount
          FROM (SELECT a.currency::text AS currency, substr(p.ref, 10) AS listener_id,
                       sum(CASE WHEN p.credit THEN p.amount_micros ELSE -p.amount_micros END)::bigint AS amount
                  FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id
                 WHERE a.code = :code AND p.ref LIKE 'listener:%'
                 GROUP BY 1, 2
                HAVING sum(CASE WHEN p.credit THEN p.amount_micros ELSE -p.amount_micros END) > 0) x
    """), {"code": pool_code})
    # Temp tables have no statistics until analysed; without them the planner picks nested loops.
    session.execute(text("ANALYZE tmp_pool"))
    session.execute(text("""
        CREATE TEMP TABLE tmp_downloads ON COMMIT DROP AS
        SELECT p.lid, d.track_id, count(*)::bigint AS n
          FROM downloads d JOIN tmp_pool p ON p.listener_id = d.listener_id
         WHERE d.completed_at >= :start AND d.completed_at < :cutoff AND d.via = ANY(:vias)
         GROUP BY 1, 2
    """), {"start": start, "cutoff": cutoff, "vias": list(COUNTED_VIAS)})
    session.execute(text("ANALYZE tmp_downloads"))
    lap("pools_and_downloads")
    stage_split_sheets(session, "tmp_sheets", "tmp_downloads", cutoff)
    lap("split_sheets")
    # A track without a split sheet cannot be credited: its downloads do not count.
    session.execute(text("ANALYZE tmp_sheets"))
    session.execute(text("DELETE FROM tmp_downloads d WHERE NOT EXISTS "
                         "(SELECT 1 FROM tmp_sheets s WHERE s.track_id = d.track_id)"))
    # Level 1: each listener's pool over the tracks they downloaded, weighted by downloads.
    session.execute(text("""
        CREATE TEMP TABLE tmp_track_alloc ON COMMIT DROP AS
        WITH parts AS (
            SELECT p.lid, d.track_id, d.n, p.amount, (p.amount::numeric * d.n) AS scaled,
                   sum(d.n) OVER (PARTITION BY p.lid) AS weight
              FROM tmp_pool p JOIN tmp_downloads d ON d.lid = p.lid
        ), floored AS (
            SELECT *, floor(scaled / weight)::bigint AS base, mod(scaled, weight) AS rem FROM parts
        ), ranked AS (
            SELECT *, amount - sum(base) OVER (PARTITION BY lid) AS leftover,
                   row_number() OVER (PARTITION BY lid ORDER BY rem DESC, track_id) AS rn
              FROM floored
        )
        SELECT lid, track_id, n, base + CASE WHEN rn <= leftover THEN 1 ELSE 0 END AS amount
          FROM ranked
    """))
    session.execute(text("ANALYZE tmp_track_alloc"))
    lap("allocate_tracks")
    # Level 2: each track's part over its split sheet (shares sum to 10,000 bp), into the pool shares. Most
    # tracks have a single payee, who simply gets the whole part; the others go through largest remainder.
    session.execute(text("""
        CREATE TEMP TABLE tmp_multi ON COMMIT DROP AS
        SELECT track_id FROM tmp_sheets GROUP BY track_id HAVING count(*) > 1
    """))
    session.execute(text("""
        INSERT INTO royalty_pool_shares (period, currency, listener_id, track_id, payee_id, downloads, amount_micros)
        SELECT :period, p.currency, p.listener_id, t.track_id, s.payee_id, t.n, t.amount
          FROM tmp_track_alloc t JOIN tmp_sheets s ON s.track_id = t.track_id JOIN tmp_pool p ON p.lid = t.lid
         WHERE t.amount > 0 AND NOT EXISTS (SELECT 1 FROM tmp_multi m WHERE m.track_id = t.track_id)
         ORDER BY t.lid
    """), {"period": period})
    lap("shares_single_payee")
    session.execute(text("""
        INSERT INTO royalty_pool_shares (period, currency, listener_id, track_id, payee_id, downloads, amount_micros)
        WITH parts AS (
            SELECT t.lid, t.track_id, t.n, s.payee_id, s.position, t.amount,
                   t.amount::numeric * s.share_bp AS scaled,
                   sum(s.share_bp) OVER (PARTITION BY t.lid, t.track_id) AS weight
              FROM tmp_track_alloc t JOIN tmp_sheets s ON s.track_id = t.track_id
             WHERE t.amount > 0 AND t.track_id IN (SELECT track_id FROM tmp_multi)
        ), floored AS (
            SELECT *, floor(scaled / weight)::bigint AS base, mod(scaled, weight) AS rem FROM parts
        ), ranked AS (
            SELECT *, amount - sum(base) OVER (PARTITION BY lid, track_id) AS leftover,
                   row_number() OVER (PARTITION BY lid, track_id ORDER BY rem DESC, position) AS rn
              FROM floored
        )
        SELECT :period, p.currency, p.listener_id, r.track_id, r.payee_id, r.n,
               r.base + CASE WHEN r.rn <= r.leftover THEN 1 ELSE 0 END
          FROM ranked r JOIN tmp_pool p ON p.lid = r.lid
         ORDER BY r.lid
    """), {"period": period})
    # Listeners who downloaded nothing: their whole pool is unattributed.
    session.execute(text("""
        INSERT INTO royalty_pool_shares (period, currency, listener_id, track_id, payee_id, downloads, amount_micros)
        SELECT :period, p.currency, p.listener_id, NULL, NULL, 0, p.amount
          FROM tmp_pool p
         WHERE NOT EXISTS (SELECT 1 FROM tmp_downloads d WHERE d.lid = p.lid)
         ORDER BY p.lid
    """), {"period": period})
    lap("shares_multi_payee_and_unattributed")
    # The credits per (currency, payee, track): one scan of the month's shares, for the summary and the entries.
    credits = session.execute(text("""
        SELECT currency, payee_id, track_id, sum(amount_micros)::bigint
          FROM royalty_pool_shares
         WHERE period = :period AND amount_micros > 0
         GROUP BY currency, payee_id, track_id
         ORDER BY currency, payee_id NULLS LAST, track_id
    """), {"period": period}).all()
    pools = session.execute(text("""
        SELECT p.currency, sum(p.amount), count(*), count(*) FILTER (WHERE d.lid IS NULL)
          FROM tmp_pool p LEFT JOIN (SELECT DISTINCT lid FROM tmp_downloads) d ON d.lid = p.lid
         GROUP BY p.currency ORDER BY p.currency
    """)).all()
    summary = {}
    for currency, pool, listeners, unattributed_listeners in pools:
        attributed = sum(int(c[3]) for c in credits if c[0] == currency and c[1] is not None)
        unattributed = sum(int(c[3]) for c in credits if c[0] == currency and c[1] is None)
        if attributed + unattributed != pool:  # pragma: no cover - the SQL above cannot lose a micro
            raise AssertionError(f"pool distribution for {period} {currency} does not add up")
        summary[currency] = {"pool_micros": int(pool), "listeners": int(listeners),
                             "attributed_micros": attributed, "unattributed_micros": unattributed,
                             "unattributed_listeners": int(unattributed_listeners)}
    # Tracks under a takedown case: their credits go where the case says (rights.escrow: held, or the claimant).
    held = routes_for(session, session.scalars(text(
        "SELECT DISTINCT track_id FROM rights_cases WHERE state IN ('disabled', 'countered', 'upheld') "
        "AND track_id IN (SELECT track_id FROM tmp_sheets)")))
    return summary, credits, held


def _entries(period: str, effective_at: datetime, credits: list, held_tracks: set[int] | dict) -> list:
    """Balanced journal entries moving the pool out: Dr pool, Cr each payee by track, Cr income:unattributed.

    As the flush does, the earnings of a track under a takedown case go where the case says (held while it is
    open, the claimant once upheld), not to the payable."""
    from ledger.accounts import INCOME_UNATTRIBUTED, listener_pool, payee_held, payee_payable
    from ledger.services import Entry, Posting

    pool_code = listener_pool(period)
    by_currency: dict[str, list] = {}
    for currency, payee_id, track_id, amount in credits:
        if payee_id is None:
            posting = Posting(INCOME_UNATTRIBUTED, "credit", int(amount), currency, ref=f"period:{period}")
        else:
            route = held_tracks.get(track_id) if isinstance(held_tracks, dict) else None
            if route is not None:
                account = route.account(payee_id)
            else:
                account = payee_held(payee_id) if track_id in held_tracks else payee_payable(payee_id)
            posting = Posting(account, "credit", int(amount), currency, ref=f"track:{track_id}")
        by_currency.setdefault(currency, []).append(posting)
    entries = []
    for currency, postings in by_currency.items():
        for index in range(0, len(postings), POSTINGS_PER_ENTRY):
            chunk = postings[index:index + POSTINGS_PER_ENTRY]
            total = sum(p.amount_micros for p in chunk)
            number = index // POSTINGS_PER_ENTRY + 1
            entries.append(Entry(
                idempotency_key=f"pool-distribution:{period}:{currency}:{number}",
                effective_at=effective_at,
                description=f"Key-mode pool {period}: distribution to the tracks listeners downloaded ({number})",
                postings=[Posting(pool_code, "debit", total, currency, ref=f"period:{period}"), *chunk],
                metadata={"event": "pool_distribution", "period": period, "part": number},
            ))
    return entries
