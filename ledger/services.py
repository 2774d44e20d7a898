"""Posting to the books and reading them back.

Every write goes through one set-based path (`_insert`): the accounts a batch names are created if new,
then the entries and all their postings are inserted in a single SQL statement, whose triggers check the
balance per entry and currency, apply the postings to the account balances (rows locked in id order) and
hold bounded accounts to their bound. Python validates first so that people get a precise reason; the
database checks again so that no bug can unbalance the books.

Idempotency follows TigerBeetle: the same key with the same content returns the existing entry's id; the
same key with different content is an `IdempotencyConflict`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeVar

import psycopg
from sqlalchemy.orm import Session

from core.money import check_currency
from ledger import accounts
from ledger.errors import (
    AccountNotFound,
    AlreadyReversed,
    BalanceBoundViolated,
    EntryNotFound,
    IdempotencyConflict,
    InvalidAccount,
    InvalidEntry,
    LedgerError,
    PeriodClosed,
    UnbalancedEntry,
)

__all__ = [
    "Entry", "Posting", "StatementLine", "TrialBalanceRow", "StoredEntry", "post", "post_many", "reverse",
    "balance", "balances", "statement", "trial_balance", "get_entry", "close_period", "is_period_closed",
]

DEBIT, CREDIT = "debit", "credit"
MAX_KEY = 200
MAX_DESCRIPTION = 500
MAX_REF = 120
MAX_POSTINGS = 10_000
MAX_MICROS = 2**62  # far beyond any real amount; sums of many postings still fit a bigint
RETRIES = 8
T = TypeVar("T")


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


# --- validation ------------------------------------------------------------------------------------
@lru_cache(maxsize=65536)
def _valid_code(code: str) -> str:
    return accounts.check_code(code)


@lru_cache(maxsize=256)
def _valid_currency(currency: str) -> str:
    try:
        return check_currency(currency)
    except LedgerError:
        raise
    except Exception as exc:  # core's MoneyError: re-raise as the ledger's own error
        raise InvalidEntry(getattr(exc, "message", str(exc)), code="unsupported_currency") from None


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


# --- the write path --------------------------------------------------------------------------------
# Accounts named by a batch: created if new (sorted, so concurrent creators queue instead of deadlocking),
# then every (code, currency) resolved to its id in one round trip.
_RESOLVE_ACCOUNTS = """
WITH wanted AS (
    SELECT * FROM unnest(%s::text[], %s::char(3)[]) AS w(code, currency)
), created AS (
    INSERT INTO ledger_accounts (code, currency, type, debit_normal, min_balance_micros)
    SELECT w.code, w.currency, split_part(w.code, ':', 1), split_part(w.code, ':', 1) IN ('assets', 'expenses'),
           CASE WHEN w.code ~ %s THEN 0 END
      FROM wanted w
     WHERE NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.code = w.code AND a.currency = w.currency)
     ORDER BY w.code, w.currency
    ON CONFLICT DO NOTHING
    RETURNING code, currency, id
)
SELECT a.code, a.currency, a.id FROM wanted w JOIN ledger_accounts a ON a.code = w.code AND a.currency = w.currency
UNION ALL
SELECT code, currency, id FROM created
"""

# Small batches (a single `post`) travel as arrays; large ones are COPYed (binary) into temporary staging
# tables first. Either way the entries and their postings go in with ONE statement, as the triggers demand.
# One round trip when every account already exists: the accounts are looked up by code in the same
# statement, and nothing is inserted unless all were found (then they are opened and the statement rerun).
_INSERT_ARRAYS = """
WITH wanted AS (
    SELECT DISTINCT code, currency FROM unnest(%(codes)s::text[], %(currencies)s::char(3)[]) AS w(code, currency)
), acc AS (
    SELECT a.id, a.code, a.currency FROM wanted w
      JOIN ledger_accounts a ON a.code = w.code AND a.currency = w.currency
), ins AS (
    INSERT INTO ledger_entries (idempotency_key, effective_at, description, metadata, reverses_id)
    SELECT * FROM unnest(%(keys)s::text[], %(times)s::timestamptz[], %(descriptions)s::text[],
                         %(metadata)s::jsonb[], %(reverses)s::int8[])
     WHERE (SELECT count(*) FROM acc) = (SELECT count(*) FROM wanted)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, idempotency_key
), p AS (
    INSERT INTO ledger_postings (entry_id, amount_micros, account_id, position, credit, currency, ref)
    SELECT ins.id, u.amount, acc.id, u.position, u.credit, u.currency, u.ref
      FROM unnest(%(p_keys)s::text[], %(amounts)s::int8[], %(codes)s::text[], %(positions)s::int2[],
                  %(credits)s::bool[], %(currencies)s::char(3)[], %(refs)s::text[])
           AS u(key, amount, code, position, credit, currency, ref)
      JOIN ins ON ins.idempotency_key = u.key
      JOIN acc ON acc.code = u.code AND acc.currency = u.currency
)
SELECT (SELECT count(*) FROM acc) = (SELECT count(*) FROM wanted), ins.id, ins.idempotency_key
  FROM (SELECT 1) AS one LEFT JOIN ins ON true
