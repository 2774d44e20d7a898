"""Stripe's webhooks: POST /webhooks/stripe.

A machine endpoint: no session and no CSRF token (Stripe has neither); what proves the caller is the
`Stripe-Signature` header, verified with STRIPE_WEBHOOK_SECRET over the raw body, and no older than five
minutes. A forged, altered or stale delivery is a 400 problem that changes nothing. The event is applied once
(sales.webhooks); an event that cannot be applied yet answers 503, rolls back, and Stripe delivers it again.

Succeeded payments are applied in batches (core.batching): every sale's entry locks the balances all sales share
(assets:stripe, income:sales, the artist's payable) until its transaction commits, and a commit waits for the
disk, so one transaction per sale caps fulfilment at one sale per disk flush however fast the rest is. The
deliveries that arrive while a batch commits wait for the next one, which applies each in its own savepoint
and posts their sales in one statement (sales.apply_batch): one flush for many sales. Each delivery is still
answered only once its batch has committed, with its own outcome or refusal; a batch whose posting is refused
is rolled back and its events are applied one by one, each in its own transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial

from flask import Blueprint, current_app, request
from sqlalchemy import text
from sqlalchemy.orm import Session

from app import context
from app.auth import access
from core.batching import Batches, per_process
from core.errors import ValidationError
from payments.stripe_client import shared_stripe_client
from sales import services as sales

bp = Blueprint("webhooks", __name__)
log = logging.getLogger("ninety.webhooks")

MAX_EVENT_BYTES = 512 * 1024  # Stripe's events are a few kilobytes; a larger body is not one of them
BATCH_MAX = 64
TURN_LOCK_KEY = 0x6E696E6574790001  # "ninety" + 1: the webhook batches' turn (pg_advisory_xact_lock)
ANSWER_WITHIN_S = 60


def _context() -> sales.WebhookContext:
    cfg = context.config()
    return sales.WebhookContext(stripe=shared_stripe_client(cfg.stripe_api_key, cfg.stripe_api_base),
                                clock=context.clock(), redis=context.redis())


@bp.post("/webhooks/stripe")
@access(public=True, csrf=False)
def stripe_webhook():
    """A signed Stripe event (payment intents, refunds, disputes, and whatever else is registered)."""
    if (request.content_length or 0) > MAX_EVENT_BYTES:
        raise ValidationError("That is too large to be a Stripe event.", code="payload_too_large", status=413)
    payload = request.get_data(cache=False)
    if len(payload) > MAX_EVENT_BYTES:
        raise ValidationError("That is too large to be a Stripe event.", code="payload_too_large", status=413)
    ctx = _context()
    event = sales.verify(ctx.stripe, payload, request.headers.get("Stripe-Signature"),
                         context.config().stripe_webhook_secret)
    if event["type"] in sales.BATCHED_TYPES:
        known = sales.prefetch(ctx, event)  # Stripe is asked before any transaction is open
        outcome = _batches().submit((event, known))
    else:
        outcome = sales.process_event(context.db(), ctx, event)
    return {"received": True, "outcome": outcome}


def _batches() -> Batches:
    app = current_app._get_current_object()
    return per_process(context.runtime().extras, "webhook_batches",
                       lambda: Batches(partial(_apply, app), name="stripe-webhook-batches", max_batch=BATCH_MAX,
                                       answer_within_s=ANSWER_WITHIN_S, take_turn=partial(_turn, app)))


@contextmanager
def _turn(app) -> Iterator[Session]:
    """A batch's turn among the worker processes: a transaction holding the webhook batches' advisory lock.
    Every sale posts to the balances all sales share, so two processes' batches would only queue on each
    other's row locks halfway through, each holding what it had locked; waiting here instead, before the
    batch is gathered, lets it grow meanwhile (core/batching.py). Released when the batch commits."""
    with app.app_context():
        session = context.runtime().sessions()
        try:
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": TURN_LOCK_KEY})
            yield session
        finally:
            session.close()


def _apply(app, batch: list[tuple[dict, object]], session: Session) -> list:
    """The batch thread's work (see the module doc), in its turn's transaction: each delivery's outcome, or
    the exception refusing it."""
    with app.app_context():
        ctx = _context()
        try:
            results = sales.apply_batch(session, ctx, batch)
            session.commit()
            return results
        except Exception:  # noqa: BLE001 - the batch's posting was refused: each event on its own instead
            session.rollback()
            log.warning("webhook batch rolled back; applying its events one by one", exc_info=True)
        finally:
            session.close()
        return [_alone(ctx, event, known) for event, known in batch]


def _alone(ctx: sales.WebhookContext, event: dict, known):
    session = context.runtime().sessions()
    try:
        outcome = sales.process_event(session, replace(ctx, known_intent=known), event)
        session.commit()
        return outcome
    except Exception as exc:  # noqa: BLE001 - answered to its own delivery
        session.rollback()
        return exc
    finally:
        session.close()
