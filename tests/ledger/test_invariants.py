"""Raw SQL that tries to break each invariant of the books is refused by PostgreSQL itself."""

from __future__ import annotations

import psycopg
import pytest

from ledger import accounts
from ledger.services import balance, post
from tests.ledger.factories import WHEN, fund, transfer


@pytest.fixture
def raw(database_url):
    conn = psycopg.connect(database_url.replace("+psycopg", ""))
    yield conn
    conn.rollback()
    conn.close()


@pytest.fixture
def booked(db_session):
    post(db_session, fund("f", 7, 1_000))
    entry_id = post(db_session, transfer("t", "assets:stripe", "income:sales", 500))
    db_session.commit()  # the raw connection below is another session
    return entry_id


def _refused(raw, sql, params=(), state=None):
    with pytest.raises(psycopg.Error) as caught:
        raw.execute(sql, params)
    raw.rollback()
    if state:
        assert caught.value.sqlstate == state, caught.value
    return caught.value


def _ids(raw):
    rows = raw.execute("SELECT code, id FROM ledger_accounts").fetchall()
    raw.rollback()
    return dict(rows)


INSERT_ENTRY = """
WITH e AS (INSERT INTO ledger_entries (idempotency_key, effective_at, description)
           VALUES (%s, %s, 'raw') RETURNING id)
INSERT INTO ledger_postings (entry_id, amount_micros, account_id, position, credit, currency)
SELECT e.id, v.amount, v.account, v.position, v.credit, 'USD' FROM e,
       (VALUES {values}) AS v(amount, account, position, credit)
"""


def test_unbalanced_entry_is_refused(raw, booked):
    ids = _ids(raw)
    sql = INSERT_ENTRY.format(values="(100::bigint, %s::int, 0::int2, false), (99::bigint, %s::int, 1::int2, true)")
    error = _refused(raw, sql, ("raw1", WHEN, ids["assets:stripe"], ids["income:sales"]), "LDG02")
    assert "does not balance" in str(error)


def test_balanced_raw_entry_is_accepted_and_updates_balances(raw, booked, db_session):
    ids = _ids(raw)
    sql = INSERT_ENTRY.format(values="(7::bigint, %s::int, 0::int2, false), (7::bigint, %s::int, 1::int2, true)")
    raw.execute(sql, ("raw-ok", WHEN, ids["assets:stripe"], ids["income:sales"]))
    raw.commit()
    assert balance(db_session, "income:sales", "USD") == 507


def test_zero_and_negative_amounts_are_refused(raw, booked):
    ids = _ids(raw)
    for amount in (0, -5):
        values = f"({amount}::bigint, %s::int, 0::int2, false), ({amount}::bigint, %s::int, 1::int2, true)"
        error = _refused(raw, INSERT_ENTRY.format(values=values),
                         ("raw2", WHEN, ids["assets:stripe"], ids["income:sales"]), "23514")
        assert "amount_positive" in str(error)


def test_entry_without_postings_is_refused(raw, booked):
    _refused(raw, "INSERT INTO ledger_entries (idempotency_key, effective_at, description) VALUES ('x', %s, 'y')",
             (WHEN,), "LDG05")


def test_single_posting_entry_is_refused(raw, booked):
    ids = _ids(raw)
    sql = INSERT_ENTRY.format(values="(5::bigint, %s::int, 0::int2, false)")
    error = _refused(raw, sql, ("raw3", WHEN, ids["assets:stripe"]), "LDG05")
    assert "at least two postings" in str(error)


def test_postings_to_a_missing_entry_or_account_are_refused(raw, booked):
    ids = _ids(raw)
    _refused(raw, "INSERT INTO ledger_postings (entry_id, amount_micros, account_id, position, credit, currency) "
                  "VALUES (9999, 5, %s, 0, false, 'USD'), (9999, 5, %s, 1, true, 'USD')",
             (ids["assets:stripe"], ids["income:sales"]), "LDG05")
    sql = INSERT_ENTRY.format(values="(5::bigint, %s::int, 0::int2, false), (5::bigint, 424242, 1::int2, true)")
    _refused(raw, sql, ("raw4", WHEN, ids["assets:stripe"]), "LDG04")


def test_posting_in_a_currency_the_account_is_not_kept_in_is_refused(raw, booked):
    ids = _ids(raw)
    sql = INSERT_ENTRY.replace("'USD'", "'EUR'").format(
        values="(5::bigint, %s::int, 0::int2, false), (5::bigint, %s::int, 1::int2, true)")
    _refused(raw, sql, ("raw5", WHEN, ids["assets:stripe"], ids["income:sales"]), "LDG04")


@pytest.mark.parametrize("sql", [
    "UPDATE ledger_postings SET amount_micros = amount_micros + 1",
    "DELETE FROM ledger_postings",
    "UPDATE ledger_entries SET description = 'edited'",
    "DELETE FROM ledger_entries",
    "TRUNCATE ledger_postings",
    "TRUNCATE ledger_entries CASCADE",
    "DELETE FROM ledger_accounts",
    "TRUNCATE ledger_accounts CASCADE",
])
def test_history_cannot_be_edited_or_deleted(raw, booked, sql):
    error = _refused(raw, sql, (), "LDG01")
    assert "append-only" in str(error)


