"""Rights' tables: notices and the works they name, one case per affected track, the audit log of every
transition, counter-notices, strikes, appeals, suspensions, flagged claimants, and stay-down fingerprints.

A notice is what a claimant files; it is decided as a whole (actioned or rejected) within the decision
window. Each track it affects (named, or the same audio by SHA-256) gets a case: the unit the artist
counter-notifies, the escrow holds money for, and the timers move. See rights/services.py for the states.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from catalog.models import Track
from core.db import Base

NOTICE_STATUSES = ("received", "actioned", "rejected", "withdrawn")
NOTICE_SOURCES = ("portal", "api", "csv")
CASE_STATES = ("pending", "disabled", "countered", "upheld", "restored", "withdrawn", "rejected")
OPEN_STATES = ("pending", "disabled", "countered")
HOLDING_STATES = ("disabled", "countered")  # escrow: the track's new earnings are held for the case
CASE_VIAS = ("named", "same_audio", "fingerprint")  # fingerprint: matched from a reference recording
OUTCOMES = ("accepted", "not_countered", "court_action", "restored", "withdrawn", "rejected")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Notice(Base):
    __tablename__ = "rights_notices"
    __table_args__ = (
        CheckConstraint(_in("status", NOTICE_STATUSES), name="status"),
        CheckConstraint(_in("source", NOTICE_SOURCES), name="source"),
        UniqueConstraint("claimant_user_id", "idempotency_key", name="uq_rights_notices_idempotency"),
        # The decision queue and `ninety notices overdue` read only undecided notices, by deadline.
        Index("ix_rights_notices_undecided", "deadline_at", postgresql_where=text("decided_at IS NULL")),
        Index("ix_rights_notices_received", "received_at"),
        Index("ix_rights_notices_claimant", "claimant_user_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    claimant_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    claimant_name: Mapped[str] = mapped_column(String(200))
    claimant_email: Mapped[str] = mapped_column(String(320))
    claimant_address: Mapped[str] = mapped_column(Text, default="")
    claimant_phone: Mapped[str] = mapped_column(String(60), default="")
    acting_for: Mapped[str] = mapped_column(String(200), default="")
    statement_good_faith: Mapped[bool] = mapped_column(Boolean)
    statement_accurate: Mapped[bool] = mapped_column(Boolean)
    statement_authorized: Mapped[bool] = mapped_column(Boolean)
    signature: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(8), default="api")
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime]
    deadline_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(10), default="received")
    decision_reason: Mapped[str] = mapped_column(Text, default="")

    works: Mapped[list[NoticeWork]] = relationship(back_populates="notice", order_by="NoticeWork.position",
                                                   lazy="selectin", cascade="all, delete-orphan")
    cases: Mapped[list[Case]] = relationship(back_populates="notice", order_by="Case.id", lazy="selectin",
                                             viewonly=True)


class NoticeWork(Base):
    """One copyrighted work a notice names, with the explanation of why the tracks infringe it."""

    __tablename__ = "rights_notice_works"
    __table_args__ = (UniqueConstraint("notice_id", "position", name="uq_rights_notice_works_position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("rights_notices.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    locations: Mapped[list] = mapped_column(JSONB, default=list)  # what the claimant wrote (ids or URLs)
    reference_sha256: Mapped[str | None] = mapped_column(String(64))

    notice: Mapped[Notice] = relationship(back_populates="works")


class Case(Base):
    """One track affected by a notice: disabled, held, counter-notified, restored or upheld."""

    __tablename__ = "rights_cases"
    __table_args__ = (
        CheckConstraint(_in("state", CASE_STATES), name="state"),
        CheckConstraint(_in("via", CASE_VIAS), name="via"),
        CheckConstraint("outcome_reason IS NULL OR " + _in("outcome_reason", OUTCOMES), name="outcome"),
        # A track is under at most one open case; a second notice is told which one.
        Index("uq_rights_cases_open_track", "track_id", unique=True,
              postgresql_where=text("state IN ('pending', 'disabled', 'countered')")),
        Index("ix_rights_cases_notice", "notice_id"),
        Index("ix_rights_cases_artist", "artist_id", "id"),
        Index("ix_rights_cases_restore", "restore_at", postgresql_where=text("state = 'countered'")),
        Index("ix_rights_cases_counter_deadline", "counter_deadline_at", postgresql_where=text("state = 'disabled'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("rights_notices.id"))
    work_id: Mapped[int] = mapped_column(ForeignKey("rights_notice_works.id"))
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id"), index=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"))
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id"))
    via: Mapped[str] = mapped_column(String(12), default="named")
    whole_release: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(10), default="pending")
    created_at: Mapped[datetime]
    actioned_at: Mapped[datetime | None]
    counter_deadline_at: Mapped[datetime | None]
    countered_at: Mapped[datetime | None]
    restore_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    outcome_reason: Mapped[str | None] = mapped_column(String(16))
    prior_track_status: Mapped[str | None] = mapped_column(String(12))
    prior_release_status: Mapped[str | None] = mapped_column(String(12))
    claimant_payee_id: Mapped[int | None] = mapped_column(ForeignKey("payees.id"))

    notice: Mapped[Notice] = relationship(back_populates="cases", lazy="select")
    work: Mapped[NoticeWork] = relationship(lazy="select")
    track: Mapped[Track] = relationship(lazy="select", viewonly=True)
    counter_notice: Mapped[CounterNotice | None] = relationship(back_populates="case", lazy="selectin",
                                                                uselist=False)

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


class CaseEvent(Base):
    """The audit log: one row per transition of a notice or case (who, when, what, why)."""

    __tablename__ = "rights_case_events"
    __table_args__ = (
        Index("ix_rights_case_events_notice", "notice_id", "id"),
        Index("ix_rights_case_events_case", "case_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("rights_notices.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("rights_cases.id"))
    at: Mapped[datetime]
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_role: Mapped[str] = mapped_column(String(10))
    action: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict] = mapped_column(JSONB, default=dict)


class CounterNotice(Base):
    """The artist's counter-notification (17 U.S.C. §512(g)(3))."""

    __tablename__ = "rights_counter_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("rights_cases.id"), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(Text)
    phone: Mapped[str] = mapped_column(String(60))
    email: Mapped[str] = mapped_column(String(320))
    statement_mistake: Mapped[bool] = mapped_column(Boolean)
    consent_jurisdiction: Mapped[bool] = mapped_column(Boolean)
    explanation: Mapped[str] = mapped_column(Text, default="")
    signature: Mapped[str] = mapped_column(String(200))
    filed_at: Mapped[datetime]

    case: Mapped[Case] = relationship(back_populates="counter_notice")


