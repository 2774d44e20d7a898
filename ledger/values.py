"""The ledger's plain values: what callers post (Entry, Posting) and what reads return."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

DEBIT, CREDIT = "debit", "credit"
MAX_KEY = 200
MAX_DESCRIPTION = 500
MAX_REF = 120
MAX_POSTINGS = 10_000
MAX_MICROS = 2**62  # far beyond any real amount; sums of many postings still fit a bigint


@dataclass(frozen=True, slots=True)
class Posting:
    account: str
    side: str  # "debit" | "credit"
    amount_micros: int
    currency: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    idempotency_key: str
    effective_at: datetime
    description: str
    postings: Sequence[Posting]
    metadata: dict | None = None
    reverses_id: int | None = None


@dataclass(frozen=True, slots=True)
class StoredEntry:
    id: int
    idempotency_key: str
    effective_at: datetime
    recorded_at: datetime
    description: str
    metadata: dict
    reverses_id: int | None
    postings: list[Posting]
    reversed_by_id: int | None = None


@dataclass(frozen=True, slots=True)
class StatementLine:
    entry_id: int
    effective_at: datetime
    description: str
    side: str
    amount_micros: int
    ref: str | None
    balance_micros: int  # running, normal side, after this line
    event: str | None = None


@dataclass(frozen=True, slots=True)
class TrialBalanceRow:
    account: str
    currency: str
    type: str
    debits_micros: int
    credits_micros: int
    balance_micros: int  # normal side

