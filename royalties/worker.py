"""The flush worker behind `ninety worker`: a Redis Streams consumer group reading the impression streams
(and the invalid-traffic streams) in batches. One batch is one transaction, owned here: parse (unreadable
entries become dead letters), flush (royalties.flush), commit, then acknowledge. A batch collision with
another worker is retried; a refused entry is parked by the flush, so no batch can stop the worker.

The streams are sharded by advertiser (adserver.keys.SHARDS, one consumer group each). A worker owns a set
of shards; `run_processes` starts worker processes that divide the shards between them (process i of n
takes the shards s with s mod n = i), so the flush uses every core instead of threads under one GIL. One
batch takes what every owned shard has (up to the batch size) and commits it in one transaction. On one
Redis server a single blocking XREADGROUP reads all owned shards; on a Redis Cluster, where a command's
keys must share a slot, each shard is read on its own and an idle pass sleeps for the block time.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from redis.exceptions import ResponseError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adserver import keys
from adserver.models import DeadLetter, InvalidTraffic
from adserver.stream import decode
from core.partitions import PARTITIONED, ensure_months
from core.redis import is_cluster
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


def owned_streams(shards) -> list[str]:
    """The impression and invalid-traffic streams of these shards."""
    return [name for shard in shards for name in (keys.impression_stream(shard), keys.invalid_stream(shard))]


def shards_of(index: int, processes: int) -> list[int]:
    """The shards worker process `index` of `processes` owns."""
    return [shard for shard in range(keys.SHARDS) if shard % processes == index]


def _is_impressions(stream) -> bool:
    name = stream.decode() if isinstance(stream, bytes) else str(stream)
    return name.endswith(":impressions")


def ensure_groups(redis, shards=range(keys.SHARDS)) -> None:
    for stream in owned_streams(shards):
        _ensure_group(redis, stream)


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
    pipe = redis.pipeline(transaction=False)  # one stream: one slot
    pipe.xack(stream, keys.CONSUMER_GROUP, *ids)
    pipe.xdel(stream, *ids)
    pipe.execute()


def process_impressions(redis, sessions, batch: dict, stats: WorkerStats) -> None:
    """Flush one batch of stream messages {stream: [(id, fields)]} (from one or more shards) in one
    transaction, then acknowledge them."""
    batch = {(k.decode() if isinstance(k, bytes) else k): v for k, v in batch.items() if v}
    if not batch:
        return
    parsed, broken = [], []
    for stream, messages in batch.items():
        for message_id, fields in messages:
            try:
                parsed.append(decode(fields))
            except ValueError as exc:
                broken.append((stream, message_id, fields, str(exc)))
    ensure_months(sessions, "ad_impressions", {imp.at for imp in parsed})
    for attempt in range(RETRIES):
        session = sessions()
        try:
            for stream, message_id, fields, reason in broken:
                _dead_letter(session, stream, _mid(message_id), fields, reason)
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
    for stream, messages in batch.items():
        _acknowledge(redis, stream, messages)
        stats.impressions += len(messages)
    stats.batches += 1


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


def process_invalid(redis, sessions, batch: dict, stats: WorkerStats) -> None:
    """Store refused beacons (invalid traffic) for review; duplicates after a crash are harmless."""
    batch = {(k.decode() if isinstance(k, bytes) else k): v for k, v in batch.items() if v}
    if not batch:
        return
    messages = [(stream, message_id, fields) for stream, found in batch.items() for message_id, fields in found]
    session = sessions()
    try:
        rows = []
        for stream, message_id, fields in messages:
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
                _dead_letter(session, stream, _mid(message_id), fields, f"unparseable: {exc}")
                stats.dead_letters += 1
        ensure_months(sessions, "ad_invalid_traffic", {row.at for row in rows})
        session.add_all(rows)
        session.commit()
        stats.invalid += len(rows)
    finally:
        session.close()
    for stream, found in batch.items():
        _acknowledge(redis, stream, found)


def _handle(redis, sessions, replies: dict, stats: WorkerStats) -> int:
    """Flush what was read, {stream: messages}: the impressions of every shard in one batch."""
    impressions = {k: v for k, v in replies.items() if v and _is_impressions(k)}
    invalid = {k: v for k, v in replies.items() if v and not _is_impressions(k)}
    process_impressions(redis, sessions, impressions, stats)
    process_invalid(redis, sessions, invalid, stats)
    return sum(len(v) for v in replies.values())


def drain_pending(redis, sessions, consumer: str, batch_size: int, stats: WorkerStats,
                  shards=range(keys.SHARDS)) -> None:
    """Finish what this consumer read before a crash, then claim what dead consumers left idle."""
    for stream in owned_streams(shards):
        while True:
            reply = redis.xreadgroup(keys.CONSUMER_GROUP, consumer, {stream: "0"}, count=batch_size)
            messages = [m for m in reply[0][1] if m[1]] if reply else []
            gone = [m[0] for m in reply[0][1] if not m[1]] if reply else []
            if gone:  # deleted while pending: nothing left to flush
                redis.xack(stream, keys.CONSUMER_GROUP, *gone)
            if not messages:
                break
            _handle(redis, sessions, {stream: messages}, stats)
        start = "0-0"
        while True:
            start, messages, *_ = redis.xautoclaim(stream, keys.CONSUMER_GROUP, consumer, RECLAIM_IDLE_MS,
                                                   start_id=start, count=batch_size)
            messages = [m for m in messages if m[1]]
            if messages:
                _handle(redis, sessions, {stream: messages}, stats)
            if _mid(start) == "0-0":
                break


def _ensure_group(redis, stream: str) -> None:
    try:
        redis.xgroup_create(stream, keys.CONSUMER_GROUP, id="0", mkstream=True)
    except Exception as exc:  # noqa: BLE001 - BUSYGROUP: the group exists already
        if "BUSYGROUP" not in str(exc):
            raise


def run_once(redis, sessions, consumer: str, *, batch_size: int, block_ms: int, stats: WorkerStats,
             shards=range(keys.SHARDS)) -> int:
    """Read and flush at most one batch from the owned shards; return how many messages were handled."""
    replies = _regrouping(redis, shards, lambda: _read(redis, consumer, shards, batch_size, block_ms))
    return _handle(redis, sessions, replies, stats)


def _regrouping(redis, shards, call):
    """call(); if the consumer groups are gone under it (groups_lost), make them again and call once more."""
    try:
        return call()
    except ResponseError as exc:
        if not groups_lost(exc):
            raise
        log.warning("the impression streams' consumer groups are gone (%s): Redis lost its data; "
                    "creating them again", exc)
        ensure_groups(redis, shards)
        return call()


def groups_lost(exc: ResponseError) -> bool:
    """A stream or its consumer group vanished under the worker (a Redis restarted without persistence, a
    failover to an empty replica, a FLUSHDB): NOGROUP, or UNBLOCKED for a read that was waiting on it."""
    message = str(exc)
    return message.startswith(("NOGROUP", "UNBLOCKED"))


def _read(redis, consumer: str, shards, batch_size: int, block_ms: int) -> dict:
    streams = owned_streams(shards)
    per_stream = max(50, batch_size // max(1, len(shards)))
    replies: dict = {}
    if is_cluster(redis):  # one slot per command: read each shard's streams on their own, without blocking
        for stream in streams:
            for name, messages in redis.xreadgroup(keys.CONSUMER_GROUP, consumer, {stream: ">"},
                                                   count=per_stream) or []:
                replies[name] = messages
        if not replies and block_ms:
            time.sleep(min(block_ms, 200) / 1000)
    else:
        for name, messages in redis.xreadgroup(keys.CONSUMER_GROUP, consumer, dict.fromkeys(streams, ">"),
                                               count=per_stream, block=block_ms) or []:
            replies[name] = messages
    return replies


def run_worker(redis, sessions, *, consumer: str, batch_size: int = 5000, block_ms: int = 1000,
               stop=lambda: False, max_idle_loops: int | None = None, on_batch=None,
               shards=range(keys.SHARDS)) -> WorkerStats:
    """The flush loop behind `ninety worker`: reclaim, then read batches until told to stop."""
    shards = list(shards)
    ensure_groups(redis, shards)
    now = datetime.now(UTC)
    for table in PARTITIONED:  # this month's and next month's partitions, for every writer of these tables
        ensure_months(sessions, table, {now, (now.replace(day=1) + timedelta(days=32))})
    stats = WorkerStats()
    drain_pending(redis, sessions, consumer, batch_size, stats, shards)
    idle = 0
    last_reclaim = time.monotonic()
    while not stop():
        handled = run_once(redis, sessions, consumer, batch_size=batch_size, block_ms=block_ms, stats=stats,
                           shards=shards)
        if on_batch is not None and handled:
            on_batch(stats)
        idle = 0 if handled else idle + 1
        if max_idle_loops is not None and idle >= max_idle_loops:
            break
        if time.monotonic() - last_reclaim > RECLAIM_IDLE_MS / 1000:
            _regrouping(redis, shards, lambda: drain_pending(redis, sessions, consumer, batch_size, stats, shards))
            last_reclaim = time.monotonic()
    return stats


def _process_main(database_url: str, redis_url: str, consumer: str, shards: list[int], batch_size: int,
                  block_ms: int, until_idle: bool, results) -> None:
    """One worker process: its own engine and Redis client (nothing is shared across the fork)."""
    import signal

    from core.db import make_engine, make_session_factory
    from core.redis import make_redis

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    engine = make_engine(database_url, pool_size=2)
    redis = make_redis(redis_url)
    try:
        stats = run_worker(redis, make_session_factory(engine), consumer=consumer, batch_size=batch_size,
                           block_ms=block_ms, stop=lambda: bool(stopping),
                           max_idle_loops=1 if until_idle else None, shards=shards)
        results.put((consumer, stats.__dict__))
    finally:
        engine.dispose()
        redis.close()


def run_processes(database_url: str, redis_url: str, *, processes: int, consumer: str, batch_size: int = 5000,
                  block_ms: int = 1000, until_idle: bool = False, stop=lambda: False) -> WorkerStats:
    """Start `processes` flush worker processes dividing the shards (consumer names `{consumer}-{i}`, so a
    restart finishes what each left pending), wait for them and sum their figures. `stop()` turning true
    sends them SIGTERM; each finishes its batch and exits."""
    processes = max(1, min(processes, keys.SHARDS))
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    children = [ctx.Process(target=_process_main, name=f"{consumer}-{i}",
                            args=(database_url, redis_url, f"{consumer}-{i}", shards_of(i, processes), batch_size,
                                  block_ms, until_idle, results)) for i in range(processes)]
    for child in children:
        child.start()
    total = WorkerStats()
    try:
        while any(child.is_alive() for child in children):
            if stop():
                for child in children:
                    if child.is_alive():
                        child.terminate()
            for child in children:
                child.join(timeout=0.2)
        while not results.empty():
            _, figures = results.get()
            for name, value in figures.items():
                setattr(total, name, getattr(total, name) + value)
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
                child.join(timeout=5)
    failed = [child.name for child in children if child.exitcode not in (0, None)]
    if failed:
        raise RuntimeError(f"flush worker process(es) {', '.join(failed)} failed")
    return total
