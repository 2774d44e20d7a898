"""Advertiser top-ups by card: a PaymentIntent for the console's card element; the signed webhook credits the
prepaid balance (sales.fulfilment.sync_topup, through adserver.fund). Flushes, never commits."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from adserver.services import get_advertiser
from core.clock import Clock
from core.money import Money, MoneyError, chargeable_minor_units, minor_unit_micros
from core.users import User
from payments.stripe_client import StripeClient
from sales.errors import InvalidAmount, SalesNotFound
from sales.models import TopUp
from sales.orders import MAX_CHARGE_MINOR, Checkout

MIN_TOPUP_MINOR = 500  # 5.00 in a two-decimal currency; Stripe's own minimums are lower


def start_topup(session: Session, stripe: StripeClient, *, advertiser_id: int, user: User, amount,
                clock: Clock) -> Checkout:
    """A pending top-up of the advertiser's prepaid balance (the user must be a member, or an admin)."""
    advertiser = get_advertiser(session, advertiser_id, user_id=user.id, is_admin=user.has_role("admin"))
    currency = advertiser.currency
    try:
        if not isinstance(amount, str) or len(amount) > 40:
            raise MoneyError("Give the amount as text, like 250.00.")
        money = Money.parse(amount, currency)
        minor = chargeable_minor_units(money)
    except MoneyError as exc:
        code = "too_precise" if exc.code in ("too_precise", "not_chargeable") else "invalid_amount"
        raise InvalidAmount(exc.message, code=code, field="amount") from None
    if money.micros <= 0:
        raise InvalidAmount("A top-up must be more than zero.", code="non_positive_amount", field="amount")
    unit = minor_unit_micros(currency)
    low = MIN_TOPUP_MINOR * unit if unit <= 10_000 else unit * 500  # JPY and friends: 500 units
    if money.micros < low:
        raise InvalidAmount(f"Top up at least {Money(low, currency).format()}.", code="below_minimum", field="amount")
    if minor > MAX_CHARGE_MINOR:
        raise InvalidAmount("That is more than one card payment can be; top up in parts.", code="amount_too_large",
                            field="amount")
    topup = TopUp(advertiser_id=advertiser.id, user_id=user.id, currency=currency, amount_micros=money.micros,
                  status="pending", created_at=clock.now())
    session.add(topup)
    session.flush()
    intent = stripe.create_payment_intent(
        amount_minor=minor, currency=currency, idempotency_key=f"topup:{topup.id}:{uuid.uuid4().hex}",
        metadata={"kind": "topup", "topup_id": str(topup.id), "advertiser_id": str(advertiser.id)})
    topup.payment_intent_id = intent.id
    session.flush()
    return Checkout(topup.id, intent.id, intent.client_secret, intent.status, money, kind="topup")


def get_topup(session: Session, topup_id: int, *, user: User) -> TopUp:
    topup = session.get(TopUp, topup_id) if isinstance(topup_id, int) else None
    if topup is None:
        raise SalesNotFound("There is no such top-up.", code="topup_not_found")
    get_advertiser(session, topup.advertiser_id, user_id=user.id, is_admin=user.has_role("admin"))
    return topup


def confirm_topup(session: Session, stripe: StripeClient, topup_id: int, *, user: User,
                  payment_method: str) -> Checkout:
    """Confirm a pending top-up with a card tokenised in the page; the webhook credits the balance."""
    topup = get_topup(session, topup_id, user=user)
    if topup.status == "paid":
        raise InvalidAmount("This top-up is paid already.", code="topup_paid", status=409)
    if not isinstance(payment_method, str) or not payment_method.startswith(("pm_", "tok_", "card_", "src_")):
        raise InvalidAmount("The card is missing; enter it again.", code="invalid_payment_method",
                            field="payment_method")
    intent = stripe.confirm_payment_intent(topup.payment_intent_id, payment_method=payment_method)
    return Checkout(topup.id, intent.id, intent.client_secret, intent.status,
                    Money(topup.amount_micros, topup.currency), kind="topup")
