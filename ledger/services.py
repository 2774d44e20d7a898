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

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from ledger import accounts
from ledger.errors import AccountNotFound, AlreadyReversed, EntryNotFound, InvalidEntry
from ledger.validation import _prepare, _prepare_batch, _text, _valid_currency
from ledger.values import (
    CREDIT,
    DEBIT,
    MAX_DESCRIPTION,
    Entry,
    Posting,
    StatementLine,
    StoredEntry,
    TrialBalanceRow,
)
from ledger.writes import _driver_cursor, _insert, _run, post_one

__all__ = [
    "Entry", "Posting", "StatementLine", "TrialBalanceRow", "StoredEntry", "post", "post_many", "reverse",
    "balance", "balances", "statement", "trial_balance", "get_entry", "close_period", "is_period_closed",
    "find_account",
]



def post(session: Session, entry: Entry) -> int:
    """Record one entry and return its id; the same key and content again returns the same id.

    Runs in a savepoint of the caller's transaction and never commits: a refused entry raises and leaves the
    caller's transaction usable; a deadlock raises `ConcurrentPostings` for the owner to retry."""
    return post_one(session, _prepare(entry))


def post_many(session: Session, entries: Iterable[Entry]) -> list[int]:
    """Record a batch of entries in one statement, all or nothing; ids in the order given (never commits)."""
    unique, mapping = _prepare_batch(entries)
    if not unique:
        return []
    ids = _run(session, lambda: _insert(session, unique))
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
            effective_at: datetime | None = None, description: str | None = None,
            metadata: dict | None = None) -> int:
    """Post the mirror image of an entry (every debit a credit and back); an entry is reversed at most once.

    The reversal says "Reversal of entry N: reason" with event "reversal", unless the caller names its own
    `description` and `metadata` (a failed refund's mirror stays a "refund" event of the sale, signed back)."""
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
    if metadata is None:
        metadata = {"event": "reversal", "reverses": entry_id, "reason": reason}
        if original.metadata.get("event"):
            metadata["original_event"] = original.metadata["event"]
    mirrored = [Posting(p.account, CREDIT if p.side == DEBIT else DEBIT, p.amount_micros, p.currency, p.ref)
                for p in original.postings]
    description = (description or f"Reversal of entry {entry_id}: {reason}")[:MAX_DESCRIPTION]
    return post(session, Entry(key, effective_at, description, mirrored, metadata, reverses_id=entry_id))


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

