"""Premium subscriptions: plans, subscribing with a card, the state machine driven by signed webhooks, the
books of a paid invoice and of a refund, cancellation, and who is a subscriber at a given moment.

- A plan is monthly, one per currency, its price from configuration; it is created at Stripe (a Product and
  a Plan) the first time it is needed and replaced when the configured price changes.
- Subscribing: the page confirms a SetupIntent with the card element; `subscribe` attaches that card to the
  user's Stripe customer and creates the Stripe subscription. The first invoice is charged at once; a card
  that needs 3-D Secure comes back as `requires_action` (the page completes it with Stripe.js); a declined
  card is refused here (402) and nothing is kept.
- Every state change Stripe originates comes from its signed webhooks, applied idempotently and in any
  order (`invoice.payment_succeeded`, `invoice.payment_failed`, `customer.subscription.deleted`,
  `customer.subscription.updated`). Finance's immediate cancellation records its own effect from Stripe's
  synchronous answer (and the deleted webhook that follows then changes nothing).
- A paid invoice: Dr assets:stripe (net), Dr expenses:processing-fees (fee); Cr
  liabilities:pool:subscriber:{month} 90% of net rounded up, referenced by the subscriber; Cr
  income:subscriptions the rest. The month close (royalties.subscriber_pool) shares each subscriber's pool.
- A refund reverses the pool's part while the pool's month is open (Dr pool, Dr income:subscriptions; Cr
  assets:stripe); after that month closed, the pool's part is recouped from the payees (and the carry or
  unattributed income) that subscriber's pool paid, in proportion, through `allocate`.

Services take a session and never commit; `gateway` is a payments.subscriptions.SubscriptionGateway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.clock import Clock
from core.money import Money, allocate, chargeable_minor_units, share_ceil
from core.users import User
from ledger import services as ledger
from ledger.accounts import INCOME_UNATTRIBUTED, PROCESSING_FEES, STRIPE, payee_payable
from payments.errors import RailDeclined
from sales import webhooks
from sales.errors import SalesError
from sales.subscription_models import (
    LIVE_STATUSES,
    Customer,
    Invoice,
    Plan,
    Refund,
    SubscriberPoolShare,
    Subscription,
)

INCOME_SUBSCRIPTIONS = "income:subscriptions"
PRODUCT_NAME = "Ninety Premium"


def subscriber_pool(period: str) -> str:
    """The month's subscriber pool account (postings reference the subscriber: `subscriber:{user id}`)."""
    ledger_period = datetime.strptime(period, "%Y-%m")  # refuses anything that is not YYYY-MM
    return f"liabilities:pool:subscriber:{ledger_period:%Y-%m}"


def subscriber_ref(user_id: int) -> str:
    return f"subscriber:{int(user_id)}"


def period_of(at: datetime) -> str:
    return f"{at.year:04d}-{at.month:02d}"


# --- errors -------------------------------------------------------------------------------------------
class SubscriptionError(SalesError):
    code = "subscription_error"
    status = 400
    title = "The subscription request failed"


class AlreadySubscribed(SubscriptionError):
    code = "already_subscribed"
    status = 409
    title = "Already subscribed"


class NoPlan(SubscriptionError):
    code = "no_plan"
    status = 404
    title = "No plan in that currency"


class SubscriptionNotFound(SubscriptionError):
    code = "subscription_not_found"
    status = 404
    title = "No such subscription"


class CardDeclined(SubscriptionError):
    code = "card_declined"
    status = 402
    title = "The card was declined"


class CardNotConfirmed(SubscriptionError):
    code = "card_not_confirmed"
    status = 409
    title = "The card is not confirmed"


class InvoiceNotRefundable(SubscriptionError):
    code = "invoice_not_paid"
    status = 409
    title = "The invoice cannot be refunded"


class RefundTooLarge(SubscriptionError):
    code = "refund_exceeds_remaining"
    status = 422
    title = "The refund is larger than what is left"


class NotCancellable(SubscriptionError):
    code = "not_cancellable"
    status = 409
    title = "The subscription cannot be cancelled"


