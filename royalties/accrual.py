"""The flush: counted impressions from the Redis stream become impression rows and ledger entries.

Money policy (DESIGN.md "How money flows"): one journal entry per batch, per track and month (or, for key
mode, per month). Each entry debits every advertiser whose impressions it covers; credits each payee of the
track its share of 90% by the split sheet in force when the impressions happened (the artist side rounded
up with `share_ceil`, then split with `allocate`), or the listener pool for key-mode impressions; and credits
`income:ads` the rest.

Exactly once: impression rows are unique by decision id and are written in the same transaction as the
entries that pay for them, so a batch redelivered after a crash finds its impressions already stored and
posts nothing for them again. Entries carry an idempotency key derived from their decision ids.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adserver import keys
from core.money import allocate, check_currency, share_ceil

log = logging.getLogger("ninety.worker")

MAX_PRICE_MICROS = 10**9  # no single impression costs 1,000 units; anything above is a corrupt entry
RECLAIM_IDLE_MS = 60_000


class StreamImpression(NamedTuple):
    decision_id: str  # 32 lowercase hex digits (a UUID)
    campaign_id: int
    advertiser_id: int
    creative_id: int
    slot: str
    track_id: int | None
    listener_id: str
    mode: str
    price_micros: int
    currency: str
    at: datetime


def _text(fields: dict, name: str) -> str:
    value = fields.get(name.encode(), fields.get(name))
    if value is None:
        raise ValueError(f"missing field {name}")
    return value.decode() if isinstance(value, bytes) else str(value)


_FIELDS = (b"decision_id", b"campaign_id", b"advertiser_id", b"creative_id", b"slot", b"track_id", b"listener_id",
           b"mode", b"price_micros", b"currency", b"at")
_SLOTS = frozenset(("gate", "browse", "player"))


_HEX = frozenset("0123456789abcdef")


def _hex32(value: str) -> str:
    value = value.lower()
    if len(value) != 32 or not _HEX.issuperset(value):
        raise ValueError(f"decision id {value[:40]!r} is not 32 hex digits")
    return value


@functools.lru_cache(maxsize=64)
def _currency(code: str) -> str:
    return check_currency(code)


def parse_impression(fields: dict) -> StreamImpression:
    """One stream entry as an impression, or ValueError saying what is wrong with it."""
    try:
        try:  # the stream's own shape: bytes keys (a single lookup per field)
            values = list(map(fields.__getitem__, _FIELDS))
        except (KeyError, TypeError, AttributeError):
            values = [fields.get(name, fields.get(name.decode())) for name in _FIELDS]
            missing = [name.decode() for name, value in zip(_FIELDS, values, strict=True) if value is None]
            if missing:
                raise ValueError(f"missing field {missing[0]}") from None
        try:  # all bytes: decode them at once. NUL cannot occur in any valid field, so it separates them;
            # a field holding one splits into too many parts, which is refused like any other bad entry.
            texts = b"\x00".join(values).decode().split("\x00")
        except TypeError:
            texts = [v.decode() if isinstance(v, bytes) else str(v) for v in values]
        (decision, campaign, advertiser, creative, slot, track, listener, mode, price, currency, at) = texts
        imp = StreamImpression(
            decision_id=_hex32(decision), campaign_id=int(campaign), advertiser_id=int(advertiser),
            creative_id=int(creative), slot=slot, track_id=int(track) if track else None, listener_id=listener,
            mode=mode, price_micros=int(price), currency=_currency(currency), at=_timestamp(at))
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise ValueError(f"unparseable impression: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a MoneyError for an unknown currency, for instance
        raise ValueError(f"unparseable impression: {exc}") from None
    if imp.at.tzinfo is None:
        raise ValueError("unparseable impression: naive timestamp")
    if not 0 < imp.price_micros <= MAX_PRICE_MICROS:
        raise ValueError(f"unparseable impression: price {imp.price_micros} out of range")
    if imp.mode not in _MODES or not imp.listener_id or len(imp.listener_id) > 64 \
            or "\x00" in imp.listener_id or imp.slot not in _SLOTS:
        raise ValueError("unparseable impression: bad mode, slot or listener")
    return imp


_MODES = frozenset(("gate", "key"))


@functools.lru_cache(maxsize=4096)
def _timestamp(value: str) -> datetime:
    """Beacons of the same second share their timestamp text; datetimes are immutable, so sharing is safe."""
    return datetime.fromisoformat(value)


def period_of(at: datetime) -> str:
    return _period(at.year, at.month)


@functools.lru_cache(maxsize=256)
def _period(year: int, month: int) -> str:
    return datetime(year, month, 1).strftime("%Y-%m")


# --- the money policy --------------------------------------------------------------------------------
def _entry_key(decision_ids: Iterable[str]) -> str:
    digest = hashlib.sha256("".join(sorted(decision_ids)).encode()).hexdigest()[:40]
    return f"ad_flush:{digest}"


def _debits(group: list[StreamImpression], currency: str):
    from ledger.accounts import advertiser_prepaid
    from ledger.services import Posting

    by_advertiser: dict[int, int] = defaultdict(int)
    for imp in group:
        by_advertiser[imp.advertiser_id] += imp.price_micros
    return [Posting(advertiser_prepaid(a), "debit", amount, currency, ref=f"advertiser:{a}")
            for a, amount in sorted(by_advertiser.items())]


def build_entries(groups: dict[tuple, list[StreamImpression]], sheets: dict[tuple, list[tuple[int, int]]],
                  held_tracks: set[int]) -> list[tuple[object, list[StreamImpression]]]:
    """Journal entries for grouped impressions: keys are (currency, period, kind, ident, sheet_key)."""
    from ledger.accounts import INCOME_ADS, INCOME_UNATTRIBUTED, listener_pool, payee_held, payee_payable
    from ledger.services import Entry, Posting

    entries = []
    for group_key, group in sorted(groups.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        currency, period, kind, ident, _ = group_key
        total = sum(i.price_micros for i in group)
        artist_side = share_ceil(total, 9, 10)
        credits: list[Posting] = []
        metadata = {"event": "ad_flush", "impressions": len(group), "period": period}
        if kind == "track" and sheets.get(group_key):
            sheet = sheets[group_key]
            account = payee_held if ident in held_tracks else payee_payable
            for (payee_id, _bp), amount in zip(sheet, allocate(artist_side, [bp for _, bp in sheet]), strict=True):
                if amount:
                    credits.append(Posting(account(payee_id), "credit", amount, currency, ref=f"track:{ident}"))
            metadata["track_id"] = ident
            description = f"Ad revenue for track {ident} ({len(group)} impressions)"
        elif kind == "pool":
            by_listener: dict[str, int] = defaultdict(int)
            for imp in group:
                by_listener[imp.listener_id] += imp.price_micros
            listeners = sorted(by_listener)
            parts = allocate(artist_side, [by_listener[lid] for lid in listeners])
            for lid, amount in zip(listeners, parts, strict=True):
                if amount:
                    credits.append(Posting(listener_pool(period), "credit", amount, currency, ref=f"listener:{lid}"))
            description = f"Key-mode ad revenue for the {period} listener pool ({len(group)} impressions)"
        else:
            credits.append(Posting(INCOME_UNATTRIBUTED, "credit", artist_side, currency,
                                   ref=f"track:{ident}" if ident is not None else None))
            description = f"Ad revenue no track can be credited with ({len(group)} impressions)"
        if total - artist_side:
            credits.append(Posting(INCOME_ADS, "credit", total - artist_side, currency))
        entry = Entry(idempotency_key=_entry_key(i.decision_id for i in group),
                      effective_at=max(i.at for i in group), description=description,
                      postings=_debits(group, currency) + credits, metadata=metadata)
        entries.append((entry, group))
    return entries


def _group(session: Session, impressions: list[StreamImpression]):
    """Group impressions by what one entry covers, resolving split sheets at the impressions' times."""
    from catalog.services import split_sheet_at, split_sheets_at

    groups: dict[tuple, list[StreamImpression]] = defaultdict(list)
    sheets: dict[tuple, list[tuple[int, int]]] = {}
    tracked = [i for i in impressions if i.mode != "key" and i.track_id is not None]
    track_ids = {i.track_id for i in tracked}
    if tracked:
        first, last = min(i.at for i in tracked), max(i.at for i in tracked)
        at_first = split_sheets_at(session, track_ids, first)
        at_last = at_first if first == last else split_sheets_at(session, track_ids, last)
    else:
        at_first = at_last = {}
    per_time: dict[tuple[int, datetime], list[tuple[int, int]]] = {}
    for imp in impressions:
        period = period_of(imp.at)
        if imp.mode == "key":
            groups[(imp.currency, period, "pool", None, None)].append(imp)
            continue
        if imp.track_id is None or imp.track_id not in at_last:
            groups[(imp.currency, period, "unattributed", imp.track_id, None)].append(imp)
            continue
        sheet = at_last[imp.track_id]
        if at_first.get(imp.track_id) != sheet:  # the sheet changed inside this batch: look up this moment's
            cache_key = (imp.track_id, imp.at)
            if cache_key not in per_time:
                per_time[cache_key] = split_sheet_at(session, imp.track_id, imp.at)
            sheet = per_time[cache_key]
        sheet_key = tuple(sheet)
        key = (imp.currency, period, "track", imp.track_id, sheet_key)
        groups[key].append(imp)
        sheets[key] = list(sheet)
    return groups, sheets, track_ids


