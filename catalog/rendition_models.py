"""The tables of renditions (files made from an audio asset) and of the background jobs that make them.

A rendition belongs to an audio asset, not a track: the same bytes uploaded twice share their stream
copies, waveform and download transcodes. Each file is stored under its own SHA-256 (storage kind
"renditions"); the row says what it is and what a decoder measured in it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base

JOB_STATUSES = ("queued", "running", "retrying", "done", "failed")


class Rendition(Base):
    __tablename__ = "media_renditions"
    __table_args__ = (UniqueConstraint("asset_id", "kind", name="uq_media_renditions_asset_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("audio_assets.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    mime: Mapped[str] = mapped_column(String(64))
    extension: Mapped[str] = mapped_column(String(8))
    codec: Mapped[str] = mapped_column(String(32), default="")
    bitrate: Mapped[int] = mapped_column(Integer, default=0)
    sample_rate: Mapped[int] = mapped_column(Integer, default=0)
    channels: Mapped[int] = mapped_column(SmallInteger, default=0)
    bits_per_sample: Mapped[int | None] = mapped_column(SmallInteger)
    duration_ms: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class MediaJob(Base):
    """One background job per (asset, purpose): "streams" (stream and preview copies, waveform) or
    "download.<format>". Progress is stored so the studio can show it; a failure keeps its reason."""

    __tablename__ = "media_jobs"
    __table_args__ = (
        UniqueConstraint("asset_id", "purpose", name="uq_media_jobs_asset_purpose"),
        CheckConstraint("status IN ('queued', 'running', 'retrying', 'done', 'failed')", name="status"),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("audio_assets.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(10), default="queued")
    progress: Mapped[int] = mapped_column(SmallInteger, default=0)
    step: Mapped[str] = mapped_column(String(40), default="")
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    error_code: Mapped[str | None] = mapped_column(String(40))
    error_detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]
