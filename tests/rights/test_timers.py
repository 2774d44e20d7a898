"""Business days: weekends and the configured country's public holidays are skipped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rights.timers import add_business_days, business_days_between, is_business_day


@pytest.mark.parametrize("start,days,country,expected", [
    # Friday evening + 1 business day = Monday, same time.
    (datetime(2026, 10, 9, 18, 30, tzinfo=UTC), 1, "US", datetime(2026, 10, 13, 18, 30, tzinfo=UTC)),  # Columbus Day
    (datetime(2026, 10, 9, 18, 30, tzinfo=UTC), 1, "GB", datetime(2026, 10, 12, 18, 30, tzinfo=UTC)),
    # Thanksgiving (Thu 26 Nov 2026) in the US; ten business days from Mon 23 Nov.
    (datetime(2026, 11, 23, 9, 0, tzinfo=UTC), 10, "US", datetime(2026, 12, 8, 9, 0, tzinfo=UTC)),
    # Christmas and Boxing Day in Germany; New Year's Day.
    (datetime(2026, 12, 23, 12, 0, tzinfo=UTC), 3, "DE", datetime(2026, 12, 29, 12, 0, tzinfo=UTC)),
    (datetime(2026, 12, 30, 12, 0, tzinfo=UTC), 2, "DE", datetime(2027, 1, 4, 12, 0, tzinfo=UTC)),
    (datetime(2026, 10, 5, 9, 0, tzinfo=UTC), 0, "US", datetime(2026, 10, 5, 9, 0, tzinfo=UTC)),
])
def test_add_business_days(start, days, country, expected):
    assert add_business_days(start, days, country) == expected
    assert business_days_between(start, expected, country) == days


def test_weekends_and_holidays_are_not_business_days():
    assert not is_business_day(datetime(2026, 10, 10).date(), "US")  # Saturday
    assert not is_business_day(datetime(2026, 7, 3).date(), "US")  # Independence Day observed
    assert is_business_day(datetime(2026, 7, 3).date(), "FR")
    assert not is_business_day(datetime(2026, 7, 14).date(), "FR")  # Bastille Day


def test_the_restore_date_follows_the_configured_country(world, holder, admin):

    ada = world.artist("Ada")
    world.clock.set(datetime(2026, 12, 21, 10, 0, tzinfo=UTC))  # Monday before Christmas
    notice_id, case_id = world.actioned(holder, admin, ada["tracks"])
    german = world.settings.__class__(holiday_country="DE")
    world.counter(case_id, ada["user"], settings=german)
    # Skips 25, 26 Dec (and the weekend, and 1 Jan): 22 23 24 28 29 30 31 Dec, 4 5 6 Jan.
    assert world.case(case_id).restore_at == datetime(2027, 1, 6, 10, 0, tzinfo=UTC)
    world.clock.set(datetime(2027, 1, 6, 9, 59, tzinfo=UTC))
    assert world.tick().restored == []
    world.clock.set(datetime(2027, 1, 6, 10, 0, tzinfo=UTC))
    assert world.tick().restored == [case_id]