def _held_tracks(session: Session, track_ids: set[int]) -> set[int]:
    """Tracks whose new earnings are held: taken down (a takedown notice is open)."""
    if not track_ids:
        return set()
    from catalog.models import Track

    return set(session.scalars(select(Track.id).where(Track.id.in_(track_ids), Track.status == "taken_down")))


@dataclass
class FlushResult:
    received: int = 0
    stored: int = 0
    already_stored: int = 0
    entry_ids: list[int] = field(default_factory=list)


_COLUMNS = ("decision_id", "campaign_id", "advertiser_id", "creative_id", "slot", "track_id", "listener_id", "mode",
            "price_micros", "currency", "at", "entry_id")


def flush_impressions(session: Session, impressions: list[StreamImpression], *, commit: bool = True) -> FlushResult:
    """Store impressions not stored yet and post their money, in one transaction.

    Optimistic: a batch is almost always new, so it is written without first asking which of its decision
    ids are stored already. When one is (a batch redelivered after a crash, a duplicate beacon from another
    worker), the impression rows' unique key refuses the COPY; the savepoint is rolled back (with the entries
    posted in it) and the batch is written again without the stored ones."""
    import psycopg

    result = FlushResult(received=len(impressions))
    unique = list({i.decision_id: i for i in impressions}.values())
    if not unique:
        return result
    cursor = session.connection().connection.dbapi_connection.cursor()
    savepoint = session.begin_nested()
    try:
        entry_ids = _store(session, cursor, unique)
        savepoint.commit()
        fresh = unique
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.table_name != "ad_impressions":
            raise
        savepoint.rollback()
        cursor.execute("SELECT encode(uuid_send(decision_id), 'hex') FROM ad_impressions "
                       "WHERE decision_id = ANY(%s::uuid[])", ([i.decision_id for i in unique],))
        existing = {row[0] for row in cursor.fetchall()}
        fresh = [i for i in unique if i.decision_id not in existing]
        entry_ids = _store(session, cursor, fresh) if fresh else []
    except BaseException:
        if savepoint.is_active:
            savepoint.rollback()
        raise
    result.already_stored = len(unique) - len(fresh)
    result.stored = len(fresh)
    result.entry_ids = entry_ids
    if commit and fresh:
        session.commit()
    return result


