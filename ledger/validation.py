"""Validation of entries before they reach the database: precise reasons for people, a fast path for flushes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from core.money import MoneyError, check_currency
from ledger import accounts
from ledger.errors import IdempotencyConflict, InvalidAccount, InvalidEntry, UnbalancedEntry
from ledger.values import (
    CREDIT,
    DEBIT,
    MAX_DESCRIPTION,
    MAX_KEY,
    MAX_MICROS,
    MAX_POSTINGS,
    MAX_REF,
    Entry,
    Posting,
)


@lru_cache(maxsize=65536)
def _valid_code(code: str) -> str:
    return accounts.check_code(code)


@lru_cache(maxsize=256)
def _valid_currency(currency: str) -> str:
    try:
        return check_currency(currency)
    except MoneyError as exc:  # re-raised as the ledger's own error, with the same code
        raise InvalidEntry(exc.message, code="unsupported_currency") from None


def _text(value: Any, what: str, limit: int, *, required: bool = True) -> str:
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidEntry(f"{what} must be non-empty text")
    if len(value) > limit:
        raise InvalidEntry(f"{what} is longer than {limit} characters")
    if "\x00" in value:
        raise InvalidEntry(f"{what} may not contain NUL characters")
    return value


_DUMPS = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def _canonical_json(metadata: dict | None) -> str:
    if not metadata:
        if metadata is None or metadata == {}:
            return "{}"
    if not isinstance(metadata, dict):
        raise InvalidEntry("metadata must be a JSON object (a dict)")
    try:
        text = _DUMPS(metadata)
    except (TypeError, ValueError) as exc:
        raise InvalidEntry(f"metadata must be plain JSON: {exc}") from None
    if "\\u0000" in text:
        raise InvalidEntry("metadata may not contain NUL characters")
    return text


@dataclass(slots=True)
class _Prepared:
    key: str
    effective_at: datetime
    description: str
    metadata_json: str
    reverses_id: int | None
    postings: list[tuple[str, str, bool, int, str | None]]  # (code, currency, credit, amount, ref)

    def same_as(self, other: _Prepared) -> bool:
        return (self.effective_at == other.effective_at and self.description == other.description
                and json.loads(self.metadata_json) == json.loads(other.metadata_json)
                and self.reverses_id == other.reverses_id and self.postings == other.postings)


def _ok_text(value: Any, limit: int) -> bool:
    return type(value) is str and len(value) <= limit and "\x00" not in value


def _prepare(entry: Entry) -> _Prepared:
    """Validate one entry (hot path of the flush: checks are inlined, messages built only on failure)."""
    if type(entry) is not Entry:
        raise InvalidEntry(f"expected a ledger Entry, got {type(entry).__name__}")
    key = entry.idempotency_key
    if not (_ok_text(key, MAX_KEY) and key.strip()):
        key = _text(key, "the idempotency key", MAX_KEY)
    when = entry.effective_at
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise InvalidEntry(f"entry {key}: effective_at must be an aware (UTC) datetime")
    description = entry.description
    if not _ok_text(description, MAX_DESCRIPTION):
        description = _text(description, f"entry {key}: the description", MAX_DESCRIPTION, required=False)
    reverses_id = entry.reverses_id
    if reverses_id is not None and (type(reverses_id) is not int or reverses_id <= 0):
        raise InvalidEntry(f"entry {key}: reverses_id must be a positive entry id")
    raw = entry.postings
    if not isinstance(raw, (list, tuple)) or len(raw) < 2:
        raise InvalidEntry(f"entry {key} needs at least two postings")
    if len(raw) > MAX_POSTINGS:
        raise InvalidEntry(f"entry {key} has more than {MAX_POSTINGS} postings")
    postings = []
    sums: dict[str, int] = {}
    for p in raw:
        if type(p) is not Posting:
            raise InvalidEntry(f"entry {key}: postings must be ledger Posting values")
        amount = p.amount_micros
        if type(amount) is not int or amount <= 0 or amount > MAX_MICROS:
            raise InvalidEntry(f"entry {key}: a posting's amount must be a positive whole number of micros, "
                               f"got {amount!r}", code="invalid_amount")
        side = p.side
        if side == DEBIT:
            credit = False
        elif side == CREDIT:
            credit = True
        else:
            raise InvalidEntry(f"entry {key}: a posting's side must be 'debit' or 'credit', got {side!r}")
        code = p.account
        if type(code) is not str:
            raise InvalidAccount(f"entry {key}: an account code must be text")
        _valid_code(code)
        currency = p.currency
        currency = _valid_currency(currency if type(currency) is str else str(currency))
        ref = p.ref
        if ref is not None and not (_ok_text(ref, MAX_REF) and ref.strip()):
            ref = _text(ref, f"entry {key}: a posting's ref", MAX_REF)
        postings.append((code, currency, credit, amount, ref))
        sums[currency] = sums.get(currency, 0) + (-amount if credit else amount)
    for currency, net in sums.items():
        if net:
            raise UnbalancedEntry(f"entry {key} does not balance in {currency}: debits exceed credits by "
                                  f"{net} micros" if net > 0 else
                                  f"entry {key} does not balance in {currency}: credits exceed debits by "
                                  f"{-net} micros")
    return _Prepared(key, when, description, _canonical_json(entry.metadata), reverses_id, postings)




def _prepare_batch(entries: Iterable[Entry]) -> tuple[list[_Prepared], list[int]]:
    """Validate and de-duplicate a batch: (unique prepared entries, index into them for every input)."""
    unique: list[_Prepared] = []
    index_of: dict[str, int] = {}
    mapping: list[int] = []
    for entry in entries:
        item = _prepare(entry)
        seen = index_of.get(item.key)
        if seen is None:
            index_of[item.key] = len(unique)
            mapping.append(len(unique))
            unique.append(item)
        else:
            if not unique[seen].same_as(item):
                raise IdempotencyConflict(f"The idempotency key {item.key!r} appears twice in the batch with "
                                          "different content.")
            mapping.append(seen)
    return unique, mapping