# --- settings and plans ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SubscriptionSettings:
    """What premium needs from configuration (the app builds it from SUBSCRIPTION_PRICES and
    SUBSCRIPTION_GRACE_DAYS)."""

    prices: dict[str, int] = field(default_factory=lambda: {"USD": 4_990_000})  # currency -> monthly micros
    grace_days: int = 7

    @classmethod
    def parse(cls, prices: str, grace_days: int) -> SubscriptionSettings:
        parsed = {}
        for part in (prices or "").split(","):
            code, _, amount = part.partition("=")
            if code.strip():
                money = Money.parse(amount.strip(), code.strip().upper(), whole_minor_units=True)
                if money.micros <= 0:
                    raise ValueError(f"the premium price in {money.currency} must be above zero")
                chargeable_minor_units(money)
                parsed[money.currency] = money.micros
        if grace_days < 0:
            raise ValueError("SUBSCRIPTION_GRACE_DAYS must not be negative")
        return cls(prices=parsed, grace_days=grace_days)


def ensure_plan(session: Session, gateway, currency: str, settings: SubscriptionSettings) -> Plan:
    """The active plan in `currency`, created at Stripe (Product + monthly Plan) when there is none or when the
    configured price or grace changed (the old plan stays for the subscriptions already on it)."""
    currency = currency.upper()
    if currency not in settings.prices:
        raise NoPlan(f"Premium is not offered in {currency}; choose one of {', '.join(sorted(settings.prices))}.")
    price = settings.prices[currency]
    plan = session.scalars(select(Plan).where(Plan.currency == currency, Plan.active)).one_or_none()
    if plan is not None and plan.price_micros == price and plan.grace_days == settings.grace_days:
        return plan
    if plan is not None:
        plan.active = False
        session.flush()
    product = session.scalars(select(Plan.stripe_product_id).limit(1)).first()
    if product is None:
        product = gateway.create_product(name=PRODUCT_NAME, idempotency_key="ninety-premium-product")
    minor = chargeable_minor_units(Money(price, currency))
    stripe_plan = gateway.create_plan(product=product, amount_minor=minor, currency=currency,
                                      idempotency_key=f"ninety-premium-plan-{currency}-{minor}-{settings.grace_days}",
                                      nickname=f"Premium monthly {currency}")
    existing = session.scalars(select(Plan).where(Plan.stripe_plan_id == stripe_plan)).one_or_none()
    if existing is not None:  # the same price again: Stripe's idempotency gave back the old plan
        existing.active = True
        session.flush()
        return existing
    plan = Plan(currency=currency, price_micros=price, stripe_product_id=product, stripe_plan_id=stripe_plan,
                grace_days=settings.grace_days, active=True)
    session.add(plan)
    session.flush()
    return plan


def offered_plans(settings: SubscriptionSettings) -> list[Money]:
    return [Money(micros, currency) for currency, micros in sorted(settings.prices.items())]


# --- reading ------------------------------------------------------------------------------------------
def is_subscriber(session: Session, user_id: int | None, at: datetime) -> bool:
    """Whether `user_id` has premium at `at`: a paid period covers it, or a failed renewal's grace does."""
    if user_id is None:
        return False
    return bool(session.execute(text("""
        SELECT EXISTS (SELECT 1 FROM subscriptions
                        WHERE user_id = :user AND current_period_end IS NOT NULL
                          AND (:at < current_period_end OR (status = 'past_due' AND :at < grace_until)))
    """), {"user": int(user_id), "at": at}).scalar())


def current_subscription(session: Session, user_id: int) -> Subscription | None:
    """The live subscription, else the latest one (ended or not)."""
    return session.scalars(select(Subscription).where(Subscription.user_id == user_id).order_by(
        Subscription.status.in_(LIVE_STATUSES).desc(), Subscription.id.desc()).limit(1)).first()


def invoices_for(session: Session, user_id: int) -> list[Invoice]:
    return list(session.scalars(select(Invoice).join(Subscription, Subscription.id == Invoice.subscription_id)
                                .where(Subscription.user_id == user_id).order_by(Invoice.created_at.desc(),
                                                                                 Invoice.id.desc())))


def account(session: Session, user_id: int, *, clock: Clock) -> dict:
    """What the account page shows: the plan, whether premium is on now, the next renewal, the invoices."""
    sub = current_subscription(session, user_id)
    plan = session.get(Plan, sub.plan_id) if sub is not None else None
    now = clock.now()
    renews = None
    if sub is not None and sub.status in ("active", "past_due") and not sub.cancel_at_period_end:
        renews = sub.current_period_end
    return {"subscription": sub, "plan": plan, "premium": is_subscriber(session, user_id, now),
            "renews_at": renews, "ends_at": sub.current_period_end if sub is not None and not renews else None,
            "invoices": invoices_for(session, user_id)}


