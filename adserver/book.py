"""The campaign book: an in-process snapshot of what can serve, so a decision does not query PostgreSQL.

It is rebuilt when the book version in Redis moves (any change to a campaign or creative bumps it) or
after `MAX_AGE_S`, whichever comes first. One book per engine.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from adserver import keys
from adserver.models import Campaign

MAX_AGE_S = 5.0


@dataclass(frozen=True, slots=True)
class CreativeSnap:
    id: int
    kind: str
    click_url: str
    alt_text: str
    image_sha256: str | None
    image_mime: str | None
    audio_sha256: str | None
    audio_mime: str | None
    duration_ms: int | None
    name: str


@dataclass(frozen=True, slots=True)
class CampaignSnap:
    id: int
    advertiser_id: int
    currency: str
    starts_at: datetime
    ends_at: datetime | None
    total_budget_micros: int
    daily_budget_micros: int
    cap_micros: int
    pacing: str
    slots: frozenset
    genres: frozenset
    countries: frozenset
    modes: frozenset
    frequency_cap: int | None
    creatives: tuple[CreativeSnap, ...]


@dataclass
class Book:
    version: bytes | None
    loaded_at: float
    campaigns: dict[int, CampaignSnap] = field(default_factory=dict)
    # (slot, currency) -> campaigns that can fill it, highest bid first (equal bids in random order)
    by_slot: dict[tuple[str, str], list[tuple[CampaignSnap, tuple[CreativeSnap, ...]]]] = field(default_factory=dict)


SLOT_KINDS = {"gate": ("display", "audio"), "browse": ("display",), "player": ("audio",)}


def _index(campaigns: dict[int, CampaignSnap]) -> dict:
    index: dict = {}
    for c in campaigns.values():
        for slot in c.slots:
            creatives = tuple(k for k in c.creatives if k.kind in SLOT_KINDS.get(slot, ()))
            if creatives:
                index.setdefault((slot, c.currency), []).append((c, creatives))
    for entries in index.values():
        random.shuffle(entries)
        entries.sort(key=lambda pair: pair[0].cap_micros, reverse=True)
    return index


_books: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # engine -> Book
_lock = threading.Lock()


def bump(redis) -> None:
    """Tell every process that campaigns or creatives changed (a random value: a flushed Redis never
    brings an old version number back)."""
    redis.set(keys.BOOK_VERSION, uuid.uuid4().hex)


def _load(session: Session) -> dict[int, CampaignSnap]:
    rows = session.scalars(
        select(Campaign).where(Campaign.status == "active").options(selectinload(Campaign.creatives))
    ).all()
    book = {}
    for c in rows:
        creatives = tuple(
            CreativeSnap(k.id, k.kind, k.click_url, k.alt_text, k.image_sha256, k.image_mime, k.audio_sha256,
                         k.audio_mime, k.duration_ms, k.name)
            for k in c.creatives if k.status == "approved")
        book[c.id] = CampaignSnap(
            id=c.id, advertiser_id=c.advertiser_id, currency=c.currency, starts_at=c.starts_at, ends_at=c.ends_at,
            total_budget_micros=c.total_budget_micros, daily_budget_micros=c.daily_budget_micros,
            cap_micros=c.price_cap_micros, pacing=c.pacing, slots=frozenset(c.slots),
            genres=frozenset(g.lower() for g in c.target_genres or ()),
            countries=frozenset(x.upper() for x in c.target_countries or ()),
            modes=frozenset(c.target_modes or ()), frequency_cap=c.frequency_cap_per_day, creatives=creatives)
    return book


def cached(session: Session) -> Book | None:
    """The book this process holds for the session's database, without asking Redis (None if stale)."""
    book = _books.get(session.get_bind())
    if book is not None and time.monotonic() - book.loaded_at < MAX_AGE_S:
        return book
    return None


def current(redis, session: Session, *, now: datetime | None = None, force: bool = False,
            version: bytes | None = None) -> Book:
    """The up-to-date book for this session's database (`version`: the book version just read, if any)."""
    engine = session.get_bind()
    if version is None:
        version = redis.get(keys.BOOK_VERSION)
    if version is None:
        redis.set(keys.BOOK_VERSION, uuid.uuid4().hex, nx=True)
        version = redis.get(keys.BOOK_VERSION)
        force = True
    book = _books.get(engine)
    if (not force and book is not None and book.version == version
            and time.monotonic() - book.loaded_at < MAX_AGE_S):
        return book
    with _lock:
        campaigns = _load(session)
        book = Book(version=version, loaded_at=time.monotonic(), campaigns=campaigns, by_slot=_index(campaigns))
        _books[engine] = book
    from adserver.budgets import seed_budgets

    seed_budgets(redis, session, book.campaigns.values(), now=now)
    return book


def forget() -> None:
    _books.clear()
