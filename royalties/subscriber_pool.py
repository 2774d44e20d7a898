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
Each subscriber's month is one `subscriber_pool_receipts` row (what the receipt and a refund's recoup read;
the view `subscriber_pool_shares` unnests it into parts), each payee's and track's one `subscriber_pool_payees`
row (the amount and whose pools it was), and every move a posting of a balanced entry.

Transaction: called by `royalties.close.close_month`, inside its transaction (which commits once).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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
    """Write `period`'s subscriber pool receipts and payee rows; return (per-currency summary, the entries)."""

    start, cutoff = bounds(period)
    pool_code = subscriber_pool(period)
    session.execute(text("DROP TABLE IF EXISTS tmp_spool, tmp_ssheets, tmp_ssheet_tracks, tmp_sdownloads"))
    session.execute(text("SET LOCAL work_mem = '256MB'"))
    # Each subscriber's part of the pool, numbered (sid) so that the allocation sorts and partitions integers.
    session.execute(text("""
        CREATE TEMP TABLE tmp_spool ON COMMIT DROP AS
        SELECT (row_number() OVER (ORDER BY subscriber_id, currency))::int AS sid, currency, subscriber_id,
               'u' || subscriber_id AS listener_id, amount
          FROM (SELECT a.currency::text AS currency, substr(p.ref, 12)::int AS subscriber_id,
                       sum(CASE WHEN p.credit THEN p.amount_micros ELSE -p.amount_micros END)::bigint AS amount
                  FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id
                 WHERE a.code = :code AND p.ref LIKE 'subscriber:%'
                 GROUP BY 1, 2
                HAVING sum(CASE WHEN p.credit THEN p.amount_micros ELSE -p.amount_micros END) > 0) x
    """), {"code": pool_code})
    session.execute(text("ANALYZE tmp_spool"))
    lap("subscribers_pools")
    # The split sheet in force at the month's last instant of every track that has one; per track, its payees
    # and weights in sheet order. A track no sheet can credit does not count: its listening is left out.
    stage_split_sheets(session, "tmp_ssheets", "split_sheets", cutoff)
    session.execute(text("""
        CREATE TEMP TABLE tmp_ssheet_tracks ON COMMIT DROP AS
        SELECT track_id, CASE WHEN count(*) = 1 THEN min(payee_id) END AS payee,
               array_agg(payee_id ORDER BY position) AS payee_ids, array_agg(share_bp ORDER BY position) AS weights
          FROM tmp_ssheets GROUP BY track_id
    """))
    session.execute(text("CREATE UNIQUE INDEX ON tmp_ssheet_tracks (track_id)"))
    session.execute(text("ANALYZE tmp_ssheet_tracks"))
    held = _held_tracks(session)
    lap("subscribers_split_sheets")
    # Each subscriber's pool over the tracks they played by counted listening (level 1), written as one receipt
    # row per subscriber (the allocation's window sort leaves its rows in subscriber order, which the grouping
    # uses); then each part of a track with several payees over its sheet (level 2, in place).
    _write_receipts(session, period, start, cutoff, list(held))
    _split_multi_payee(session, period)
    lap("subscribers_allocate_and_receipts")
    params = {"period": period}
    # Subscribers who played nothing: carried on, or after the third empty month in a row, unattributed.
    empty = session.execute(text("""
        INSERT INTO subscriber_pool_receipts (subscriber_id, period, currency, kind, empty_months, amount_micros)
        SELECT s.subscriber_id, CAST(:period AS varchar), s.currency,
               CASE WHEN coalesce(c.empty_months, 0) + 1 >= :limit THEN 'unattributed' ELSE 'carried' END,
               coalesce(c.empty_months, 0) + 1, s.amount
          FROM tmp_spool s
          LEFT JOIN subscriber_pool_receipts c ON c.subscriber_id = s.subscriber_id AND c.period = :previous
                AND c.currency = s.currency AND c.kind = 'carried'
         WHERE NOT EXISTS (SELECT 1 FROM subscriber_pool_receipts r WHERE r.subscriber_id = s.subscriber_id
                              AND r.period = :period AND r.currency = s.currency)
         ORDER BY s.sid
         RETURNING currency, kind, subscriber_id, amount_micros
    """), {"period": period, "previous": previous_period(period), "limit": EMPTY_MONTHS_BEFORE_UNATTRIBUTED}).all()
    lap("subscribers_carry_forward")
    # One reading of the month's receipts (6.6 M parts in the bench), grouped by hash per payee and track (the
    # planner cannot know how many parts an unnest gives, and would sort them all, spilling to disk): written as
    # the payee rows (the amount, and whose pools they were: a receipt has one part per track and payee, so
    # each subscriber once), and returned as the credits.
    with _settings(session, enable_sort="off", work_mem="512MB"):
        credits = [tuple(row) for row in session.execute(text("""
            WITH tracks AS (
                SELECT r.currency, u.payee_id, u.track_id, u.held, sum(u.amount)::bigint AS amount,
                       array_agg(r.subscriber_id) AS subscribers
                  FROM subscriber_pool_receipts r
                 CROSS JOIN LATERAL unnest(r.track_ids, r.payee_ids, r.held, r.amounts)
                       AS u(track_id, payee_id, held, amount)
                 WHERE r.period = :period AND r.kind = 'track'
                 GROUP BY r.currency, u.payee_id, u.track_id, u.held
            ), payees AS (
                INSERT INTO subscriber_pool_payees (payee_id, period, currency, track_id, amount_micros, subscriber_ids)
                SELECT payee_id, CAST(:period AS varchar), currency, track_id, amount, subscribers FROM tracks
            )
            SELECT currency, 'track', payee_id, track_id, held, NULL::int, amount FROM tracks
        """), params)]
    lap("subscribers_payees_and_credits")
    unattributed: dict[str, int] = {}
    empty_count: dict[str, int] = {}
    for currency, kind, subscriber_id, amount in empty:
        empty_count[currency] = empty_count.get(currency, 0) + 1
        if kind == "carried":
            credits.append((currency, kind, None, None, False, subscriber_id, int(amount)))
        else:
            unattributed[currency] = unattributed.get(currency, 0) + int(amount)
    credits += [(currency, "unattributed", None, None, False, None, amount) for currency, amount in unattributed.items()]
    credits.sort(key=lambda c: (c[0], c[1], c[2] is None, c[2] or 0, c[3] is None, c[3] or 0, c[5] or 0))
    totals = session.execute(text(
        "SELECT currency, sum(amount)::bigint, count(*) FROM tmp_spool GROUP BY currency ORDER BY currency")).all()
    summary = {}
    for currency, pool, subscribers in totals:
        by_kind = {kind: sum(int(c[6]) for c in credits if c[0] == currency and c[1] == kind)
                   for kind in ("track", "carried", "unattributed")}
        if sum(by_kind.values()) != pool:  # pragma: no cover - the SQL above cannot lose a micro
            raise AssertionError(f"subscriber pool distribution for {period} {currency} does not add up")
        summary[currency] = {"pool_micros": int(pool), "subscribers": int(subscribers),
                             "attributed_micros": by_kind["track"], "carried_micros": by_kind["carried"],
                             "unattributed_micros": by_kind["unattributed"],
                             "empty_subscribers": empty_count.get(currency, 0)}
    entries = _entries(period, cutoff - ONE_MICROSECOND, pool_code, credits, held)
    lap("subscribers_build_entries")
    return summary, entries


