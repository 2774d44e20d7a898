"""Work that must happen only once the database holds a change: run it after the outermost commit.

A service that keeps hot state outside PostgreSQL (the ad server's Redis budgets, the campaign book's
version) cannot write it while the caller's transaction is open: a rollback would leave Redis ahead of the
books. `after_commit(session, fn)` queues `fn()` on the session; it runs when the session's outermost
transaction commits, in the order queued, and is dropped when that transaction, or a savepoint it was queued
inside, rolls back. The same idea as the job outbox in core/jobs.py, but in-process and synchronous (the
caller sees the effect as soon as its commit returns), and wired on the session itself, so it holds for
every owner (request, CLI, worker, test) without set-up.

`fn` runs after the commit and must not use the session (it is between transactions then): compute what it
needs from the database before queueing it. A failing `fn` is logged, not raised: the commit has happened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger("ninety.after_commit")

_QUEUE = "ninety_after_commit"


def after_commit(session: Session, fn: Callable[[], object]) -> None:
    """Run `fn()` once `session`'s outermost transaction commits; drop it if what it belongs to rolls back."""
    if _QUEUE not in session.info:
        session.info[_QUEUE] = []
        event.listen(session, "after_commit", _run)
        event.listen(session, "after_soft_rollback", _drop)
        event.listen(session, "after_transaction_end", _end)
    if not session.in_transaction():
        session.begin()  # so that a rollback before any SQL still drops it
    session.info[_QUEUE].append((_innermost(session), fn))


def pending(session: Session) -> int:
    """How many callables wait for this session's commit."""
    return len(session.info.get(_QUEUE, ()))


def _innermost(session: Session) -> SessionTransaction:
    return session.get_nested_transaction() or session.get_transaction()


def _within(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


def _drop(session: Session, previous: SessionTransaction) -> None:
    queue = session.info.get(_QUEUE)
    if queue:
        queue[:] = [(tx, fn) for tx, fn in queue if not _within(tx, previous)]


def _end(session: Session, transaction: SessionTransaction) -> None:
    """The outermost transaction ended without a commit running the queue (a close, say): drop what is left."""
    if transaction.parent is None and session.info.get(_QUEUE):
        session.info[_QUEUE].clear()


def _run(session: Session) -> None:
    if session.in_nested_transaction():
        return
    queue = session.info.get(_QUEUE)
    if not queue:
        return
    ready, queue[:] = list(queue), []
    for _, fn in ready:
        try:
            fn()
        except Exception:  # noqa: BLE001 - the commit happened; a failing follow-up must not undo the caller
            log.exception("after-commit work failed", extra={"work": getattr(fn, "__qualname__", repr(fn))})
