"""Premium's tables: plans (one monthly plan per currency), Stripe customers, subscriptions, their invoices and
refunds, and the subscriber pool receipts the month close records (what each subscriber's money paid whom).

Amounts are integer micros plus a currency. A subscription's state only moves on signed Stripe webhooks
(sales.subscriptions); the pool receipts are written once, by the close (royalties.subscriber_pool).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

SUBSCRIPTION_STATUSES = ("incomplete", "active", "past_due", "canceled", "incomplete_expired")
LIVE_STATUSES = ("incomplete", "active", "past_due")
INVOICE_STATUSES = ("open", "paid", "failed", "void")
SHARE_KINDS = ("track", "carried", "unattributed")


class Plan(Base):
    __tablename__ = "subscription_plans"
    __table_args__ = (
        CheckConstraint("price_micros > 0", name="positive"),
        CheckConstraint("interval = 'month'", name="monthly"),
        Index("uq_subscription_plans_active_currency", "currency", unique=True, postgresql_where=text("active")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    price_micros: Mapped[int] = mapped_column(BigInteger)
    interval: Mapped[str] = mapped_column(String(8), default="month", server_default="month")
    grace_days: Mapped[int] = mapped_column(Integer, default=7, server_default="7")  # after a failed renewal
    stripe_product_id: Mapped[str] = mapped_column(String(64))
    stripe_plan_id: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


class Customer(Base):
    """The Stripe customer of a Ninety user (created once, reused on resubscription)."""

    __tablename__ = "subscription_customers"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    stripe_customer_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint("status IN ('incomplete','active','past_due','canceled','incomplete_expired')",
                        name="status"),
        Index("uq_subscriptions_live_user", "user_id", unique=True,
              postgresql_where=text("status IN ('incomplete','active','past_due')")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("subscription_plans.id"))
    currency: Mapped[str] = mapped_column(String(3))
    stripe_customer_id: Mapped[str] = mapped_column(String(64))
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    current_period_start: Mapped[datetime | None]
    current_period_end: Mapped[datetime | None]  # paid through
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    past_due_since: Mapped[datetime | None]
    grace_until: Mapped[datetime | None]  # a failed renewal keeps premium until then
    canceled_at: Mapped[datetime | None]
    canceled_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    ended_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES


class Invoice(Base):
    __tablename__ = "subscription_invoices"
    __table_args__ = (
        CheckConstraint("status IN ('open','paid','failed','void')", name="status"),
        CheckConstraint("refunded_micros >= 0 AND refunded_micros <= gross_micros", name="refund_bounded"),
        CheckConstraint("fee_micros >= 0 AND pool_micros >= 0", name="non_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    stripe_invoice_id: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(12))
    currency: Mapped[str] = mapped_column(String(3))
    gross_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    fee_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    pool_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    pool_period: Mapped[str | None] = mapped_column(String(7))
    refunded_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    period_start: Mapped[datetime | None]
    period_end: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    stripe_payment_intent: Mapped[str | None] = mapped_column(String(64))
    entry_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]

    @property
    def net_micros(self) -> int:
        return self.gross_micros - self.fee_micros


class Refund(Base):
    __tablename__ = "subscription_refunds"
    __table_args__ = (CheckConstraint("amount_micros > 0 AND pool_micros >= 0 AND pool_micros <= amount_micros",
                                      name="amounts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("subscription_invoices.id"), index=True)
    stripe_refund_id: Mapped[str] = mapped_column(String(64), unique=True)
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    pool_micros: Mapped[int] = mapped_column(BigInteger)  # the subscriber pool's part of the refund
    recouped: Mapped[bool] = mapped_column(Boolean)  # True: the month had closed, artists' balances bear it
    reason: Mapped[str] = mapped_column(String(300))
    entry_id: Mapped[int | None] = mapped_column(BigInteger)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]


class SubscriberPoolReceipt(Base):
    """What one subscriber's pool did at one month's close (migration 0018): paid the tracks that subscriber
    played (`track`: the parts as parallel arrays, one element per track and payee), moved to the next month
    because nothing was played (`carried`, with the run of empty months), or went to income:unattributed after
    the third empty month (`unattributed`). One row per subscriber, month and currency."""

    __tablename__ = "subscriber_pool_receipts"
    __table_args__ = (
        CheckConstraint("kind IN ('track','carried','unattributed')", name="kind"),
        CheckConstraint("amount_micros > 0", name="positive"),
    )

    subscriber_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    empty_months: Mapped[int] = mapped_column(SmallInteger, default=0)
    amount_micros: Mapped[int] = mapped_column(BigInteger)  # what the pool held at the close
    track_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer), default=list)
    payee_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer), default=list)
    listened_ms: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), default=list)  # the track's counted listening
    held: Mapped[list[bool]] = mapped_column(ARRAY(Boolean), default=list)
    amounts: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), default=list)


class SubscriberPoolPayee(Base):
    """What subscribers' pools paid one payee for one track at one month's close, and whose pools they were."""

    __tablename__ = "subscriber_pool_payees"

    payee_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    track_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    subscriber_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer))


class SubscriberPoolShare(Base):
    """One part of a receipt (the view `subscriber_pool_shares`, migration 0018, unnests the receipts): a track
    and payee with its amount, or a receipt's carried or unattributed pool. Read-only."""

    __tablename__ = "subscriber_pool_shares"
    __table_args__ = {"info": {"is_view": True}}

    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)  # the part's place in the receipt, from 1
    kind: Mapped[str] = mapped_column(String(12))
    track_id: Mapped[int | None] = mapped_column(Integer)
    payee_id: Mapped[int | None] = mapped_column(Integer)
    listened_ms: Mapped[int] = mapped_column(BigInteger)  # counted listening (downloads: whole track)
    empty_months: Mapped[int] = mapped_column(SmallInteger)
    held: Mapped[bool] = mapped_column(Boolean)
    amount_micros: Mapped[int] = mapped_column(BigInteger)
