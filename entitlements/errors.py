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


class StreamRefused(EntitlementError):
    """A stream URL or play beacon token that is forged or malformed (issue 12)."""

    code = "stream_invalid"
    status = 403
    title = "This stream link is not valid"


class StreamExpired(EntitlementError):
    code = "stream_expired"
    status = 410
    title = "This stream link has expired"


class NotPlayable(EntitlementError):
    """The track has no stream copies yet (they are made in the background after the upload)."""

    code = "not_playable_yet"
    status = 409
    title = "The track cannot be played yet"
