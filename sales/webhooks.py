"""Stripe webhooks: verify, apply once, dispatch by event type.

`HANDLERS` maps an event type to `handler(session, ctx, event) -> outcome`; other areas add theirs
(subscriptions register `invoice.*` and `customer.subscription.*`) with `register`. Idempotency is done here,
once, for every handler: the event id is inserted into `stripe_webhook_events` in the same transaction as the
handler's effect (INSERT … ON CONFLICT DO NOTHING: a concurrent delivery of the same event waits on the row
and then finds it), so an event applied is never applied again, and one whose effect rolled back is not
recorded and is applied when Stripe delivers it again. Handlers should treat the event as a notification and
read the object's current state from Stripe (see sales.fulfilment), which makes them right for events that
come late or out of order too; a payload that shows a terminal state (a succeeded PaymentIntent) is that
state already, so only what it lacks (the fee) is fetched. Unknown types are recorded as "ignored".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.clock import Clock
from payments.errors import PaymentsError
from payments.stripe_client import PaymentIntent, StripeClient, intent_from_payload
from sales import fulfilment
from sales.errors import SalesError
from sales.models import Order, TopUp

log = logging.getLogger("ninety.sales.webhooks")


@dataclass
class WebhookContext:
    stripe: StripeClient
    clock: Clock
    redis: Any = None
    settings: dict = field(default_factory=dict)
    # Set by process_event for the event being applied: records its outcome now. A handler whose last effect
    # is a ledger post calls it just before posting, so that nothing but the commit follows the post (which
    # locks the balances every sale shares until the commit).
    record_outcome: Callable[[str], None] | None = None
    # A PaymentIntent read from Stripe before the transaction began (its fee included), for the event's intent.
    known_intent: PaymentIntent | None = None


Handler = Callable[[Session, WebhookContext, dict], str]
HANDLERS: dict[str, Handler] = {}


def register(event_type: str, handler: Handler) -> None:
    """Add (or replace) the handler of one event type."""
    HANDLERS[event_type] = handler


def verify(stripe: StripeClient, payload: bytes, signature: str | None, secret: str) -> dict:
    """The event, if its `Stripe-Signature` verifies with the secret and is recent; else `bad_webhook_signature`."""
    try:
        event = stripe.construct_event(payload, signature or "", secret)
    except PaymentsError as exc:
        raise SalesError(exc.message, code=exc.code, status=exc.status if exc.status >= 500 else 400) from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise SalesError("The webhook is not a Stripe event.", code="bad_webhook_payload")
    return event


def _object(event: dict) -> dict:
    obj = (event.get("data") or {}).get("object")
    return obj if isinstance(obj, dict) else {}


def process_event(session: Session, ctx: WebhookContext, event: dict) -> str:
    """Apply a verified event once; the outcome ("duplicate" when it was applied before)."""
    obj = _object(event)
    claimed = session.execute(text(
        "INSERT INTO stripe_webhook_events (id, type, outcome, object_id) VALUES (:id, :type, 'processing', :obj) "
        "ON CONFLICT (id) DO NOTHING RETURNING id"),
        {"id": event["id"][:255], "type": event["type"][:100], "obj": str(obj.get("id") or "")[:255] or None}).first()
    if claimed is None:
        return "duplicate"
    recorded: list[str] = []

    def record(outcome: str) -> None:
        session.execute(text("UPDATE stripe_webhook_events SET outcome = :outcome WHERE id = :id"),
                        {"outcome": (outcome or "done")[:40], "id": event["id"][:255]})
        recorded.append(outcome)

    handler = HANDLERS.get(event["type"])
    outcome = handler(session, replace(ctx, record_outcome=record), event) if handler is not None else "ignored"
    if recorded != [outcome]:
        record(outcome)
    return outcome


def handle(session: Session, ctx: WebhookContext, payload: bytes, signature: str | None, *, secret: str) -> str:
    """Verify and apply one delivery (the endpoint's whole job)."""
    return process_event(session, ctx, verify(ctx.stripe, payload, signature, secret))


# --- many events in one transaction -------------------------------------------------------------------------
BATCHED_TYPES = frozenset({"payment_intent.succeeded"})


def prefetch(ctx: WebhookContext, event: dict) -> PaymentIntent | None:
    """A succeeded-payment event's intent with what the payload lacks (the fee), asked of Stripe before any
    transaction is opened; None for another kind of event, or if Stripe could not say."""
    obj = _object(event)
    known = _succeeded_intent(obj)
    if known is None or known.fee_minor is not None:
        return known
    try:
        return ctx.stripe.retrieve_payment_intent(known.id)
    except PaymentsError:  # the event is then applied on its own, which asks again if it is Ninety's
        return None


def apply_batch(session: Session, ctx: WebhookContext, items: list[tuple[dict, PaymentIntent | None]]) -> list:
    """Apply several verified events in the caller's one transaction; per event its outcome, or the exception
    that refused it (that event changed nothing and is answered as it would be on its own). Never commits.

    A succeeded payment whose intent is known with its fee (`prefetch`) is applied set-wise, in a few
    statements for the whole batch: the events claimed at once (in id order), their orders locked at once (in
    id order), and their sales fulfilled and posted together (`fulfilment.fulfil_orders`, one `post_many`),
    so the balances every sale shares are locked, and the commit waited for, once for the batch. Any other
    event is applied as `process_event` does, in a savepoint of its own. If the batch's fulfilment is refused,
    the exception propagates: the caller rolls the batch back and applies its events one by one."""
    results: list = [None] * len(items)
    simple: dict[str, int] = {}  # event id -> index, first delivery of each succeeded payment with its fee
    for index, (event, known) in enumerate(items):
        if event["id"] in simple:
            results[index] = "duplicate"
        elif event["type"] == "payment_intent.succeeded" and known is not None and known.fee_minor is not None \
                and known.id == _intent_id(_object(event)):
            simple[event["id"]] = index
    for index, (event, known) in enumerate(items):
        if results[index] is not None or simple.get(event["id"]) == index:
            continue
        unit = session.begin_nested()
        try:
            results[index] = process_event(session, replace(ctx, known_intent=known), event)
            unit.commit()
        except Exception as exc:  # noqa: BLE001 - refused alone; the caller answers its delivery
            if unit.is_active:
                unit.rollback()
            results[index] = exc
    if not simple:
        return results
    ids = sorted(simple)
    claimed = set(session.scalars(text(
        "INSERT INTO stripe_webhook_events (id, type, outcome, object_id) "
        "SELECT i, 'payment_intent.succeeded', 'processing', o FROM unnest(CAST(:ids AS text[]), "
        "CAST(:objs AS text[])) AS t(i, o) ORDER BY i ON CONFLICT (id) DO NOTHING RETURNING id"),
        {"ids": [i[:255] for i in ids], "objs": [items[simple[i]][1].id[:255] for i in ids]}))
    intents = {items[simple[i]][1].id: i for i in ids if i[:255] in claimed}
    for event_id in ids:
        if event_id[:255] not in claimed:
            results[simple[event_id]] = "duplicate"
    orders = {o.payment_intent_id: o for o in session.scalars(
        select(Order).where(Order.payment_intent_id.in_(list(intents))).order_by(Order.id).with_for_update())}
    sales: list[tuple[Order, PaymentIntent]] = []
    sale_events: list[str] = []
    outcomes: dict[str, str] = {}
    for intent_id, event_id in intents.items():
        event, known = items[simple[event_id]]
        if intent_id in orders:
            sales.append((orders[intent_id], known))
            sale_events.append(event_id)
            continue
        unit = session.begin_nested()  # a top-up, or an intent Ninety does not know: the handler, on its own
        try:
            outcomes[event_id] = on_payment_intent(session, replace(ctx, known_intent=known), event)
            unit.commit()
        except Exception as exc:  # noqa: BLE001
            if unit.is_active:
                unit.rollback()
            session.execute(text("DELETE FROM stripe_webhook_events WHERE id = :id"), {"id": event_id[:255]})
            results[simple[event_id]] = exc

    def record(sale_outcomes: list[str]) -> None:
        outcomes.update(zip(sale_events, sale_outcomes, strict=True))
        _record_outcomes(session, outcomes)

    if sales:
        fulfilment.fulfil_orders(session, sales, clock=ctx.clock, before_posting=record)
    else:
        _record_outcomes(session, outcomes)
    for event_id, outcome in outcomes.items():
        results[simple[event_id]] = outcome
    return results


def _record_outcomes(session: Session, outcomes: dict[str, str]) -> None:
    if outcomes:
        session.execute(text(
            "UPDATE stripe_webhook_events e SET outcome = t.outcome FROM unnest(CAST(:ids AS text[]), "
            "CAST(:outcomes AS text[])) AS t(id, outcome) WHERE e.id = t.id"),
            {"ids": [i[:255] for i in outcomes], "outcomes": [(o or "done")[:40] for o in outcomes.values()]})


# --- sales' own handlers ------------------------------------------------------------------------------------
def _intent_id(obj: dict) -> str | None:
    if obj.get("object") == "payment_intent":
        return obj.get("id")
    value = obj.get("payment_intent")
    if isinstance(value, dict):
        return value.get("id")
    return value if isinstance(value, str) else None


def _succeeded_intent(obj: dict) -> PaymentIntent | None:
    """The intent as the signed event carries it, when it says the payment succeeded: a terminal state, so the
    payload is as good as asking Stripe (only the fee may still have to be fetched, see sync_payment)."""
    if obj.get("object") != "payment_intent" or obj.get("status") != "succeeded":
        return None
    try:
        return intent_from_payload(obj)
    except (KeyError, TypeError, ValueError):
        return None


def on_payment_intent(session: Session, ctx: WebhookContext, event: dict) -> str:
    obj = _object(event)
    intent_id = _intent_id(obj)
    if not intent_id:
        return "no_intent"
    known = ctx.known_intent if ctx.known_intent is not None and ctx.known_intent.id == intent_id \
        else _succeeded_intent(obj)
    order = fulfilment.lock_order_by_intent(session, intent_id)
    if order is not None:
        return fulfilment.sync_payment(session, ctx.stripe, order, clock=ctx.clock, known=known,
                                       before_posting=ctx.record_outcome)
    topup = session.query(TopUp).filter_by(payment_intent_id=intent_id).with_for_update().one_or_none()
    if topup is not None:
        return fulfilment.sync_topup(session, ctx.stripe, ctx.redis, topup, clock=ctx.clock, known=known)
    return "unknown_intent"


def on_refund(session: Session, ctx: WebhookContext, event: dict) -> str:
    intent_id = _intent_id(_object(event))
    if not intent_id:
        return "no_intent"
    order = fulfilment.lock_order_by_intent(session, intent_id)
    if order is None:
        return "unknown_intent"
    return fulfilment.sync_refunds(session, ctx.stripe, order, clock=ctx.clock)


def on_dispute(session: Session, ctx: WebhookContext, event: dict) -> str:
    dispute_id = _object(event).get("id")
    if not isinstance(dispute_id, str) or not dispute_id.startswith("dp_"):
        return "no_dispute"
    return fulfilment.sync_dispute(session, ctx.stripe, dispute_id, clock=ctx.clock)


for _type in ("payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled",
              "payment_intent.processing", "payment_intent.requires_action"):
    register(_type, on_payment_intent)
# A refund that fails at Stripe sends refund.failed (every refund, since API version 2024-10-28) and
# charge.refund.updated (refunds of a charge); either one reverses the refund's books (sync_refunds).
for _type in ("charge.refunded", "charge.refund.updated", "refund.created", "refund.updated", "refund.failed"):
    register(_type, on_refund)
for _type in ("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
              "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated"):
    register(_type, on_dispute)