"""

_STAGE = """
SET LOCAL jit = off;
CREATE TEMPORARY TABLE IF NOT EXISTS ledger_stage_entries (
    id bigint, idempotency_key text, effective_at timestamptz, description text, metadata text,
    reverses_id bigint) ON COMMIT DELETE ROWS;
CREATE TEMPORARY TABLE IF NOT EXISTS ledger_stage_postings (
    entry_id bigint, amount_micros bigint, account_id integer, position smallint, credit boolean,
    currency text, ref text) ON COMMIT DELETE ROWS;
"""

_INSERT_STAGED = """
WITH ins AS (
    INSERT INTO ledger_entries (id, idempotency_key, effective_at, description, metadata, reverses_id)
    SELECT id, idempotency_key, effective_at, description, metadata::jsonb, reverses_id FROM ledger_stage_entries
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
), p AS (
    INSERT INTO ledger_postings (entry_id, amount_micros, account_id, position, credit, currency, ref)
    SELECT * FROM ledger_stage_postings WHERE entry_id IN (SELECT id FROM ins)
)
SELECT count(*) FROM ins
"""

ARRAY_LIMIT = 64  # entries; above this, COPY


def _driver_cursor(session: Session) -> psycopg.Cursor:
    return session.connection().connection.dbapi_connection.cursor()


_BOUND_ACCOUNT_RE = re.compile(r"\((?:\d+), ((?:assets|liabilities|income|expenses|equity)[^,]*), ([A-Z]{3})")


def _translate(exc: psycopg.Error) -> LedgerError | None:
    """The ledger error a refused statement means, or None for errors that are not the books' (retry them)."""
    state = exc.sqlstate or ""
    diag = exc.diag
    message = (diag.message_primary or str(exc)).removeprefix("ledger: ")
    if state == "LDG02":
        return UnbalancedEntry(message[:1].upper() + message[1:] + ".")
    if state == "LDG03":
        return PeriodClosed(message[:1].upper() + message[1:] + "; post it with a date in an open period.")
    if state == "LDG04":
        return InvalidAccount(message[:1].upper() + message[1:] + ".")
    if state in ("LDG01", "LDG05"):
        return InvalidEntry(message[:1].upper() + message[1:] + ".")
    if state == "23514" and diag.constraint_name == "ck_ledger_accounts_min_balance":
        found = _BOUND_ACCOUNT_RE.search(diag.message_detail or "")
        what = f"{found[1]} ({found[2]})" if found else "an account"
        return BalanceBoundViolated(f"The entry would take {what} below its allowed balance; "
                                    "fund the account first or post a smaller amount.",
                                    account=found[1] if found else None)
    if state == "23505" and diag.constraint_name == "uq_ledger_entries_reverses_id":
        return AlreadyReversed("That entry has already been reversed; a correction is posted only once.")
    if state == "22003":
        return InvalidEntry("An amount or balance is out of range.", code="invalid_amount")
    return None


