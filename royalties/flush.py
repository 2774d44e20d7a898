"""The flush: counted impressions become impression rows (the sub-ledger) and the ledger entries that pay for
them (royalties.accrual's policy), in the caller's transaction.

Exactly once: impression rows are unique by decision id and are written in the same transaction as the
entries that pay for them, so a batch redelivered after a crash finds its impressions already stored and
posts nothing for them again. Entries carry an idempotency key derived from their decision ids.

A refused entry never stops the flush. When the ledger refuses a batch's entries (an advertiser's prepaid
balance would go below zero, a closed period …), the advertiser the refusal names is set aside and the rest
of the batch is posted; that advertiser's impressions are then posted entry by entry, and each entry the
ledger still refuses is parked (royalties.suspense) with its reason. Its impression rows are stored all the
same, with no entry, so nothing is lost and nothing is counted twice; finance settles the parked entry.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import psycopg
from sqlalchemy.orm import Session

from adserver.stream import StreamImpression
from ledger.errors import LedgerError
from ledger.services import post, post_many
from royalties.accrual import entries_for
from royalties.suspense import park

_COLUMNS = ("decision_id", "campaign_id", "advertiser_id", "creative_id", "slot", "track_id", "listener_id", "mode",
            "price_micros", "currency", "at", "entry_id")
_ADVERTISER_ACCOUNT = re.compile(r"^liabilities:advertiser:(\d+):prepaid$")
# Errors that mean "another worker is busy with the same rows or accounts": the worker retries the batch.
COLLISION_CODES = frozenset(("retry", "invalid_account"))


@dataclass
class FlushResult:
    received: int = 0
    stored: int = 0
    already_stored: int = 0
    parked: int = 0  # impressions stored whose entry the ledger refused (see royalties.suspense)
    entry_ids: list[int] = field(default_factory=list)
    parked_ids: list[int] = field(default_factory=list)


def is_refusal(exc: BaseException) -> bool:
    """The books refused an entry for what it says (a bound, a closed period), not for a passing collision."""
    return isinstance(exc, LedgerError) and exc.code not in COLLISION_CODES


def flush_impressions(session: Session, impressions: list[StreamImpression]) -> FlushResult:
    """Store impressions not stored yet and post their money, inside the caller's transaction.

    Optimistic: a batch is almost always new, so it is written without first asking which of its decision
    ids are stored already. When one is (a batch redelivered after a crash, a duplicate beacon from another
    worker), the impression rows' unique key refuses the COPY; the savepoint is rolled back (with the entries
    posted in it) and the batch is written again without the stored ones."""
    result = FlushResult(received=len(impressions))
    unique = list({i.decision_id: i for i in impressions}.values())
    if not unique:
        return result
    cursor = session.connection().connection.dbapi_connection.cursor()
    savepoint = session.begin_nested()
    try:
        _store(session, cursor, unique, result)
        savepoint.commit()
        fresh = unique
    except psycopg.errors.UniqueViolation as exc:
        # decision ids are unique across the monthly partitions through their key table (migration 0013)
        if exc.diag.table_name not in ("ad_impression_decisions", "ad_impressions"):
            raise
        savepoint.rollback()
        result.entry_ids, result.parked_ids, result.parked = [], [], 0
        cursor.execute("SELECT encode(uuid_send(decision_id), 'hex') FROM ad_impression_decisions "
                       "WHERE decision_id = ANY(%s::uuid[])", ([i.decision_id for i in unique],))
        existing = {row[0] for row in cursor.fetchall()}
        fresh = [i for i in unique if i.decision_id not in existing]
        if fresh:
            _store(session, cursor, fresh, result)
    except BaseException:
        if savepoint.is_active:
            savepoint.rollback()
        raise
    result.already_stored = len(unique) - len(fresh)
    result.stored = len(fresh)
    return result


def _store(session: Session, cursor, fresh: list[StreamImpression], result: FlushResult) -> None:
    """Post the entries paying for these impressions (parking what the ledger refuses) and COPY their rows."""
    built = entries_for(session, fresh)
    try:
        paid = list(zip(post_many(session, [entry for entry, _ in built]), built, strict=True))
    except LedgerError as exc:  # post_many ran in its own savepoint: nothing of it remains
        if not is_refusal(exc):
            raise
        paid = _store_around(session, fresh, exc, result)
    result.entry_ids.extend(entry_id for entry_id, _ in paid)
    buffer = io.StringIO()
    for entry_id, (_, group) in paid:
        _rows(buffer, group, "\\N" if entry_id is None else str(entry_id))
    with cursor.copy(f"COPY ad_impressions ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
        copy.write(buffer.getvalue())


def _store_around(session: Session, fresh: list[StreamImpression], refusal: LedgerError,
                  result: FlushResult) -> list[tuple[int | None, tuple]]:
    """Post what the ledger accepts and park what it refuses; (entry id or None if parked, (entry, group))."""
    set_aside: set[int] = set()
    rest = fresh
    paid: list[tuple[int | None, tuple]] = []
    while rest:
        advertiser = _advertiser_named(refusal)
        if advertiser is None or advertiser in set_aside:
            break  # a refusal that names no advertiser: go entry by entry for everything left
        set_aside.add(advertiser)
        rest = [i for i in rest if i.advertiser_id != advertiser]
        built = entries_for(session, rest) if rest else []
        try:
            paid += zip(post_many(session, [entry for entry, _ in built]), built, strict=True)
            rest = []
        except LedgerError as exc:
            if not is_refusal(exc):
                raise
            refusal = exc
    left = [i for i in fresh if i.advertiser_id in set_aside] + rest
    by_advertiser: dict[int, list[StreamImpression]] = {}
    for imp in left:
        by_advertiser.setdefault(imp.advertiser_id, []).append(imp)
    for _, impressions in sorted(by_advertiser.items()):
        for entry, group in entries_for(session, impressions):  # each debits this advertiser alone
            try:
                paid.append((post(session, entry), (entry, group)))
            except LedgerError as exc:
                if not is_refusal(exc):
                    raise
                parked = park(session, entry, group, exc)
                result.parked += len(group)
                result.parked_ids.append(parked.id)
                paid.append((None, (entry, group)))
    return paid


def _advertiser_named(exc: LedgerError) -> int | None:
    match = _ADVERTISER_ACCOUNT.match(str(exc.details.get("account") or ""))
    return int(match[1]) if match else None


def _rows(buffer: io.StringIO, group: list[StreamImpression], entry_text: str) -> None:
    write = buffer.write
    tail = f"\t{entry_text}\n"
    for i in group:
        write("\t".join((i.decision_id, str(i.campaign_id), str(i.advertiser_id), str(i.creative_id),
                          i.slot, "\\N" if i.track_id is None else str(i.track_id),
                          _copy_text(i.listener_id), i.mode, str(i.price_micros), i.currency,
                          i.at.isoformat())) + tail)


def _copy_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
