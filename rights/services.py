"""The rights package's public operations (one import for the app): notices, decisions, cases, timers,
escrow, strikes and stay-down. Each lives in its own module; this module only gathers them.

Services take a session and plain values and never commit; the caller owns the transaction (DESIGN.md).
"""

from __future__ import annotations

from rights.cases import (
    TickResult,
    accept_notice,
    action_notice,
    case_events,
    cases_for_artist,
    cases_for_user,
    file_counter_notice,
    get_case,
    next_timer_at,
    notice_events,
    reject_notice,
    report_court_action,
    tick,
    track_notice,
    withdraw_notice,
)
from rights.escrow import (
    CaseMoney,
    HeldLine,
    case_money,
    claimant_payee,
    held_lines,
    payee_account_for,
    routes_for,
)
from rights.notices import (
    MonthStats,
    ValidNotice,
    decision_queue,
    file_notice,
    get_notice,
    notices_for_claimant,
    overdue_count,
    overdue_notices,
    parse_location,
    parse_works_csv,
    time_left,
    transparency,
    validate_notice,
)
from rights.settings import RightsSettings
from rights.staydown import screen_upload
from rights.strikes import (
    active_strike_count,
    appeals_for_artist,
    clear_claimant_flag,
    decide_appeal,
    file_appeal,
    flagged_claimants,
    is_flagged,
    is_suspended,
    pending_appeals,
    pending_suspensions,
    review_suspension,
    strikes_for_artist,
)

__all__ = [
    "RightsSettings", "ValidNotice", "MonthStats", "TickResult", "CaseMoney",
    "validate_notice", "file_notice", "parse_works_csv", "parse_location", "get_notice", "notices_for_claimant",
    "decision_queue", "overdue_notices", "overdue_count", "time_left", "transparency",
    "action_notice", "reject_notice", "get_case", "cases_for_artist", "cases_for_user", "case_events",
    "notice_events", "track_notice", "file_counter_notice", "accept_notice", "report_court_action",
    "withdraw_notice", "tick", "next_timer_at",
    "payee_account_for", "routes_for", "case_money", "claimant_payee", "held_lines", "HeldLine",
    "screen_upload",
    "strikes_for_artist", "active_strike_count", "is_suspended", "pending_suspensions", "review_suspension",
    "file_appeal", "decide_appeal", "pending_appeals", "appeals_for_artist", "flagged_claimants", "is_flagged",
    "clear_claimant_flag",
]
