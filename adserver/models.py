"""Ad-server tables: advertisers and their members, campaigns, creatives, and the impression sub-ledger.

Decisions are not rows: they are signed, self-contained tokens (see adserver.decisions). What the money
follows is the impression row, unique by decision id, written by the flush together with its ledger entry.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ARRAY, BigInteger, CheckConstraint, ForeignKey, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base

SLOTS = ("gate", "browse", "player")
MODES = ("gate", "key")
CAMPAIGN_STATUSES = ("draft", "active", "paused", "ended")
PACINGS = ("even", "asap")
CREATIVE_KINDS = ("display", "audio")
REVIEW_STATUSES = ("pending", "approved", "rejected")


class Advertiser(Base):
    __tablename__ = "advertisers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    members: Mapped[list[AdvertiserMember]] = relationship(back_populates="advertiser", lazy="selectin",
                                                           cascade="all, delete-orphan")
    campaigns: Mapped[list[Campaign]] = relationship(back_populates="advertiser", order_by="Campaign.id")


class AdvertiserMember(Base):
    __tablename__ = "advertiser_members"

    advertiser_id: Mapped[int] = mapped_column(ForeignKey("advertisers.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)

    advertiser: Mapped[Advertiser] = relationship(back_populates="members")


class Campaign(Base):
    __tablename__ = "ad_campaigns"
    __table_args__ = (
        CheckConstraint("bid_cpm_micros > 0", name="positive_bid"),
        CheckConstraint("total_budget_micros > 0 AND daily_budget_micros > 0", name="positive_budgets"),
        CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name="dates_in_order"),
        CheckConstraint("status IN ('draft','active','paused','ended')", name="known_status"),
        CheckConstraint("pacing IN ('even','asap')", name="known_pacing"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    advertiser_id: Mapped[int] = mapped_column(ForeignKey("advertisers.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    currency: Mapped[str] = mapped_column(String(3))
    total_budget_micros: Mapped[int] = mapped_column(BigInteger)
    daily_budget_micros: Mapped[int] = mapped_column(BigInteger)
    bid_cpm_micros: Mapped[int] = mapped_column(BigInteger)
    pacing: Mapped[str] = mapped_column(String(8), default="even")
    slots: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    target_genres: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list)
    target_countries: Mapped[list[str]] = mapped_column(ARRAY(String(2)), default=list)
    target_modes: Mapped[list[str]] = mapped_column(ARRAY(String(8)), default=list)
    frequency_cap_per_day: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    advertiser: Mapped[Advertiser] = relationship(back_populates="campaigns")
    creatives: Mapped[list[Creative]] = relationship(back_populates="campaign", order_by="Creative.id",
                                                     lazy="selectin")

    @property
    def price_cap_micros(self) -> int:
        """The bid per impression: a CPM of 2.50 is 2,500 micros per impression."""
        return self.bid_cpm_micros // 1000


class Creative(Base):
    __tablename__ = "ad_creatives"
    __table_args__ = (
        CheckConstraint("kind IN ('display','audio')", name="known_kind"),
        CheckConstraint("status IN ('pending','approved','rejected')", name="known_status"),
        CheckConstraint("click_url ~ '^https?://'", name="http_click_url"),
        CheckConstraint("kind <> 'audio' OR (audio_sha256 IS NOT NULL AND duration_ms > 0)", name="audio_file"),
        CheckConstraint("kind <> 'display' OR image_sha256 IS NOT NULL", name="display_image"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("ad_campaigns.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(120))
    click_url: Mapped[str] = mapped_column(String(2000))
    alt_text: Mapped[str] = mapped_column(String(300), default="")
    image_sha256: Mapped[str | None] = mapped_column(String(64))
    image_mime: Mapped[str | None] = mapped_column(String(32))
    audio_sha256: Mapped[str | None] = mapped_column(String(64))
    audio_mime: Mapped[str | None] = mapped_column(String(32))
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    review_note: Mapped[str] = mapped_column(String(500), default="")
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    campaign: Mapped[Campaign] = relationship(back_populates="creatives")


class Impression(Base):
    """One counted impression: the sub-ledger under the flush's journal entries."""

    __tablename__ = "ad_impressions"
    __table_args__ = (CheckConstraint("price_micros > 0", name="positive_price"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    decision_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    campaign_id: Mapped[int] = mapped_column(Integer, index=True)
    advertiser_id: Mapped[int] = mapped_column(Integer)
    creative_id: Mapped[int] = mapped_column(Integer)
    slot: Mapped[str] = mapped_column(String(16))
    track_id: Mapped[int | None] = mapped_column(Integer, index=True)
    listener_id: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(8))
    price_micros: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    at: Mapped[datetime]
    entry_id: Mapped[int | None] = mapped_column(BigInteger)
    flushed_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Click(Base):
    __tablename__ = "ad_clicks"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    decision_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    campaign_id: Mapped[int] = mapped_column(Integer, index=True)
    creative_id: Mapped[int] = mapped_column(Integer)
    listener_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]


class InvalidTraffic(Base):
    """A beacon that was refused as invalid traffic: recorded and flagged, never charged."""

    __tablename__ = "ad_invalid_traffic"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    decision_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), index=True)
    campaign_id: Mapped[int | None] = mapped_column(Integer, index=True)
    creative_id: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(32))
    listener_id: Mapped[str] = mapped_column(String(64), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(512), default="")
    at: Mapped[datetime]


class DeadLetter(Base):
    """A stream entry the flush could not parse, kept aside with the reason (never dropped silently)."""

    __tablename__ = "ad_dead_letters"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    stream: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(64))
    fields: Mapped[dict] = mapped_column(JSONB)
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(server_default=func.now())
