"""The catalog's tables: artists and their members, payees, releases, tracks, audio assets, split sheets,
download grants and downloads.

Prices are integer micros plus the release's currency. A track's price columns are an optional override
of its release's. Split sheets are versioned: a new version takes effect at its `effective_at` and older
earnings keep the version they were earned under.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base

PRICE_MODELS = ("free_with_ads", "fixed", "name_your_price")
RELEASE_KINDS = ("single", "ep", "album")
RELEASE_STATUSES = ("draft", "scheduled", "published", "taken_down")
TRACK_STATUSES = ("draft", "published", "taken_down")
GRANT_VIAS = ("ad", "key", "purchase", "preview", "free", "subscriber")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Artist(Base):
    __tablename__ = "artists"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    bio: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(String(200), default="")
    links: Mapped[list] = mapped_column(JSONB, default=list)
    image_sha256: Mapped[str | None] = mapped_column(String(64))
    image_mime: Mapped[str | None] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    # Set while repeated upheld takedown notices suspend uploads and releases (rights.strikes), until reviewed.
    suspended_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    members: Mapped[list[ArtistMember]] = relationship(back_populates="artist", lazy="selectin",
                                                       cascade="all, delete-orphan")
    releases: Mapped[list[Release]] = relationship(back_populates="artist", order_by="Release.id")


class ArtistMember(Base):
    __tablename__ = "artist_members"

    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    artist: Mapped[Artist] = relationship(back_populates="members")


class Payee(Base):
    """Whoever can be paid: an artist (one payee each) or a collaborator invited by email."""

    __tablename__ = "payees"
    __table_args__ = (CheckConstraint("user_id IS NOT NULL OR artist_id IS NOT NULL OR email IS NOT NULL",
                                      name="identified"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    artist_id: Mapped[int | None] = mapped_column(ForeignKey("artists.id"), unique=True)
    invited_by_artist_id: Mapped[int | None] = mapped_column(ForeignKey("artists.id"), index=True)
    accepted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AudioAsset(Base):
    """An inspected audio file, stored once under its SHA-256 (uploads of the same bytes share it)."""

    __tablename__ = "audio_assets"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str] = mapped_column(String(16))
    codec: Mapped[str] = mapped_column(String(32))
    mime: Mapped[str] = mapped_column(String(64))
    extension: Mapped[str] = mapped_column(String(8))
    duration_ms: Mapped[int] = mapped_column(BigInteger)
    bitrate: Mapped[int] = mapped_column(Integer, default=0)
    sample_rate: Mapped[int] = mapped_column(Integer, default=0)
    channels: Mapped[int] = mapped_column(SmallInteger, default=0)
    bits_per_sample: Mapped[int | None] = mapped_column(SmallInteger)
    tags: Mapped[dict] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Release(Base):
    __tablename__ = "releases"
    __table_args__ = (
        UniqueConstraint("artist_id", "slug", name="uq_releases_artist_slug"),
        CheckConstraint(_in("kind", RELEASE_KINDS), name="kind"),
        CheckConstraint(_in("status", RELEASE_STATUSES), name="status"),
        CheckConstraint(_in("price_model", PRICE_MODELS), name="price_model"),
        CheckConstraint("price_micros IS NULL OR price_micros > 0", name="price_positive"),
        CheckConstraint("min_price_micros IS NULL OR min_price_micros > 0", name="min_positive"),
        CheckConstraint("suggested_price_micros IS NULL OR suggested_price_micros >= min_price_micros",
                        name="suggested_over_min"),
        Index("ix_releases_published", "published_at", "id", postgresql_where="status = 'published'"),
        Index("ix_releases_scheduled", "publish_at", postgresql_where="status = 'scheduled'"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id"), index=True)
    slug: Mapped[str] = mapped_column(String(120))
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(8), default="album")
    release_date: Mapped[date | None] = mapped_column(Date)
    genre: Mapped[str] = mapped_column(String(60), default="")
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(60)), default=list)
    description: Mapped[str] = mapped_column(Text, default="")
    cover_sha256: Mapped[str | None] = mapped_column(String(64))
    cover_mime: Mapped[str | None] = mapped_column(String(40))
    upc: Mapped[str | None] = mapped_column(String(14))
    status: Mapped[str] = mapped_column(String(12), default="draft")
    publish_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    currency: Mapped[str] = mapped_column(String(3))
    price_model: Mapped[str] = mapped_column(String(16), default="free_with_ads")
    price_micros: Mapped[int | None] = mapped_column(BigInteger)
    min_price_micros: Mapped[int | None] = mapped_column(BigInteger)
    suggested_price_micros: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    artist: Mapped[Artist] = relationship(back_populates="releases", lazy="joined")
    tracks: Mapped[list[Track]] = relationship(back_populates="release", order_by="(Track.position, Track.id)",
                                               lazy="selectin")


class Track(Base):
    __tablename__ = "tracks"
    __table_args__ = (
        CheckConstraint(_in("status", TRACK_STATUSES), name="status"),
        CheckConstraint("price_model IS NULL OR " + _in("price_model", PRICE_MODELS), name="price_model"),
        CheckConstraint("price_micros IS NULL OR price_micros > 0", name="price_positive"),
        CheckConstraint("min_price_micros IS NULL OR min_price_micros > 0", name="min_positive"),
        CheckConstraint("position > 0", name="position_positive"),
        Index("ix_tracks_search", "search_vector", postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=1)
    title: Mapped[str] = mapped_column(String(300))
    isrc: Mapped[str | None] = mapped_column(String(12))
    explicit: Mapped[bool] = mapped_column(default=False)
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("audio_assets.id"), index=True)
    original_filename: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(12), default="draft")
    price_model: Mapped[str | None] = mapped_column(String(16))
    price_micros: Mapped[int | None] = mapped_column(BigInteger)
    min_price_micros: Mapped[int | None] = mapped_column(BigInteger)
    suggested_price_micros: Mapped[int | None] = mapped_column(BigInteger)
    # The artist's choice that a priced track is only ever heard as its 30-second preview (issue 12).
    previews_only: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Set only while the track is public (its release published, the track not taken down).
    search_vector = mapped_column(TSVECTOR, nullable=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    release: Mapped[Release] = relationship(back_populates="tracks", lazy="joined")
    asset: Mapped[AudioAsset | None] = relationship(lazy="joined")


class SplitSheet(Base):
    """One version of who is paid what share of a track's earnings, from `effective_at` on."""

    __tablename__ = "split_sheets"
    __table_args__ = (
        UniqueConstraint("track_id", "version", name="uq_split_sheets_track_version"),
        Index("ix_split_sheets_track_effective", "track_id", "effective_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id"))
    version: Mapped[int] = mapped_column(Integer)
    effective_at: Mapped[datetime]
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    shares: Mapped[list[SplitShare]] = relationship(back_populates="sheet", lazy="selectin",
                                                    order_by="SplitShare.position",
                                                    cascade="all, delete-orphan")


