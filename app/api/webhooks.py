"""Stripe's webhooks: POST /webhooks/stripe.

A machine endpoint: no session and no CSRF token (Stripe has neither); what proves the caller is the
`Stripe-Signature` header, verified with STRIPE_WEBHOOK_SECRET over the raw body, and no older than five
minutes. A forged, altered or stale delivery is a 400 problem that changes nothing. The event is applied once
(sales.webhooks), in the request's transaction; an event that cannot be applied yet answers 503, rolls back,
and Stripe delivers it again.
"""

from __future__ import annotations

from flask import Blueprint, request

from app import context
from app.auth import access
from core.errors import ValidationError
from payments.stripe_client import shared_stripe_client
from sales import services as sales

bp = Blueprint("webhooks", __name__)

MAX_EVENT_BYTES = 512 * 1024  # Stripe's events are a few kilobytes; a larger body is not one of them


@bp.post("/webhooks/stripe")
@access(public=True, csrf=False)
def stripe_webhook():
    """A signed Stripe event (payment intents, refunds, disputes, and whatever else is registered)."""
    if (request.content_length or 0) > MAX_EVENT_BYTES:
        raise ValidationError("That is too large to be a Stripe event.", code="payload_too_large", status=413)
    payload = request.get_data(cache=False)
    if len(payload) > MAX_EVENT_BYTES:
        raise ValidationError("That is too large to be a Stripe event.", code="payload_too_large", status=413)
    cfg = context.config()
    ctx = sales.WebhookContext(stripe=shared_stripe_client(cfg.stripe_api_key, cfg.stripe_api_base),
                               clock=context.clock(), redis=context.redis())
    outcome = sales.handle_webhook(context.db(), ctx, payload, request.headers.get("Stripe-Signature"),
                                   secret=cfg.stripe_webhook_secret)
    return {"received": True, "outcome": outcome}
