"""Entitlement errors: why a download is not granted (yet), each with a stable code."""

from __future__ import annotations

from core.errors import NinetyError


class EntitlementError(NinetyError):
    code = "entitlement_error"
    status = 400
    title = "The download cannot be granted"


class NotEntitled(EntitlementError):
    code = "not_entitled"
    status = 403
    title = "Not allowed"


class GateConflict(EntitlementError):
    code = "gate_conflict"
    status = 409
    title = "Conflict with the current state"


class WrongDecision(EntitlementError):
    code = "wrong_decision"
    status = 422
    title = "That ad does not unlock this download"


class TooEarly(EntitlementError):
    code = "ad_view_too_short"
    status = 425
    title = "The ad has not been shown long enough"


class KeyCreditShort(EntitlementError):
    """Key mode is on but the listener has not seen enough browse ads for another download."""

    code = "key_credit_short"
    status = 409
    title = "Not enough key-mode credit"
