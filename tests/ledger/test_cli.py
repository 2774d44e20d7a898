"""`ninety ledger check|export|trial-balance` on a generated book, and on a deliberately broken copy."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from ledger import accounts
from ledger.services import Entry, Posting, close_period, post, post_many, reverse
from tests.ledger.factories import flush, fund, transfer

OCT = datetime(2026, 10, 3, 9, 30, tzinfo=UTC)


def build_book(session) -> dict:
    """A small but complete book: funding, ad flushes, a sale with fees, a payout, a reversal, two currencies,
    sub-cent amounts, a closed month."""
    ids = {}
    ids["fund"] = post(session, fund("fund-1", 7, 50_000_000, when=OCT))
    ids["flushes"] = post_many(session, [
        flush(f"flush-{i}", 7, {41: 900_123 + i, 42: 450_061}, 277_777, when=OCT + timedelta(days=i))
        for i in range(20)])
    ids["sale"] = post(session, Entry("sale-1", OCT + timedelta(days=2), 'Sale of "Night Drive" \\ remastered', [
        Posting(accounts.STRIPE, "debit", 9_410_000, "EUR"),
        Posting(accounts.PROCESSING_FEES, "debit", 590_000, "EUR"),
        Posting(accounts.payee_payable(41), "credit", 8_469_000, "EUR", "release:3"),
        Posting(accounts.INCOME_SALES, "credit", 1_531_000, "EUR"),
    ], {"event": "sale", "order": 17}))
    ids["payout"] = post(session, transfer("payout-1", accounts.payee_payable(41), accounts.PAYOUTS_IN_TRANSIT,
                                           10_000_000, when=OCT + timedelta(days=25),
                                           metadata={"event": "payout"}))
    ids["reversal"] = reverse(session, ids["payout"], "rail refused", effective_at=OCT + timedelta(days=26))
    close_period(session, "2026-10")
    ids["november"] = post(session, transfer("pool-1", accounts.advertiser_prepaid(7),
                                             accounts.listener_pool("2026-11"), 1_234_567,
                                             when=datetime(2026, 11, 2, tzinfo=UTC),
                                             ref="listener:ab12"))
    session.commit()  # the ledger never commits; the CLI reads the book from its own session
    return ids


def test_check_passes_on_a_sound_book(runner, db_session):
    build_book(db_session)
    result = runner.invoke(["ledger", "check"])
    assert result.exit_code == 0, result.output
    assert "ok: the books balance" in result.output
    assert "1 closed periods" in result.output


def test_check_fails_naming_the_tampered_entry(runner, db_session, database_url):
    ids = build_book(db_session)
    victim = ids["flushes"][4]
    with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # superuser: the triggers are bypassed
        conn.execute("UPDATE ledger_postings SET amount_micros = amount_micros + 1 "
                     "WHERE entry_id = %s AND position = 1", (victim,))
    result = runner.invoke(["ledger", "check"])
    assert result.exit_code == 1
    assert f"entry {victim} does not balance in USD" in result.output
    assert "[balance_mismatch] account liabilities:payee:41:payable (USD)" in result.output
    assert "[period_digest_mismatch] period 2026-10" in result.output
    assert f"first suspect: entry {victim}" in result.output


def test_check_detects_a_rebalanced_edit_of_a_closed_period(runner, db_session, database_url):
    """Moving money between two postings of one entry keeps it balanced; only the digest can tell."""
    ids = build_book(db_session)
    victim = ids["flushes"][0]
    with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE ledger_postings SET amount_micros = amount_micros + 5 WHERE entry_id = %s "
                     "AND position = 1", (victim,))
        conn.execute("UPDATE ledger_postings SET amount_micros = amount_micros - 5 WHERE entry_id = %s "
                     "AND position = 2", (victim,))
        conn.execute("UPDATE ledger_accounts SET credits_micros = credits_micros + 5 WHERE code = %s",
                     (accounts.payee_payable(41),))
        conn.execute("UPDATE ledger_accounts SET credits_micros = credits_micros - 5 WHERE code = %s",
                     (accounts.payee_payable(42),))
    result = runner.invoke(["ledger", "check"])
    assert result.exit_code == 1
    assert "[period_digest_mismatch] period 2026-10" in result.output
    assert "does not balance" not in result.output


def test_beancount_export_passes_bean_check(runner, db_session, tmp_path):
    build_book(db_session)
    target = tmp_path / "books.beancount"
    result = runner.invoke(["ledger", "export", "--format", "beancount", "-o", str(target)])
    assert result.exit_code == 0, result.output
    text = target.read_text()
    assert 'option "tolerance_multiplier" "0"' in text
    assert "Liabilities:Payee:41:Payable" in text
    assert "Liabilities:Pool:Listener:2026-11" in text
    assert "Liabilities:Payouts:In-transit" in text
    assert "-0.450061 USD" in text

    from beancount import loader

    entries, errors, _ = loader.load_file(str(target))
    assert errors == []
    assert sum(1 for e in entries if type(e).__name__ == "Transaction") == 25
    bean_check = shutil.which("bean-check") or str(Path(sys.executable).parent / "bean-check")
    done = subprocess.run([bean_check, str(target)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_bean_check_catches_an_export_we_break(runner, db_session, tmp_path):
    """The test above means something: a one-micro change makes bean-check refuse the file."""
    build_book(db_session)
    target = tmp_path / "books.beancount"
    runner.invoke(["ledger", "export", "--format", "beancount", "-o", str(target)])
    broken = target.read_text().replace("-0.450061 USD", "-0.450060 USD", 1)
    target.write_text(broken)
    from beancount import loader

    _, errors, _ = loader.load_file(str(target))
    assert errors


def test_csv_export_has_one_row_per_posting(runner, db_session):
    build_book(db_session)
    result = runner.invoke(["ledger", "export", "--format", "csv"])
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert len(rows) == 2 + 20 * 4 + 4 + 2 + 2 + 2
    sale = [r for r in rows if r["idempotency_key"] == "sale-1"]
    assert {r["currency"] for r in sale} == {"EUR"}
    assert sum(int(r["amount_micros"]) * (1 if r["side"] == "debit" else -1) for r in rows
               if r["currency"] == "USD") == 0


def test_trial_balance_command(runner, db_session):
    build_book(db_session)
    result = runner.invoke(["ledger", "trial-balance"])
    assert result.exit_code == 0
    assert "liabilities:payee:41:payable" in result.output
    assert result.output.count("balanced") == 2 and "NOT BALANCED" not in result.output
    early = runner.invoke(["ledger", "trial-balance", "--as-of", "2026-10-03T12:00:00Z"])
    assert "income:sales" not in early.output
    bad = runner.invoke(["ledger", "trial-balance", "--as-of", "yesterday"])
    assert bad.exit_code == 2


@pytest.mark.parametrize("fmt", ["beancount", "csv", "trial-balance"])
def test_export_of_empty_books(runner, fmt):
    result = runner.invoke(["ledger", "export", "--format", fmt])
    assert result.exit_code == 0


def test_demo_books_pass_check_and_bean_check(runner, tmp_path):
    """The acceptance lines on the demo data: `ninety ledger check` passes, the export passes bean-check."""
    seeded = runner.invoke(["demo"])
    assert seeded.exit_code == 0, seeded.output
    check = runner.invoke(["ledger", "check"])
    assert check.exit_code == 0, check.output
    assert "ok: the books balance" in check.output
    target = tmp_path / "demo.beancount"
    assert runner.invoke(["ledger", "export", "--format", "beancount", "-o", str(target)]).exit_code == 0
    bean_check = shutil.which("bean-check") or str(Path(sys.executable).parent / "bean-check")
    done = subprocess.run([bean_check, str(target)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
