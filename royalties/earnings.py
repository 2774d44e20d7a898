"""What an artist (payee) and a key-mode listener see: live balances, daily earnings, the per-track table,
the listener receipt, and finance's holds. Read from the ledger and the sub-ledgers, never recomputed.
The services here never commit: the caller owns the transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.clock import Clock
from core.errors import Conflict, NotFound
from core.money import allocate
from royalties.models import PayeeHold, PoolShare, RoyaltyPeriod
from royalties.periods import bounds

# Sales count net of their refunds and disputes (a refund is a negative earning of the track it came from).
SALE_EVENTS = ("sale", "refund", "chargeback", "chargeback_won")
# Premium: subscriber pools shared at the close, less what a refund after the close recouped.
PREMIUM_EVENTS = ("subscriber_pool_distribution", "subscription_refund")
EARNING_EVENTS = ("ad_flush", "pool_distribution", *SALE_EVENTS, *PREMIUM_EVENTS)


def payees_for_user(session: Session, user_id: int) -> list:
    """Every payee this user may see: their own (by account), and their artists' payees."""
    from catalog.models import ArtistMember, Payee

    artist_ids = select(ArtistMember.artist_id).where(ArtistMember.user_id == user_id)
    return list(session.scalars(select(Payee).where((Payee.user_id == user_id) | Payee.artist_id.in_(artist_ids))
                                .order_by(Payee.artist_id.is_(None), Payee.id)))


def balances_for_payee(session: Session, payee_id: int) -> list[dict]:
    """Live balances per currency: payable (owed to the payee) and held (disputed)."""
    from ledger.accounts import payee_held, payee_payable

    rows = session.execute(text("""
        SELECT currency::text, code, balance_micros FROM ledger_accounts WHERE code IN (:payable, :held)
        ORDER BY currency
    """), {"payable": payee_payable(payee_id), "held": payee_held(payee_id)}).all()
    out: dict[str, dict] = {}
    for currency, code, balance in rows:
        entry = out.setdefault(currency, {"currency": currency, "payable_micros": 0, "held_micros": 0})
        entry["held_micros" if code.endswith(":held") else "payable_micros"] = int(balance)
    return list(out.values())


def daily_earnings(session: Session, payee_id: int, currency: str, *, start: date, end: date) -> list[tuple[date, int]]:
    """Earnings credited per UTC day in [start, end], zero-filled (payable and held, earning events only)."""
    from ledger.accounts import payee_held, payee_payable

    rows = session.execute(text("""
        SELECT (e.effective_at AT TIME ZONE 'UTC')::date AS day,
               sum(CASE WHEN p.credit THEN p.amount_micros ELSE -p.amount_micros END)::bigint
          FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id
          JOIN ledger_entries e ON e.id = p.entry_id
         WHERE a.code IN (:payable, :held) AND a.currency = :currency
           AND e.metadata->>'event' = ANY(:events)
           AND e.effective_at >= :start AND e.effective_at < :end
         GROUP BY 1
    """), {"payable": payee_payable(payee_id), "held": payee_held(payee_id), "currency": currency,
           "events": list(EARNING_EVENTS), "start": datetime.combine(start, time.min, tzinfo=UTC),
           "end": datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)}).all()
    by_day = {row[0]: int(row[1]) for row in rows}
    days = (end - start).days + 1
    return [(start + timedelta(days=i), by_day.get(start + timedelta(days=i), 0)) for i in range(days)]


