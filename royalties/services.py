"""The royalties services other packages and the app call: close, draft, approve, execute, statements."""

from royalties.close import close_month as close_period
from royalties.close import unflushed_before
from royalties.earnings import (
    balances_for_payee,
    daily_earnings,
    listener_receipt,
    payees_for_user,
    place_hold,
    release_hold,
    track_table,
)
from royalties.payouts import (
    approve_batch,
    batches,
    cancel_batch,
    draft_batch,
    exclusions,
    execute_batch,
    get_batch,
    items,
    manual_csv,
    progress,
    sepa_file,
)
from royalties.statements import statement, statement_csv, statement_periods

statements = statement_periods

__all__ = [
    "approve_batch", "balances_for_payee", "batches", "cancel_batch", "close_period", "daily_earnings", "draft_batch",
    "exclusions", "execute_batch", "get_batch", "items", "listener_receipt", "manual_csv", "payees_for_user",
    "place_hold", "progress", "release_hold", "sepa_file", "statement", "statement_csv", "statement_periods",
    "statements", "track_table", "unflushed_before",
]