def _run(session: Session, work: Callable[[], T], *, commit: bool) -> T:
    """Run `work` atomically: in its own transaction (retried on deadlock or serialization failure when this
    call owns the transaction) or, with commit=False, inside a savepoint of the caller's transaction."""
    owned = commit and not session.in_transaction()
    attempts = RETRIES if owned else 1
    for attempt in range(attempts):
        scope = None if commit else session.begin_nested()
        try:
            result = work()
            if scope is not None:
                scope.commit()
            if commit:
                session.commit()
            return result
        except psycopg.Error as exc:
            if scope is not None:
                scope.rollback()
            if commit:
                session.rollback()
            if exc.sqlstate == "LDG04":
                forget_account_ids()
                if attempt + 1 < attempts:
                    continue
            translated = _translate(exc)
            if translated is not None:
                raise translated from None
            if exc.sqlstate in ("40P01", "40001") and attempt + 1 < attempts:
                continue
            if exc.sqlstate in ("40P01", "40001"):
                raise LedgerError("Concurrent postings collided; try again.", code="retry", status=409) from None
            raise
        except BaseException:
            if scope is not None and scope.is_active:
                scope.rollback()
            if commit:
                session.rollback()
            raise
    raise AssertionError("unreachable")


# Account ids by (code, currency), per database. Accounts are never deleted and ids never reused, so an id
# once seen stays right; the key includes the accounts table's file node, which TRUNCATE changes. An id of an
# account whose creating transaction rolled back is refused by the postings trigger (LDG04), which clears
# this cache and retries.
_ACCOUNT_CACHE: dict[tuple, dict[tuple[str, str], int]] = {}
_ACCOUNT_CACHE_LIMIT = 500_000


def _resolve(cur: psycopg.Cursor, missing: list[tuple[str, str]], into: dict) -> None:
    args = ([c for c, _ in missing], [k for _, k in missing], accounts.NON_NEGATIVE_SQL_PATTERN)
    for _ in range(2):
        cur.execute(_RESOLVE_ACCOUNTS, args)
        into.update(((code, currency.strip()), account_id) for code, currency, account_id in cur.fetchall())
        if into.keys() >= set(missing):
            return
        # Created by a concurrent transaction after this statement's snapshot: visible to the next one.
    code, currency = sorted(set(missing) - into.keys())[0]
    raise LedgerError(f"account {code} ({currency}) could not be opened; try again.", code="retry", status=409)


def _account_ids(cur: psycopg.Cursor, codes: set[tuple[str, str]], count: int) -> tuple[dict, list[int]]:
    """Resolve (code, currency) pairs to account ids (opening new accounts) and draw `count` entry ids."""
    info = cur.connection.info
    cur.execute("SELECT pg_relation_filenode('ledger_accounts'), "
                "ARRAY(SELECT nextval('ledger_entries_id_seq') FROM generate_series(1, %s))", (count,))
    filenode, entry_ids = cur.fetchone()
    cache = _ACCOUNT_CACHE.setdefault((info.host, info.port, info.dbname, filenode), {})
    if len(cache) > _ACCOUNT_CACHE_LIMIT:
        cache.clear()
    missing = sorted(codes - cache.keys())
    if missing:
        _resolve(cur, missing, cache)
    return cache, entry_ids


def forget_account_ids() -> None:
    _ACCOUNT_CACHE.clear()


