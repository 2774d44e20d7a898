"""Payments errors: every failure of a payment rail or payout method carries a stable code."""

from __future__ import annotations

from core.errors import NinetyError


class PaymentsError(NinetyError):
    code = "payments_error"
    status = 400
    title = "Payment failed"


class InvalidPayoutMethod(PaymentsError):
    code = "invalid_payout_method"
    status = 422
    title = "The payout method is not valid"


class RailDeclined(PaymentsError):
    """The rail refused the payment for good (closed account, payouts disabled): reverse the item."""

    code = "rail_declined"
    status = 402
    title = "The payment was declined"


class RailUnavailable(PaymentsError):
    """The rail could not be reached or answered with a server error: retry later, the outcome is unknown."""

    code = "rail_unavailable"
    status = 503
    title = "The payment provider is unavailable"
