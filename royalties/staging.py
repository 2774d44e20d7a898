"""Temp tables the month close's set-based phases join against (key-mode pools, subscriber pools)."""

from __future__ import annotations

import io
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from royalties.periods import ONE_MICROSECOND

_SHEET_TABLES = frozenset({"tmp_sheets", "tmp_ssheets"})
_SOURCE_TABLES = frozenset({"tmp_downloads", "split_sheets"})


def stage_split_sheets(session: Session, table: str, source: str, cutoff: datetime) -> None:
    """Create temp `table` (track_id, payee_id, share_bp, position) holding the split sheet in force at the
    month's last instant of every track in `source` (a close phase's temp table, or `split_sheets`: every track
    that has a sheet), COPYed in one round trip.

    `table` and `source` are the close phases' own names, checked against those sets, so no other text can
    reach the SQL."""
    from catalog.services import split_sheets_at

    if table not in _SHEET_TABLES or source not in _SOURCE_TABLES:
        raise ValueError(f"not a month-close temp table: {table!r}, {source!r}")

    track_ids = [row[0] for row in session.execute(text(f"SELECT DISTINCT track_id FROM {source}"))]  # noqa: S608 (checked names)
    sheets = split_sheets_at(session, track_ids, cutoff - ONE_MICROSECOND) if track_ids else {}
    session.execute(text(f"CREATE TEMP TABLE {table} (track_id int, payee_id int, share_bp bigint, "
                         "position int) ON COMMIT DROP"))
    if sheets:
        buffer = io.StringIO()
        for track_id, shares in sheets.items():
            for position, (payee_id, share_bp) in enumerate(shares):
                buffer.write(f"{track_id}\t{payee_id}\t{share_bp}\t{position}\n")
        raw = session.connection().connection.driver_connection
        with raw.cursor().copy(f"COPY {table} (track_id, payee_id, share_bp, position) FROM STDIN") as copy:
            copy.write(buffer.getvalue())
