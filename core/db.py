"""SQLAlchemy 2 set-up shared by every package: the declarative Base, engines and sessions.

Nothing is created at import time; the app (or a CLI command, or a test) builds the engine from a URL.

Who owns the transaction (DESIGN.md): services never commit. The owner is the request (the app's hook), a
CLI command or one worker batch, and it commits with `transaction(...)`, or with `retrying(...)` when the
work may collide with concurrent writers (a deadlock or serialization failure is retried from the start:
only the owner can, since the work's savepoints live inside its transaction).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Every package that owns tables; alembic's env.py and the tests import their models through this list.
MODEL_MODULES = (
    "core.users",
    "ledger.models",
    "catalog.models",
    "adserver.models",
    "royalties.models",
    "payments.models",
    "sales.models",
    "sales.subscription_models",
    "rights.models",
)


class UTCDateTime(TypeDecorator):
    """A timestamptz that refuses naive datetimes and always comes back in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC timestamp is required")
        return value

    def process_result_value(self, value, dialect):
        if value is not None:
            return value.astimezone(UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


def import_all_models() -> MetaData:
    """Import every package's models so that Base.metadata knows all tables."""
    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return Base.metadata


def normalize_url(url: str) -> str:
    """Accept plain postgresql:// URLs and use psycopg 3 for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


# A pooled connection idle for longer than this is pinged before it is handed out (see `make_engine`).
PING_AFTER_IDLE_S = 5.0


def make_engine(url: str, *, ping_after_idle_s: float | None = PING_AFTER_IDLE_S, **kwargs) -> Engine:
    """An engine for `url` (psycopg 3), pooled. A connection that sat in the pool for more than
    `ping_after_idle_s` is pinged when it is checked out, and replaced if the server has closed it (a restart,
    an idle timeout): what SQLAlchemy's `pool_pre_ping` does for every checkout, without its round trip for
    the connections a busy server hands out again within moments (every request's first query paid for one)."""
    options = {}
    if "poolclass" not in kwargs:
        options.update(pool_size=10, max_overflow=20)
    options.update(kwargs)
    engine = create_engine(normalize_url(url), **options)
    if ping_after_idle_s is not None and not options.get("pool_pre_ping"):
        _ping_when_idle(engine, ping_after_idle_s)
    return engine


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_connection, record) -> None:
        record.info["ninety_checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, proxy) -> None:
        since = record.info.pop("ninety_checked_in_at", None)
        if since is None or time.monotonic() - since <= idle_s:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # noqa: BLE001 - any failure to ping is a dead connection here
            raise DisconnectionError("the pooled connection was closed by the server") from exc
        if not alive:
            raise DisconnectionError("the pooled connection was closed by the server")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


T = TypeVar("T")
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock detected, serialization failure


def is_retryable(exc: BaseException) -> bool:
    """A deadlock or serialization failure: raised by the driver, wrapped by SQLAlchemy, or a domain error
    that says so (`retryable = True`, e.g. the ledger's ConcurrentPostings)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "retryable", False):
            return True
        for candidate in (current, getattr(current, "orig", None)):
            if getattr(candidate, "sqlstate", None) in RETRYABLE_SQLSTATES:
                return True
        current = current.__cause__ or current.__context__
    return False


def retrying(factory: sessionmaker[Session], work: Callable[[Session], T], *, attempts: int = 8,
             backoff_s: float = 0.005) -> T:
    """Run `work(session)` as one unit of work and commit it; on a deadlock or serialization failure roll
    back and run it again from the start in a fresh session (up to `attempts` times), then re-raise."""
    for attempt in range(attempts):
        try:
            with transaction(factory) as session:
                return work(session)
        except Exception as exc:
            if attempt + 1 >= attempts or not is_retryable(exc):
                raise
            time.sleep(backoff_s * (attempt + 1))
    raise AssertionError("unreachable")
