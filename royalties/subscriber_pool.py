"""The month close's subscriber phase: each subscriber's pool over what THAT subscriber played.

At the close of month P, each subscriber's part of `liabilities:pool:subscriber:P` (the credits less the
debits referencing `subscriber:{user id}`) is split over the tracks that subscriber played in P, weighted by
counted listening time (`plays.heard_ms` of full plays, summed per listener, track and month in
`listening_totals` as the plays are written; a completed download counts as one whole play of the track, its
duration), then each track's part over the split sheet in force at the month's last instant.
Both levels are largest remainder with `core.money.allocate`'s tie-breaks (largest remainder first, then
track id / sheet order), done in SQL so that 200,000 subscribers and 20,000,000 plays close in seconds.

A subscriber who played nothing (or only tracks no split sheet can credit) carries the pool to month P+1
(Dr pool:P, Cr pool:P+1 referencing the subscriber); after the third empty month in a row it goes to
`income:unattributed`. A track under a takedown case goes where the case routes it (`rights.escrow.routes_for`:
held for the case, or the claimant once upheld), as the flush does.
Every move is a `subscriber_pool_shares` row (what the receipt reads) and a posting of a balanced entry.

Transaction: called by `royalties.close.close_month`, inside its transaction (which commits once).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from core.clock import Clock
from core.money import allocate
from ledger.accounts import INCOME_UNATTRIBUTED, payee_held, payee_payable
from ledger.services import Entry, Posting
from rights.escrow import routes_for
from royalties.periods import ONE_MICROSECOND, bounds
from royalties.staging import stage_split_sheets
from sales.subscription_models import SubscriberPoolShare
from sales.subscriptions import subscriber_pool, subscriber_ref

POSTINGS_PER_ENTRY = 5000
EMPTY_MONTHS_BEFORE_UNATTRIBUTED = 3
# Downloads that count as a whole play: every completed download except a preview.
COUNTED_VIAS = ("ad", "key", "purchase", "free", "subscriber")
POOL_PREFIX = "liabilities:pool:subscriber:"


def next_period(period: str) -> str:
    first = datetime.strptime(period, "%Y-%m").replace(tzinfo=UTC)
    following = first + timedelta(days=32)
    return f"{following.year:04d}-{following.month:02d}"


def previous_period(period: str) -> str:
    first = datetime.strptime(period, "%Y-%m").replace(tzinfo=UTC)
    before = first - timedelta(days=1)
    return f"{before.year:04d}-{before.month:02d}"


def earliest_open_pool(session: Session, period: str) -> str | None:
    """An earlier month whose subscriber pool still holds money (it must close first)."""
    return session.execute(text(
        "SELECT min(substr(code, :n)) FROM ledger_accounts WHERE code LIKE :prefix "
        "AND substr(code, :n) < :period AND balance_micros <> 0"),
        {"n": len(POOL_PREFIX) + 1, "prefix": POOL_PREFIX + "%", "period": period}).scalar()


def distribute(session: Session, period: str, *, lap=lambda name: None) -> tuple[dict, list[Entry]]:
    """Fill subscriber_pool_shares for `period`; return (per-currency summary, the balanced entries)."""

    start, cutoff = bounds(period)
    pool_code = subscriber_pool(period)
    session.execute(text("DROP TABLE IF EXISTS tmp_spool, tmp_slisten, tmp_ssheets, tmp_strack, tmp_smulti, "
                         "tmp_smshares"))
    session.execute(text("SET LOCAL work_mem = '256MB'"))
    # Each subscriber's part of the pool, numbered (sid) so that the allocation sorts and partitions integers.
    session.execute(text("""
        CREATE TEMP TABLE tmp_spool ON COMMIT DROP AS
        SELECT row_number() OVER (ORDER BY subscriber_id, currency) AS sid, currency, subscriber_id,
               'u' || subscriber_id AS listener_id, amount
          FROM (SELECT a.currency::text AS currency, substr(p.ref, 12)::int AS subscriber_id,
                       sum(CASE WHEN p.credit THEN p.amount_micros ELSE -p.amount_micros END)::bigint AS amount
                  FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id
                 WHERE a.code = :code AND p.ref LIKE 'subscriber:%'
                 GROUP BY 1, 2
                HAVING sum(CASE WHEN p.credit THEN p.amount_micros ELSE -p.amount_micros END) > 0) x
    """), {"code": pool_code})
    session.execute(text("ANALYZE tmp_spool"))
    # Counted listening per (subscriber, track): the month's full plays' heard time, as listening_totals keeps
    # it (a trigger on plays, migration 0016), plus each download as a whole play of the track.
    session.execute(text("""
        CREATE TEMP TABLE tmp_slisten ON COMMIT DROP AS
        WITH dl AS (
            SELECT s.sid, s.listener_id, d.track_id,
                   sum(least(greatest(coalesce(a.duration_ms, 0), 1000), 2147483647))::bigint AS ms
              FROM downloads d JOIN tmp_spool s ON s.listener_id = d.listener_id
              JOIN tracks t ON t.id = d.track_id LEFT JOIN audio_assets a ON a.id = t.asset_id
             WHERE d.completed_at >= :start AND d.completed_at < :cutoff AND d.via = ANY(:vias)
             GROUP BY 1, 2, 3)
        SELECT s.sid, l.track_id, l.heard_ms + coalesce(dl.ms, 0) AS ms
          FROM listening_totals l JOIN tmp_spool s ON s.listener_id = l.listener_id
          LEFT JOIN dl ON dl.sid = s.sid AND dl.track_id = l.track_id
         WHERE l.period = :period AND l.heard_ms + coalesce(dl.ms, 0) > 0
        UNION ALL
        SELECT dl.sid, dl.track_id, dl.ms FROM dl
         WHERE dl.ms > 0 AND NOT EXISTS (SELECT 1 FROM listening_totals l WHERE l.period = :period
                                            AND l.listener_id = dl.listener_id AND l.track_id = dl.track_id)
    """), {"start": start, "cutoff": cutoff, "vias": list(COUNTED_VIAS), "period": period})
    session.execute(text("ANALYZE tmp_slisten"))
    lap("subscribers_pools_and_listening")
    stage_split_sheets(session, "tmp_ssheets", "tmp_slisten", cutoff)
    session.execute(text("ANALYZE tmp_ssheets"))
    # A track no split sheet can credit does not count: its listening is left out of the weights.
    session.execute(text("DELETE FROM tmp_slisten l WHERE NOT EXISTS "
                         "(SELECT 1 FROM tmp_ssheets s WHERE s.track_id = l.track_id)"))
    lap("subscribers_split_sheets")
    # Level 1: each subscriber's pool over the tracks they played, by listening time.
    _allocate_tracks(session)
    session.execute(text("ANALYZE tmp_strack"))
    lap("subscribers_allocate_tracks")
    held = _held_tracks(session)
    session.execute(text("CREATE TEMP TABLE tmp_smulti ON COMMIT DROP AS "
                         "SELECT track_id FROM tmp_ssheets GROUP BY track_id HAVING count(*) > 1"))
    params = {"period": period, "held": list(held)}
    # Level 2: each track's part over its split sheet; a single-payee sheet takes the whole part.
    session.execute(text("""
        INSERT INTO subscriber_pool_shares (period, currency, subscriber_id, kind, track_id, payee_id,
                                            listened_ms, empty_months, held, amount_micros)
        SELECT :period, t.currency, t.subscriber_id, 'track', t.track_id, h.payee_id, t.ms, 0,
               t.track_id = ANY(CAST(:held AS int[])), t.amount
          FROM tmp_strack t JOIN tmp_ssheets h ON h.track_id = t.track_id
         WHERE t.amount > 0 AND NOT EXISTS (SELECT 1 FROM tmp_smulti m WHERE m.track_id = t.track_id)
         ORDER BY t.sid
    """), params)  # in subscriber order, the (period, subscriber) index grows at its right edge
    session.execute(text("""
        CREATE TEMP TABLE tmp_smshares ON COMMIT DROP AS
        WITH parts AS (
            SELECT t.sid, t.track_id, t.ms, h.payee_id, h.position, t.amount,
                   t.amount::numeric * h.share_bp AS scaled,
                   sum(h.share_bp) OVER (PARTITION BY t.sid, t.track_id) AS weight
              FROM tmp_strack t JOIN tmp_ssheets h ON h.track_id = t.track_id
             WHERE t.amount > 0 AND t.track_id IN (SELECT track_id FROM tmp_smulti)
        ), floored AS (
            SELECT *, floor(scaled / weight)::bigint AS base, mod(scaled, weight) AS rem FROM parts
        ), ranked AS (
            SELECT *, amount - sum(base) OVER (PARTITION BY sid, track_id) AS leftover,
                   row_number() OVER (PARTITION BY sid, track_id ORDER BY rem DESC, position) AS rn
              FROM floored
        )
        SELECT r.sid, s.currency, s.subscriber_id, r.track_id, r.payee_id, r.ms,
               r.track_id = ANY(CAST(:held AS int[])) AS held,
               r.base + CASE WHEN r.rn <= r.leftover THEN 1 ELSE 0 END AS amount
          FROM ranked r JOIN tmp_spool s ON s.sid = r.sid
    """), params)
    session.execute(text("""
        INSERT INTO subscriber_pool_shares (period, currency, subscriber_id, kind, track_id, payee_id,
                                            listened_ms, empty_months, held, amount_micros)
        SELECT :period, currency, subscriber_id, 'track', track_id, payee_id, ms, 0, held, amount
          FROM tmp_smshares ORDER BY sid
    """), params)
    lap("subscribers_shares")
    # Subscribers who played nothing: carried on, or after the third empty month in a row, unattributed.
    empty = session.execute(text("""
        INSERT INTO subscriber_pool_shares (period, currency, subscriber_id, kind, track_id, payee_id,
                                            listened_ms, empty_months, held, amount_micros)
        SELECT :period, s.currency, s.subscriber_id,
               CASE WHEN coalesce(c.empty_months, 0) + 1 >= :limit THEN 'unattributed' ELSE 'carried' END,
               NULL, NULL, 0, coalesce(c.empty_months, 0) + 1, false, s.amount
          FROM tmp_spool s
          LEFT JOIN subscriber_pool_shares c ON c.period = :previous AND c.kind = 'carried'
                AND c.subscriber_id = s.subscriber_id AND c.currency = s.currency
         WHERE NOT EXISTS (SELECT 1 FROM tmp_slisten l WHERE l.sid = s.sid)
         ORDER BY s.sid
         RETURNING currency, kind, subscriber_id, amount_micros
    """), {"period": period, "previous": previous_period(period), "limit": EMPTY_MONTHS_BEFORE_UNATTRIBUTED}).all()
    lap("subscribers_carry_forward")
    # The credits: per payee and track (from the close's own temp tables, not by re-reading the shares just
    # written), each carried pool by subscriber, the unattributed in one sum per currency.
    credits = [tuple(row) for row in session.execute(text("""
        SELECT currency, 'track', payee_id, track_id, held, NULL::int, sum(amount)::bigint
          FROM (SELECT t.currency, h.payee_id, t.track_id, t.track_id = ANY(CAST(:held AS int[])) AS held, t.amount
                  FROM tmp_strack t JOIN tmp_ssheets h ON h.track_id = t.track_id
                 WHERE t.amount > 0 AND NOT EXISTS (SELECT 1 FROM tmp_smulti m WHERE m.track_id = t.track_id)
                UNION ALL
                SELECT currency, payee_id, track_id, held, amount FROM tmp_smshares WHERE amount > 0) x
         GROUP BY currency, payee_id, track_id, held
    """), params)]
    unattributed: dict[str, int] = {}
    for currency, kind, subscriber_id, amount in empty:
        if kind == "carried":
            credits.append((currency, kind, None, None, False, subscriber_id, int(amount)))
        else:
            unattributed[currency] = unattributed.get(currency, 0) + int(amount)
    credits += [(currency, "unattributed", None, None, False, None, amount) for currency, amount in unattributed.items()]
    credits.sort(key=lambda c: (c[0], c[1], c[2] is None, c[2] or 0, c[3] is None, c[3] or 0, c[5] or 0))
    # (A correlated EXISTS inside FILTER runs once per subscriber over all of tmp_slisten: 85 s for 20,000
    # subscribers. One join against the subscribers who listened is a single hash join.)
    totals = session.execute(text("""
        SELECT s.currency, sum(s.amount)::bigint, count(*), count(*) FILTER (WHERE l.sid IS NULL)
          FROM tmp_spool s LEFT JOIN (SELECT DISTINCT sid FROM tmp_slisten) l ON l.sid = s.sid
         GROUP BY s.currency ORDER BY s.currency
    """)).all()
    summary = {}
    for currency, pool, subscribers, empty in totals:
        by_kind = {kind: sum(int(c[6]) for c in credits if c[0] == currency and c[1] == kind)
                   for kind in ("track", "carried", "unattributed")}
        if sum(by_kind.values()) != pool:  # pragma: no cover - the SQL above cannot lose a micro
            raise AssertionError(f"subscriber pool distribution for {period} {currency} does not add up")
        summary[currency] = {"pool_micros": int(pool), "subscribers": int(subscribers),
                             "attributed_micros": by_kind["track"], "carried_micros": by_kind["carried"],
                             "unattributed_micros": by_kind["unattributed"], "empty_subscribers": int(empty)}
    entries = _entries(period, cutoff - ONE_MICROSECOND, pool_code, credits, held)
    lap("subscribers_build_entries")
    return summary, entries


_LEVEL_ONE = """
    CREATE TEMP TABLE tmp_strack ON COMMIT DROP AS
    WITH parts AS (
        SELECT s.sid, s.currency, s.subscriber_id, l.track_id, l.ms, s.amount,
               (CAST(s.amount AS {kind}) * l.ms) AS scaled,
               CAST(sum(l.ms) OVER (PARTITION BY s.sid) AS {kind}) AS weight
          FROM tmp_spool s JOIN tmp_slisten l ON l.sid = s.sid
    ), floored AS (
        SELECT *, {floor} AS base, mod(scaled, weight) AS rem FROM parts
    ), ranked AS (
        SELECT *, amount - sum(base) OVER (PARTITION BY sid) AS leftover,
               row_number() OVER (PARTITION BY sid ORDER BY rem DESC, track_id) AS rn
          FROM floored
    )
    SELECT sid, currency, subscriber_id, track_id, ms, base + CASE WHEN rn <= leftover THEN 1 ELSE 0 END AS amount
      FROM ranked
