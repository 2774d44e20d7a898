"""Bringing Ninety's records up to what Stripe says: payments, refunds, disputes, top-ups.

Every webhook is treated as a notification, not as the truth to copy: the handler locks the order, asks
Stripe for the object's current state and applies what the books do not hold yet, in the natural order
(a payment before its refunds and disputes). So an event delivered twice, late, or before the one it
follows changes the books exactly once, and in the right order; each effect also has its own idempotency
key in the ledger and a unique Stripe id in its row. Only these functions (called from signed webhooks, and
a finance or artist refund) post sales entries; the browser's return from the payment page never does.
They flush and never commit: the caller owns the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.models import Artist, Release, Track
from catalog.payees import artist_payee
from catalog.services import is_member, split_sheets_at
from core.clock import Clock
from core.mail import Message
from core.money import Money, MoneyError, chargeable_minor_units, minor_unit_micros
from core.users import User
from ledger import services as ledger
from ledger.accounts import PROCESSING_FEES, STRIPE
from ledger.values import Posting
from payments.stripe_client import PaymentIntent, StripeClient
from rights.escrow import routes_for
from sales import books
from sales.errors import InvalidAmount, RefundRefused, SalesForbidden, SalesNotFound, WebhookRefused
from sales.models import Dispute, Order, OrderRefund, TopUp
from sales.tasks import send_receipts

log = logging.getLogger("ninety.sales")

LOST_DISPUTE = ("lost",)
WON_DISPUTE = ("won",)


def _micros(minor: int, currency: str) -> int:
    return minor * minor_unit_micros(currency)


def lock_order_by_intent(session: Session, intent_id: str) -> Order | None:
    return session.scalar(select(Order).where(Order.payment_intent_id == intent_id).with_for_update())


def _lock_order(session: Session, order_id: int) -> Order:
    order = session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None:
        raise SalesNotFound("There is no such order.", code="order_not_found")
    return order


# --- the sale -----------------------------------------------------------------------------------------------
def orders_tracks(session: Session, orders: list[Order], at) -> dict[int, list[books.TrackShare]]:
    """Each order's tracks with the split sheet in force at `at` (the sale) and where their earnings go (by
    order id): three queries for any number of orders (the tracks, every sheet at once, the takedown routes)."""
    release_ids = sorted({o.release_id for o in orders if o.track_id is None})
    by_release: dict[int, list[int]] = {}
    if release_ids:
        for release_id, track_id in session.execute(select(Track.release_id, Track.id)
                                                    .where(Track.release_id.in_(release_ids))
                                                    .order_by(Track.release_id, Track.position, Track.id)):
            by_release.setdefault(release_id, []).append(track_id)
    track_ids = {o.id: [o.track_id] if o.track_id is not None else by_release.get(o.release_id, []) for o in orders}
    every = sorted({t for ids in track_ids.values() for t in ids})
    sheets = split_sheets_at(session, every, at)
    routes = routes_for(session, every)  # rights.escrow: the case's held account
    shares: dict[int, list[books.TrackShare]] = {}
    for order in orders:
        shares[order.id] = []
        for track_id in track_ids[order.id]:
            sheet = sheets.get(track_id)
            if not sheet:  # no sheet yet: the buyer paid the artist
                sheet = [(artist_payee(session, order.artist_id).id, 10_000)]
            route = routes.get(track_id)
            shares[order.id].append(books.TrackShare(track_id, sheet, route is not None, route))
    return shares


def fulfil_order(session: Session, order: Order, intent, *, clock: Clock,
                 before_posting: Callable[[str], None] | None = None) -> str:
    """The PaymentIntent succeeded: mark the order paid, email the receipt after commit, post the sale
    (`fulfil_orders` for one order; `before_posting(outcome)` is called just before the post)."""
    record = (lambda outcomes: before_posting(outcomes[0])) if before_posting is not None else None
    return fulfil_orders(session, [(order, intent)], clock=clock, before_posting=record)[0]


def fulfil_orders(session: Session, sales: list[tuple[Order, PaymentIntent]], *, clock: Clock,
                  before_posting: Callable[[list[str]], None] | None = None) -> list[str]:
    """Succeeded PaymentIntents of locked orders: mark each order paid, email its receipt after commit, post
    its sale; the outcome of each ("fulfilled", "already_paid", "amount_mismatch").

    The entries are posted last, in one statement: posting locks the balances every sale shares
    (assets:stripe, income:sales, the artist's payable) until the transaction commits, and concurrent sales
    queue on those locks, so only the orders' entry ids are written after it, and many sales in one
    transaction take the locks (and wait for the disk) once. `before_posting(outcomes)` is called just before
    (the webhook records its outcomes there). Raises WebhookRefused (nothing done) if an intent's fee is not
    known yet."""
    outcomes: list[str] = []
    ready: list[tuple[Order, PaymentIntent]] = []
    for order, intent in sales:
        if order.status == "paid":
            outcomes.append("already_paid")
        elif intent.currency != order.currency or _micros(intent.amount_minor, order.currency) != order.amount_micros:
            log.error("payment intent does not match its order", extra={"order": order.id, "intent": intent.id})
            outcomes.append("amount_mismatch")
        elif intent.fee_minor is None:
            raise WebhookRefused("The charge's balance transaction is not available yet; Stripe will retry.")
        else:
            outcomes.append("fulfilled")
            ready.append((order, intent))
    if not ready:
        return outcomes
    now = clock.now()
    orders = [order for order, _ in ready]
    tracks = orders_tracks(session, orders, now)
    releases = {rid: (title, name) for rid, title, name in session.execute(
        select(Release.id, Release.title, Artist.name).join(Artist, Artist.id == Release.artist_id)
        .where(Release.id.in_({o.release_id for o in orders})))}
    wanted_tracks = {o.track_id for o in orders if o.track_id is not None}
    track_titles = dict(session.execute(select(Track.id, Track.title).where(Track.id.in_(wanted_tracks)))
                        .all()) if wanted_tracks else {}
    buyers = {uid: (email, name) for uid, email, name in session.execute(
        select(User.id, User.email, User.display_name).where(User.id.in_({o.buyer_user_id for o in orders})))}
    entries, receipts = [], []
    for order, intent in ready:
        fee = _micros(intent.fee_minor, order.currency)
        release_title, artist_name = releases[order.release_id]
        what = f"track {order.track_id}" if order.track_id is not None else f"release {release_title!r}"
        entries.append(books.sale_entry(
            key=f"sale:{order.id}", order_id=order.id, gross_micros=order.amount_micros, fee_micros=fee,
            currency=order.currency, tracks=tracks[order.id], at=now,
            description=f"Sale of {what} (order {order.id})"[:500],
            metadata={"release_id": order.release_id, "track_id": order.track_id, "payment_intent": intent.id}))
        receipts.append(_receipt(order, buyer=buyers[order.buyer_user_id], release_title=release_title,
                                 artist_name=artist_name, track_title=track_titles.get(order.track_id)))
        order.status, order.fee_micros, order.paid_at, order.failure_reason = "paid", fee, now, None
    send_receipts(session, receipts)
    session.flush()
    if before_posting is not None:
        before_posting(outcomes)
    for order, entry_id in zip(orders, ledger.post_many(session, entries), strict=True):
        order.sale_entry_id = entry_id
    session.flush()
    return outcomes


def _receipt(order: Order, *, buyer: tuple[str, str], release_title: str, artist_name: str,
             track_title: str | None) -> Message:
    email, display_name = buyer
    amount = Money(order.amount_micros, order.currency)
    what = f"“{track_title}” from {release_title}" if track_title is not None else f"{release_title}"
    body = (f"Hello {display_name},\n\nThank you for buying {what} by {artist_name}.\n\n"
            f"Order {order.id}: {amount.format()}\n\nIt is in your collection (/collection), where you can "
            "download it again at any time, in any format.\n\nNinety: 90% of what you paid, after the card "
            "fee, goes to the artist.\n")
    return Message(to=email, subject=f"Your receipt: {release_title} (order {order.id})", body=body)


def record_failure(session: Session, order: Order, intent) -> str:
    if order.status == "paid":
        return "already_paid"
    if intent.status == "canceled":
        order.status = "canceled"
    elif intent.status == "requires_payment_method" and intent.error_message:
        order.status = "failed"
    else:
        return "pending"
    order.failure_reason = (intent.error_message or intent.status)[:300]
    session.flush()
    return order.status


def _current_intent(stripe: StripeClient, intent_id: str, known: PaymentIntent | None) -> PaymentIntent:
    """The intent's state: `known` (a succeeded intent from a signed event) when it is this intent and carries
    its fee, else asked of Stripe once, with the charge's balance transaction expanded."""
    if known is not None and known.id == intent_id and known.status == "succeeded" and known.fee_minor is not None:
        return known
    return stripe.retrieve_payment_intent(intent_id)


def sync_payment(session: Session, stripe: StripeClient, order: Order, *, clock: Clock,
                 known: PaymentIntent | None = None, before_posting: Callable[[str], None] | None = None) -> str:
    """Apply the intent's current state to a locked order (`known`: the intent from a signed event)."""
    if order.status == "paid":
        return "already_paid"
    intent = _current_intent(stripe, order.payment_intent_id, known)
    if intent.status == "succeeded":
        return fulfil_order(session, order, intent, clock=clock, before_posting=before_posting)
    return record_failure(session, order, intent)


def _ensure_paid(session: Session, stripe: StripeClient, order: Order, clock: Clock) -> None:
    """A refund or dispute event before the payment's own: apply the payment first, from Stripe's state."""
    if order.status != "paid":
        sync_payment(session, stripe, order, clock=clock)
    if order.status != "paid":
        raise WebhookRefused("The payment this event follows has not succeeded at Stripe yet; Stripe will retry.")


# --- refunds ------------------------------------------------------------------------------------------------
def _order_entries(session: Session, order: Order) -> list:
    """The order's entries, the sale first: refunds (each followed by its reversal if it failed), disputes."""
    ids = [order.sale_entry_id]
    ids += list(session.scalars(select(OrderRefund.entry_id).where(OrderRefund.order_id == order.id)
                                .order_by(OrderRefund.id)))
    for dispute in session.scalars(select(Dispute).where(Dispute.order_id == order.id)):
        ids.append(dispute.entry_id)
        if dispute.restore_entry_id:
            ids.append(dispute.restore_entry_id)
    entries = []
    for entry_id in ids:
        if entry_id:
            entry = ledger.get_entry(session, entry_id)
            entries.append(entry)
            if entry.reversed_by_id is not None:  # a refund that failed at Stripe
                entries.append(ledger.get_entry(session, entry.reversed_by_id))
    return entries


def _reverse(session: Session, order: Order, *, key: str, event: str, amount_micros: int, fee_micros: int,
             clock: Clock, description: str, metadata: dict) -> int:
    entries = _order_entries(session, order)
    sale = entries[0]
    payees_total = sum(p.amount_micros for p in sale.postings if books.is_payee_account(p.account))
    entry = books.reversal_entry(
        key=key, event=event, order_id=order.id, gross_micros=order.amount_micros, currency=order.currency,
        payees_total_micros=payees_total, holdings=books.payee_holdings(entries),
        reversed_before_micros=order.refunded_micros + order.disputed_micros, amount_micros=amount_micros,
        fee_micros=fee_micros, at=clock.now(), description=description[:500],
        metadata={"release_id": order.release_id, "track_id": order.track_id, **metadata})
    return ledger.post(session, entry)


def book_refund(session: Session, order: Order, *, refund_id: str, amount_micros: int, clock: Clock,
                by_user_id: int | None = None, reason: str = "") -> OrderRefund | None:
    """Record one Stripe refund of a locked, paid order once (None if it is booked already)."""
    existing = session.scalar(select(OrderRefund).where(OrderRefund.stripe_refund_id == refund_id))
    if existing is not None:
        return None
    if amount_micros > order.refundable_micros:
        raise RefundRefused(f"Refund {refund_id} is more than is left of order {order.id}.",
                            code="refund_exceeds_remaining")
    entry_id = _reverse(session, order, key=f"refund:{refund_id}", event="refund", amount_micros=amount_micros,
                        fee_micros=0, clock=clock,
                        description=f"Refund of {Money(amount_micros, order.currency)} on order {order.id}",
                        metadata={"refund": refund_id})
    refund = OrderRefund(order_id=order.id, stripe_refund_id=refund_id, amount_micros=amount_micros,
                         requested_by_user_id=by_user_id, reason=(reason or "")[:300], entry_id=entry_id,
                         created_at=clock.now())
    session.add(refund)
    order.refunded_micros += amount_micros
    session.flush()
    return refund


def reverse_failed_refund(session: Session, order: Order, *, refund_id: str, clock: Clock,
                          failure_reason: str | None = None) -> bool:
    """A booked refund of a locked order failed at Stripe (the card could not take it back, say): the money
    never reached the buyer and Stripe returned it to the balance, so the refund's entry is mirrored (Dr
    assets:stripe, Cr each payee what the refund took, Cr income:sales the rest) and the order is refundable
    by that much again. Once per refund (False if it was never booked, or is reversed already)."""
    refund = session.scalar(select(OrderRefund).where(OrderRefund.stripe_refund_id == refund_id,
                                                      OrderRefund.order_id == order.id).with_for_update())
    if refund is None:  # failed before Ninety booked it: nothing moved
        return False
    booked = ledger.get_entry(session, refund.entry_id)
    if booked.reversed_by_id is not None:
        return False
    why = failure_reason or "unknown"
    # Still a "refund" event (one of the sale events the statements and the track table read), signed the
    # other way: what was refunded from the sale shrinks back by the failed amount.
    ledger.reverse(
        session, booked.id, f"refund failed at Stripe ({why})"[:300], idempotency_key=f"refund_failed:{refund_id}",
        effective_at=clock.now(),
        description=f"Refund {refund_id} of {Money(refund.amount_micros, order.currency)} on order {order.id} "
                    f"failed ({why})"[:500],
        metadata={"event": "refund", "order_id": order.id, "release_id": order.release_id,
                  "track_id": order.track_id, "refund": refund_id, "failed": True, "failure_reason": why,
                  "amount_micros": -refund.amount_micros})
    refund.status = "canceled" if why == "canceled" else "failed"
    refund.failure_reason = why[:120]
    order.refunded_micros -= refund.amount_micros
    session.flush()
    return True


def sync_refunds(session: Session, stripe: StripeClient, order: Order, *, clock: Clock) -> str:
    """Bring the order's refunds up to Stripe's: book every refund the books do not hold (refunds made at
    Stripe too), and reverse every booked one that failed or was canceled there."""
    _ensure_paid(session, stripe, order, clock)
    booked = failed = 0
    for refund in stripe.list_refunds(order.payment_intent_id):
        if refund.status in ("failed", "canceled"):
            failed += reverse_failed_refund(session, order, refund_id=refund.id, clock=clock,
                                            failure_reason=refund.failure_reason or refund.status)
        elif refund.status in ("succeeded", "pending") and book_refund(
                session, order, refund_id=refund.id, amount_micros=_micros(refund.amount_minor, order.currency),
                clock=clock, reason="refunded at Stripe") is not None:
            booked += 1
    outcomes = ([f"refunds_booked:{booked}"] if booked else []) + ([f"refunds_failed:{failed}"] if failed else [])
    return ",".join(outcomes) or "refunds_current"


def refund_order(session: Session, stripe: StripeClient, order_id: int, *, amount=None, by: User,
                 as_finance: bool, window_days: int, clock: Clock, reason: str = "") -> OrderRefund:
    """Refund part or all of a paid order: finance at any time, the artist for their own sales within
    `window_days` of the payment. Refused beyond what is left, for a sale that has been disputed (Stripe
    refunds no charged-back payment), and for a code."""
    order = _lock_order(session, order_id)
    if not as_finance:
        if not is_member(session, order.artist_id, by.id):
            raise SalesForbidden("Only finance, or the artist for their own sales, can refund this.",
                                 code="not_your_sale")
        if order.paid_at is None or clock.now() - order.paid_at > timedelta(days=window_days):
            raise RefundRefused(f"Artists can refund a sale within {window_days} days of it; ask finance for "
                                "an older one.", code="refund_window_closed")
    if order.kind != "sale" or order.status != "paid":
        raise RefundRefused("Only a paid sale can be refunded.", code="order_not_refundable")
    disputed = session.scalar(select(Dispute.status).where(Dispute.order_id == order.id)
                              .order_by((Dispute.status == "open").desc()).limit(1))
    if disputed == "open":
        raise RefundRefused("This sale is disputed by the card holder; it cannot be refunded while the dispute "
                            "is open.", code="order_disputed")
    if disputed is not None:
        # Stripe refuses to refund a charge that has been charged back (charge_disputed), won or lost: asking
        # would only come back declined.
        raise RefundRefused(f"This sale was disputed by the card holder (the dispute was {disputed}); Stripe "
                            "does not refund a charged-back payment.", code="order_disputed")
    left = Money(order.refundable_micros, order.currency)
    money = _refund_amount(amount, left)
    if money.micros > left.micros:
        raise RefundRefused(f"Only {left.format()} is left to refund on this order.", code="refund_exceeds_remaining",
                            refundable_micros=left.micros)
    refund = stripe.refund(payment_intent=order.payment_intent_id, amount_minor=chargeable_minor_units(money),
                           idempotency_key=f"refund:{order.id}:{order.refunded_micros}:{money.micros}",
                           metadata={"order_id": str(order.id)})
    booked = book_refund(session, order, refund_id=refund.id, amount_micros=money.micros, clock=clock,
                         by_user_id=by.id, reason=reason)
    if booked is None:  # a retried request: Stripe replayed the refund we booked
        booked = session.scalar(select(OrderRefund).where(OrderRefund.stripe_refund_id == refund.id))
    return booked


def _refund_amount(amount, left: Money) -> Money:
    if amount is None or amount == "":
        if not left.micros:
            raise RefundRefused("Nothing is left to refund on this order.", code="refund_exceeds_remaining")
        return left
    try:
        if isinstance(amount, Money):
            money = amount
        elif isinstance(amount, str) and len(amount) <= 40:
            money = Money.parse(amount, left.currency)
        elif isinstance(amount, int) and not isinstance(amount, bool):
            money = Money(amount, left.currency)
        else:
            raise InvalidAmount("Give the refund as an amount, like 3.50.", code="invalid_amount", field="amount")
        if money.currency != left.currency:
            raise InvalidAmount(f"This order is in {left.currency}.", code="currency_mismatch", field="amount")
        if money.micros <= 0:
            raise InvalidAmount("A refund must be more than zero.", code="non_positive_amount", field="amount")
        chargeable_minor_units(money)
    except MoneyError as exc:
        code = "too_precise" if exc.code in ("too_precise", "not_chargeable") else "invalid_amount"
        raise InvalidAmount(exc.message, code=code, field="amount") from None
    return money


# --- disputes -----------------------------------------------------------------------------------------------
def sync_dispute(session: Session, stripe: StripeClient, dispute_id: str, *, clock: Clock) -> str:
    """Open, win or lose a dispute in the books to match Stripe's dispute."""
    remote = stripe.retrieve_dispute(dispute_id)
    if not remote.payment_intent:
        return "dispute_without_intent"
    order = lock_order_by_intent(session, remote.payment_intent)
    if order is None:
        return "unknown_order"
    _ensure_paid(session, stripe, order, clock)
    dispute = session.get(Dispute, dispute_id, with_for_update=True)
    outcomes = []
    if dispute is None:
        amount = _micros(remote.amount_minor, order.currency)
        opened_fee = _micros(remote.fee_minor, order.currency) if remote.status not in WON_DISPUTE else 0
        entry_id = _reverse(session, order, key=f"dispute:{dispute_id}", event="chargeback",
                            amount_micros=amount, fee_micros=max(opened_fee, 0), clock=clock,
                            description=f"Dispute {dispute_id} on order {order.id}", metadata={"dispute": dispute_id})
        dispute = Dispute(id=dispute_id, order_id=order.id, amount_micros=amount, fee_micros=max(opened_fee, 0),
                          status="open", entry_id=entry_id, opened_at=clock.now())
        session.add(dispute)
        order.disputed_micros += amount
        session.flush()
        outcomes.append("dispute_opened")
    if dispute.status == "open" and remote.status in WON_DISPUTE:
        original = ledger.get_entry(session, dispute.entry_id)
        fee_now = _micros(remote.fee_minor, order.currency)
        entry = books.restoration_entry(
            key=f"dispute_won:{dispute_id}", original=original,
            fee_returned_micros=dispute.fee_micros - fee_now, at=clock.now(),
            description=f"Dispute {dispute_id} won: order {order.id} restored",
            metadata={"order_id": order.id, "release_id": order.release_id, "track_id": order.track_id,
                      "dispute": dispute_id})
        dispute.restore_entry_id = ledger.post(session, entry)
        dispute.status, dispute.closed_at = "won", clock.now()
        order.disputed_micros -= dispute.amount_micros
        session.flush()
        outcomes.append("dispute_won")
    elif dispute.status == "open" and remote.status in LOST_DISPUTE:
        dispute.status, dispute.closed_at = "lost", clock.now()
        session.flush()
        outcomes.append("dispute_lost")
    return ",".join(outcomes) or "dispute_current"


# --- advertiser top-ups -------------------------------------------------------------------------------------
def sync_topup(session: Session, stripe: StripeClient, redis, topup: TopUp, *, clock: Clock,
               known: PaymentIntent | None = None) -> str:
    """Apply a top-up's intent: Dr assets:stripe (net), Dr fees; Cr the advertiser's prepaid (the gross),
    through adserver.fund, which raises the Redis spendable balance once per entry after the commit."""
    from adserver.services import fund

    if topup.status == "paid":
        return "already_paid"
    intent = _current_intent(stripe, topup.payment_intent_id, known)
    if intent.status != "succeeded":
        if intent.status == "requires_payment_method" and intent.error_message:
            topup.status = "failed"
            session.flush()
            return "failed"
        return "pending"
    if intent.currency != topup.currency or _micros(intent.amount_minor, topup.currency) != topup.amount_micros:
        log.error("top-up intent does not match", extra={"topup": topup.id, "intent": intent.id})
        return "amount_mismatch"
    if intent.fee_minor is None:
        raise WebhookRefused("The charge's balance transaction is not available yet; Stripe will retry.")
    fee = _micros(intent.fee_minor, topup.currency)
    ref = f"topup:{topup.id}"
    paid_by = [Posting(STRIPE, "debit", topup.amount_micros - fee, topup.currency, ref)] if topup.amount_micros > fee \
        else []
    if fee:
        paid_by.append(Posting(PROCESSING_FEES, "debit", min(fee, topup.amount_micros), topup.currency, ref))
    topup.entry_id = fund(session, redis, advertiser_id=topup.advertiser_id, amount_micros=topup.amount_micros,
                          currency=topup.currency, clock=clock, idempotency_key=f"topup:{topup.id}",
                          note=f"card top-up {topup.id}", paid_by=paid_by)
    topup.status, topup.fee_micros, topup.paid_at = "paid", fee, clock.now()
    session.flush()
    return "topped_up"

