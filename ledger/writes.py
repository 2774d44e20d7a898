"""The write path: entries and their postings go into PostgreSQL in ONE statement, as the triggers demand.

The accounts a batch names are created if new, then the entries and all their postings are inserted in a
single SQL statement, whose triggers check the balance per entry and currency, apply the postings to the
account balances (rows locked in id order) and hold bounded accounts to their bound.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TypeVar

import psycopg
from sqlalchemy.orm import Session

from ledger import accounts
from ledger.errors import (
    AlreadyReversed,
    BalanceBoundViolated,
    ConcurrentPostings,
    IdempotencyConflict,
    InvalidAccount,
    InvalidEntry,
    LedgerError,
    PeriodClosed,
    UnbalancedEntry,
)
from ledger.validation import _Prepared

RETRIES = 8
T = TypeVar("T")

# --- the write path --------------------------------------------------------------------------------
# Accounts named by a batch and not yet cached: looked up by their unique index first (one probe each; a hash
# join would read the whole accounts table for every batch), and only those not found are opened.
_LOOKUP_ACCOUNTS = """
SELECT w.code, w.currency,
       (SELECT a.id FROM ledger_accounts a WHERE a.code = w.code AND a.currency = w.currency)
  FROM unnest(%s::text[], %s::char(3)[]) AS w(code, currency)
"""

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

# The usual batch repeats no recorded key: a plain INSERT (no speculative insertion into the key index, about
# a third cheaper for the entries) inside a savepoint; if a key was already recorded, the savepoint is rolled
# back and the batch goes in again with ON CONFLICT DO NOTHING, whose duplicates are then settled.
# A data-modifying CTE always runs to completion, and here every staged entry goes in or the statement fails
# on the key: the postings need not be joined to the inserted ids (that join was a sixth of the statement).
_INSERT_STAGED_FAST = """
SAVEPOINT ledger_fast_insert;
WITH ins AS (
    INSERT INTO ledger_entries (id, idempotency_key, effective_at, description, metadata, reverses_id)
    SELECT id, idempotency_key, effective_at, description, metadata::jsonb, reverses_id FROM ledger_stage_entries
)
INSERT INTO ledger_postings (entry_id, amount_micros, account_id, position, credit, currency, ref)
SELECT * FROM ledger_stage_postings;
RELEASE SAVEPOINT ledger_fast_insert;
"""

ARRAY_LIMIT = 64  # entries; above this, COPY

# The triggers' seal check joins the batch's postings to those stored in its id range. The planner sees the
# new rows of neither side (a transition table is guessed at 200 groups, the range from stale statistics),
# and once the tables have grown it may pick a nested loop over a materialized side: quadratic in the batch
# (3 s instead of 15 ms for 8,000 entries, measured). Without Material nodes that plan is priced as what it
# is, and the hash join wins; the balance UPDATE's index nested loop (locks in id order) has no Material
# node and is unaffected. The setting is the caller's again after the statement.
_MATERIAL_OFF = "SELECT current_setting('enable_material'), set_config('enable_material', 'off', true)"
_MATERIAL_BACK = "SELECT set_config('enable_material', %s, true)"


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


def _refusal(exc: psycopg.Error) -> Exception:
    """What a refused write raises: the books' own error, ConcurrentPostings for a deadlock, else itself."""
    translated = _translate(exc)
    if translated is not None:
        return translated
    if exc.sqlstate in ("40P01", "40001"):
        return ConcurrentPostings("Concurrent postings collided; try again.")
    return exc


def _run(session: Session, work: Callable[[], T]) -> T:
    """Run `work` atomically inside a savepoint of the caller's transaction, which the caller owns and commits.

    A refused write rolls back only its savepoint and raises, so the caller's transaction stays usable (the
    flush parks a refused entry and goes on). A deadlock or serialization failure is raised as a retryable
    `LedgerError` (code "retry"): only the owner of the transaction can retry it, from the start
    (`core.db.retrying`). An account id cached from a transaction that rolled back (LDG04) is forgotten and the
    work rerun inside a fresh savepoint."""
    for attempt in range(RETRIES):
        scope = session.begin_nested()
        try:
            result = work()
            scope.commit()
            return result
        except psycopg.Error as exc:
            if scope.is_active:
                scope.rollback()
            if exc.sqlstate == "LDG04":
                forget_account_ids()
                if attempt + 1 < RETRIES:
                    continue
            refusal = _refusal(exc)
            if refusal is exc:
                raise
            raise refusal from None
        except BaseException:
            if scope.is_active:
                scope.rollback()
            raise
    raise AssertionError("unreachable")


