"""The ledger's errors: each carries a stable code and a sentence a person can act on."""

from __future__ import annotations

from core.errors import Conflict, NinetyError, NotFound


class LedgerError(NinetyError):
    code = "ledger_error"
    status = 422
    title = "The books refused this entry"


class ConcurrentPostings(LedgerError, Conflict):
    """A deadlock or serialization failure: the transaction's owner retries it from the start
    (`core.db.retrying`); the ledger cannot, since it runs inside the caller's transaction."""

    code = "retry"
    status = 409
    title = "Concurrent postings collided"
    retryable = True


class InvalidEntry(LedgerError):
    code = "invalid_entry"


class UnbalancedEntry(LedgerError):
    code = "unbalanced_entry"


class InvalidAccount(LedgerError):
    code = "invalid_account"


class IdempotencyConflict(LedgerError, Conflict):
    code = "idempotency_conflict"
    status = 409
    title = "This idempotency key was already used for a different entry"


class BalanceBoundViolated(LedgerError, Conflict):
    code = "insufficient_balance"
    status = 409
    title = "The account would go below its allowed balance"


class PeriodClosed(LedgerError, Conflict):
    code = "period_closed"
    status = 409
    title = "The period is closed"


class AlreadyReversed(LedgerError, Conflict):
    code = "already_reversed"
    status = 409
    title = "The entry has already been reversed"


class EntryNotFound(LedgerError, NotFound):
    code = "entry_not_found"
    status = 404
    title = "No such journal entry"


class AccountNotFound(LedgerError, NotFound):
    code = "account_not_found"
    status = 404
    title = "No such account"
