"""Business days for the counter-notice timer: weekends and the configured country's public holidays.

§512(g)(2)(C) restores counter-noticed material "not less than 10, nor more than 14, business days" after
the counter-notice. A business day is Monday to Friday, not a public holiday of `country` (the `holidays`
package). Adding n business days to a moment keeps its time of day and lands on the n-th business day after
its date, so a counter-notice filed on a Friday evening restores ten working days later at the same hour.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta

import holidays


@functools.lru_cache(maxsize=64)
def _holidays(country: str, year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays(country, years=year).keys())


def is_business_day(day: date, country: str) -> bool:
    return day.weekday() < 5 and day not in _holidays(country.upper(), day.year)


def add_business_days(start: datetime, days: int, country: str) -> datetime:
    """`start` moved forward by `days` business days (same time of day)."""
    if days < 0:
        raise ValueError("business days to add must not be negative")
    current = start
    remaining = days
    while remaining:
        current += timedelta(days=1)
        if is_business_day(current.date(), country):
            remaining -= 1
    return current


def business_days_between(start: datetime, end: datetime, country: str) -> int:
    """How many business days lie after `start`'s date up to and including `end`'s date."""
    count, day = 0, start.date()
    while day < end.date():
        day += timedelta(days=1)
        if is_business_day(day, country):
            count += 1
    return count
