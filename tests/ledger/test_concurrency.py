"""Concurrency on real PostgreSQL: many writers on a few hot accounts, keys racing themselves, bounds under
contention, closing a period while posting.

The ledger never commits: each writer owns its transactions and commits them with `core.db.retrying`, which
also retries a deadlock from the start (the ledger itself only raises it as ConcurrentPostings)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from core.db import retrying
from ledger import accounts
from ledger.checks import check_books
from ledger.errors import BalanceBoundViolated, ConcurrentPostings, PeriodClosed
from ledger.services import balance, close_period, post, post_many
from tests.ledger.factories import flush, fund, transfer

THREADS = 8


def posted(sessions, entry):
    """Post one entry in a transaction of its own, committed (and retried on a deadlock) by the caller."""
    return retrying(sessions, lambda s: post(s, entry))


def posted_many(sessions, batch):
    return retrying(sessions, lambda s: post_many(s, batch))


def run_threads(target, count=THREADS):
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []
    results: list = [None] * count

    def wrapper(index):
        try:
            barrier.wait()
            results[index] = target(index)
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised by the test
            errors.append(exc)

    threads = [threading.Thread(target=wrapper, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a writer is stuck (deadlock left unhandled?)"
    return results, errors


def test_many_writers_on_few_accounts_keep_balances_exact(app):
    sessions = app.extensions["ninety"].sessions
    hot = [accounts.payee_payable(i) for i in range(3)]
    per_thread = 25

    def writer(index):
        for n in range(per_thread):
            # alternate the order in which the hot accounts appear, to tempt deadlocks
            a, b = (hot[n % 3], hot[(n + 1) % 3]) if index % 2 else (hot[(n + 1) % 3], hot[n % 3])
            posted(sessions, transfer(f"w{index}-{n}", accounts.STRIPE, a, 1_000 + n, ref=b))
            posted(sessions, transfer(f"w{index}-{n}-b", b, a, 7))
            if n % 5 == 0:
                posted_many(sessions, [transfer(f"w{index}-{n}-m{k}", accounts.BANK, hot[k % 3], 3)
                                       for k in range(80)])

    _, errors = run_threads(writer)
    assert errors == []
    session = sessions()
    expected_stripe = THREADS * sum(1_000 + n for n in range(per_thread))
    assert balance(session, accounts.STRIPE, "USD") == expected_stripe
    assert balance(session, accounts.BANK, "USD") == THREADS * 5 * 80 * 3
    assert sum(balance(session, code, "USD") for code in hot) == expected_stripe + THREADS * 5 * 80 * 3
    report = check_books(session)
    assert report.ok, report.problems
    assert report.entries == THREADS * per_thread * 2 + THREADS * 5 * 80
    session.close()


def test_same_key_racing_itself_records_one_entry(app):
    sessions = app.extensions["ninety"].sessions

    def racer(_):
        return posted(sessions, transfer("the-one-event", accounts.STRIPE, accounts.INCOME_SALES, 4_990_000))

    results, errors = run_threads(racer)
    assert errors == []
    assert len(set(results)) == 1
    session = sessions()
    assert balance(session, accounts.INCOME_SALES, "USD") == 4_990_000
    assert check_books(session).entries == 1
    session.close()


def test_same_batch_racing_itself(app):
    sessions = app.extensions["ninety"].sessions
    batch = [flush(f"batch-{i}", 9, {1: 900, 2: 450}, 150) for i in range(100)]
    posted(sessions, fund("funding", 9, 10_000_000))

    def racer(_):
        return posted_many(sessions, batch)

    results, errors = run_threads(racer, 4)
    assert errors == []
    assert all(r == results[0] for r in results)
    session = sessions()
    assert balance(session, accounts.advertiser_prepaid(9), "USD") == 10_000_000 - 100 * 1_500
    assert check_books(session).entries == 101
    session.close()


def test_bound_holds_when_spenders_race(app):
    """Eight spenders race for a budget that covers only five of them: exactly five win, none overdraws."""
    sessions = app.extensions["ninety"].sessions
    posted(sessions, fund("budget", 3, 5_000))

    def spender(index):
        try:
            posted(sessions, transfer(f"spend-{index}", accounts.advertiser_prepaid(3), accounts.INCOME_ADS, 1_000))
            return "spent"
        except BalanceBoundViolated:
            return "refused"

    results, errors = run_threads(spender)
    assert errors == []
    assert results.count("spent") == 5 and results.count("refused") == 3
    session = sessions()
    assert balance(session, accounts.advertiser_prepaid(3), "USD") == 0
    assert balance(session, accounts.INCOME_ADS, "USD") == 5_000
    session.close()


def test_closing_a_period_while_posting_into_it(app):
    """Every entry either lands before the close (and is in the digest) or is refused; the check agrees."""
    sessions = app.extensions["ninety"].sessions
    when = datetime(2026, 10, 20, tzinfo=UTC)

    def poster(index):
        outcomes = []
        for n in range(15):
            try:
                posted(sessions, transfer(f"p{index}-{n}", accounts.STRIPE, accounts.INCOME_SALES, 10, when=when))
                outcomes.append("posted")
            except PeriodClosed:
                outcomes.append("refused")
        return outcomes

    def closer(_):
        retrying(sessions, lambda s: close_period(s, "2026-10"))

    results, errors = run_threads(lambda i: closer(i) if i == 0 else poster(i), 6)
    assert errors == []
    landed = sum(r.count("posted") for r in results[1:])
    session = sessions()
    assert balance(session, accounts.INCOME_SALES, "USD") == 10 * landed
    report = check_books(session)
    assert report.ok, report.problems
    assert report.closed_periods == 1
    session.close()


def test_a_deadlock_is_raised_to_the_owner_and_retried_from_the_start(app):
    """Two transactions post to the same two accounts in opposite orders: PostgreSQL kills one; the ledger
    (inside the caller's transaction) raises ConcurrentPostings, and `retrying`, the owner, reruns it."""
    sessions = app.extensions["ninety"].sessions
    first, second = accounts.payee_payable(1), accounts.payee_payable(2)
    posted_many(sessions, [transfer("open-1", accounts.STRIPE, first, 1), transfer("open-2", accounts.STRIPE, second, 1)])
    barrier = threading.Barrier(2, timeout=30)
    attempts = {0: 0, 1: 0}
    raised: list[str] = []

    def work(index):
        a, b = (first, second) if index == 0 else (second, first)
        source = accounts.STRIPE if index == 0 else accounts.BANK  # the only rows they contend for: a and b

        def unit(session):
            attempts[index] += 1
            post(session, transfer(f"d{index}-a", source, a, 10))
            if attempts[index] == 1:
                barrier.wait()  # both hold their first account's row lock now
            try:
                post(session, transfer(f"d{index}-b", source, b, 10))
            except ConcurrentPostings:
                raised.append("retry")
                raise
        return retrying(sessions, unit)

    _, errors = run_threads(work, 2)
    assert errors == []
    assert raised == ["retry"] and sorted(attempts.values()) == [1, 2]
    session = sessions()
    assert balance(session, first, "USD") == 21 and balance(session, second, "USD") == 21
    assert check_books(session).entries == 6
    session.close()
