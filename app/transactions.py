"""The request owns the transaction (DESIGN.md): committed after a successful response, rolled back otherwise.

GET and HEAD handlers do not write. After a safe-method request the hook asks PostgreSQL whether the
transaction wrote anything (`pg_current_xact_id_if_assigned()`: an id is assigned at the first write); if
it did and the view is not one of the few deliberate exceptions marked `@writes_on_get(reason)`, the work is
rolled back and, outside production, the request fails loudly, so a GET that writes cannot land unnoticed.
Until the known offenders are fixed (TODO(lead), see docs/decisions.md) the app runs it in report mode:
the write is logged as an error and committed as before.
The exceptions and their reasons are in docs/decisions.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import current_app, request
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


def _wrote(session: Session) -> bool:
    if not session.in_transaction():
        return False
    return session.connection().exec_driver_sql("SELECT pg_current_xact_id_if_assigned()").scalar() is not None


def finish_request(session: Session, status_code: int, *, production: bool, strict: bool) -> None:
    """Commit the request's session after a successful response, roll it back otherwise.

    With `strict`, an unmarked GET that wrote is rolled back (and raises outside production); without it,
    it is only logged as an error (while the known offenders in files still being edited are fixed)."""
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
