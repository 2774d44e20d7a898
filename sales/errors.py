"""Sales errors: one base, a stable code on each, and a sentence the buyer, artist or finance can act on."""

from __future__ import annotations

from core.errors import NinetyError


class SalesError(NinetyError):
    code = "sales_error"
    status = 400
    title = "The sale could not go ahead"


class SalesNotFound(SalesError):
    code = "not_found"
    status = 404
    title = "Not found"


class NotForSale(SalesError):
    """The release or track cannot be bought: not priced, a draft, not yet out, or taken down."""

    code = "not_for_sale"
    status = 409
    title = "Not for sale"


class SalesForbidden(SalesError):
    code = "forbidden"
    status = 403
    title = "Not allowed"


class InvalidAmount(SalesError):
    code = "invalid_amount"
    status = 422
    title = "The amount is not valid"


class RefundRefused(SalesError):
    code = "refund_refused"
    status = 409
    title = "The refund was refused"


class CodeRefused(SalesError):
    code = "code_refused"
    status = 409
    title = "The code cannot be used"


class WebhookRefused(SalesError):
    """The event cannot be applied now (its payment is not settled at Stripe yet): Stripe will send it again."""

    code = "webhook_not_ready"
    status = 503
    title = "Try the event again later"