# Level 1 in {kind} (bigint while pool x listening time fits, else numeric). Listening per (subscriber, track):
# the month's full plays' heard time as listening_totals keeps it (a trigger on plays, migration 0016), plus
# each completed download as a whole play of the track; only tracks with a split sheet count.
_RECEIPTS = """
    INSERT INTO subscriber_pool_receipts (subscriber_id, period, currency, kind, empty_months, amount_micros,
                                          track_ids, payee_ids, listened_ms, held, amounts)
    WITH listen AS (
        SELECT s.sid, s.amount AS pool, l.track_id, l.heard_ms + coalesce(d.ms, 0) AS ms
          FROM listening_totals l JOIN tmp_spool s ON s.listener_id = l.listener_id
          LEFT JOIN tmp_sdownloads d ON d.sid = s.sid AND d.track_id = l.track_id
         WHERE l.period = :period AND l.heard_ms + coalesce(d.ms, 0) > 0
        UNION ALL
        SELECT d.sid, d.pool, d.track_id, d.ms FROM tmp_sdownloads d
         WHERE d.ms > 0 AND NOT EXISTS (SELECT 1 FROM listening_totals l WHERE l.period = :period
                                           AND l.listener_id = d.listener_id AND l.track_id = d.track_id)
    ), parts AS (
        SELECT l.sid, l.pool, l.track_id, l.ms, h.payee, (CAST(l.pool AS {kind}) * l.ms) AS scaled,
               CAST(sum(l.ms) OVER (PARTITION BY l.sid) AS {kind}) AS weight
          FROM listen l JOIN tmp_ssheet_tracks h ON h.track_id = l.track_id
    ), floored AS (
        SELECT *, {floor} AS base, mod(scaled, weight) AS rem FROM parts
    ), ranked AS (
        SELECT sid, track_id, ms, payee,
               base + CASE WHEN row_number() OVER (PARTITION BY sid ORDER BY rem DESC, track_id)
                                <= pool - sum(base) OVER (PARTITION BY sid) THEN 1 ELSE 0 END AS amount
          FROM floored
    ), grouped AS (
        SELECT sid, array_agg(track_id) AS track_ids, array_agg(payee) AS payee_ids, array_agg(ms) AS ms,
               array_agg(track_id = ANY(CAST(:held AS int[]))) AS held, array_agg(amount) AS amounts
          FROM ranked WHERE amount > 0
         GROUP BY sid
    )
    SELECT s.subscriber_id, CAST(:period AS varchar), s.currency, 'track', 0, s.amount, g.track_ids, g.payee_ids,
           g.ms, g.held, g.amounts
      FROM grouped g JOIN tmp_spool s ON s.sid = g.sid
"""

