"""Posting entries through the service layer: ids, idempotency, validation, balances, reversal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import text

from ledger import accounts
from ledger.errors import (
    AlreadyReversed,
    BalanceBoundViolated,
    EntryNotFound,
    IdempotencyConflict,
    InvalidAccount,
    InvalidEntry,
    UnbalancedEntry,
)
from ledger.services import (
    Entry,
    Posting,
    balance,
    balances,
    get_entry,
    post,
    post_many,
    reverse,
    statement,
    trial_balance,
)
from tests.ledger.factories import WHEN, flush, fund, transfer


def test_post_records_entry_and_moves_both_balances(db_session):
    entry_id = post(db_session, transfer("t1", "assets:stripe", "income:sales", 4_990_000))
    assert entry_id > 0
    assert balance(db_session, "assets:stripe", "USD") == 4_990_000
    assert balance(db_session, "income:sales", "USD") == 4_990_000
    stored = get_entry(db_session, entry_id)
    assert [(p.account, p.side, p.amount_micros) for p in stored.postings] == [
        ("assets:stripe", "debit", 4_990_000), ("income:sales", "credit", 4_990_000)]
    assert stored.metadata == {"event": "test"}


def test_normal_side_balances_follow_account_type(db_session):
    post(db_session, fund("f1", 7, 10_000_000))
    post(db_session, flush("ad1", 7, {42: 900_000}, 100_000))
    assert balance(db_session, accounts.advertiser_prepaid(7), "USD") == 9_000_000
    assert balance(db_session, accounts.payee_payable(42), "USD") == 900_000
    assert balance(db_session, accounts.INCOME_ADS, "USD") == 100_000
    assert balance(db_session, accounts.STRIPE, "USD") == 10_000_000
    assert balance(db_session, "liabilities:payee:999:payable", "USD") == 0


def test_same_key_same_content_returns_existing_id(db_session):
    first = post(db_session, transfer("dup", "assets:stripe", "income:sales", 100))
    again = post(db_session, transfer("dup", "assets:stripe", "income:sales", 100))
    assert again == first
    assert balance(db_session, "assets:stripe", "USD") == 100


def test_same_key_different_content_is_a_conflict(db_session):
    post(db_session, transfer("dup", "assets:stripe", "income:sales", 100))
    with pytest.raises(IdempotencyConflict) as caught:
        post(db_session, transfer("dup", "assets:stripe", "income:sales", 101))
    assert caught.value.code == "idempotency_conflict"
    assert balance(db_session, "assets:stripe", "USD") == 100


def test_post_many_returns_ids_in_order_and_dedupes(db_session):
    batch = [transfer(f"k{i}", "assets:stripe", f"liabilities:payee:{i}:payable", 10 + i) for i in range(5)]
    ids = post_many(db_session, batch + [batch[2]])
    assert len(set(ids)) == 5 and ids[5] == ids[2]
    assert ids[:5] == sorted(ids[:5])
    assert post_many(db_session, batch) == ids[:5]
    assert balance(db_session, "assets:stripe", "USD") == sum(10 + i for i in range(5))


def test_post_many_is_all_or_nothing(db_session):
    post(db_session, fund("f", 1, 1_000))
    good = transfer("good", "assets:stripe", "income:sales", 5)
    overspend = transfer("bad", accounts.advertiser_prepaid(1), "income:ads", 2_000)
    with pytest.raises(BalanceBoundViolated) as caught:
        post_many(db_session, [good, overspend])
    assert caught.value.code == "insufficient_balance"
    assert "liabilities:advertiser:1:prepaid" in caught.value.message
    assert balance(db_session, "income:sales", "USD") == 0
    assert balance(db_session, accounts.advertiser_prepaid(1), "USD") == 1_000


def test_conflicting_duplicates_inside_a_batch_are_refused(db_session):
    with pytest.raises(IdempotencyConflict):
        post_many(db_session, [transfer("x", "assets:stripe", "income:sales", 1),
                               transfer("x", "assets:stripe", "income:sales", 2)])


@pytest.mark.parametrize("entry, error, code", [
    (Entry("u", WHEN, "d", [Posting("assets:stripe", "debit", 5, "USD"), Posting("income:ads", "credit", 4, "USD")]),
     UnbalancedEntry, "unbalanced_entry"),
    (Entry("u", WHEN, "d", [Posting("assets:stripe", "debit", 5, "USD")]), InvalidEntry, "invalid_entry"),
    (Entry("u", WHEN, "d", [Posting("assets:stripe", "debit", 0, "USD"), Posting("income:ads", "credit", 0, "USD")]),
     InvalidEntry, "invalid_amount"),
    (Entry("u", WHEN, "d", [Posting("assets:stripe", "debit", -5, "USD"),
                            Posting("income:ads", "credit", -5, "USD")]), InvalidEntry, "invalid_amount"),
    (Entry("u", WHEN, "d", [Posting("assets:stripe", "debit", 1.5, "USD"),
                            Posting("income:ads", "credit", 1.5, "USD")]), InvalidEntry, "invalid_amount"),
    (Entry("u", WHEN, "d", [Posting("Assets:Stripe", "debit", 5, "USD"), Posting("income:ads", "credit", 5, "USD")]),
     InvalidAccount, "invalid_account"),
    (Entry("u", WHEN, "d", [Posting("cash", "debit", 5, "USD"), Posting("income:ads", "credit", 5, "USD")]),
     InvalidAccount, "invalid_account"),
    (Entry("u", WHEN, "d", [Posting("assets:stripe", "sideways", 5, "USD"),
                            Posting("income:ads", "credit", 5, "USD")]), InvalidEntry, "invalid_entry"),
    (Entry("u", WHEN, "d", [Posting("assets:stripe", "debit", 5, "XXX"),
                            Posting("income:ads", "credit", 5, "XXX")]), InvalidEntry, "unsupported_currency"),
    (Entry("u", WHEN.replace(tzinfo=None), "d", [Posting("assets:stripe", "debit", 5, "USD"),
                                                 Posting("income:ads", "credit", 5, "USD")]),
     InvalidEntry, "invalid_entry"),
    (Entry("", WHEN, "d", [Posting("assets:stripe", "debit", 5, "USD"), Posting("income:ads", "credit", 5, "USD")]),
     InvalidEntry, "invalid_entry"),
    (Entry("u", WHEN, "d", [Posting("assets:stripe", "debit", 5, "USD"), Posting("income:ads", "credit", 5, "EUR")]),
     UnbalancedEntry, "unbalanced_entry"),
])
def test_invalid_entries_are_refused_with_a_code(db_session, entry, error, code):
    with pytest.raises(error) as caught:
        post(db_session, entry)
    assert caught.value.code == code
    assert trial_balance(db_session) == []


def test_multi_currency_entry_balances_per_currency(db_session):
    entry = Entry("fx", WHEN, "conversion", [
        Posting("assets:bank", "debit", 100, "EUR"), Posting("equity:fx", "credit", 100, "EUR"),
        Posting("equity:fx", "debit", 110, "USD"), Posting("assets:bank", "credit", 110, "USD")])
    post(db_session, entry)
    assert balance(db_session, "assets:bank", "EUR") == 100
    assert balance(db_session, "assets:bank", "USD") == -110


def test_reverse_mirrors_the_entry_once(db_session):
    entry_id = post(db_session, fund("f", 7, 1_000))
    reversal = reverse(db_session, entry_id, "card refunded", effective_at=WHEN + timedelta(days=1))
    assert balance(db_session, accounts.STRIPE, "USD") == 0
    assert balance(db_session, accounts.advertiser_prepaid(7), "USD") == 0
    stored = get_entry(db_session, reversal)
    assert stored.reverses_id == entry_id
    assert stored.metadata["original_event"] == "advertiser_funding"
    assert get_entry(db_session, entry_id).reversed_by_id == reversal
    assert reverse(db_session, entry_id, "card refunded") == reversal
    with pytest.raises(AlreadyReversed):
        reverse(db_session, entry_id, "again", idempotency_key="another-key")
    with pytest.raises(EntryNotFound):
        reverse(db_session, 10_000, "nothing")


def test_reversal_cannot_take_prepaid_below_zero(db_session):
    funding = post(db_session, fund("f", 7, 1_000))
    post(db_session, transfer("spend", accounts.advertiser_prepaid(7), accounts.INCOME_ADS, 600))
    with pytest.raises(BalanceBoundViolated):
        reverse(db_session, funding, "refund")
    assert balance(db_session, accounts.advertiser_prepaid(7), "USD") == 400


def test_balance_as_of_and_statement_running_balance(db_session):
    t0 = datetime(2026, 10, 1, tzinfo=UTC)
    for day in range(3):
        post(db_session, transfer(f"d{day}", "assets:stripe", "liabilities:payee:5:payable", 100 * (day + 1),
                                  when=t0 + timedelta(days=day), ref=f"track:{day}"))
    post(db_session, transfer("payout", "liabilities:payee:5:payable", "assets:bank", 50,
                              when=t0 + timedelta(days=3)))
    code = accounts.payee_payable(5)
    assert balance(db_session, code, "USD", as_of=t0 + timedelta(days=1)) == 300
    assert balances(db_session, [code, "assets:stripe"], "USD", as_of=t0) == {code: 100, "assets:stripe": 100}
    lines = statement(db_session, code, "USD")
    assert [(line.side, line.amount_micros, line.balance_micros) for line in lines] == [
        ("credit", 100, 100), ("credit", 200, 300), ("credit", 300, 600), ("debit", 50, 550)]
    assert lines[0].ref == "track:0"
    later = statement(db_session, code, "USD", start=t0 + timedelta(days=2))
    assert [line.balance_micros for line in later] == [600, 550]
    assert statement(db_session, "liabilities:payee:6:payable", "USD") == []


def test_trial_balance_sums_to_zero(db_session):
    post(db_session, fund("f", 7, 10_000))
    post(db_session, flush("ad", 7, {1: 4_500, 2: 4_500}, 1_000))
    rows = trial_balance(db_session)
    assert sum(r.debits_micros for r in rows) == sum(r.credits_micros for r in rows) == 20_000
    by_code = {r.account: r for r in rows}
    assert by_code["liabilities:payee:1:payable"].balance_micros == 4_500
    assert by_code["liabilities:payee:1:payable"].type == "liabilities"
    assert trial_balance(db_session, as_of=WHEN - timedelta(days=1)) == []


def test_large_batch_with_existing_and_conflicting_keys(db_session):
    """Batches above the array limit go through COPY staging; duplicates and conflicts behave the same."""
    first = [transfer(f"big{i}", "assets:stripe", f"liabilities:payee:{i % 7}:payable", 100 + i) for i in range(150)]
    ids = post_many(db_session, first)
    assert len(set(ids)) == 150
    mixed = first[100:] + [transfer(f"more{i}", "assets:bank", "income:ads", 5) for i in range(100)]
    again = post_many(db_session, mixed)
    assert again[:50] == ids[100:]
    assert len(set(again[50:])) == 100 and not set(again[50:]) & set(ids)
    assert balance(db_session, "income:ads", "USD") == 500
    conflicting = [transfer(f"new{i}", "assets:bank", "income:ads", 5) for i in range(80)]
    conflicting.append(transfer("big3", "assets:stripe", "liabilities:payee:3:payable", 999))
    with pytest.raises(IdempotencyConflict) as caught:
        post_many(db_session, conflicting)
    assert "big3" in caught.value.message
    assert balance(db_session, "income:ads", "USD") == 500  # nothing of the refused batch was kept


def test_a_large_batch_leaves_the_callers_planner_settings_as_they_were(db_session):
    """The staged insert turns Material nodes off for its own statement only (see ledger.writes)."""
    def setting() -> str:
        return db_session.execute(text("SELECT current_setting('enable_material')")).scalar_one()

    assert setting() == "on"
    first = [transfer(f"plan{i}", "assets:stripe", f"liabilities:payee:{i % 5}:payable", 10) for i in range(100)]
    post_many(db_session, first)
    assert setting() == "on"
    post_many(db_session, first[50:] + [transfer(f"plan-more{i}", "assets:bank", "income:ads", 5) for i in range(70)])
    assert setting() == "on"  # the path for already recorded keys restores it too
    assert balance(db_session, "income:ads", "USD") == 350


def test_a_post_in_a_transaction_that_already_failed_raises_that_failure(db_session):
    """The one-round-trip post sets its savepoint in a pipeline; if the caller's transaction had failed, the
    database's own refusal comes back (not a second error about a savepoint that was never set)."""
    cursor = db_session.connection().connection.dbapi_connection.cursor()
    with pytest.raises(psycopg.errors.DivisionByZero):
        cursor.execute("SELECT 1 / 0")
    with pytest.raises(psycopg.errors.InFailedSqlTransaction):
        post(db_session, transfer("after-failure", "assets:stripe", "income:sales", 5))