"""


def _allocate_tracks(session: Session) -> None:
    """tmp_strack: each subscriber's pool over their tracks (largest remainder, ties by track id). In bigint
    while pool x listening time fits (every real pool does; it is twice as fast as numeric), else numeric:
    PostgreSQL refuses a bigint overflow, so the savepoint is rolled back and nothing is lost."""
    try:
        with session.begin_nested():
            session.execute(text(_LEVEL_ONE.format(kind="bigint", floor="scaled / weight")))
        return
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != "22003":  # numeric_value_out_of_range
            raise
    session.execute(text(_LEVEL_ONE.format(kind="numeric", floor="floor(scaled / weight)::bigint")))


def _held_tracks(session: Session) -> dict:
    """Tracks under a takedown case, with the case's route (rights.escrow: held for the case while it is open,
    the claimant's once upheld), as the flush decides."""
    return routes_for(session, session.scalars(text(
        "SELECT DISTINCT track_id FROM rights_cases WHERE state IN ('disabled', 'countered', 'upheld') "
        "AND track_id IN (SELECT track_id FROM tmp_ssheets)")))


def _entries(period: str, effective_at: datetime, pool_code: str, credits: list, routes: dict) -> list[Entry]:
    following = subscriber_pool(next_period(period))
    by_currency: dict[str, list[Posting]] = {}
    for currency, kind, payee_id, track_id, held, subscriber_id, amount in credits:
        if kind == "track":
            route = routes.get(track_id)
            if route is not None:
                account = route.account(payee_id)
            else:
                account = payee_held(payee_id) if held else payee_payable(payee_id)
            posting = Posting(account, "credit", int(amount), currency, ref=f"track:{track_id}")
        elif kind == "carried":
            posting = Posting(following, "credit", int(amount), currency, ref=subscriber_ref(subscriber_id))
        else:
            posting = Posting(INCOME_UNATTRIBUTED, "credit", int(amount), currency, ref=f"period:{period}")
        by_currency.setdefault(currency, []).append(posting)
    entries = []
    for currency, postings in by_currency.items():
        for index in range(0, len(postings), POSTINGS_PER_ENTRY):
            chunk = postings[index:index + POSTINGS_PER_ENTRY]
            number = index // POSTINGS_PER_ENTRY + 1
            entries.append(Entry(
                idempotency_key=f"subscriber-pool:{period}:{currency}:{number}", effective_at=effective_at,
                description=f"Subscriber pool {period}: to the tracks each subscriber played ({number})",
                postings=[Posting(pool_code, "debit", sum(p.amount_micros for p in chunk), currency,
                                  ref=f"period:{period}"), *chunk],
                metadata={"event": "subscriber_pool_distribution", "period": period, "part": number}))
    return entries


