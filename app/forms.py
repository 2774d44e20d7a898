"""The form idiom of the server-rendered pages: try the service, flash the error, redirect.

    with attempt() as tried:
        campaign = ads.create_campaign(context.db(), ...)
    if tried.failed:
        return redirect(back, code=303)

The request commits after any response below 400 (app/transactions.py), a redirect included, so a view that
caught a domain error and redirected used to commit whatever the service had flushed before it refused.
`attempt` runs the block in a savepoint of the request's transaction: on a domain error (`NinetyError`) the
savepoint rolls back, so nothing half-written is committed (work queued for after the commit, such as an
email or a Redis credit, is dropped with it), and the error's message is flashed for the next page. Any
other exception rolls the savepoint back and propagates (the request then fails and rolls back whole).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import flash
from sqlalchemy.orm import Session

from app import context
from core.errors import NinetyError


@dataclass
class Attempt:
    """What came of an `attempt`: the domain error it caught, if any."""

    error: NinetyError | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


@contextmanager
def attempt(session: Session | None = None, *, category: str = "error") -> Iterator[Attempt]:
    """Run the block in a savepoint; a domain error undoes the block's writes and is flashed, not raised."""
    session = session if session is not None else context.db()
    outcome = Attempt()
    savepoint = session.begin_nested()
    try:
        yield outcome
    except NinetyError as exc:
        if savepoint.is_active:
            savepoint.rollback()
        outcome.error = exc
        flash(exc.message, category)
    except BaseException:
        if savepoint.is_active:
            savepoint.rollback()
        raise
    else:
        if savepoint.is_active:
            savepoint.commit()