def track_table(session: Session, payee_id: int, currency: str) -> list[dict]:
    """Per track the payee earns from: downloads, impressions, and the payee's revenue (all time)."""
    from catalog.models import Payee
    from ledger.accounts import payee_held, payee_payable

    payee = session.get(Payee, payee_id)
    artist_id = payee.artist_id if payee else None
    rows = session.execute(text("""
        WITH revenue AS (
            SELECT substr(p.ref, 7)::int AS track_id,
                   sum(CASE WHEN p.credit THEN p.amount_micros ELSE -p.amount_micros END)::bigint AS micros
              FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id
              JOIN ledger_entries e ON e.id = p.entry_id
             WHERE a.code IN (:payable, :held) AND a.currency = :currency AND p.ref ~ '^track:[0-9]+$'
               AND e.metadata->>'event' = ANY(:events)
             GROUP BY 1
        ), tracks_of AS (
            SELECT track_id FROM revenue
            UNION SELECT t.id FROM tracks t JOIN releases r ON r.id = t.release_id WHERE r.artist_id = :artist
        )
        SELECT t.id, t.title, r.title, r.id,
               (SELECT count(*) FROM downloads d WHERE d.track_id = t.id),
               (SELECT count(*) FROM ad_impressions i WHERE i.track_id = t.id),
               coalesce(rev.micros, 0)
          FROM tracks_of x JOIN tracks t ON t.id = x.track_id JOIN releases r ON r.id = t.release_id
          LEFT JOIN revenue rev ON rev.track_id = t.id
         ORDER BY coalesce(rev.micros, 0) DESC, t.id
    """), {"payable": payee_payable(payee_id), "held": payee_held(payee_id), "currency": currency,
           "events": list(EARNING_EVENTS), "artist": artist_id or -1}).all()
    sales = sales_by_track(session, payee_id, currency)
    empty = {"sales": 0, "sales_micros": 0, "refunds_micros": 0, "disputes_micros": 0, "fees_micros": 0}
    return [{"track_id": r[0], "title": r[1], "release_title": r[2], "release_id": r[3], "downloads": int(r[4]),
             "impressions": int(r[5]), "revenue_micros": int(r[6]), **sales.get(r[0], empty)} for r in rows]


def premium_earnings(session: Session, payee_id: int, currency: str) -> dict:
    """What premium subscribers' pools brought the payee: in all (from the books, net of refunds recouped after
    a close), how many subscribers' money reached them, and per closed month the amount and subscribers."""
    from ledger.accounts import payee_held, payee_payable
    from royalties.subscriber_pool import subscribers_reached

    total = session.execute(text("""
        SELECT coalesce(sum(CASE WHEN p.credit THEN p.amount_micros ELSE -p.amount_micros END), 0)::bigint
          FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id
          JOIN ledger_entries e ON e.id = p.entry_id
         WHERE a.code IN (:payable, :held) AND a.currency = :currency AND e.metadata->>'event' = ANY(:events)
    """), {"payable": payee_payable(payee_id), "held": payee_held(payee_id), "currency": currency,
           "events": list(PREMIUM_EVENTS)}).scalar()
    months = session.execute(text("""
        SELECT period, sum(amount_micros)::bigint,
               (SELECT count(DISTINCT s) FROM subscriber_pool_payees q CROSS JOIN LATERAL unnest(q.subscriber_ids) s
                 WHERE q.payee_id = :payee AND q.currency = :currency AND q.period = p.period)
          FROM subscriber_pool_payees p
         WHERE payee_id = :payee AND currency = :currency GROUP BY period ORDER BY period DESC
    """), {"payee": payee_id, "currency": currency}).all()
    subscribers = subscribers_reached(session, payee_id, currency=currency)
    return {"earned_micros": int(total or 0), "subscribers": int(subscribers or 0),
            "months": [{"period": m[0], "amount_micros": int(m[1]), "subscribers": int(m[2])} for m in months]}


