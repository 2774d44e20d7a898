"""The flush worker behind `ninety worker`: a Redis Streams consumer group reading the impression stream
(and the invalid-traffic stream) in batches. One batch is one transaction, owned here: parse (unreadable
entries become dead letters), flush (royalties.flush), commit, then acknowledge. A batch collision with
another worker is retried; a refused entry is parked by the flush, so no batch can stop the worker.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

import psycopg
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adserver import keys
from adserver.models import DeadLetter, InvalidTraffic
from adserver.stream import decode
from ledger.errors import LedgerError
from royalties.flush import COLLISION_CODES, flush_impressions

log = logging.getLogger("ninety.worker")

RECLAIM_IDLE_MS = 60_000
RETRIES = 5


@dataclass
class WorkerStats:
    batches: int = 0
    impressions: int = 0
    stored: int = 0
    parked: int = 0
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
    session.add(DeadLetter(stream=stream, message_id=message_id, reason=clean(reason),
                           fields={clean(k): clean(v) for k, v in list(fields.items())[:50]}))


def _mid(message_id) -> str:
    return message_id.decode() if isinstance(message_id, bytes) else str(message_id)


def _is_collision(exc: Exception) -> bool:
    """Another worker stored some of these impressions, or locked the same accounts, at the same moment:
    retrying skips what it stored and waits for its locks."""
    if isinstance(exc, IntegrityError | psycopg.errors.UniqueViolation | psycopg.errors.DeadlockDetected
                  | psycopg.errors.SerializationFailure):
        return True
    cause = getattr(exc, "orig", None)
    if isinstance(cause, psycopg.errors.UniqueViolation | psycopg.errors.DeadlockDetected):
        return True
    # invalid_account: an account another worker is creating in a transaction not yet committed
    return isinstance(exc, LedgerError) and exc.code in COLLISION_CODES


def _acknowledge(redis, stream: str, messages: list) -> None:
    ids = [message_id for message_id, _ in messages]
    pipe = redis.pipeline()
    pipe.xack(stream, keys.CONSUMER_GROUP, *ids)
    pipe.xdel(stream, *ids)
    pipe.execute()


def process_impressions(redis, sessions, messages: list, stats: WorkerStats) -> None:
    """Flush one batch of stream messages [(id, fields)] in one transaction, then acknowledge them."""
    if not messages:
        return
    parsed, broken = [], []
    for message_id, fields in messages:
        try:
            parsed.append(decode(fields))
        except ValueError as exc:
            broken.append((message_id, fields, str(exc)))
    for attempt in range(RETRIES):
        session = sessions()
        try:
            for message_id, fields, reason in broken:
                _dead_letter(session, keys.IMPRESSIONS_STREAM, _mid(message_id), fields, reason)
            session.flush()
            result = flush_impressions(session, parsed)
            session.commit()
            stats.stored += result.stored
            stats.parked += result.parked
            stats.dead_letters += len(broken)
            if result.parked:
                log.warning("flush: %s impressions parked (entries %s refused by the ledger)", result.parked,
                            result.parked_ids)
            break
        except Exception as exc:  # noqa: BLE001 - only collisions with another worker are retried
            session.rollback()
            if attempt == RETRIES - 1 or not _is_collision(exc):
                raise
            time.sleep(0.01 * (attempt + 1))
        finally:
            session.close()
    _acknowledge(redis, keys.IMPRESSIONS_STREAM, messages)
    stats.batches += 1
    stats.impressions += len(messages)


def _text(fields: dict, name: str) -> str:
    value = fields.get(name.encode(), fields.get(name))
    if value is None:
        raise ValueError(f"missing field {name}")
    return value.decode() if isinstance(value, bytes) else str(value)


def _opt(fields: dict, name: str) -> str | None:
    try:
        return _text(fields, name)
    except ValueError:
        return None


def process_invalid(redis, sessions, messages: list, stats: WorkerStats) -> None:
    """Store refused beacons (invalid traffic) for review; duplicates after a crash are harmless."""
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
    _acknowledge(redis, keys.INVALID_STREAM, messages)


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
