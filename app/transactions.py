"""The request owns the transaction (DESIGN.md): committed after a successful response, rolled back otherwise.

GET and HEAD handlers do not write. After a safe-method request the hook asks PostgreSQL whether the
transaction wrote anything (`pg_current_xact_id_if_assigned()`: an id is assigned at the first write) —
unless every statement the transaction sent was a plain SELECT (or SHOW), which `watch_writes` notes on the
engine's connections as they go: then nothing can have been written and the round trip is saved (the
checkout page's reads, every page view). A SELECT that locks rows (FOR UPDATE/SHARE) counts as a possible
write, and so does anything else (a savepoint, SET, a data-modifying WITH), so the server is asked. If it
did and the view is not one of the few deliberate exceptions marked `@writes_on_get(reason)`, the work is
rolled back and logged as an error; outside production the request also fails loudly (`GetWrote`, a 500),
so a GET that writes cannot land unnoticed in development or the tests. The app runs strict; report mode
(`strict=False`: log, then commit) is kept for a deployment that must find its offenders first.
The exceptions and their reasons are in docs/decisions.md.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Callable

from flask import current_app, request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

log = logging.getLogger("ninety.transactions")
SAFE_METHODS = frozenset({"GET", "HEAD"})


class GetWrote(RuntimeError):
    """A GET or HEAD handler wrote to the database without being a documented exception."""


def writes_on_get(reason: str) -> Callable:
    """Mark a view whose GET deliberately writes (a single-use link followed by a browser, a tracking pixel)."""
    def mark(view):
        view.writes_on_get = reason
        return view
    return mark


_PLAIN_READ = re.compile(r"\s*(?:SELECT|SHOW)\b", re.IGNORECASE)
_ROW_LOCK = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+)?(?:UPDATE|SHARE|KEY\s+SHARE)\b", re.IGNORECASE)
_MAY_HAVE_WRITTEN = "ninety_may_have_written"
_WATCHED: weakref.WeakSet[Engine] = weakref.WeakSet()


def watch_writes(engine: Engine) -> None:
    """Note on each connection whether its transaction has sent anything but plain reads (see above)."""
    _WATCHED.add(engine)

    @event.listens_for(engine, "begin")
    def _began(connection) -> None:
        connection.info[_MAY_HAVE_WRITTEN] = False

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(connection, cursor, statement, parameters, context, executemany) -> None:
        if not connection.info.get(_MAY_HAVE_WRITTEN) and (
                executemany or not _PLAIN_READ.match(statement) or _ROW_LOCK.search(statement)):
            connection.info[_MAY_HAVE_WRITTEN] = True


def _wrote(session: Session) -> bool:
    if not session.in_transaction():
        return False
    connection = session.connection()
    if connection.engine in _WATCHED and connection.info.get(_MAY_HAVE_WRITTEN) is False:
        return False
    return connection.exec_driver_sql("SELECT pg_current_xact_id_if_assigned()").scalar() is not None


def finish_request(session: Session, status_code: int, *, production: bool, strict: bool) -> None:
    """Commit the request's session after a successful response, roll it back otherwise.

    With `strict` (the app's setting), an unmarked GET that wrote is rolled back and logged (and raises
    outside production); without it, it is only logged as an error and committed (report mode)."""
    if status_code >= 400:
        session.rollback()
        return
    if request.method in SAFE_METHODS and _wrote(session):
        view = current_app.view_functions.get(request.endpoint or "")
        if getattr(view, "writes_on_get", None) is None:
            log.error("a %s handler wrote to the database (GET handlers do not write)", request.method,
                      extra={"endpoint": request.endpoint, "path": request.path})
            if not strict:
                session.commit()
                return
            session.rollback()
            if not production:
                raise GetWrote(f"{request.method} {request.path} ({request.endpoint}) wrote to the database: GET "
                               "handlers do not write (mark a deliberate exception with @writes_on_get)")
            return
    session.commit()