def sales_by_track(session: Session, payee_id: int, currency: str) -> dict[int, dict]:
    """Per track, the payee's side of its sales, straight from the books: how many sales credited the payee,
    what they credited (`sales_micros`), what refunds and disputes took back (positive amounts; a won dispute
    gives back what its opening took), and the card fees of those sales charged to the track (the fee comes
    off the gross before the 90% is split, so it is the track's, shared by its payees)."""
    from ledger.accounts import PROCESSING_FEES, payee_held, payee_payable

    rows = session.execute(text("""
        WITH mine AS (
            SELECT p.entry_id, substr(p.ref, 7)::int AS track_id, e.metadata->>'event' AS event,
                   sum(CASE WHEN p.credit THEN p.amount_micros ELSE -p.amount_micros END)::bigint AS signed
              FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id
              JOIN ledger_entries e ON e.id = p.entry_id
             WHERE a.code IN (:payable, :held) AND a.currency = :currency AND p.ref ~ '^track:[0-9]{1,9}$'
               AND e.metadata->>'event' = ANY(:events)
             GROUP BY 1, 2, 3
        ), fees AS (
            SELECT m.track_id, sum(fp.amount_micros)::bigint AS micros
              FROM mine m JOIN ledger_postings fp ON fp.entry_id = m.entry_id AND fp.ref = 'track:' || m.track_id
              JOIN ledger_accounts fa ON fa.id = fp.account_id AND fa.code = :fees AND fa.currency = :currency
             WHERE m.event = 'sale'
             GROUP BY 1
        )
        SELECT m.track_id, count(*) FILTER (WHERE m.event = 'sale'),
               coalesce(sum(m.signed) FILTER (WHERE m.event = 'sale'), 0),
               coalesce(-sum(m.signed) FILTER (WHERE m.event = 'refund'), 0),
               coalesce(-sum(m.signed) FILTER (WHERE m.event IN ('chargeback', 'chargeback_won')), 0),
               coalesce(min(f.micros), 0)
          FROM mine m LEFT JOIN fees f ON f.track_id = m.track_id
         GROUP BY m.track_id
    """), {"payable": payee_payable(payee_id), "held": payee_held(payee_id), "currency": currency,
           "events": list(SALE_EVENTS), "fees": PROCESSING_FEES}).all()
    return {track_id: {"sales": int(count), "sales_micros": int(sold), "refunds_micros": int(refunded),
                       "disputes_micros": int(disputed), "fees_micros": int(fees)}
            for track_id, count, sold, refunded, disputed, fees in rows}


@dataclass(frozen=True)
class TrackEarning:
    track_id: int
    currency: str
    payable_micros: int
    held_micros: int
    impressions: int


def earnings_by_track(session: Session, payee_ids: Iterable[int]) -> list[TrackEarning]:
    """Per track, what these payees have been credited (payable and held), straight from the ledger's
    postings (ref "track:{id}"), with the track's counted impressions from the sub-ledger."""
    from ledger.accounts import payee_held, payee_payable

    payee_ids = sorted(set(payee_ids))
    if not payee_ids:
        return []
    codes = [payee_payable(p) for p in payee_ids] + [payee_held(p) for p in payee_ids]
    rows = session.execute(text("""
        SELECT substr(p.ref, 7)::int AS track_id, p.currency, a.code = ANY(:held_codes) AS held,
               sum(CASE WHEN p.credit THEN p.amount_micros ELSE -p.amount_micros END) AS amount
        FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id
        WHERE a.code = ANY(:codes) AND p.ref ~ '^track:[0-9]{1,9}$'
        GROUP BY 1, 2, 3
    """), {"codes": codes, "held_codes": [payee_held(p) for p in payee_ids]}).all()
    totals: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    for track_id, currency, held, amount in rows:
        totals[(track_id, currency)][1 if held else 0] += int(amount)
    counts = dict(session.execute(text(
        "SELECT track_id, count(*) FROM ad_impressions WHERE track_id = ANY(:ids) GROUP BY track_id"),
        {"ids": sorted({t for t, _ in totals})}).all()) if totals else {}
    return [TrackEarning(track_id, currency, payable, held, int(counts.get(track_id, 0)))
            for (track_id, currency), (payable, held) in sorted(totals.items())]


