"""Monthly periods: closing one freezes its entries and chains them into a SHA-256 digest.

The digest of a period is h_n where h_0 is the previous closed period's digest (32 zero bytes for the first)
and h_i = SHA-256(h_{i-1} || canonical(entry_i)), entries taken in id order. Any later change to a closed
period's entries or postings changes the digest, which `ledger.checks` recomputes.

Closing a month also closes every earlier month still open (books close in order), and the database then
refuses any entry effective before the end of the latest closed month.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from ledger.accounts import PERIOD_RE
from ledger.errors import InvalidEntry

ZERO_DIGEST = bytes(32)


@dataclass(frozen=True, slots=True)
class ClosedPeriod:
    period: str
    starts_at: datetime
    ends_at: datetime
    closed_at: datetime | None
    entry_count: int
    digest: str | None  # hex; None for an empty month closed implicitly before the books began


def check_period(period: str) -> str:
    if not isinstance(period, str) or not PERIOD_RE.match(period):
        raise InvalidEntry(f"{period!r} is not a period; write it as YYYY-MM", code="invalid_period")
    return period


def period_bounds(period: str) -> tuple[datetime, datetime]:
    year, month = map(int, check_period(period).split("-"))
    try:
        start = datetime(year, month, 1, tzinfo=UTC)
        end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    except ValueError:  # year 0000, or 9999-12 whose end is in year 10000
        raise InvalidEntry(f"{period!r} is outside the calendar", code="invalid_period") from None
    return start, end


def period_of(when: datetime) -> str:
    when = when.astimezone(UTC)
    return f"{when.year:04d}-{when.month:02d}"


def _next(period: str) -> str:
    return period_of(period_bounds(period)[1])


def _cursor(session: Session):
    return session.connection().connection.dbapi_connection.cursor()


def canonical_entry(entry_id: int, key: str, effective_at: datetime, reverses_id: int | None, description: str,
                    metadata: dict, postings: list[tuple]) -> bytes:
    """The bytes of one entry that the digest covers: every field and every posting, unambiguously."""
    head = [str(entry_id), key, effective_at.astimezone(UTC).isoformat(), str(reverses_id or ""), description,
            json.dumps(metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=False)]
    parts = ["\x1f".join(head)]
    for position, code, currency, credit, amount, ref in postings:
        parts.append("\x1f".join((str(position), code, currency.strip(), "C" if credit else "D", str(amount),
                                  ref or "")))
    return "\x1e".join(parts).encode()


def iter_period_entries(session: Session, starts_at: datetime, ends_at: datetime) -> Iterator[bytes]:
    """Canonical bytes of every entry effective in [starts_at, ends_at), in id order, streamed."""
    conn = session.connection().connection.dbapi_connection
    with conn.cursor(name="ledger_period_scan") as cur:
        cur.itersize = 5000
        cur.execute(
            """
            SELECT e.id, e.idempotency_key, e.effective_at, e.reverses_id, e.description, e.metadata,
                   array_agg(ARRAY[p.position::text, a.code, p.currency::text, p.credit::text,
                                   p.amount_micros::text, coalesce(p.ref, '')] ORDER BY p.position)
              FROM ledger_entries e
              JOIN ledger_postings p ON p.entry_id = e.id
              JOIN ledger_accounts a ON a.id = p.account_id
             WHERE e.effective_at >= %s AND e.effective_at < %s
             GROUP BY e.id ORDER BY e.id
            """, (starts_at, ends_at))
        for entry_id, key, at, reverses_id, description, metadata, postings in cur:
            rows = [(int(pos), code, cur_, credit == "true", int(amount), ref or None)
                    for pos, code, cur_, credit, amount, ref in postings]
            yield canonical_entry(entry_id, key, at, reverses_id, description, metadata, rows)


def chain_digest(previous: bytes, lines: Iterator[bytes]) -> tuple[bytes, int]:
    digest, count = previous, 0
    for line in lines:
        digest = hashlib.sha256(digest + line).digest()
        count += 1
    return digest, count


def _closed_until(cur) -> tuple[str | None, datetime | None, bytes]:
    cur.execute("SELECT period, ends_at, digest FROM ledger_periods ORDER BY ends_at DESC LIMIT 1")
    row = cur.fetchone()
    return (row[0], row[1].astimezone(UTC), bytes(row[2])) if row else (None, None, ZERO_DIGEST)


def is_period_closed(session: Session, period: str) -> bool:
    _, end = period_bounds(period)
    cur = _cursor(session)
    cur.execute("SELECT max(ends_at) FROM ledger_periods")
    closed_until = cur.fetchone()[0]
    return closed_until is not None and end <= closed_until


def get_period(session: Session, period: str) -> ClosedPeriod | None:
    start, end = period_bounds(period)
    cur = _cursor(session)
    cur.execute("SELECT closed_at, entry_count, digest FROM ledger_periods WHERE period = %s", (period,))
    row = cur.fetchone()
    if row is None:
        return ClosedPeriod(period, start, end, None, 0, None) if is_period_closed(session, period) else None
    return ClosedPeriod(period, start, end, row[0].astimezone(UTC), row[1], bytes(row[2]).hex())


def close_period(session: Session, period: str) -> ClosedPeriod:
    """Close `period` (and any earlier open month), storing each one's digest; closing twice is a no-op.

    One step, not a resumable process: it runs in a savepoint of the caller's transaction and never commits
    (the caller does; until then the table lock keeps new postings out). A failure rolls back only this step.
    """
    start, end = period_bounds(period)
    with session.begin_nested():
        cur = _cursor(session)
        # Wait for in-flight posters and keep new ones out until the digests are stored (and committed).
        cur.execute("LOCK TABLE ledger_entries IN SHARE ROW EXCLUSIVE MODE")
        last, closed_until, previous = _closed_until(cur)
        if closed_until is None or closed_until < end:
            if closed_until is None:
                cur.execute("SELECT min(effective_at) FROM ledger_entries")
                first = cur.fetchone()[0]
                month = period_of(first) if first is not None and first < start else period
            else:
                month = period_of(closed_until)
            while True:
                m_start, m_end = period_bounds(month)
                digest, count = chain_digest(previous, iter_period_entries(session, m_start, m_end))
                cur.execute("SELECT max(id) FROM ledger_entries WHERE effective_at >= %s AND effective_at < %s",
                            (m_start, m_end))
                last_id = cur.fetchone()[0]
                cur.execute("INSERT INTO ledger_periods (period, starts_at, ends_at, entry_count, last_entry_id, "
                            "previous_digest, digest) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                            (month, m_start, m_end, count, last_id, previous, digest))
                previous = digest
                if month == period:
                    break
                month = _next(month)
    return get_period(session, period)
