"""Monthly periods: closing refuses later entries inside them and chains a SHA-256 digest."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from ledger.errors import InvalidEntry, PeriodClosed
from ledger.periods import ZERO_DIGEST, canonical_entry, get_period, period_bounds, period_of
from ledger.services import close_period, get_entry, is_period_closed, post, post_many, reverse
from tests.ledger.factories import transfer

SEP = datetime(2026, 9, 10, tzinfo=UTC)
OCT = datetime(2026, 10, 10, tzinfo=UTC)
NOV = datetime(2026, 11, 10, tzinfo=UTC)


def test_period_bounds():
    assert period_bounds("2026-12") == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert period_of(datetime(2026, 10, 31, 23, 59, tzinfo=UTC)) == "2026-10"
    for bad in ("2026-13", "26-10", "2026-1", "", None):
        with pytest.raises(InvalidEntry):
            period_bounds(bad)


def test_closing_refuses_entries_inside_and_keeps_later_months_open(db_session):
    october_id = post(db_session, transfer("oct", "assets:stripe", "income:ads", 10, when=OCT))
    closed = close_period(db_session, "2026-10")
    assert closed.entry_count == 1 and len(closed.digest) == 64
    assert is_period_closed(db_session, "2026-10")
    assert is_period_closed(db_session, "2026-09")  # earlier months are closed with it
    assert not is_period_closed(db_session, "2026-11")
    with pytest.raises(PeriodClosed) as caught:
        post(db_session, transfer("late", "assets:stripe", "income:ads", 10, when=OCT))
    assert caught.value.code == "period_closed" and "closed period" in caught.value.message
    with pytest.raises(PeriodClosed):
        post_many(db_session, [transfer(f"late{i}", "assets:stripe", "income:ads", 1, when=SEP) for i in range(70)])
    assert post(db_session, transfer("nov", "assets:stripe", "income:ads", 10, when=NOV)) > 0
    # an entry already recorded is still returned by its key, even though its month is closed
    assert post(db_session, transfer("oct", "assets:stripe", "income:ads", 10, when=OCT)) == october_id


def test_closing_is_idempotent_and_closes_earlier_open_months(db_session):
    post(db_session, transfer("sep", "assets:stripe", "income:ads", 10, when=SEP))
    post(db_session, transfer("oct", "assets:stripe", "income:ads", 20, when=OCT))
    october = close_period(db_session, "2026-10")
    september = get_period(db_session, "2026-09")
    assert september.entry_count == 1 and october.entry_count == 1
    assert close_period(db_session, "2026-10") == october
    assert close_period(db_session, "2026-08").digest is None  # before the books began: closed, empty


def test_digest_is_the_sha256_chain_over_entries_in_order(db_session):
    first = post(db_session, transfer("a", "assets:stripe", "income:ads", 10, when=OCT, ref="track:1"))
    second = reverse(db_session, first, "mistake", effective_at=OCT)
    closed = close_period(db_session, "2026-10")
    digest = ZERO_DIGEST
    for entry_id in (first, second):
        stored = get_entry(db_session, entry_id)
        line = canonical_entry(stored.id, stored.idempotency_key, stored.effective_at, stored.reverses_id,
                               stored.description, stored.metadata,
                               [(i, p.account, p.currency, p.side == "credit", p.amount_micros, p.ref)
                                for i, p in enumerate(stored.postings)])
        digest = hashlib.sha256(digest + line).digest()
    assert closed.digest == digest.hex()


def test_reversal_of_a_closed_entry_lands_in_an_open_period(db_session):
    entry_id = post(db_session, transfer("a", "assets:stripe", "income:ads", 10, when=OCT))
    close_period(db_session, "2026-10")
    with pytest.raises(PeriodClosed):
        reverse(db_session, entry_id, "wrong month", effective_at=OCT)
    assert reverse(db_session, entry_id, "refund", effective_at=NOV) > entry_id
