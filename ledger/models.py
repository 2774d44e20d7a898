"""The books' tables. The schema (with the triggers that guard it) is migration 0002_ledger; these mappings
are for reading. Writing goes through `ledger.services`, which inserts an entry and its postings in one
statement, as the database requires.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CHAR, BigInteger, Boolean, Computed, Integer, LargeBinary, SmallInteger, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class Account(Base):
    """One account in one currency, with its running totals (maintained by the postings trigger)."""

    __tablename__ = "ledger_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(CHAR(3))
    type: Mapped[str] = mapped_column(String(12))
    debit_normal: Mapped[bool] = mapped_column(Boolean)
    min_balance_micros: Mapped[int | None] = mapped_column(BigInteger)
    debits_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    credits_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    balance_micros: Mapped[int] = mapped_column(
        BigInteger, Computed("CASE WHEN debit_normal THEN debits_micros - credits_micros "
                             "ELSE credits_micros - debits_micros END"))
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class JournalEntry(Base):
    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    effective_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())
    reverses_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(String(500))
    entry_metadata: Mapped[dict] = mapped_column("metadata", JSONB, default=dict)


class JournalPosting(Base):
    __tablename__ = "ledger_postings"

    entry_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    position: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    account_id: Mapped[int] = mapped_column(Integer, index=True)
    credit: Mapped[bool] = mapped_column(Boolean)
    currency: Mapped[str] = mapped_column(CHAR(3))
    ref: Mapped[str | None] = mapped_column(String(120))


class Period(Base):
    """A closed month: its entries are frozen and chained into a SHA-256 digest."""

    __tablename__ = "ledger_periods"

    period: Mapped[str] = mapped_column(CHAR(7), primary_key=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    closed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    entry_count: Mapped[int] = mapped_column(Integer)
    last_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    previous_digest: Mapped[bytes] = mapped_column(LargeBinary)
    digest: Mapped[bytes] = mapped_column(LargeBinary)