# Level 2 for the tracks whose sheet has several payees (their payee is NULL in the receipts just written):
# each such part over the sheet by `ninety_allocate`, in place, keeping the receipt's order; a zero part is
# left out, as level 1 leaves out a track whose part is zero.
_SPLIT_MULTI_PAYEE = """
    UPDATE subscriber_pool_receipts r
       SET track_ids = x.track_ids, payee_ids = x.payee_ids, listened_ms = x.ms, held = x.held, amounts = x.amounts
      FROM (SELECT o.subscriber_id, o.currency, array_agg(e.track_id ORDER BY e.n, e.k) AS track_ids,
                   array_agg(e.payee_id ORDER BY e.n, e.k) AS payee_ids, array_agg(e.ms ORDER BY e.n, e.k) AS ms,
                   array_agg(e.held ORDER BY e.n, e.k) AS held, array_agg(e.amount ORDER BY e.n, e.k) AS amounts
              FROM subscriber_pool_receipts o
             CROSS JOIN LATERAL (
                   SELECT u.n, p.k, u.track_id, coalesce(u.payee_id, p.payee_id) AS payee_id, u.ms, u.held,
                          CASE WHEN u.payee_id IS NULL THEN p.amount ELSE u.amount END AS amount
                     FROM unnest(o.track_ids, o.payee_ids, o.listened_ms, o.held, o.amounts)
                          WITH ORDINALITY AS u(track_id, payee_id, ms, held, amount, n)
                     LEFT JOIN tmp_ssheet_tracks h ON u.payee_id IS NULL AND h.track_id = u.track_id
                     LEFT JOIN LATERAL unnest(h.payee_ids, ninety_allocate(u.amount, h.weights))
                          WITH ORDINALITY AS p(payee_id, amount, k) ON true) e
             WHERE o.period = :period AND array_position(o.payee_ids, NULL) IS NOT NULL AND e.amount > 0
             GROUP BY o.subscriber_id, o.currency) x
     WHERE r.subscriber_id = x.subscriber_id AND r.period = :period AND r.currency = x.currency
"""