def get_subscription(session: Session, subscription_id: int, *, user_id: int | None = None) -> Subscription:
    """The subscription; with `user_id`, only that user's (someone else's is not found, to leak nothing)."""
    sub = session.get(Subscription, subscription_id) if 1 <= subscription_id <= 2**31 - 1 else None
    if sub is None or (user_id is not None and sub.user_id != user_id):
        raise SubscriptionNotFound("There is no such subscription on your account.")
    return sub


# --- subscribing ----------------------------------------------------------------------------------------
def _customer(session: Session, gateway, user: User) -> str:
    row = session.get(Customer, user.id)
    if row is not None:
        return row.stripe_customer_id
    stripe_id = gateway.create_customer(email=user.email, user_id=user.id, idempotency_key=f"ninety-customer-{user.id}")
    session.add(Customer(user_id=user.id, stripe_customer_id=stripe_id))
    session.flush()
    return stripe_id


def _refuse_if_subscribed(session: Session, user: User, clock: Clock) -> None:
    live = session.scalars(select(Subscription).where(Subscription.user_id == user.id,
                                                      Subscription.status.in_(("active", "past_due")))).first()
    if live is not None or is_subscriber(session, user.id, clock.now()):
        raise AlreadySubscribed("You already have premium; your account page shows it and when it renews.")


def start_subscription(session: Session, gateway, user: User, currency: str, *, settings: SubscriptionSettings,
                       clock: Clock) -> dict:
    """The first step of subscribing: the plan, and a SetupIntent for the card element (client_secret)."""
    _refuse_if_subscribed(session, user, clock)
    plan = ensure_plan(session, gateway, currency, settings)
    customer = _customer(session, gateway, user)
    intent = gateway.create_setup_intent(customer=customer)
    return {"plan": plan, "price": Money(plan.price_micros, plan.currency), "client_secret": intent.client_secret,
            "setup_intent": intent.id}


@dataclass(frozen=True)
class SubscribeResult:
    subscription: Subscription
    status: str  # "active" (paid; premium starts when Stripe's webhook says so), "requires_action"
    client_secret: str | None = None


def subscribe(session: Session, gateway, user: User, currency: str, setup_intent_id: str, *,
              settings: SubscriptionSettings, clock: Clock) -> SubscribeResult:
    """Subscribe `user` with the card the SetupIntent confirmed. Refuses a second subscription (409), a card
    that is not confirmed or not this user's (409), and a declined card (402, nothing kept)."""
    _refuse_if_subscribed(session, user, clock)
    plan = ensure_plan(session, gateway, currency, settings)
    customer = _customer(session, gateway, user)
    if not isinstance(setup_intent_id, str) or not setup_intent_id.startswith("seti_") or len(setup_intent_id) > 64:
        raise CardNotConfirmed("Enter your card first.")
    intent = gateway.retrieve_setup_intent(setup_intent_id)
    if intent.customer != customer:
        raise CardNotConfirmed("That card was not set up on your account.", code="card_not_yours", status=403)
    if intent.status != "succeeded" or not intent.payment_method:
        raise CardNotConfirmed("The card is not confirmed yet (3-D Secure may still be waiting); try again.")
    # An earlier attempt that never got paid (3-D Secure abandoned) is given up before the new one.
    for stale in session.scalars(select(Subscription).where(Subscription.user_id == user.id,
                                                            Subscription.status == "incomplete")):
        if stale.stripe_subscription_id:
            try:
                gateway.cancel_now(stale.stripe_subscription_id)
            except RailDeclined:
                pass  # already gone at Stripe
        stale.status, stale.ended_at, stale.updated_at = "incomplete_expired", clock.now(), clock.now()
    session.flush()
    try:
        gateway.use_payment_method(customer=customer, payment_method=intent.payment_method)
    except RailDeclined as exc:
        raise CardDeclined(f"Your card was declined ({exc.message}). Try another card.") from exc
    now = clock.now()
    sub = Subscription(user_id=user.id, plan_id=plan.id, currency=plan.currency, stripe_customer_id=customer,
                       status="incomplete", created_at=now, updated_at=now)
    session.add(sub)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # a parallel request subscribed first
        raise AlreadySubscribed("You already have premium; your account page shows it.") from exc
    created = gateway.create_subscription(customer=customer, plan=plan.stripe_plan_id,
                                          idempotency_key=f"ninety-subscription-{sub.id}",
                                          metadata={"ninety_subscription_id": str(sub.id),
                                                    "ninety_user_id": str(user.id)})
    sub.stripe_subscription_id = created.id
    if created.status == "active" or created.payment_status == "succeeded":
        session.flush()
        return SubscribeResult(sub, "active")
    if created.payment_status == "requires_action":
        session.flush()
        return SubscribeResult(sub, "requires_action", created.client_secret)
    # Declined when charged: give the Stripe subscription up; the caller's rollback drops our row.
    try:
        gateway.cancel_now(created.id)
    except RailDeclined:
        pass
    raise CardDeclined("Your card was declined when it was charged. Try another card.")