class SplitShare(Base):
    __tablename__ = "split_shares"
    __table_args__ = (
        CheckConstraint("share_bp > 0 AND share_bp <= 10000", name="share_range"),
        UniqueConstraint("sheet_id", "payee_id", name="uq_split_shares_sheet_payee"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sheet_id: Mapped[int] = mapped_column(ForeignKey("split_sheets.id", ondelete="CASCADE"))
    payee_id: Mapped[int] = mapped_column(ForeignKey("payees.id"), index=True)
    share_bp: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(SmallInteger, default=0)
    role: Mapped[str] = mapped_column(String(60), default="")

    sheet: Mapped[SplitSheet] = relationship(back_populates="shares")
    payee: Mapped[Payee] = relationship(lazy="joined")


class DownloadGrant(Base):
    """A signed, expiring, single-use permission to download one track (the token names this row)."""

    __tablename__ = "download_grants"
    __table_args__ = (CheckConstraint(_in("via", GRANT_VIAS), name="via"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id"), index=True)
    listener_id: Mapped[str] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(10))
    decision_id: Mapped[str | None] = mapped_column(String(64))
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    redeemed_at: Mapped[datetime | None]


class Download(Base):
    """One completed download; key-mode attribution reads `via` and `listener_id` per month."""

    __tablename__ = "downloads"
    __table_args__ = (
        CheckConstraint(_in("via", GRANT_VIAS), name="via"),
        Index("ix_downloads_listener_completed", "listener_id", "completed_at"),
        Index("ix_downloads_track_completed", "track_id", "completed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id"))
    listener_id: Mapped[str] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(10))
    grant_id: Mapped[str | None] = mapped_column(ForeignKey("download_grants.id"), unique=True)
    decision_id: Mapped[str | None] = mapped_column(String(64))
    granted_at: Mapped[datetime]
    completed_at: Mapped[datetime]
