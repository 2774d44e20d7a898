"""The chart of accounts: codes, types and the rules that follow from a code.

An account is named by a lower-case code of colon-separated segments (`liabilities:payee:42:payable`) and a
currency; it is created on first use, its type comes from the first segment, and some accounts carry a
balance bound (an advertiser's prepaid budget must not go below zero).
"""

from __future__ import annotations

import re

from ledger.errors import InvalidAccount

ASSETS, LIABILITIES, INCOME, EXPENSES, EQUITY = "assets", "liabilities", "income", "expenses", "equity"
TYPES = (ASSETS, LIABILITIES, INCOME, EXPENSES, EQUITY)
# Assets and expenses grow with debits; liabilities, income and equity with credits.
DEBIT_NORMAL = frozenset({ASSETS, EXPENSES})

STRIPE = "assets:stripe"
BANK = "assets:bank"
PAYOUTS_IN_TRANSIT = "liabilities:payouts:in-transit"
INCOME_ADS = "income:ads"
INCOME_SALES = "income:sales"
INCOME_UNATTRIBUTED = "income:unattributed"
PROCESSING_FEES = "expenses:processing-fees"
BAD_DEBT = "expenses:bad-debt"  # ad revenue the platform wrote off (artists still paid)

MAX_CODE_LENGTH = 200
CODE_RE = re.compile(r"^(assets|liabilities|income|expenses|equity)(:[a-z0-9][a-z0-9-]*)+$")
# The same rule in PostgreSQL (ledger_accounts.code CHECK) - keep the two in step.
CODE_SQL_PATTERN = r"^(assets|liabilities|income|expenses|equity)(:[a-z0-9][a-z0-9-]*)+$"
PERIOD_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
# Accounts whose normal-side balance must never go below zero (SQL regex used when creating them).
NON_NEGATIVE_SQL_PATTERN = r"^liabilities:advertiser:[a-z0-9-]+:prepaid$"
_NON_NEGATIVE_RE = re.compile(NON_NEGATIVE_SQL_PATTERN)


def _segment(value: int | str, what: str) -> str:
    text = str(value).lower()
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", text):
        raise InvalidAccount(f"{what} {value!r} cannot be part of an account code; use letters, digits and dashes")
    return text


def advertiser_prepaid(advertiser_id: int | str) -> str:
    return f"liabilities:advertiser:{_segment(advertiser_id, 'advertiser id')}:prepaid"


def payee_payable(payee_id: int | str) -> str:
    return f"liabilities:payee:{_segment(payee_id, 'payee id')}:payable"


def payee_held(payee_id: int | str) -> str:
    return f"liabilities:payee:{_segment(payee_id, 'payee id')}:held"


def listener_pool(period: str) -> str:
    if not isinstance(period, str) or not PERIOD_RE.match(period):
        raise InvalidAccount(f"{period!r} is not a period; write it as YYYY-MM")
    return f"liabilities:pool:listener:{period}"


def check_code(code: str) -> str:
    """The code itself if it names a valid account, else InvalidAccount with the reason."""
    if not isinstance(code, str) or not code or len(code) > MAX_CODE_LENGTH or not CODE_RE.match(code):
        raise InvalidAccount(
            f"{code!r} is not an account code; write lower-case segments joined by colons, starting with "
            f"one of {', '.join(TYPES)} (e.g. liabilities:payee:42:payable)")
    return code


def account_type(code: str) -> str:
    return check_code(code).split(":", 1)[0]


def is_debit_normal(code: str) -> bool:
    return account_type(code) in DEBIT_NORMAL


def min_balance_micros(code: str) -> int | None:
    """The bound on the account's normal-side balance, or None when it may go negative."""
    return 0 if _NON_NEGATIVE_RE.match(code) else None


def beancount_name(code: str) -> str:
    """`liabilities:payee:42:payable` -> `Liabilities:Payee:42:Payable` (a valid beancount account name)."""
    return ":".join(part[:1].upper() + part[1:] for part in check_code(code).split(":"))