@pytest.mark.parametrize("sql", [
    "UPDATE ledger_accounts SET credits_micros = credits_micros + 1, version = version + 1",
    "UPDATE ledger_accounts SET debits_micros = 0",
    "UPDATE ledger_accounts SET code = 'assets:elsewhere'",
    "UPDATE ledger_accounts SET min_balance_micros = NULL",
])
def test_balances_change_only_through_postings(raw, booked, sql):
    error = _refused(raw, sql, (), "LDG01")
    assert "only change through postings" in str(error)


def test_account_must_start_empty(raw, booked):
    _refused(raw, "INSERT INTO ledger_accounts (code, currency, type, debit_normal, credits_micros) "
                  "VALUES ('assets:new', 'USD', 'assets', true, 100)", (), "LDG04")
    _refused(raw, "INSERT INTO ledger_accounts (code, currency, type, debit_normal) "
                  "VALUES ('assets:new', 'USD', 'income', false)", (), "LDG04")
    _refused(raw, "INSERT INTO ledger_accounts (code, currency, type, debit_normal) "
                  "VALUES ('Assets:New', 'USD', 'assets', true)", (), "LDG04")


def test_bound_is_enforced_on_raw_overspend(raw, booked, db_session):
    ids = _ids(raw)
    prepaid = ids[accounts.advertiser_prepaid(7)]
    sql = INSERT_ENTRY.format(values="(1001::bigint, %s::int, 0::int2, false), (1001::bigint, %s::int, 1::int2, true)")
    error = _refused(raw, sql, ("raw6", WHEN, prepaid, ids["assets:stripe"]), "23514")
    assert "min_balance" in str(error)
    assert balance(db_session, accounts.advertiser_prepaid(7), "USD") == 1_000


def test_entry_in_a_closed_period_is_refused(raw, booked, db_session):
    from ledger.services import close_period

    close_period(db_session, "2026-10")
    db_session.commit()
    ids = _ids(raw)
    sql = INSERT_ENTRY.format(values="(5::bigint, %s::int, 0::int2, false), (5::bigint, %s::int, 1::int2, true)")
    error = _refused(raw, sql, ("raw7", WHEN, ids["assets:stripe"], ids["income:sales"]), "LDG03")
    assert "closed period" in str(error)
    _refused(raw, "DELETE FROM ledger_periods", (), "LDG01")
    _refused(raw, "UPDATE ledger_periods SET digest = digest", (), "LDG01")


def test_an_entry_is_reversed_at_most_once(raw, booked):
    ids = _ids(raw)
    sql = INSERT_ENTRY.replace("description)", "description, reverses_id)").replace("'raw')", "'raw', %s)").format(
        values="(500::bigint, %s::int, 0::int2, false), (500::bigint, %s::int, 1::int2, true)")
    raw.execute(sql, ("rev1", WHEN, booked, ids["income:sales"], ids["assets:stripe"]))
    _refused(raw, sql, ("rev2", WHEN, booked, ids["income:sales"], ids["assets:stripe"]), "23505")


def test_postings_cannot_be_appended_to_a_recorded_entry(raw, booked):
    """Even a balanced pair, added later to an existing entry, is refused: entries are sealed."""
    ids = _ids(raw)
    error = _refused(raw, "INSERT INTO ledger_postings (entry_id, amount_micros, account_id, position, credit, "
                          "currency) VALUES (%s, 5, %s, 7, false, 'USD'), (%s, 5, %s, 8, true, 'USD')",
                     (booked, ids["assets:stripe"], booked, ids["income:sales"]), "LDG05")
    assert "sealed" in str(error)


def test_spread_out_entry_ids_take_the_probing_path(raw, booked, db_session):
    """A batch whose ids are far apart (a pooled session's old id cache) is still checked, entry by entry."""
    ids = _ids(raw)
    sql = """
    WITH e AS (INSERT INTO ledger_entries (id, idempotency_key, effective_at, description)
               VALUES (900000, 'far-1', %(at)s, 'x'), (5, 'near-1', %(at)s, 'y') RETURNING id)
    INSERT INTO ledger_postings (entry_id, amount_micros, account_id, position, credit, currency)
    SELECT e.id, 3, a.account, a.position, a.credit, 'USD' FROM e,
           (VALUES (%(debit)s::int, 0::int2, false), (%(credit)s::int, 1::int2, true)) AS a(account, position, credit)
     WHERE e.id = 900000 OR a.position = 0
    """
    params = {"at": WHEN, "debit": ids["assets:stripe"], "credit": ids["income:sales"]}
    error = _refused(raw, sql, params, None)
    assert error.sqlstate in ("LDG02", "LDG05")
    ok = sql.replace("WHERE e.id = 900000 OR a.position = 0", "").replace("'near-1'", "'near-2'")
    raw.execute(ok, params)
    raw.commit()
    assert balance(db_session, "income:sales", "USD") == 506
