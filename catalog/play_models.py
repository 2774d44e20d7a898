"""The listening tables (migration 0011_listening): listening sessions, counted plays, the de-duplication
ids, each listener's plays per track, and (migration 0016) each listener's listening per track and month.

`plays` carries `counted_at` in its primary key so that it can be partitioned by month (issue 14); a play
is de-duplicated by `play_ids`, a plain table keyed by the play id alone.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Identity, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

PLAY_KINDS = ("full", "preview")
COUNT_AFTER_MS = 30_000  # a play counts after 30 s of audio heard (DESIGN.md, "Plays")


class ListeningSession(Base):
    """One player session of a listener: the pre-roll ad plays before its first play."""

    __tablename__ = "listening_sessions"
    __table_args__ = (
        CheckConstraint("heard_ms >= 0", name="heard"),
        Index("ix_listening_sessions_listener_started", "listener_id", "started_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    listener_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    started_at: Mapped[datetime]
    last_heard_at: Mapped[datetime]
    heard_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    ad_decision_id: Mapped[str | None] = mapped_column(String(64))


class Play(Base):
    """A counted play: 30 s or more of one stream heard; `heard_ms` keeps growing while the listener listens."""

    __tablename__ = "plays"
    __table_args__ = (
        CheckConstraint("kind IN ('full', 'preview')", name="kind"),
        CheckConstraint("heard_ms >= 30000", name="heard"),
        Index("ix_plays_track_counted", "track_id", "counted_at"),
        Index("ix_plays_listener_counted", "listener_id", "counted_at"),
        Index("ix_plays_play_id", "play_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    counted_at: Mapped[datetime] = mapped_column(primary_key=True)
    play_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id"))
    listener_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(Integer)
    session_id: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(8))
    started_at: Mapped[datetime]
    heard_ms: Mapped[int] = mapped_column(Integer)


class PlayId(Base):
    """A play id that has counted: the de-duplication of play beacons (one row per play, ever)."""

    __tablename__ = "play_ids"

    play_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    counted_at: Mapped[datetime]


class ListenerTrackPlays(Base):
    """Per listener and track: full streams given (the priced track's allowance) and plays counted."""

    __tablename__ = "listener_track_plays"
    __table_args__ = (
        CheckConstraint("full_streams >= 0 AND counted_plays >= 0", name="counts"),
        Index("ix_listener_track_plays_track", "track_id"),
    )

    listener_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id"), primary_key=True)
    full_streams: Mapped[int] = mapped_column(Integer, default=0)
    counted_plays: Mapped[int] = mapped_column(Integer, default=0)
    last_session_id: Mapped[str | None] = mapped_column(String(32))
    last_played_at: Mapped[datetime | None]


class ListeningTotal(Base):
    """Per UTC month, listener and track: the full plays' heard time and their number (migration 0016),
    kept by the triggers on `plays`, never written by the application; what a subscriber's pool is shared by."""

    __tablename__ = "listening_totals"

    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    listener_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    track_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    heard_ms: Mapped[int] = mapped_column(BigInteger)
    plays: Mapped[int] = mapped_column(Integer)