def _insert(session: Session, prepared: list[_Prepared]) -> list[int]:
    """Insert prepared entries (keys unique within the list); return their ids in order."""
    cur = _driver_cursor(session)
    codes = {(code, currency) for item in prepared for code, currency, _, _, _ in item.postings}
    if len(prepared) <= ARRAY_LIMIT:
        return _insert_small(cur, prepared, codes)
    cur.execute(_STAGE)
    account_ids, ids = _account_ids(cur, codes, len(prepared))
    e_rows = []
    p_rows = []
    for entry_id, item in zip(ids, prepared, strict=True):
        e_rows.append((entry_id, item.key, item.effective_at, item.description, item.metadata_json,
                       item.reverses_id))
        for position, (code, currency, credit, amount, ref) in enumerate(item.postings):
            p_rows.append((entry_id, amount, account_ids[code, currency], position, credit, currency, ref))
    with cur.copy("COPY ledger_stage_entries FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["int8", "text", "timestamptz", "text", "text", "int8"])
        for row in e_rows:
            copy.write_row(row)
    with cur.copy("COPY ledger_stage_postings FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["int8", "int8", "int4", "int2", "bool", "text", "text"])
        for row in p_rows:
            copy.write_row(row)
    cur.execute(_INSERT_STAGED)
    inserted = cur.fetchone()[0]
    cur.execute("TRUNCATE ledger_stage_entries, ledger_stage_postings")
    if inserted == len(prepared):
        return ids
    cur.execute("SELECT id FROM ledger_entries WHERE id = ANY(%s::int8[])", (ids,))
    present = {row[0] for row in cur.fetchall()}
    return _settle_duplicates(cur, prepared, [entry_id if entry_id in present else None for entry_id in ids])


def _insert_small(cur: psycopg.Cursor, prepared: list[_Prepared], codes: set) -> list[int]:
    """A few entries (a single `post`): one round trip when the accounts exist, three when some are new."""
    params: dict[str, list] = {name: [] for name in (
        "keys", "times", "descriptions", "metadata", "reverses", "p_keys", "amounts", "codes", "positions",
        "credits", "currencies", "refs")}
    for item in prepared:
        params["keys"].append(item.key)
        params["times"].append(item.effective_at)
        params["descriptions"].append(item.description)
        params["metadata"].append(item.metadata_json)
        params["reverses"].append(item.reverses_id)
        for position, (code, currency, credit, amount, ref) in enumerate(item.postings):
            params["p_keys"].append(item.key)
            params["amounts"].append(amount)
            params["codes"].append(code)
            params["positions"].append(position)
            params["credits"].append(credit)
            params["currencies"].append(currency)
            params["refs"].append(ref)
    for _ in range(2):
        cur.execute(_INSERT_ARRAYS, params)
        rows = cur.fetchall()
        if rows[0][0]:
            break
        _resolve(cur, sorted(codes), {})  # open the new accounts, then insert
    else:
        raise LedgerError("the accounts of this entry could not be opened; try again.", code="retry", status=409)
    by_key = {key: entry_id for _, entry_id, key in rows if entry_id is not None}
    return _settle_duplicates(cur, prepared, [by_key.get(item.key) for item in prepared])


def _settle_duplicates(cur: psycopg.Cursor, prepared: list[_Prepared], ids: list[int | None]) -> list[int]:
    """Fill in the ids of entries whose key was already recorded, or refuse a conflicting one."""
    missing = [seq for seq, entry_id in enumerate(ids) if entry_id is None]
    if not missing:
        return ids  # type: ignore[return-value]
    existing = _load_by_keys(cur, [prepared[seq].key for seq in missing])
    for seq in missing:
        item = prepared[seq]
        found = existing.get(item.key)
        if found is None:  # lost to a concurrent transaction that rolled back: the caller may retry
            raise LedgerError(f"entry {item.key} could not be recorded; try again.", code="retry", status=409)
        entry_id, stored = found
        if not stored.same_as(item):
            raise IdempotencyConflict(
                f"The idempotency key {item.key!r} was already used for entry {entry_id} with different "
                "content; use a new key for a different event.", entry_id=entry_id)
        ids[seq] = entry_id
    return ids  # type: ignore[return-value]


def _load_by_keys(cur: psycopg.Cursor, keys: list[str]) -> dict[str, tuple[int, _Prepared]]:
    cur.execute("SELECT id, idempotency_key, effective_at, description, metadata, reverses_id "
                "FROM ledger_entries WHERE idempotency_key = ANY(%s::text[])", (keys,))
    rows = cur.fetchall()
    found: dict[str, tuple[int, _Prepared]] = {}
    by_id: dict[int, _Prepared] = {}
    for entry_id, key, at, description, metadata, reverses_id in rows:
        item = _Prepared(key, at, description, json.dumps(metadata, sort_keys=True), reverses_id, [])
        found[key] = (entry_id, item)
        by_id[entry_id] = item
    if by_id:
        cur.execute("SELECT p.entry_id, a.code, p.currency, p.credit, p.amount_micros, p.ref "
                    "FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id "
                    "WHERE p.entry_id = ANY(%s::int8[]) ORDER BY p.entry_id, p.position", (list(by_id),))
        for entry_id, code, currency, credit, amount, ref in cur.fetchall():
            by_id[entry_id].postings.append((code, currency, credit, amount, ref))
    return found


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


def post(session: Session, entry: Entry, *, commit: bool = True) -> int:
    """Record one entry and return its id; the same key and content again returns the same id."""
    prepared = _prepare(entry)
    return _run(session, lambda: _insert(session, [prepared])[0], commit=commit)


def post_many(session: Session, entries: Iterable[Entry], *, commit: bool = True) -> list[int]:
    """Record a batch of entries in one statement, all or nothing; ids in the order given."""
    unique, mapping = _prepare_batch(entries)
    if not unique:
        return []
    ids = _run(session, lambda: _insert(session, unique), commit=commit)
    return [ids[i] for i in mapping]


# --- reading ---------------------------------------------------------------------------------------
def get_entry(session: Session, entry_id: int) -> StoredEntry:
    cur = _driver_cursor(session)
    cur.execute("SELECT e.id, e.idempotency_key, e.effective_at, e.recorded_at, e.description, e.metadata, "
                "e.reverses_id, (SELECT r.id FROM ledger_entries r WHERE r.reverses_id = e.id) "
                "FROM ledger_entries e WHERE e.id = %s", (entry_id,))
    row = cur.fetchone()
    if row is None:
        raise EntryNotFound(f"There is no journal entry {entry_id}.")
    cur.execute("SELECT a.code, p.credit, p.amount_micros, p.currency, p.ref FROM ledger_postings p "
                "JOIN ledger_accounts a ON a.id = p.account_id WHERE p.entry_id = %s ORDER BY p.position",
                (entry_id,))
    postings = [Posting(code, CREDIT if credit else DEBIT, amount, currency.strip(), ref)
                for code, credit, amount, currency, ref in cur.fetchall()]
    return StoredEntry(id=row[0], idempotency_key=row[1], effective_at=row[2].astimezone(UTC),
                       recorded_at=row[3].astimezone(UTC), description=row[4], metadata=row[5],
                       reverses_id=row[6], postings=postings, reversed_by_id=row[7])


def reverse(session: Session, entry_id: int, reason: str, *, idempotency_key: str | None = None,
            effective_at: datetime | None = None, commit: bool = True) -> int:
    """Post the mirror image of an entry (every debit a credit and back); an entry is reversed at most once."""
    reason = _text(reason, "the reason", 300)
    original = get_entry(session, entry_id)
    key = idempotency_key or f"reversal:{entry_id}"
    if effective_at is None:
        cur = _driver_cursor(session)
        cur.execute("SELECT now()")
        effective_at = cur.fetchone()[0].astimezone(UTC)
    if original.reversed_by_id is not None:
        existing = session.connection().connection.dbapi_connection.execute(
            "SELECT idempotency_key FROM ledger_entries WHERE id = %s", (original.reversed_by_id,)).fetchone()
        if existing and existing[0] == key:
            return original.reversed_by_id
        raise AlreadyReversed(f"Entry {entry_id} was already reversed by entry {original.reversed_by_id}.",
                              reversed_by_id=original.reversed_by_id)
    metadata = {"event": "reversal", "reverses": entry_id, "reason": reason}
    if original.metadata.get("event"):
        metadata["original_event"] = original.metadata["event"]
    mirrored = [Posting(p.account, CREDIT if p.side == DEBIT else DEBIT, p.amount_micros, p.currency, p.ref)
                for p in original.postings]
    description = f"Reversal of entry {entry_id}: {reason}"[:MAX_DESCRIPTION]
    return post(session, Entry(key, effective_at, description, mirrored, metadata, reverses_id=entry_id),
                commit=commit)


def _check_account_args(code: str, currency: str) -> tuple[str, str]:
    return accounts.check_code(code), _valid_currency(currency)


def balance(session: Session, account_code: str, currency: str, *, as_of: datetime | None = None) -> int:
    """The account's normal-side balance in micros (0 for an account never used)."""
    return balances(session, [account_code], currency, as_of=as_of)[account_code]


def balances(session: Session, account_codes: Iterable[str], currency: str, *,
             as_of: datetime | None = None) -> dict[str, int]:
    codes = list(dict.fromkeys(account_codes))
    for code in codes:
        _check_account_args(code, currency)
    currency = _valid_currency(currency)
    result = dict.fromkeys(codes, 0)
    if not codes:
        return result
    cur = _driver_cursor(session)
    if as_of is None:
        cur.execute("SELECT code, balance_micros FROM ledger_accounts WHERE code = ANY(%s::text[]) "
                    "AND currency = %s::char(3)", (codes, currency))
    else:
        _aware(as_of, "as_of")
        cur.execute(
            "SELECT a.code, coalesce(sum(CASE WHEN p.credit = a.debit_normal THEN -p.amount_micros "
            "ELSE p.amount_micros END), 0)::bigint FROM ledger_accounts a "
            "JOIN ledger_postings p ON p.account_id = a.id "
            "JOIN ledger_entries e ON e.id = p.entry_id AND e.effective_at <= %s "
            "WHERE a.code = ANY(%s::text[]) AND a.currency = %s::char(3) GROUP BY a.code", (as_of, codes, currency))
    for code, amount in cur.fetchall():
        result[code] = int(amount)
    return result


def _aware(value: datetime | None, what: str) -> None:
    if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
        raise InvalidEntry(f"{what} must be an aware (UTC) datetime", code="invalid_time")


def account_exists(session: Session, account_code: str, currency: str) -> bool:
    code, currency = _check_account_args(account_code, currency)
    cur = _driver_cursor(session)
    cur.execute("SELECT 1 FROM ledger_accounts WHERE code = %s AND currency = %s::char(3)", (code, currency))
    return cur.fetchone() is not None


def statement(session: Session, account_code: str, currency: str, *, start: datetime | None = None,
              end: datetime | None = None, limit: int | None = None) -> list[StatementLine]:
    """The account's postings effective in [start, end), oldest first, each with the running balance."""
    code, currency = _check_account_args(account_code, currency)
    _aware(start, "start")
    _aware(end, "end")
    cur = _driver_cursor(session)
    cur.execute("SELECT id, debit_normal FROM ledger_accounts WHERE code = %s AND currency = %s::char(3)", (code, currency))
    row = cur.fetchone()
    if row is None:
        return []
    account_id, debit_normal = row
    cur.execute(
        """
        SELECT * FROM (
            SELECT e.id, e.effective_at, e.description, p.credit, p.amount_micros, p.ref, e.metadata->>'event',
                   sum(CASE WHEN p.credit = %(dn)s THEN -p.amount_micros ELSE p.amount_micros END)
                       OVER (ORDER BY e.effective_at, e.id, p.position) AS running
              FROM ledger_postings p JOIN ledger_entries e ON e.id = p.entry_id
             WHERE p.account_id = %(account)s AND (%(end)s::timestamptz IS NULL OR e.effective_at < %(end)s)
        ) lines
        WHERE %(start)s::timestamptz IS NULL OR effective_at >= %(start)s
        ORDER BY effective_at, id
        LIMIT %(limit)s
        """, {"dn": debit_normal, "account": account_id, "start": start, "end": end, "limit": limit})
    return [StatementLine(entry_id, at.astimezone(UTC), description, CREDIT if credit else DEBIT, amount, ref,
                          int(running), event)
            for entry_id, at, description, credit, amount, ref, event, running in cur.fetchall()]


def trial_balance(session: Session, *, as_of: datetime | None = None) -> list[TrialBalanceRow]:
    """Every account's debits, credits and normal-side balance, by currency then code."""
    _aware(as_of, "as_of")
    cur = _driver_cursor(session)
    if as_of is None:
        cur.execute("SELECT code, currency, type, debits_micros, credits_micros, balance_micros "
                    "FROM ledger_accounts ORDER BY currency, code")
    else:
        cur.execute(
            """
            SELECT a.code, a.currency, a.type, coalesce(t.debits, 0), coalesce(t.credits, 0),
                   CASE WHEN a.debit_normal THEN coalesce(t.debits, 0) - coalesce(t.credits, 0)
                        ELSE coalesce(t.credits, 0) - coalesce(t.debits, 0) END
              FROM ledger_accounts a
              JOIN (SELECT p.account_id,
                           sum(p.amount_micros) FILTER (WHERE NOT p.credit) AS debits,
                           sum(p.amount_micros) FILTER (WHERE p.credit) AS credits
                      FROM ledger_postings p JOIN ledger_entries e ON e.id = p.entry_id
                     WHERE e.effective_at <= %s GROUP BY p.account_id) t ON t.account_id = a.id
             ORDER BY a.currency, a.code
            """, (as_of,))
    return [TrialBalanceRow(code, currency.strip(), kind, int(debits), int(credits), int(bal))
            for code, currency, kind, debits, credits, bal in cur.fetchall()]


def find_account(session: Session, account_code: str, currency: str):
    """The account row (ledger.models.Account) or AccountNotFound."""
    from ledger.models import Account

    code, currency = _check_account_args(account_code, currency)
    found = session.query(Account).filter_by(code=code, currency=currency).one_or_none()
    if found is None:
        raise AccountNotFound(f"There is no account {code} in {currency}.")
    return found


# Periods live in their own module; re-exported here because callers import the books' API from one place.
from ledger.periods import close_period, is_period_closed  # noqa: E402