def abandon(session: Session, gateway, user: User, *, clock: Clock) -> Subscription | None:
    """Give up a subscription still waiting for its first payment (3-D Secure not completed)."""
    sub = session.scalars(select(Subscription).where(Subscription.user_id == user.id,
                                                     Subscription.status == "incomplete")).first()
    if sub is None:
        return None
    if sub.stripe_subscription_id:
        try:
            gateway.cancel_now(sub.stripe_subscription_id)
        except RailDeclined:
            pass
    sub.status, sub.ended_at, sub.updated_at = "incomplete_expired", clock.now(), clock.now()
    session.flush()
    return sub


def cancel_at_period_end(session: Session, gateway, user: User, subscription_id: int, *, clock: Clock,
                         cancel: bool = True) -> Subscription:
    """The subscriber stops the renewal (premium lasts to the end of the paid period); `cancel=False` resumes."""
    sub = get_subscription(session, subscription_id, user_id=user.id)
    if sub.status not in ("active", "past_due") or not sub.stripe_subscription_id:
        raise NotCancellable("Only a running subscription can be cancelled.")
    result = gateway.cancel_at_period_end(sub.stripe_subscription_id, cancel)
    sub.cancel_at_period_end = result.cancel_at_period_end
    sub.canceled_at = clock.now() if cancel else None
    sub.canceled_by = user.id if cancel else None
    sub.updated_at = clock.now()
    session.flush()
    return sub