def test_a_refused_post_rolls_back_only_its_savepoint(db_session):
    post(db_session, fund("f", 1, 100))
    post(db_session, transfer("inner", "assets:stripe", "income:sales", 7))
    with pytest.raises(BalanceBoundViolated):
        post(db_session, transfer("overdraw", accounts.advertiser_prepaid(1), "income:ads", 101))
    # the failed post rolled back only its own savepoint; the caller's transaction is usable and decides
    assert db_session.execute(text("SELECT count(*) FROM ledger_entries")).scalar() == 2
    db_session.rollback()
    assert balance(db_session, "income:sales", "USD") == 0
    assert balance(db_session, accounts.advertiser_prepaid(1), "USD") == 0  # nothing was committed


def test_the_ledger_never_commits_the_callers_transaction(app, db_session):
    """post, post_many, reverse and close_period leave the commit to the caller (DESIGN.md)."""
    from ledger.services import close_period

    entry_id = post(db_session, fund("f", 1, 1_000, when=WHEN))
    post_many(db_session, [transfer(f"b{i}", "assets:stripe", "income:sales", 1, when=WHEN) for i in range(70)])
    reverse(db_session, entry_id, "mistake", effective_at=WHEN)
    close_period(db_session, "2026-10")
    other = app.extensions["ninety"].sessions()
    try:
        assert other.execute(text("SELECT count(*) FROM ledger_entries")).scalar() == 0
        assert other.execute(text("SELECT count(*) FROM ledger_periods")).scalar() == 0
        db_session.commit()
        assert other.execute(text("SELECT count(*) FROM ledger_entries")).scalar() == 72
    finally:
        other.close()
    with pytest.raises(TypeError):
        post(db_session, transfer("x", "assets:stripe", "income:sales", 1), commit=True)


def test_metadata_must_be_plain_json(db_session):
    with pytest.raises(InvalidEntry):
        post(db_session, transfer("m", "assets:stripe", "income:ads", 1, metadata={"at": WHEN}))
    with pytest.raises(InvalidEntry):
        post(db_session, transfer("m", "assets:stripe", "income:ads", 1, metadata={"x": "a\x00b"}))
