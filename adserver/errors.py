"""Ad-server errors: each with a stable code and a sentence a person can act on."""

from __future__ import annotations

from core.errors import NinetyError


class AdError(NinetyError):
    code = "ad_error"
    status = 400
    title = "The ad request failed"


class InvalidDecision(AdError):
    code = "invalid_decision"
    status = 400
    title = "The ad decision is not valid"


class ExpiredDecision(AdError):
    code = "expired_decision"
    status = 410
    title = "The ad decision has expired"


class CampaignInvalid(AdError):
    code = "invalid_campaign"
    status = 422
    title = "The campaign is not valid"


class CreativeInvalid(AdError):
    code = "invalid_creative"
    status = 422
    title = "The creative is not valid"


class NotFoundError(AdError):
    code = "not_found"
    status = 404
    title = "Not found"


class TooEarly(AdError):
    code = "ad_view_too_short"
    status = 425
    title = "The ad has not been shown long enough"


class NotAllowed(AdError):
    code = "forbidden"
    status = 403
    title = "Not allowed"