def _store(session: Session, cursor, fresh: list[StreamImpression]) -> list[int]:
    """Post the entries paying for these impressions and COPY their rows; the entries' ids."""
    from ledger.services import post_many

    groups, sheets, track_ids = _group(session, fresh)
    built = build_entries(groups, sheets, _held_tracks(session, track_ids))
    entry_ids = post_many(session, [entry for entry, _ in built], commit=False)
    buffer = io.StringIO()
    write = buffer.write
    for entry_id, (_, group) in zip(entry_ids, built, strict=True):
        tail = f"\t{entry_id}\n"
        for i in group:
            write("\t".join((i.decision_id, str(i.campaign_id), str(i.advertiser_id), str(i.creative_id),
                              i.slot, "\\N" if i.track_id is None else str(i.track_id),
                              _copy_text(i.listener_id), i.mode, str(i.price_micros), i.currency,
                              i.at.isoformat())) + tail)
    with cursor.copy(f"COPY ad_impressions ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
        copy.write(buffer.getvalue())
    return entry_ids


def _copy_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


# --- the worker ----------------------------------------------------------------------------------------
@dataclass
class WorkerStats:
    batches: int = 0
    impressions: int = 0
    stored: int = 0
    dead_letters: int = 0
    invalid: int = 0


def ensure_groups(redis) -> None:
    for stream in (keys.IMPRESSIONS_STREAM, keys.INVALID_STREAM):
        try:
            redis.xgroup_create(stream, keys.CONSUMER_GROUP, id="0", mkstream=True)
        except Exception as exc:  # noqa: BLE001 - BUSYGROUP: the group exists already
            if "BUSYGROUP" not in str(exc):
                raise


def clean(value, limit: int = 2000) -> str:
    """Text PostgreSQL can hold: no NUL, valid UTF-8, bounded."""
    text_value = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text_value.replace("\x00", "\ufffd")[:limit]


def _dead_letter(session: Session, stream: str, message_id: str, fields: dict, reason: str) -> None:
    from adserver.models import DeadLetter

    session.add(DeadLetter(stream=stream, message_id=message_id, reason=clean(reason),
                           fields={clean(k): clean(v) for k, v in list(fields.items())[:50]}))


def _mid(message_id) -> str:
    return message_id.decode() if isinstance(message_id, bytes) else str(message_id)


RETRIES = 5


def _is_collision(exc: Exception) -> bool:
    """Another worker stored some of these impressions, or locked the same accounts, at the same moment:
    retrying skips what it stored and waits for its locks."""
    import psycopg

    from ledger.errors import LedgerError

    if isinstance(exc, IntegrityError | psycopg.errors.UniqueViolation | psycopg.errors.DeadlockDetected
                  | psycopg.errors.SerializationFailure):
        return True
    cause = getattr(exc, "orig", None)
    if isinstance(cause, psycopg.errors.UniqueViolation | psycopg.errors.DeadlockDetected):
        return True
    # invalid_account: an account another worker is creating in a transaction not yet committed
    return isinstance(exc, LedgerError) and exc.code in ("retry", "invalid_account")


def process_impressions(redis, sessions, messages: list, stats: WorkerStats) -> None:
    """Flush one batch of stream messages [(id, fields)], then acknowledge them."""
    if not messages:
        return
    parsed, broken = [], []
    for message_id, fields in messages:
        try:
            parsed.append(parse_impression(fields))
        except ValueError as exc:
            broken.append((message_id, fields, str(exc)))
    for attempt in range(RETRIES):
        session = sessions()
        try:
            for message_id, fields, reason in broken:
                _dead_letter(session, keys.IMPRESSIONS_STREAM, _mid(message_id), fields, reason)
            session.flush()
            result = flush_impressions(session, parsed, commit=False)
            session.commit()
            stats.stored += result.stored
            stats.dead_letters += len(broken)
            break
        except Exception as exc:  # noqa: BLE001 - only collisions with another worker are retried
            session.rollback()
            if attempt == RETRIES - 1 or not _is_collision(exc):
                raise
            time.sleep(0.01 * (attempt + 1))
        finally:
            session.close()
    ids = [message_id for message_id, _ in messages]
    pipe = redis.pipeline()
    pipe.xack(keys.IMPRESSIONS_STREAM, keys.CONSUMER_GROUP, *ids)
    pipe.xdel(keys.IMPRESSIONS_STREAM, *ids)
    pipe.execute()
    stats.batches += 1
    stats.impressions += len(messages)


def process_invalid(redis, sessions, messages: list, stats: WorkerStats) -> None:
    """Store refused beacons (invalid traffic) for review; duplicates after a crash are harmless."""
    from adserver.models import InvalidTraffic

    if not messages:
        return
    session = sessions()
    try:
        rows = []
        for message_id, fields in messages:
            try:
                decision = _opt(fields, "decision_id")
                campaign = _opt(fields, "campaign_id")
                creative = _opt(fields, "creative_id")
                rows.append(InvalidTraffic(
                    decision_id=uuid.UUID(hex=decision) if decision else None,
                    campaign_id=int(campaign) if campaign else None, creative_id=int(creative) if creative else None,
                    reason=clean(_text(fields, "reason"), 32), listener_id=clean(_opt(fields, "listener_id") or "", 64),
                    ip=clean(_opt(fields, "ip") or "", 64), user_agent=clean(_opt(fields, "user_agent") or "", 512),
                    at=datetime.fromisoformat(_text(fields, "at"))))
            except (ValueError, TypeError) as exc:
                _dead_letter(session, keys.INVALID_STREAM, _mid(message_id), fields, f"unparseable: {exc}")
                stats.dead_letters += 1
        session.add_all(rows)
        session.commit()
        stats.invalid += len(rows)
    finally:
        session.close()
    ids = [message_id for message_id, _ in messages]
    pipe = redis.pipeline()
    pipe.xack(keys.INVALID_STREAM, keys.CONSUMER_GROUP, *ids)
    pipe.xdel(keys.INVALID_STREAM, *ids)
    pipe.execute()


def _opt(fields: dict, name: str) -> str | None:
    try:
        return _text(fields, name)
    except ValueError:
        return None


HANDLERS = {keys.IMPRESSIONS_STREAM: process_impressions, keys.INVALID_STREAM: process_invalid}


def drain_pending(redis, sessions, consumer: str, batch_size: int, stats: WorkerStats) -> None:
    """Finish what this consumer read before a crash, then claim what dead consumers left idle."""
    for stream, handler in HANDLERS.items():
        while True:
            reply = redis.xreadgroup(keys.CONSUMER_GROUP, consumer, {stream: "0"}, count=batch_size)
            messages = [m for m in reply[0][1] if m[1]] if reply else []
            gone = [m[0] for m in reply[0][1] if not m[1]] if reply else []
            if gone:  # deleted while pending: nothing left to flush
                redis.xack(stream, keys.CONSUMER_GROUP, *gone)
            if not messages:
                break
            handler(redis, sessions, messages, stats)
        start = "0-0"
        while True:
            start, messages, *_ = redis.xautoclaim(stream, keys.CONSUMER_GROUP, consumer, RECLAIM_IDLE_MS,
                                                   start_id=start, count=batch_size)
            messages = [m for m in messages if m[1]]
            if messages:
                handler(redis, sessions, messages, stats)
            if _mid(start) == "0-0":
                break


def run_once(redis, sessions, consumer: str, *, batch_size: int, block_ms: int, stats: WorkerStats) -> int:
    """Read and flush at most one batch per stream; return how many messages were handled."""
    reply = redis.xreadgroup(keys.CONSUMER_GROUP, consumer,
                             {keys.IMPRESSIONS_STREAM: ">", keys.INVALID_STREAM: ">"}, count=batch_size,
                             block=block_ms)
    handled = 0
    for stream, messages in reply or []:
        name = stream.decode() if isinstance(stream, bytes) else stream
        HANDLERS[name](redis, sessions, messages, stats)
        handled += len(messages)
    return handled


def run_worker(redis, sessions, *, consumer: str, batch_size: int = 5000, block_ms: int = 1000,
               stop=lambda: False, max_idle_loops: int | None = None, on_batch=None) -> WorkerStats:
    """The flush loop behind `ninety worker`: reclaim, then read batches until told to stop."""
    ensure_groups(redis)
    stats = WorkerStats()
    drain_pending(redis, sessions, consumer, batch_size, stats)
    idle = 0
    last_reclaim = time.monotonic()
    while not stop():
        handled = run_once(redis, sessions, consumer, batch_size=batch_size, block_ms=block_ms, stats=stats)
        if on_batch is not None and handled:
            on_batch(stats)
        idle = 0 if handled else idle + 1
        if max_idle_loops is not None and idle >= max_idle_loops:
            break
        if time.monotonic() - last_reclaim > RECLAIM_IDLE_MS / 1000:
            drain_pending(redis, sessions, consumer, batch_size, stats)
            last_reclaim = time.monotonic()
    return stats


def dead_letter_json(fields: dict) -> str:
    return json.dumps(fields, sort_keys=True)


# --- what the artist sees ---------------------------------------------------------------------------------
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