def _write_receipts(session: Session, period: str, start: datetime, cutoff: datetime, held: list[int]) -> None:
    """The receipts of every subscriber who played something. In bigint while pool x listening time fits
    (every real pool does; it is twice as fast as numeric), else numeric: PostgreSQL refuses a bigint overflow,
    so the savepoint is rolled back and nothing is lost."""
    # Each completed download of a sheeted track as a whole play (its duration, at least a second); small
    # beside the plays, and in a table of its own so the planner knows how small.
    session.execute(text("""
        CREATE TEMP TABLE tmp_sdownloads ON COMMIT DROP AS
        SELECT s.sid, s.amount AS pool, s.listener_id, d.track_id,
               sum(least(greatest(coalesce(a.duration_ms, 0), 1000), 2147483647))::bigint AS ms
          FROM downloads d JOIN tmp_spool s ON s.listener_id = d.listener_id
          JOIN tmp_ssheet_tracks h ON h.track_id = d.track_id
          JOIN tracks t ON t.id = d.track_id LEFT JOIN audio_assets a ON a.id = t.asset_id
         WHERE d.completed_at >= :start AND d.completed_at < :cutoff AND d.via = ANY(:vias)
         GROUP BY 1, 2, 3, 4
    """), {"start": start, "cutoff": cutoff, "vias": list(COUNTED_VIAS)})
    session.execute(text("ANALYZE tmp_sdownloads"))
    params = {"period": period, "held": held}
    # The level-1 sort is of every (subscriber, track) pair: a larger share of memory for this statement.
    with _settings(session, work_mem="512MB"):
        try:
            with session.begin_nested():
                session.execute(text(_RECEIPTS.format(kind="bigint", floor="scaled / weight")), params)
            return
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != "22003":  # numeric_value_out_of_range
                raise
        session.execute(text(_RECEIPTS.format(kind="numeric", floor="floor(scaled / weight)::bigint")), params)


@contextmanager
def _settings(session: Session, **settings: str) -> Iterator[None]:
    """Planner settings for the statements inside (set_config, local to the transaction), put back after."""
    names = {f"n{i}": name for i, name in enumerate(settings)}
    set_all = ", ".join(f"set_config(:{key}, :v{key}, true)" for key in names)
    before = session.execute(text(f"SELECT {', '.join(f'current_setting(:{key})' for key in names)}, {set_all}"),
                             {**names, **{f"v{key}": settings[name] for key, name in names.items()}}).one()
    try:
        yield
    finally:
        was = dict(zip((f"v{key}" for key in names), before[:len(names)], strict=True))
        session.execute(text(f"SELECT {set_all}"), {**names, **was})


def _split_multi_payee(session: Session, period: str) -> None:
    if session.execute(text("SELECT EXISTS (SELECT 1 FROM tmp_ssheet_tracks WHERE payee IS NULL)")).scalar():
        session.execute(text(_SPLIT_MULTI_PAYEE), {"period": period})


def _held_tracks(session: Session) -> dict:
    """Tracks under a takedown case, with the case's route (rights.escrow: held for the case while it is open,
    the claimant's once upheld), as the flush decides."""
    return routes_for(session, session.scalars(text(
        "SELECT DISTINCT track_id FROM rights_cases WHERE state IN ('disabled', 'countered', 'upheld') "
        "AND track_id IN (SELECT track_id FROM tmp_ssheet_tracks)")))


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


def subscribers_reached(session: Session, payee_id: int, period: str | None = None,
                        currency: str | None = None) -> int:
    """How many subscribers' money reached a payee (in one month, or ever; in one currency, or any)."""
    sql = ("SELECT count(DISTINCT s) FROM subscriber_pool_payees p CROSS JOIN LATERAL unnest(p.subscriber_ids) s "
           "WHERE p.payee_id = :p")
    params: dict = {"p": payee_id}
    if period:
        sql += " AND p.period = :period"
        params["period"] = period
    if currency:
        sql += " AND p.currency = :currency"
        params["currency"] = currency
    return int(session.execute(text(sql), params).scalar() or 0)
