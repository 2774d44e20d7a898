"""Shared steps for the payout tests: methods, a closed month, the books' own invariants."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from payments.services import add_manual_method, add_sepa_method, add_stripe_method, confirm_method


def connect(world, stripe, payee_id: int, email: str = "artist@example.com"):
    with world.unit() as s:
        method = add_stripe_method(s, payee_id, holder_name="Artist", email=email, country="US", stripe=stripe,
                                   clock=world.clock)
        # The payee follows the emailed confirmation link (tests/royalties/test_payout_method.py drives it).
        return confirm_method(s, method.id, clock=world.clock, stripe=stripe)


def sepa(world, payee_id: int, iban: str = "FR1420041010050500013M02606"):
    with world.unit() as s:
        method = add_sepa_method(s, payee_id, holder_name="Élodie Artiste", iban=iban, bic=None, clock=world.clock)
        return confirm_method(s, method.id, clock=world.clock)


def manual(world, payee_id: int):
    with world.unit() as s:
        method = add_manual_method(s, payee_id, holder_name="Hand Paid", instructions="PayPal hand@example.com",
                                   clock=world.clock)
        return confirm_method(s, method.id, clock=world.clock)


def close(world, period: str = "2026-10", when=datetime(2026, 11, 2, tzinfo=UTC)):
    from royalties.services import close_period

    world.clock.set(when)
    with world.session() as s:
        return close_period(s, world.redis, period, clock=world.clock)


def assert_books_balance(world) -> None:
    """Per currency, debits equal credits; every account's running balance equals its postings."""
    with world.session() as s:
        unbalanced = s.execute(text("""
            SELECT currency, sum(CASE WHEN credit THEN amount_micros ELSE -amount_micros END)
              FROM ledger_postings GROUP BY currency
            HAVING sum(CASE WHEN credit THEN amount_micros ELSE -amount_micros END) <> 0""")).all()
        assert unbalanced == []
        drift = s.execute(text("""
            SELECT a.code FROM ledger_accounts a LEFT JOIN ledger_postings p ON p.account_id = a.id
             GROUP BY a.id HAVING a.balance_micros <> coalesce(sum(CASE WHEN p.credit = a.debit_normal
                   THEN -p.amount_micros ELSE p.amount_micros END), 0)""")).all()
        assert drift == []
