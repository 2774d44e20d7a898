"""Stripe's webhooks: POST /webhooks/stripe.

A machine endpoint: no session and no CSRF token (Stripe has neither); what proves the caller is the
`Stripe-Signature` header, verified with STRIPE_WEBHOOK_SECRET over the raw body, and no older than five
minutes. A forged, altered or stale delivery is a 400 problem that changes nothing. The event is applied once
(sales.webhooks); an event that cannot be applied yet answers 503, rolls back, and Stripe delivers it again.

Succeeded payments are applied in batches (`_Batches`): every sale's entry locks the balances all sales share
(assets:stripe, income:sales, the artist's payable) until its transaction commits, and a commit waits for the
disk, so one transaction per sale caps fulfilment at one sale per disk flush however fast the rest is. The
deliveries that arrive while a batch commits wait for the next one, which applies each in its own savepoint
and posts their sales in one statement (sales.apply_batch): one flush for many sales. Each delivery is still
answered only once its batch has committed, with its own outcome or refusal; a batch whose posting is refused
is rolled back and its events are applied one by one, each in its own transaction.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from concurrent.futures import Future

from flask import Blueprint, current_app, request

from app import context
from app.auth import access
from core.errors import ValidationError
from payments.stripe_client import shared_stripe_client
from sales import services as sales

bp = Blueprint("webhooks", __name__)
log = logging.getLogger("ninety.webhooks")

MAX_EVENT_BYTES = 512 * 1024  # Stripe's events are a few kilobytes; a larger body is not one of them
BATCH_MAX = 64
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
        outcome = _batches().apply(event, known)
    else:
        outcome = sales.process_event(context.db(), ctx, event)
    return {"received": True, "outcome": outcome}


def _batches() -> _Batches:
    extras = context.runtime().extras
    batches = extras.get("webhook_batches")
    if batches is None or batches.pid != os.getpid():  # one per process (gunicorn forks its workers)
        with _lock:
            batches = extras.get("webhook_batches")
            if batches is None or batches.pid != os.getpid():
                batches = extras["webhook_batches"] = _Batches(current_app._get_current_object())
    return batches


_lock = threading.Lock()


class _Batches:
    """One thread of the process applies the queued deliveries, a batch per transaction (see the module doc)."""

    def __init__(self, app) -> None:
        self.app = app
        self.pid = os.getpid()
        self.waiting: queue.Queue[tuple[dict, object, Future]] = queue.Queue()
        threading.Thread(target=self._run, name="stripe-webhook-batches", daemon=True).start()

    def apply(self, event: dict, known) -> str:
        answer: Future = Future()
        self.waiting.put((event, known, answer))
        return answer.result(timeout=ANSWER_WITHIN_S)  # the outcome, or the exception that refused the event

    def _run(self) -> None:
        while True:
            batch = [self.waiting.get()]
            while len(batch) < BATCH_MAX:
                try:
                    batch.append(self.waiting.get_nowait())
                except queue.Empty:
                    break
            try:
                with self.app.app_context():
                    self._apply(batch)
            except BaseException as exc:  # noqa: BLE001 - never leave a delivery unanswered
                log.exception("webhook batch failed")
                for _, _, answer in batch:
                    if not answer.done():
                        answer.set_exception(exc)

    def _apply(self, batch: list) -> None:
        ctx = _context()
        session = context.runtime().sessions()
        try:
            results = sales.apply_batch(session, ctx, [(event, known) for event, known, _ in batch])
            session.commit()
        except Exception:  # noqa: BLE001 - the batch's posting was refused: each event on its own instead
            session.rollback()
            log.warning("webhook batch rolled back; applying its events one by one", exc_info=True)
            results = [self._alone(ctx, event, known) for event, known, _ in batch]
        finally:
            session.close()
        for (_, _, answer), result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                answer.set_exception(result)
            else:
                answer.set_result(result)

    def _alone(self, ctx: sales.WebhookContext, event: dict, known):
        from dataclasses import replace

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
