"""Sales' public operations (one place to import them from): checkout, ownership, refunds, disputes, codes,
top-ups and the Stripe webhook. Every function takes a session and never commits (DESIGN.md)."""

from __future__ import annotations

from sales.codes import codes_csv, codes_for_release, generate_codes, redeem_code
from sales.fulfilment import refund_order, sync_dispute, sync_payment, sync_refunds, sync_topup
from sales.orders import (
    Checkout,
    confirm_checkout,
    default_amount,
    get_order,
    orders_for_buyer,
    owned_tracks,
    owns_release,
    owns_track,
    quote,
    recent_orders,
    refunds_for_order,
    sales_for_artist,
    start_checkout,
    validate_amount,
)
from sales.topups import confirm_topup, get_topup, start_topup
from sales.webhooks import (
    BATCHED_TYPES,
    HANDLERS,
    WebhookContext,
    apply_batch,
    handle,
    prefetch,
    process_event,
    register,
    verify,
)

__all__ = [
    "Checkout", "confirm_checkout", "confirm_topup", "recent_orders", "refunds_for_order", "quote", "default_amount", "validate_amount", "start_checkout", "get_order", "orders_for_buyer",
    "sales_for_artist", "owns_release", "owns_track", "owned_tracks", "refund_order", "sync_payment",
    "sync_refunds", "sync_dispute", "sync_topup", "generate_codes", "codes_for_release", "codes_csv",
    "redeem_code", "start_topup", "get_topup", "BATCHED_TYPES", "apply_batch", "prefetch", "HANDLERS", "WebhookContext", "handle", "process_event",
    "register", "verify", "handle_webhook",
]


def handle_webhook(session, ctx: WebhookContext, payload: bytes, signature: str | None, *, secret: str) -> str:
    """Verify a Stripe delivery and apply it once (the /webhooks/stripe endpoint's whole job)."""
    return handle(session, ctx, payload, signature, secret=secret)