def cancel_now_with_refund(session: Session, gateway, subscription_id: int, *, by: User, clock: Clock,
                           reason: str = "") -> Refund | None:
    """Finance ends a subscription at once and refunds the unused part of the paid period, pro rata (whole
    minor units, rounded down). Returns the refund (None when nothing was left to refund)."""
    sub = get_subscription(session, subscription_id)
    if sub.status not in ("active", "past_due") or not sub.stripe_subscription_id:
        raise NotCancellable("Only a running subscription can be cancelled.")
    now = clock.now()
    latest = session.scalars(select(Invoice).where(Invoice.subscription_id == sub.id, Invoice.status == "paid")
                             .order_by(Invoice.period_end.desc().nulls_last(), Invoice.id.desc()).limit(1)).first()
    gateway.cancel_now(sub.stripe_subscription_id)
    refund = None
    if latest is not None and latest.period_start and latest.period_end and latest.period_end > now:
        whole_us = (latest.period_end - latest.period_start) // timedelta(microseconds=1)
        unused_us = (latest.period_end - max(now, latest.period_start)) // timedelta(microseconds=1)
        unit = Money.from_minor(1, latest.currency).micros
        prorata = (latest.gross_micros // unit) * unused_us // whole_us * unit if whole_us > 0 else 0
        amount = min(latest.gross_micros - latest.refunded_micros, prorata)
        if amount > 0:
            refund = refund_invoice(session, gateway, latest.id, amount, by=by, clock=clock,
                                    reason=reason or "Immediate cancellation: the unused part of the period")
    sub.status = "canceled"
    sub.ended_at = sub.canceled_at = now
    sub.canceled_by = by.id
    sub.current_period_end = min(sub.current_period_end or now, now)
    sub.cancel_at_period_end = False
    sub.updated_at = now
    session.flush()
    return refund


# --- refunds --------------------------------------------------------------------------------------------
def refund_invoice(session: Session, gateway, invoice_id: int, amount_micros: int | None, *, by: User, clock: Clock,
                   reason: str = "") -> Refund:
    """Refund (part of) a paid invoice at Stripe and book it: reversed from the pool while its month is open,
    recouped from the payees that subscriber's pool paid once it has closed."""
    invoice = session.get(Invoice, invoice_id, with_for_update=True) if 1 <= invoice_id <= 2**31 - 1 else None
    if invoice is None:
        raise SubscriptionNotFound("There is no such invoice.", code="invoice_not_found")
    if invoice.status != "paid" or invoice.gross_micros <= 0 or not invoice.stripe_payment_intent:
        raise InvoiceNotRefundable("Only a paid invoice can be refunded; this one was not paid.")
    left = invoice.gross_micros - invoice.refunded_micros
    amount = left if amount_micros is None else int(amount_micros)
    if amount <= 0:
        raise RefundTooLarge("A refund must be above zero.", code="non_positive_amount")
    if amount > left:
        raise RefundTooLarge(f"Only {Money(left, invoice.currency)} of this invoice is left to refund.")
    minor = chargeable_minor_units(Money(amount, invoice.currency))
    number = session.scalar(select(func.count()).select_from(Refund).where(Refund.invoice_id == invoice.id)) + 1
    stripe_refund = gateway.refund(payment_intent=invoice.stripe_payment_intent, amount_minor=minor,
                                   idempotency_key=f"ninety-subscription-refund-{invoice.id}-{number}")
    sub = session.get(Subscription, invoice.subscription_id)
    reversed_pool = session.scalar(select(func.coalesce(func.sum(Refund.pool_micros), 0))
                                   .where(Refund.invoice_id == invoice.id))
    # The pool's part of the refund in proportion to gross (the platform bears the fee Stripe keeps).
    pool_part = min(allocate(amount, [invoice.pool_micros, invoice.gross_micros - invoice.pool_micros])[0],
                    invoice.pool_micros - reversed_pool)
    now = clock.now()
    closed = ledger.is_period_closed(session, invoice.pool_period)
    postings = [ledger.Posting(STRIPE, "credit", amount, invoice.currency, ref=f"invoice:{invoice.stripe_invoice_id}")]
    if pool_part:
        if closed:
            postings += _recoup_postings(session, sub.user_id, invoice.currency, invoice.pool_period, pool_part)
        else:
            postings.append(ledger.Posting(subscriber_pool(invoice.pool_period), "debit", pool_part, invoice.currency,
                                           ref=subscriber_ref(sub.user_id)))
    if amount - pool_part:
        postings.append(ledger.Posting(INCOME_SUBSCRIPTIONS, "debit", amount - pool_part, invoice.currency))
    entry_id = ledger.post(session, ledger.Entry(
        idempotency_key=f"subscription-refund:{stripe_refund.id}", effective_at=now,
        description=f"Premium refund of invoice {invoice.stripe_invoice_id} ({Money(amount, invoice.currency)})",
        postings=postings, metadata={"event": "subscription_refund", "invoice": invoice.stripe_invoice_id,
                                     "subscriber": sub.user_id, "recouped": closed}))
    invoice.refunded_micros += amount
    refund = Refund(invoice_id=invoice.id, stripe_refund_id=stripe_refund.id, amount_micros=amount,
                    pool_micros=pool_part, recouped=closed, reason=(reason or "Refund by finance")[:300],
                    entry_id=entry_id, created_by=by.id, created_at=now)
    session.add(refund)
    session.flush()
    return refund


def _recoup_postings(session: Session, user_id: int, currency: str, period: str, amount: int,
                     depth: int = 0) -> list[ledger.Posting]:
    """Debits taking `amount` back from where that subscriber's pool of `period` went at its close."""
    shares = session.execute(select(SubscriberPoolShare.kind, SubscriberPoolShare.payee_id,
                                    SubscriberPoolShare.track_id, SubscriberPoolShare.amount_micros)
                             .where(SubscriberPoolShare.period == period, SubscriberPoolShare.subscriber_id == user_id,
                                    SubscriberPoolShare.currency == currency, SubscriberPoolShare.amount_micros > 0)
                             .order_by(SubscriberPoolShare.position)).all()
    if not shares:  # the month closed before this pool held anything: the platform's unattributed income bears it
        return [ledger.Posting(INCOME_UNATTRIBUTED, "debit", amount, currency, ref=f"period:{period}")]
    postings = []
    for (kind, payee_id, track_id, _), part in zip(shares, allocate(amount, [s[3] for s in shares]), strict=True):
        if not part:
            continue
        if kind == "track":
            postings.append(ledger.Posting(payee_payable(payee_id), "debit", part, currency, ref=f"track:{track_id}"))
        elif kind == "unattributed":
            postings.append(ledger.Posting(INCOME_UNATTRIBUTED, "debit", part, currency, ref=f"period:{period}"))
        else:
            following = period_of(datetime.strptime(period, "%Y-%m").replace(tzinfo=UTC) + timedelta(days=32))
            if ledger.is_period_closed(session, following) and depth < 12:
                postings += _recoup_postings(session, user_id, currency, following, part, depth + 1)
            else:
                postings.append(ledger.Posting(subscriber_pool(following), "debit", part, currency,
                                               ref=subscriber_ref(user_id)))
    return postings


# --- webhooks ---------------------------------------------------------------------------------------------
def _ts(value) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


def _invoice_subscription_id(invoice: dict) -> str | None:
    sub = invoice.get("subscription")
    if isinstance(sub, dict):
        sub = sub.get("id")
    if not sub:
        parent = invoice.get("parent") or {}
        sub = (parent.get("subscription_details") or {}).get("subscription")
    return str(sub) if sub else None


def _invoice_period(invoice: dict) -> tuple[datetime | None, datetime | None]:
    lines = ((invoice.get("lines") or {}).get("data") or [])
    for line in lines:
        period = line.get("period") or {}
        if period.get("end"):
            return _ts(period.get("start")), _ts(period.get("end"))
    return _ts(invoice.get("period_start")), _ts(invoice.get("period_end"))


def _intent_id(invoice: dict) -> str | None:
    intent = invoice.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    return str(intent) if intent else None


def _subscription_for(session: Session, stripe_subscription_id: str | None) -> Subscription | None:
    if not stripe_subscription_id:
        return None
    return session.scalars(select(Subscription).where(Subscription.stripe_subscription_id == stripe_subscription_id)
                           .with_for_update()).one_or_none()


def _invoice_row(session: Session, sub: Subscription, payload: dict, now: datetime) -> Invoice:
    row = session.scalars(select(Invoice).where(Invoice.stripe_invoice_id == payload["id"])
                          .with_for_update()).one_or_none()
    if row is None:
        start, end = _invoice_period(payload)
        row = Invoice(subscription_id=sub.id, stripe_invoice_id=str(payload["id"])[:64], status="open",
                      currency=str(payload.get("currency") or sub.currency).upper(), period_start=start,
                      period_end=end, created_at=now, attempts=0, gross_micros=0, fee_micros=0, pool_micros=0,
                      refunded_micros=0)
        session.add(row)
        session.flush()
    return row


def apply_invoice_paid(session: Session, stripe, payload: dict, *, clock: Clock) -> str:
    """`invoice.payment_succeeded`: book the money once (per invoice) and extend the paid period."""
    sub = _subscription_for(session, _invoice_subscription_id(payload))
    if sub is None:
        return "ignored"
    now = clock.now()
    invoice = _invoice_row(session, sub, payload, now)
    if invoice.status == "paid":
        return "duplicate"
    gross_minor = int(payload.get("amount_paid") or 0)
    currency = invoice.currency
    gross = Money.from_minor(gross_minor, currency).micros
    intent = _intent_id(payload)
    fee = 0
    if gross and intent:
        fee = Money.from_minor(int(stripe.retrieve_payment_intent(intent).fee_minor or 0), currency).micros
    net = gross - fee
    pool = share_ceil(net, 9, 10) if net > 0 else 0
    invoice.status, invoice.paid_at, invoice.stripe_payment_intent = "paid", now, intent
    invoice.gross_micros, invoice.fee_micros, invoice.pool_micros = gross, fee, pool
    invoice.pool_period = period_of(now)
    invoice.attempts += 1
    if gross:
        postings = [ledger.Posting(STRIPE, "debit", net, currency, ref=f"invoice:{invoice.stripe_invoice_id}")] \
            if net else []
        if fee:
            postings.append(ledger.Posting(PROCESSING_FEES, "debit", fee, currency))
        if pool:
            postings.append(ledger.Posting(subscriber_pool(invoice.pool_period), "credit", pool, currency,
                                           ref=subscriber_ref(sub.user_id)))
        if gross - pool:  # the platform's 10% of net, plus the fee it pays out of it (Dr processing-fees)
            postings.append(ledger.Posting(INCOME_SUBSCRIPTIONS, "credit", gross - pool, currency))
        invoice.entry_id = ledger.post(session, ledger.Entry(
            idempotency_key=f"subscription-invoice:{invoice.stripe_invoice_id}", effective_at=now,
            description=f"Premium invoice {invoice.stripe_invoice_id} ({Money(gross, currency)})",
            postings=postings, metadata={"event": "subscription_invoice", "invoice": invoice.stripe_invoice_id,
                                         "subscriber": sub.user_id, "period": invoice.pool_period}))
    start, end = invoice.period_start, invoice.period_end
    if end is not None and (sub.current_period_end is None or end > sub.current_period_end):
        if sub.status != "canceled" or sub.ended_at is None or sub.ended_at >= end:
            sub.current_period_start, sub.current_period_end = start, end
    if sub.status in ("incomplete", "past_due"):
        sub.status = "active"
    if sub.status == "active":
        sub.past_due_since = sub.grace_until = None
    sub.updated_at = now
    session.flush()
    return "invoice_paid"


def apply_invoice_failed(session: Session, payload: dict, *, clock: Clock) -> str:
    """`invoice.payment_failed`: a renewal that fails puts the subscription past due, with premium kept for
    the plan's grace period from the first failure; a failure after the invoice was paid changes nothing."""
    sub = _subscription_for(session, _invoice_subscription_id(payload))
    if sub is None:
        return "ignored"
    now = clock.now()
    invoice = _invoice_row(session, sub, payload, now)
    if invoice.status == "paid":
        return "stale"
    invoice.status, invoice.failed_at = "failed", now
    invoice.attempts += 1
    covered = (sub.current_period_end is not None and invoice.period_end is not None
               and invoice.period_end <= sub.current_period_end)
    if sub.status == "active" and sub.current_period_end is not None and not covered:
        plan = session.get(Plan, sub.plan_id)
        sub.status = "past_due"
        sub.past_due_since = now
        sub.grace_until = max(now, sub.current_period_end) + timedelta(days=plan.grace_days)
    elif sub.status == "past_due" and sub.grace_until is None:  # pragma: no cover - set with the status
        sub.grace_until = now
    sub.updated_at = now
    session.flush()
    return "invoice_failed"


def apply_subscription_deleted(session: Session, payload: dict, *, clock: Clock) -> str:
    """`customer.subscription.deleted`: the subscription is over (its paid period still counts)."""
    sub = _subscription_for(session, str(payload.get("id") or ""))
    if sub is None:
        return "ignored"
    if sub.status in ("canceled", "incomplete_expired"):
        return "duplicate"
    now = clock.now()
    sub.status = "incomplete_expired" if sub.status == "incomplete" else "canceled"
    sub.ended_at = _ts(payload.get("ended_at")) or now
    if sub.ended_at > now:
        sub.ended_at = now
    sub.grace_until = None
    sub.updated_at = now
    session.flush()
    return "subscription_deleted"


def apply_subscription_updated(session: Session, payload: dict, *, clock: Clock) -> str:
    """`customer.subscription.updated`: follows the cancel-at-period-end flag (set here or on Stripe's side)."""
    sub = _subscription_for(session, str(payload.get("id") or ""))
    if sub is None or sub.status not in ("active", "past_due"):
        return "ignored"
    flag = bool(payload.get("cancel_at_period_end"))
    if flag != sub.cancel_at_period_end:
        sub.cancel_at_period_end = flag
        sub.updated_at = clock.now()
        session.flush()
    return "subscription_updated"


def _handler(apply, needs_stripe: bool = False):
    def handle(session: Session, ctx, event: dict) -> str:
        payload = ((event.get("data") or {}).get("object")) or {}
        if needs_stripe:
            return apply(session, ctx.stripe, payload, clock=ctx.clock)
        return apply(session, payload, clock=ctx.clock)

    handle.__name__ = f"handle_{apply.__name__}"
    return handle


WEBHOOK_HANDLERS = {
    "invoice.payment_succeeded": _handler(apply_invoice_paid, needs_stripe=True),
    "invoice.paid": _handler(apply_invoice_paid, needs_stripe=True),
    "invoice.payment_failed": _handler(apply_invoice_failed),
    "customer.subscription.deleted": _handler(apply_subscription_deleted),
    "customer.subscription.updated": _handler(apply_subscription_updated),
}


for _type, _handle in WEBHOOK_HANDLERS.items():
    webhooks.register(_type, _handle)
