"""Periods: a royalty month is a calendar month in UTC, named YYYY-MM; its cut-off is the next month's start."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from royalties.errors import InvalidPeriod

PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
ONE_MICROSECOND = timedelta(microseconds=1)


def bounds(period: str) -> tuple[datetime, datetime]:
    """[start, cutoff) of the month, as aware UTC datetimes."""
    match = PERIOD_RE.match(period or "") if isinstance(period, str) else None
    if not match:
        raise InvalidPeriod(f"{str(period)[:20]!r} is not a month; write it as YYYY-MM, like 2026-10.")
    year, month = int(match[1]), int(match[2])
    try:
        start = datetime(year, month, 1, tzinfo=UTC)
        cutoff = datetime(year + (month == 12), 1 if month == 12 else month + 1, 1, tzinfo=UTC)
    except ValueError:  # year 0000, or 9999-12 whose cut-off is in year 10000: no calendar holds them
        raise InvalidPeriod(f"{period!r} is outside the calendar; months run from 0001-01 to 9999-11.") from None
    return start, cutoff


def period_of(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-{moment.month:02d}"


def previous(period: str) -> str:
    start, _ = bounds(period)
    return period_of(start - ONE_MICROSECOND)
