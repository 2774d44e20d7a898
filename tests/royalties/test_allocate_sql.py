"""`ninety_allocate` (migration 0018), the close's split of a track's part over a sheet with several payees,
is `core.money.allocate` in SQL: the same parts for any total and weights, negative totals included; and the
close's planner settings for its big statements are put back after them."""

from __future__ import annotations

import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st

from core.money import allocate


@settings(max_examples=300, deadline=None)
@given(total=st.integers(-10**15, 10**15),
       weights=st.lists(st.integers(0, 10_000), min_size=1, max_size=8).filter(any))
def test_ninety_allocate_matches_core_money_allocate(database_url, total, weights):
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        got = conn.execute("SELECT ninety_allocate(%s, %s::bigint[])", (total, weights)).fetchone()[0]
    assert got == allocate(total, weights)


def test_ninety_allocate_breaks_ties_to_the_earlier_position_and_refuses_no_weight(database_url):
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        one = conn.execute("SELECT ninety_allocate(1, ARRAY[5000, 5000]::bigint[])").fetchone()[0]
        five = conn.execute("SELECT ninety_allocate(5, ARRAY[1, 1, 1]::bigint[])").fetchone()[0]
        none = conn.execute("SELECT ninety_allocate(5, ARRAY[0, 0]::bigint[])").fetchone()[0]
    assert one == [1, 0] and five == [2, 2, 1] and none is None


def test_the_close_sets_planner_settings_for_its_statements_and_puts_them_back(db_session):
    from sqlalchemy import text

    from royalties.subscriber_pool import _settings

    def current() -> tuple:
        return db_session.execute(text("SELECT current_setting('work_mem'), current_setting('enable_sort')")).one()

    db_session.execute(text("SET LOCAL work_mem = '64MB'"))
    with _settings(db_session, work_mem="512MB", enable_sort="off"):
        assert current() == ("512MB", "off")
    assert current() == ("64MB", "on")