def listener_receipt(session: Session, listener_id: str, period: str, *, clock: Clock) -> dict:
    """Which artists a key-mode listener's ad views paid in `period`, and how much.

    For a closed month, the shares the close recorded; for an open month, where the pool would go if the
    month closed now (the same allocation, over the downloads so far)."""
    from catalog.models import Payee

    start, cutoff = bounds(period)
    closed = session.get(RoyaltyPeriod, period) is not None
    lines: dict[tuple, int] = {}
    unattributed: dict[str, int] = {}
    if closed:
        for share in session.scalars(select(PoolShare).where(PoolShare.period == period,
                                                             PoolShare.listener_id == listener_id)):
            if share.payee_id is None:
                unattributed[share.currency] = unattributed.get(share.currency, 0) + share.amount_micros
            else:
                key = (share.currency, share.payee_id)
                lines[key] = lines.get(key, 0) + share.amount_micros
    else:
        for (currency, payee_id), amount in _provisional(session, listener_id, period, start, cutoff, clock).items():
            if payee_id is None:
                unattributed[currency] = unattributed.get(currency, 0) + amount
            else:
                lines[(currency, payee_id)] = amount
    names = {p.id: p.display_name for p in session.scalars(select(Payee).where(
        Payee.id.in_([k[1] for k in lines])))} if lines else {}
    artists = [{"payee_id": payee_id, "name": names.get(payee_id, f"Payee {payee_id}"), "currency": currency,
                "amount_micros": amount} for (currency, payee_id), amount in lines.items() if amount]
    artists.sort(key=lambda a: (-a["amount_micros"], a["name"]))
    return {"period": period, "closed": closed, "listener_id": listener_id, "artists": artists,
            "unattributed": unattributed}


def _provisional(session, listener_id, period, start, cutoff, clock) -> dict:
    from catalog.services import split_sheets_at
    from ledger.accounts import listener_pool

    pools = session.execute(text("""
        SELECT a.currency::text, sum(CASE WHEN p.credit THEN p.amount_micros ELSE -p.amount_micros END)::bigint
          FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id
         WHERE a.code = :code AND p.ref = :ref GROUP BY 1
    """), {"code": listener_pool(period), "ref": f"listener:{listener_id}"}).all()
    downloads = session.execute(text("""
        SELECT track_id, count(*) FROM downloads
         WHERE listener_id = :lid AND completed_at >= :start AND completed_at < :cutoff AND via <> 'preview'
         GROUP BY track_id ORDER BY track_id
    """), {"lid": listener_id, "start": start, "cutoff": cutoff}).all()
    at = min(clock.now(), cutoff - timedelta(microseconds=1))
    sheets = split_sheets_at(session, [d[0] for d in downloads], at) if downloads else {}
    downloads = [d for d in downloads if d[0] in sheets]
    out: dict[tuple, int] = {}
    for currency, pool in pools:
        if pool <= 0:
            continue
        if not downloads:
            out[(currency, None)] = pool
            continue
        for (track_id, _), part in zip(downloads, allocate(pool, [int(d[1]) for d in downloads]), strict=True):
            shares = sheets[track_id]
            for (payee_id, _), amount in zip(shares, allocate(part, [bp for _, bp in shares]), strict=True):
                out[(currency, payee_id)] = out.get((currency, payee_id), 0) + amount
    return out


def place_hold(session: Session, payee_id: int, *, reason: str, placed_by: int | None, clock: Clock) -> PayeeHold:
    reason = (reason or "").strip()
    if not 3 <= len(reason) <= 500:
        raise Conflict("Say why the payee is on hold (3 to 500 characters).", code="hold_reason_required", status=422)
    if session.scalar(select(PayeeHold).where(PayeeHold.payee_id == payee_id, PayeeHold.released_at.is_(None))):
        raise Conflict("That payee is already on hold.", code="already_on_hold")
    hold = PayeeHold(payee_id=payee_id, reason=reason, placed_by=placed_by, placed_at=clock.now())
    session.add(hold)
    session.flush()
    return hold


def release_hold(session: Session, payee_id: int, *, released_by: int | None, clock: Clock) -> PayeeHold:
    hold = session.scalar(select(PayeeHold).where(PayeeHold.payee_id == payee_id, PayeeHold.released_at.is_(None)))
    if hold is None:
        raise NotFound("That payee is not on hold.", code="not_on_hold")
    hold.released_at = clock.now()
    hold.released_by = released_by
    session.flush()
    return hold