# Account ids by (code, currency), per database. Accounts are never deleted and ids never reused, so an id
# once seen stays right; the key includes the accounts table's file node, which TRUNCATE changes. An id of an
# account whose creating transaction rolled back is refused by the postings trigger (LDG04), which clears
# this cache and retries.
_ACCOUNT_CACHE: dict[tuple, dict[tuple[str, str], int]] = {}
_ACCOUNT_CACHE_LIMIT = 500_000


def _resolve(cur: psycopg.Cursor, missing: list[tuple[str, str]], into: dict) -> None:
    cur.execute(_LOOKUP_ACCOUNTS, ([c for c, _ in missing], [k for _, k in missing]))
    absent = []
    for code, currency, account_id in cur.fetchall():
        if account_id is None:
            absent.append((code, currency.strip()))
        else:
            into[code, currency.strip()] = account_id
    if not absent:
        return
    missing = absent
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
    material = cur.execute(_MATERIAL_OFF).fetchone()[0]
    try:
        cur.execute(_INSERT_STAGED_FAST)
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name != "uq_ledger_entries_idempotency_key":
            raise
        cur.execute("ROLLBACK TO SAVEPOINT ledger_fast_insert; RELEASE SAVEPOINT ledger_fast_insert")
        cur.execute(_INSERT_STAGED)
        inserted = cur.fetchone()[0]
    else:
        inserted = len(prepared)
    cur.execute(_MATERIAL_BACK, (material,))
    cur.execute("TRUNCATE ledger_stage_entries, ledger_stage_postings")
    if inserted == len(prepared):
        return ids
    cur.execute("SELECT id FROM ledger_entries WHERE id = ANY(%s::int8[])", (ids,))
    present = {row[0] for row in cur.fetchall()}
    return _settle_duplicates(cur, prepared, [entry_id if entry_id in present else None for entry_id in ids])


def post_one(session: Session, item: _Prepared) -> int:
    """A single `post` in ONE round trip when its accounts exist: the savepoint, the insert and the savepoint's
    release travel together in a libpq pipeline (with BEGIN, when this is the transaction's first statement).

    Behaves as `_run` around `_insert`: a refused entry rolls back only its savepoint and raises; an entry
    naming an account not yet opened goes the general way (`_run`), which opens it inside the savepoint."""
    session.flush()  # what the caller's session holds goes in first, as begin_nested() would do
    conn = session.connection().connection.dbapi_connection
    insert = conn.cursor()
    try:
        with conn.pipeline():
            conn.execute("SAVEPOINT ledger_post")
            insert.execute(_INSERT_ARRAYS, _array_params([item]))
            conn.execute("RELEASE SAVEPOINT ledger_post")
        rows = insert.fetchall()
    except psycopg.Error as exc:
        try:
            conn.execute("ROLLBACK TO SAVEPOINT ledger_post")
            conn.execute("RELEASE SAVEPOINT ledger_post")
        except psycopg.Error:  # the savepoint was never set: the caller's transaction had failed already
            raise exc from None
        if exc.sqlstate == "LDG04":
            return _run(session, lambda: _insert(session, [item])[0])
        refusal = _refusal(exc)
        if refusal is exc:
            raise
        raise refusal from None
    if not rows[0][0]:  # an account is new: nothing was inserted
        return _run(session, lambda: _insert(session, [item])[0])
    entry_id = rows[0][1]
    if entry_id is not None:
        return entry_id
    return _settle_duplicates(insert, [item], [None])[0]  # the key was recorded before (or conflicts)


def _array_params(prepared: list[_Prepared]) -> dict[str, list]:
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
    return params


def _insert_small(cur: psycopg.Cursor, prepared: list[_Prepared], codes: set) -> list[int]:
    """A few entries: one round trip when the accounts exist, three when some are new."""
    params = _array_params(prepared)
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