# --- the subscriber's receipt -------------------------------------------------------------------------------
def _listening(session: Session, listener_id: str, start: datetime, end: datetime) -> dict[int, int]:
    rows = session.execute(text("""
        SELECT track_id, sum(ms)::bigint FROM (
            SELECT track_id, sum(heard_ms)::bigint AS ms FROM plays
             WHERE listener_id = :l AND counted_at >= :start AND counted_at < :end AND kind = 'full'
             GROUP BY track_id
            UNION ALL
            SELECT d.track_id, count(*) * max(greatest(coalesce(a.duration_ms, 0), 1000))
              FROM downloads d JOIN tracks t ON t.id = d.track_id LEFT JOIN audio_assets a ON a.id = t.asset_id
             WHERE d.listener_id = :l AND d.completed_at >= :start AND d.completed_at < :end AND d.via = ANY(:vias)
             GROUP BY d.track_id) x
         GROUP BY track_id HAVING sum(ms) > 0 ORDER BY track_id
    """), {"l": listener_id, "start": start, "end": end, "vias": list(COUNTED_VIAS)})
    return {int(track): int(ms) for track, ms in rows}


def provisional_shares(session: Session, subscriber_id: int, period: str, *, clock: Clock) -> list[dict]:
    """Where the subscriber's pool of an open month would go if the month closed now (same allocation)."""
    from catalog.services import split_sheets_at

    start, cutoff = bounds(period)
    now = min(clock.now(), cutoff - ONE_MICROSECOND)
    pools = session.execute(text("""
        SELECT a.currency::text, sum(CASE WHEN p.credit THEN p.amount_micros ELSE -p.amount_micros END)::bigint
          FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id
         WHERE a.code = :code AND p.ref = :ref GROUP BY 1
    """), {"code": subscriber_pool(period), "ref": subscriber_ref(subscriber_id)}).all()
    listening = _listening(session, f"u{subscriber_id}", start, min(clock.now(), cutoff))
    sheets = split_sheets_at(session, list(listening), now) if listening else {}
    listening = {t: ms for t, ms in listening.items() if t in sheets}
    out = []
    for currency, pool in pools:
        if pool <= 0:
            continue
        if not listening:
            out.append({"currency": currency, "kind": "carried", "payee_id": None, "track_id": None,
                        "listened_ms": 0, "amount_micros": int(pool)})
            continue
        tracks = sorted(listening)
        for track_id, part in zip(tracks, allocate(int(pool), [listening[t] for t in tracks]), strict=True):
            shares = sheets[track_id]
            for (payee_id, _), amount in zip(shares, allocate(part, [bp for _, bp in shares]), strict=True):
                if amount:
                    out.append({"currency": currency, "kind": "track", "payee_id": payee_id, "track_id": track_id,
                                "listened_ms": listening[track_id], "amount_micros": amount})
    return out


