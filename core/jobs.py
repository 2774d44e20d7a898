"""Background jobs on RQ (a maintained Redis job queue): enqueue after commit, and the job functions.

A service that wants something done later (today: an email) calls `defer(session, "core.jobs.deliver_mail",
…)` or `send_mail_later(session, message)`. Nothing is enqueued then: the job waits on the session, and
`install_outbox` (wired by the composition root on its session factory) enqueues it when the outermost
transaction commits. A rollback, or a rolled-back savepoint, drops what was deferred inside it, so a
worker never acts on a change the database does not hold. The remaining risk, accepted: if Redis is
unreachable in the instant after the commit, the job is logged and lost (the data it refers to is safe;
for payout-method confirmations the payee asks for a new link by saving the method again).

Workers run `ninety jobs work` (app/cli/jobs.py); the composition root calls `configure(mailer=…)` in the
worker process before it works, so job functions take their settings from there, not from the environment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, Retry, Worker
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from core.mail import Mailer, Message

log = logging.getLogger("ninety.jobs")

QUEUE_NAME = "ninety"
_JOBS = "ninety_deferred_jobs"
_MARKS = "ninety_deferred_marks"
_RETRIES = "ninety_deferred_retries"  # index in _JOBS -> Retry
# Transient SMTP trouble is retried with backoff; a job that still fails lands in RQ's failed registry.
MAIL_RETRY = Retry(max=4, interval=[10, 60, 300, 900])


@dataclass
class WorkerContext:
    """What job functions need, set once per worker process by the composition root."""

    mailer: Mailer | None = None
    extras: dict[str, Any] = field(default_factory=dict)


_context = WorkerContext()


def configure(*, mailer: Mailer | None = None, **extras: Any) -> WorkerContext:
    _context.mailer = mailer
    _context.extras.update(extras)
    return _context


def worker_context() -> WorkerContext:
    """What `configure` set in this worker process (job functions read their settings here)."""
    return _context


def make_queue(connection: Redis, name: str = QUEUE_NAME) -> Queue:
    return Queue(name, connection=connection)


def connect(redis_url: str) -> Redis:
    """RQ stores pickled payloads: it needs a client that does not decode responses."""
    return Redis.from_url(redis_url, decode_responses=False)


def enqueue(connection: Redis, func: str | Callable, *args: Any, retry: Retry | None = None, **kwargs: Any):
    """Put one job on the Ninety queue now (use `defer` from inside a transaction)."""
    return make_queue(connection).enqueue(func, *args, retry=retry, **kwargs)


# --- the outbox: deferred until commit ---------------------------------------------------------------------
def defer(session: Session, func: str, *args: Any, retry: Retry | None = None, **kwargs: Any) -> None:
    """Enqueue `func(*args, **kwargs)` once this session's outermost transaction commits (with RQ's
    `retry` policy if given)."""
    if not session.in_transaction():
        session.begin()  # so that a rollback before any SQL still drops the job
    session.info.setdefault(_JOBS, []).append((func, args, kwargs))
    if retry is not None:
        session.info.setdefault(_RETRIES, {})[len(session.info[_JOBS]) - 1] = retry


def pending_jobs(session: Session) -> list[tuple[str, tuple, dict]]:
    return list(session.info.get(_JOBS, []))


def install_outbox(sessions: sessionmaker[Session], connection_factory: Callable[[], Redis]) -> None:
    """Wire deferred jobs to the sessions' commits; `connection_factory` is called on first use only."""
    holder: dict[str, Redis] = {}

    def connection() -> Redis:
        if "redis" not in holder:
            holder["redis"] = connection_factory()
        return holder["redis"]

    @event.listens_for(sessions, "after_transaction_create")
    def _mark(session: Session, transaction) -> None:
        if transaction.nested:
            session.info.setdefault(_MARKS, {})[id(transaction)] = len(session.info.get(_JOBS, []))

    @event.listens_for(sessions, "after_soft_rollback")
    def _drop(session: Session, previous) -> None:
        jobs = session.info.get(_JOBS)
        if not jobs:
            return
        if previous.nested:
            mark = session.info.get(_MARKS, {}).pop(id(previous), None)
            if mark is not None:
                del jobs[mark:]
                retries = session.info.get(_RETRIES, {})
                for index in [i for i in retries if i >= mark]:
                    del retries[index]
        elif previous.parent is None:
            jobs.clear()
            session.info.pop(_RETRIES, None)

    @event.listens_for(sessions, "after_commit")
    def _enqueue(session: Session) -> None:
        if session.in_nested_transaction():
            return
        jobs = session.info.pop(_JOBS, None)
        session.info.pop(_MARKS, None)
        retries = session.info.pop(_RETRIES, {})
        for index, (func, args, kwargs) in enumerate(jobs or ()):
            try:
                retry = retries.get(index) or (MAIL_RETRY if func == "core.jobs.deliver_mail" else None)
                enqueue(connection(), func, *args, retry=retry, **kwargs)
            except RedisError:
                log.exception("job not enqueued after commit", extra={"job": func})


# --- job functions -----------------------------------------------------------------------------------------
def send_mail_later(session: Session, message: Message) -> None:
    """Email `message` after the session commits (the worker sends it)."""
    defer(session, "core.jobs.deliver_mail", message.as_dict())


def worker_mailer() -> Mailer:
    """The mailer `configure` gave this worker (mail jobs send through it)."""
    if _context.mailer is None:
        raise RuntimeError("no mailer configured in this worker: run it with `ninety jobs work`")
    return _context.mailer


def deliver_mail(message: dict) -> str:
    """The job: send one email through the worker's mailer. Raising lets RQ retry it."""
    mail = Message(**message)
    worker_mailer().send(mail)
    log.info("mail sent", extra={"to": mail.to, "subject": mail.subject})
    return mail.to


def work(connection: Redis, *, burst: bool = False, name: str | None = None) -> bool:
    """Process the Ninety queue (forking a work horse per job, RQ's default) until stopped, or empty in burst.

    The worker also runs RQ's scheduler, which puts jobs waiting for a retry back on the queue."""
    worker = Worker([make_queue(connection)], connection=connection, name=name)
    return worker.work(burst=burst, logging_level="WARNING", with_scheduler=not burst)
