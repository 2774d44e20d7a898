"""Royalties errors: each carries a stable code and a sentence finance (or an artist) can act on."""

from __future__ import annotations

from core.errors import NinetyError


class RoyaltiesError(NinetyError):
    code = "royalties_error"
    status = 409
    title = "The royalties operation is not allowed now"


class PeriodNotOver(RoyaltiesError):
    code = "period_not_over"


class ImpressionsNotFlushed(RoyaltiesError):
    code = "impressions_not_flushed"


class PeriodNotClosed(RoyaltiesError):
    code = "period_not_closed"


class BatchStateError(RoyaltiesError):
    code = "batch_state"


class FourEyes(RoyaltiesError):
    code = "drafter_cannot_approve"
    status = 403


class InvalidPeriod(RoyaltiesError):
    code = "invalid_period"
    status = 422


class EarlierPeriodOpen(RoyaltiesError):
    code = "earlier_period_open"


class ParkedEntriesUnsettled(RoyaltiesError):
    code = "parked_entries_unsettled"


class ParkedEntryNotFound(RoyaltiesError):
    code = "parked_entry_not_found"
    status = 404


class ParkedEntrySettled(RoyaltiesError):
    code = "parked_entry_settled"


class ParkedEntryStillRefused(RoyaltiesError):
    code = "parked_entry_still_refused"
