"""Monthly partitions (migration 0013): impression, invalid-traffic, play and download rows live in one
partition per UTC month, with a DEFAULT partition catching any month not created yet.

`ensure_months` creates the partitions a writer is about to need; each commits on its own, in a short transaction
(creating a partition locks its table for a moment; doing it inside a flush batch would hold that lock while
the batch waits on ledger rows), waiting at most LOCK_TIMEOUT_MS for the lock: while a long transaction reads
the table, the month is left for a later batch and its rows go to the DEFAULT partition meanwhile (correct,
only not pruned), instead of every writer queueing behind the lock request. `archive_month` detaches a month's partitions into the `archive` schema: the
rows stay queryable there (`archive.ad_impressions_2026_10`), the live tables and reports stop reading them,
and the books are not touched.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

# table -> the timestamp column it is partitioned by
PARTITIONED = {"ad_impressions": "at", "ad_invalid_traffic": "at", "plays": "counted_at",
               "downloads": "completed_at"}
ARCHIVE_SCHEMA = "archive"

LOCK_TIMEOUT_MS = 200

_known: set[tuple[str, str, date]] = set()


def month_of(at: datetime) -> date:
    return date(at.year, at.month, 1)


def _database(bind) -> str:
    url = bind.engine.url if hasattr(bind, "engine") else bind.url
    return url.render_as_string(hide_password=True)


def ensure_months(sessions, table: str, times: Iterable[datetime | date]) -> None:
    """Make sure `table` has a partition for the month of each time (created, and its rows moved out of the
    DEFAULT partition, when missing). Cheap when they exist: remembered per process."""
    column = PARTITIONED[table]
    months = {month_of(t) if isinstance(t, datetime) else t.replace(day=1) for t in times}
    if not months:
        return
    session: Session = sessions()
    try:
        database = _database(session.get_bind())
        missing = sorted(m for m in months if (database, table, m) not in _known)
        for month in missing:
            try:
                session.execute(text(f"SET LOCAL lock_timeout = {int(LOCK_TIMEOUT_MS)}"))
                session.execute(text("SELECT ninety_month_partition(CAST(:t AS regclass), :c, :m)"),
                                {"t": table, "c": column, "m": month})
                session.commit()  # its own short transaction: see the module docstring
            except OperationalError as exc:
                session.rollback()
                if getattr(exc.orig, "sqlstate", None) not in ("55P03", "40P01"):  # lock timeout, deadlock
                    raise
                continue  # not now: the DEFAULT partition takes the month's rows until a later batch
            _known.add((database, table, month))
    finally:
        session.close()


def partition_name(table: str, month: date) -> str:
    return f"{table}_{month:%Y_%m}"


def archive_month(session: Session, period: str) -> list[str]:
    """Detach every partitioned table's partition of `period` (YYYY-MM) into the archive schema; the names
    moved. The caller checks the month is closed and commits. A month already archived moves nothing."""
    year, month_number = (int(part) for part in period.split("-"))
    month = date(year, month_number, 1)
    moved = []
    for table in PARTITIONED:
        name = partition_name(table, month)
        attached = session.execute(text(
            "SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.inhparent = CAST(:t AS regclass) "
            "AND c.relname = :n AND n.nspname = 'public'"), {"t": table, "n": name}).first()
        if attached is None:
            continue
        session.execute(text(f'ALTER TABLE "{table}" DETACH PARTITION "{name}"'))
        session.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{ARCHIVE_SCHEMA}"'))
        session.execute(text(f'ALTER TABLE "{name}" SET SCHEMA "{ARCHIVE_SCHEMA}"'))
        moved.append(f"{ARCHIVE_SCHEMA}.{name}")
    for key in [k for k in _known if k[2] == month]:
        _known.discard(key)
    return moved