class Strike(Base):
    """An upheld notice against an artist (one per notice and artist); expires after the strike window."""

    __tablename__ = "rights_strikes"
    __table_args__ = (
        UniqueConstraint("artist_id", "notice_id", name="uq_rights_strikes_artist_notice"),
        Index("ix_rights_strikes_artist", "artist_id", "issued_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id"))
    notice_id: Mapped[int] = mapped_column(ForeignKey("rights_notices.id"))
    case_id: Mapped[int] = mapped_column(ForeignKey("rights_cases.id"))
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    voided_at: Mapped[datetime | None]
    void_reason: Mapped[str] = mapped_column(Text, default="")

    def is_active(self, now: datetime) -> bool:
        return self.voided_at is None and self.expires_at > now


class Appeal(Base):
    """An internal complaint against a strike (DSA Art. 20), decided by a person."""

    __tablename__ = "rights_appeals"
    __table_args__ = (Index("uq_rights_appeals_strike_open", "strike_id", unique=True,
                            postgresql_where=text("decided_at IS NULL")),)

    id: Mapped[int] = mapped_column(primary_key=True)
    strike_id: Mapped[int] = mapped_column(ForeignKey("rights_strikes.id"))
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    grounds: Mapped[str] = mapped_column(Text)
    filed_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    granted: Mapped[bool | None] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text, default="")


class Suspension(Base):
    """Uploads and releases of an artist stopped after repeated strikes, until an admin reviews it."""

    __tablename__ = "rights_suspensions"
    __table_args__ = (Index("uq_rights_suspensions_open", "artist_id", unique=True,
                            postgresql_where=text("reviewed_at IS NULL")),)

    id: Mapped[int] = mapped_column(primary_key=True)
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id"))
    started_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    strike_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer), default=list)
    reviewed_at: Mapped[datetime | None]
    reviewed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    lifted: Mapped[bool | None] = mapped_column(Boolean)
    review_reason: Mapped[str] = mapped_column(Text, default="")


class ClaimantFlag(Base):
    """A claimant whose notices are repeatedly rejected, flagged for review (§512(f) misrepresentation)."""

    __tablename__ = "rights_claimant_flags"
    __table_args__ = (Index("uq_rights_claimant_flags_open", "user_id", unique=True,
                            postgresql_where=text("cleared_at IS NULL")),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    raised_at: Mapped[datetime]
    rejected_count: Mapped[int] = mapped_column(Integer)
    notice_ids: Mapped[list[int]] = mapped_column(ARRAY(Integer), default=list)
    cleared_at: Mapped[datetime | None]
    cleared_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text, default="")


class AudioFingerprint(Base):
    """The Chromaprint fingerprint of stored audio (by SHA-256): what a reference file is matched against."""

    __tablename__ = "rights_audio_fingerprints"
    __table_args__ = (Index("ix_rights_audio_fingerprints_sample", "sample", postgresql_using="gin"),)

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
    codes: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    sample: Mapped[list[int]] = mapped_column(ARRAY(Integer))


class StayDown(Base):
    """Audio that may not come back while its case stands: refused by SHA-256 or by fingerprint."""

    __tablename__ = "rights_staydown"
    __table_args__ = (
        Index("ix_rights_staydown_sha256", "sha256", postgresql_where=text("active")),
        Index("ix_rights_staydown_sample", "sample", postgresql_using="gin", postgresql_where=text("active")),
        UniqueConstraint("case_id", name="uq_rights_staydown_case"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("rights_cases.id"))
    notice_id: Mapped[int] = mapped_column(ForeignKey("rights_notices.id"))
    sha256: Mapped[str] = mapped_column(String(64))
    codes: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    sample: Mapped[list[int]] = mapped_column(ARRAY(Integer), default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