def subscriber_receipt(session: Session, subscriber_id: int, period: str, *, clock: Clock) -> dict:
    """For one month: each artist (payee) the subscriber's money reached, how much, from how many minutes of
    that subscriber's listening; a closed month from the close's record, an open one as if it closed now."""
    from catalog.models import Payee

    closed = bool(session.execute(text("SELECT EXISTS (SELECT 1 FROM royalty_periods WHERE period = :p)"),
                                  {"p": period}).scalar())
    if closed:
        rows = [{"currency": s.currency, "kind": s.kind, "payee_id": s.payee_id, "track_id": s.track_id,
                 "listened_ms": s.listened_ms, "amount_micros": s.amount_micros, "empty_months": s.empty_months}
                for s in session.scalars(select(SubscriberPoolShare).where(
                    SubscriberPoolShare.period == period, SubscriberPoolShare.subscriber_id == subscriber_id))]
    else:
        rows = provisional_shares(session, subscriber_id, period, clock=clock)
    artists: dict[tuple, dict] = {}
    other = []
    for row in rows:
        if row["kind"] != "track":
            other.append(row)
            continue
        line = artists.setdefault((row["currency"], row["payee_id"]), {
            "payee_id": row["payee_id"], "currency": row["currency"], "amount_micros": 0, "tracks": set(),
            "listened_ms": 0})
        line["amount_micros"] += row["amount_micros"]
        if row["track_id"] not in line["tracks"]:
            line["tracks"].add(row["track_id"])
            line["listened_ms"] += row["listened_ms"]
    names = {p.id: p.display_name for p in session.scalars(select(Payee).where(
        Payee.id.in_([k[1] for k in artists])))} if artists else {}
    lines = []
    for (currency, payee_id), line in artists.items():
        lines.append({"payee_id": payee_id, "name": names.get(payee_id, f"Payee {payee_id}"), "currency": currency,
                      "amount_micros": line["amount_micros"], "tracks": len(line["tracks"]),
                      "minutes": round(line["listened_ms"] / 60000, 1)})
    lines.sort(key=lambda a: (-a["amount_micros"], a["name"]))
    return {"period": period, "closed": closed, "artists": lines,
            "carried": [r for r in other if r["kind"] == "carried"],
            "unattributed": [r for r in other if r["kind"] == "unattributed"]}


def subscribers_reached(session: Session, payee_id: int, period: str | None = None) -> int:
    """How many subscribers' money reached a payee (in one month, or ever)."""
    sql = "SELECT count(DISTINCT subscriber_id) FROM subscriber_pool_shares WHERE payee_id = :p AND kind = 'track'"
    params: dict = {"p": payee_id}
    if period:
        sql += " AND period = :period"
        params["period"] = period
    return int(session.execute(text(sql), params).scalar() or 0)
