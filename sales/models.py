"""Sales' tables: orders (a release or a track bought, or a download code redeemed), their refunds and
disputes, the Stripe webhook events already applied, download codes and advertiser top-ups.

Amounts are integer micros in the order's currency. An order's money moves only on signed Stripe webhooks
(sales.fulfilment); each change in the books is one journal entry whose id the row keeps.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

ORDER_KINDS = ("sale", "code")
ORDER_STATUSES = ("pending", "paid", "failed", "canceled")
DISPUTE_STATUSES = ("open", "won", "lost")
TOPUP_STATUSES = ("pending", "paid", "failed")
REFUND_STATUSES = ("booked", "failed", "canceled")  # failed or canceled at Stripe: the entry is mirrored


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Order(Base):
    """A purchase of a whole release (track_id NULL) or of one track; a redeemed code is an order at 0."""

    __tablename__ = "sales_orders"
    __table_args__ = (
        CheckConstraint(_in("kind", ORDER_KINDS), name="kind"),
        CheckConstraint(_in("status", ORDER_STATUSES), name="status"),
        CheckConstraint("amount_micros >= 0 AND fee_micros >= 0 AND refunded_micros >= 0 "
                        "AND disputed_micros >= 0", name="amounts_non_negative"),
        CheckConstraint("refunded_micros + disputed_micros <= amount_micros", name="not_over_refunded"),
        CheckConstraint("kind <> 'sale' OR amount_micros > 0", name="sale_positive"),
        CheckConstraint("kind <> 'code' OR (amount_micros = 0 AND payment_intent_id IS NULL)", name="code_free"),
        Index("ix_sales_orders_buyer", "buyer_user_id", "status"),
        Index("ix_sales_orders_artist", "artist_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), default="sale")
    buyer_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id"))
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"), index=True)
    track_id: Mapped[int | None] = mapped_column(ForeignKey("tracks.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    fee_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    disputed_micros: Mapped[int] = mapped_column(BigInteger, default=0)  # reversed by an open or lost dispute
    status: Mapped[str] = mapped_column(String(10), default="pending")
    payment_intent_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    sale_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    failure_reason: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    paid_at: Mapped[datetime | None]

    @property
    def net_micros(self) -> int:
        return self.amount_micros - self.fee_micros

    @property
    def refundable_micros(self) -> int:
        """What is left to refund: the amount less refunds and what a dispute took back."""
        return self.amount_micros - self.refunded_micros - self.disputed_micros if self.status == "paid" else 0

    @property
    def owned(self) -> bool:
        """The buyer owns it while it is paid and not wholly refunded or lost to a dispute (a code at 0 stays)."""
        if self.status != "paid":
            return False
        return self.kind == "code" or self.refunded_micros + self.disputed_micros < self.amount_micros


class OrderRefund(Base):
    __tablename__ = "sales_refunds"
    __table_args__ = (CheckConstraint("amount_micros > 0", name="positive"),
                      CheckConstraint(_in("status", REFUND_STATUSES), name="status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("sales_orders.id"), index=True)
    stripe_refund_id: Mapped[str] = mapped_column(String(64), unique=True)
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    requested_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(String(300), default="")
    entry_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    status: Mapped[str] = mapped_column(String(8), default="booked", server_default="booked")
    failure_reason: Mapped[str | None] = mapped_column(String(120))  # Stripe's, when it failed there


class Dispute(Base):
    """A chargeback: the disputed amount is reversed when it opens and restored if the dispute is won."""

    __tablename__ = "sales_disputes"
    __table_args__ = (CheckConstraint(_in("status", DISPUTE_STATUSES), name="status"),
                      CheckConstraint("amount_micros > 0 AND fee_micros >= 0", name="amounts"))

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # Stripe's dp_… id
    order_id: Mapped[int] = mapped_column(ForeignKey("sales_orders.id"), unique=True)
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    fee_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(8), default="open")
    entry_id: Mapped[int] = mapped_column(BigInteger)
    restore_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]


class WebhookEvent(Base):
    """A Stripe event applied once: its id is recorded in the same transaction as its effect."""

    __tablename__ = "stripe_webhook_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())


class DownloadCode(Base):
    """A single-use code an artist hands out; redeeming it is an order at 0 for the release."""

    __tablename__ = "sales_download_codes"
    __table_args__ = (
        CheckConstraint("(redeemed_at IS NULL) = (redeemed_by_user_id IS NULL)", name="redeemed_together"),
        Index("ix_sales_download_codes_release", "release_id", "batch"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"))
    code: Mapped[str] = mapped_column(String(32), unique=True)
    batch: Mapped[str] = mapped_column(String(40))
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    redeemed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    redeemed_at: Mapped[datetime | None]
    order_id: Mapped[int | None] = mapped_column(ForeignKey("sales_orders.id"))


class TopUp(Base):
    """An advertiser's prepaid balance bought by card."""

    __tablename__ = "sales_topups"
    __table_args__ = (CheckConstraint(_in("status", TOPUP_STATUSES), name="status"),
                      CheckConstraint("amount_micros > 0 AND fee_micros >= 0", name="amounts"))

    id: Mapped[int] = mapped_column(primary_key=True)
    advertiser_id: Mapped[int] = mapped_column(ForeignKey("advertisers.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    currency: Mapped[str] = mapped_column(String(3))
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    fee_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(8), default="pending")
    payment_intent_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    entry_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    paid_at: Mapped[datetime | None]

