"""Royalties' tables: closed periods, the key-mode pool shares, payee holds, payout batches and items.

Amounts are integer micros plus a currency. Payout items are the unit of work on a rail: the item id is the
rail's idempotency key, so an item is paid at most once however often a run is resumed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base

BATCH_STATUSES = ("draft", "approved", "executing", "done", "cancelled")
ITEM_STATUSES = ("pending", "in_transit", "settled", "reversed")


class RoyaltyPeriod(Base):
    """A month that has been closed: its pools distributed and its ledger period closed."""

    __tablename__ = "royalty_periods"

    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    cutoff: Mapped[datetime]
    closed_at: Mapped[datetime]
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    summary: Mapped[dict] = mapped_column(JSONB, default=dict)


class PoolShare(Base):
    """What one key-mode listener's pool paid one payee for one track in a month (track NULL: unattributed)."""

    __tablename__ = "royalty_pool_shares"
    __table_args__ = (
        CheckConstraint("amount_micros >= 0", name="non_negative"),
        Index("ix_royalty_pool_shares_listener", "period", "listener_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    period: Mapped[str] = mapped_column(String(7))
    currency: Mapped[str] = mapped_column(String(3))
    listener_id: Mapped[str] = mapped_column(String(64))
    track_id: Mapped[int | None] = mapped_column(Integer)
    payee_id: Mapped[int | None] = mapped_column(Integer)
    downloads: Mapped[int] = mapped_column(Integer, default=0)
    amount_micros: Mapped[int] = mapped_column(BigInteger)


class PayeeHold(Base):
    """A payee finance has put on hold: left out of batches (with this reason) until released."""

    __tablename__ = "royalty_payee_holds"
    __table_args__ = (Index("uq_royalty_payee_holds_open", "payee_id", unique=True,
                            postgresql_where=text("released_at IS NULL")),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payee_id: Mapped[int] = mapped_column(ForeignKey("payees.id"), index=True)
    reason: Mapped[str] = mapped_column(String(500))
    placed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    placed_at: Mapped[datetime]
    released_at: Mapped[datetime | None]
    released_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class PayoutBatch(Base):
    __tablename__ = "payout_batches"
    __table_args__ = (
        CheckConstraint("status IN ('draft','approved','executing','done','cancelled')", name="status"),
        CheckConstraint("approved_by IS NULL OR approved_by <> drafted_by", name="four_eyes"),
        Index("uq_payout_batches_period_currency", "period", "currency", unique=True,
              postgresql_where=text("status <> 'cancelled'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(ForeignKey("royalty_periods.period"))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(12), default="draft")
    drafted_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    drafted_at: Mapped[datetime]
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    threshold_micros: Mapped[int] = mapped_column(BigInteger)
    total_micros: Mapped[int] = mapped_column(BigInteger, default=0)
    item_count: Mapped[int] = mapped_column(Integer, default=0)

    items: Mapped[list[PayoutItem]] = relationship(back_populates="batch", order_by="PayoutItem.id",
                                                   lazy="raise_on_sql")


class PayoutItem(Base):
    __tablename__ = "payout_items"
    __table_args__ = (
        CheckConstraint("status IN ('pending','in_transit','settled','reversed')", name="status"),
        CheckConstraint("amount_micros > 0", name="positive"),
        CheckConstraint("rail IN ('stripe_connect','sepa','manual')", name="rail"),
        UniqueConstraint("batch_id", "payee_id", name="uq_payout_items_batch_payee"),
        Index("ix_payout_items_batch_status", "batch_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("payout_batches.id"))
    payee_id: Mapped[int] = mapped_column(ForeignKey("payees.id"), index=True)
    method_id: Mapped[int] = mapped_column(ForeignKey("payout_methods.id"))
    rail: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    balance_micros: Mapped[int] = mapped_column(BigInteger)
    amount_micros: Mapped[int] = mapped_column(BigInteger)
    carried_micros: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    rail_ref: Mapped[str | None] = mapped_column(String(64))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    payout_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    final_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime | None]

    batch: Mapped[PayoutBatch] = relationship(back_populates="items")

    @property
    def idempotency_key(self) -> str:
        return f"ninety-payout-item-{self.id}"


class PayoutExclusion(Base):
    """A payee with a balance who is not in the batch, and why (shown to them and to finance)."""

    __tablename__ = "payout_exclusions"
    __table_args__ = (UniqueConstraint("batch_id", "payee_id", name="uq_payout_exclusions_batch_payee"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("payout_batches.id"))
    payee_id: Mapped[int] = mapped_column(Integer, index=True)
    balance_micros: Mapped[int] = mapped_column(BigInteger)
    reason_code: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(300))


PARKED_STATUSES = ("parked", "retried", "written_off")


class ParkedEntry(Base):
    """A flush entry the ledger refused (an advertiser's prepaid bound, a closed period …), parked with its
    reason so that the rest of the stream flushes on. Its impression rows are stored with no entry
    (`ad_impressions.entry_id` NULL) and listed here by decision id; finance settles it once, by posting the
    entry as it was built (`retried`, same idempotency key) or by writing it off (`written_off`)."""

    __tablename__ = "royalty_parked_entries"
    __table_args__ = (
        CheckConstraint("amount_micros > 0", name="positive_amount"),
        CheckConstraint("status IN ('parked','retried','written_off')", name="known_status"),
        CheckConstraint("(status = 'parked') = (settled_entry_id IS NULL)", name="settled_has_entry"),
        Index("ix_royalty_parked_entries_unsettled", "period", postgresql_where=text("status = 'parked'")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    advertiser_id: Mapped[int] = mapped_column(Integer)
    campaign_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    currency: Mapped[str] = mapped_column(String(3))
    amount_micros: Mapped[int] = mapped_column(BigInteger)  # what the entry debits the advertiser
    period: Mapped[str] = mapped_column(String(7))
    impressions: Mapped[int] = mapped_column(Integer)
    decision_ids: Mapped[list] = mapped_column(ARRAY(UUID(as_uuid=True)))
    entry: Mapped[dict] = mapped_column(JSONB)  # the refused entry, exactly as built (see royalties.suspense)
    reason_code: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    parked_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    status: Mapped[str] = mapped_column(String(12), default="parked", server_default="parked")
    settled_at: Mapped[datetime | None]
    settled_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    settled_entry_id: Mapped[int | None] = mapped_column(BigInteger)
