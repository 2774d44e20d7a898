"""Choosing an ad: eligibility, even pacing by throttling, a second-price auction with a floor.

`decide` reads the campaign book (in process) and the budgets and frequency caps (one Redis pipeline),
so it never touches PostgreSQL on the hot path.
"""

from __future__ import annotations

import itertools
import random
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from adserver import book as campaign_book
from adserver import keys
from adserver.book import SLOT_KINDS, CampaignSnap, CreativeSnap  # noqa: F401
from adserver.budgets import seconds_into_day
from adserver.errors import AdError
from adserver.models import MODES, SLOTS
from adserver.signing import Decision, sign
from core.redis import is_cluster, mget

# Even pacing lets a campaign run this far ahead of the straight line through the day.
PACING_LEAD_S = 60.0
CHUNK = 12


@dataclass(frozen=True, slots=True)
class Placement:
    """What `decide` returns: the decision, its signed token and the creative to show."""

    decision: Decision
    token: str
    creative: CreativeSnap

    @property
    def id(self) -> str:
        return self.decision.id


def _matches(c: CampaignSnap, context: dict, now) -> bool:
    if now < c.starts_at or (c.ends_at is not None and now >= c.ends_at):
        return False
    if c.genres and (context.get("genre") or "").lower() not in c.genres:
        return False
    if c.countries and (context.get("country") or "").upper() not in c.countries:
        return False
    return not (c.modes and context.get("mode", "gate") not in c.modes)


def _candidates(book, slot: str, context: dict, now, currency: str, floor_micros: int):
    """Campaigns that may fill this slot for this context, highest bid first (lazily)."""
    for c, creatives in book.by_slot.get((slot, currency), ()):
        if c.cap_micros < floor_micros:
            return
        if _matches(c, context, now):
            yield c, creatives


def _is_eligible(c: CampaignSnap, values: list, elapsed_share: float) -> bool:
    spent, day_spent, avail, seen = values
    if spent is None or avail is None:
        return False  # budgets not seeded yet (a fresh Redis): the next book load seeds them
    spent, day_spent, avail = int(spent), int(day_spent or 0), int(avail)
    if (c.total_budget_micros - spent < c.cap_micros or c.daily_budget_micros - day_spent < c.cap_micros
            or avail < c.cap_micros):
        return False
    if c.frequency_cap and int(seen or 0) >= c.frequency_cap:
        return False
    # Even pacing: a campaign ahead of the straight line through the day sits this one out.
    return not (c.pacing == "even" and day_spent >= c.daily_budget_micros * elapsed_share)


def _scan(redis, book, slot, context, now, currency, floor_micros, listener_id, rng) -> tuple[bytes | None, list]:
    """(the book version in Redis, eligible campaigns best bid first, at least the top two when there are).

    Highest bids are checked first, in chunks, so most decisions take one round trip for a few campaigns."""
    today = keys.day(now)
    elapsed_share = min(1.0, (seconds_into_day(now) + PACING_LEAD_S) / 86400)
    candidates = _candidates(book, slot, context, now, currency, floor_micros)
    version = None
    eligible: list = []
    first = True
    while True:
        chunk = list(itertools.islice(candidates, CHUNK))
        if not chunk and not first:
            break
        pipe = redis.pipeline(transaction=False)
        if first:
            pipe.get(keys.BOOK_VERSION)
        names = []
        for c, _ in chunk:
            names += [keys.campaign_spent(c.id, advertiser=c.advertiser_id),
                      keys.campaign_day(c.id, today, advertiser=c.advertiser_id), keys.advertiser_avail(c.advertiser_id),
                      keys.frequency(c.id, today, listener_id, advertiser=c.advertiser_id) if c.frequency_cap
                      else keys.BOOK_VERSION]
        if names and not is_cluster(redis):
            pipe.mget(names)
        replies = pipe.execute()
        if names and is_cluster(redis):  # a cluster answers MGET per slot: one per shard, in parallel
            replies.append(mget(redis, names))
        if first:
            version = replies.pop(0)
            if version != book.version:
                return version, []
            first = False
        values = replies[0] if names else []
        for index, pair in enumerate(chunk):
            if _is_eligible(pair[0], values[index * 4: index * 4 + 4], elapsed_share):
                eligible.append(pair)
        if len(eligible) >= 2 or len(chunk) < CHUNK:
            break
    # equal best bids take turns
    top = [pair for pair in eligible if pair[0].cap_micros == eligible[0][0].cap_micros] if eligible else []
    if len(top) > 1:
        rng.shuffle(top)
        eligible = top + [pair for pair in eligible if pair not in top]
    return version, eligible


def decide(redis, session: Session, slot: str, context: dict, *, secret: str, clock, floor_cpm_micros: int,
           currency: str = "USD", ttl_s: int = 900, min_view_s: float = 5.0,
           rng: random.Random | None = None) -> Placement | None:
    """Pick an ad for `slot` and sign the decision; None is "no fill", a normal outcome."""
    if slot not in SLOTS:
        raise AdError(f"Unknown ad slot {slot!r}; use one of {', '.join(SLOTS)}.", code="unknown_slot", status=422)
    mode = context.get("mode", "gate")
    if mode not in MODES:
        raise AdError(f"Unknown listener mode {mode!r}.", code="unknown_mode", status=422)
    listener_id = str(context.get("listener_id") or "")
    if not listener_id:
        raise AdError("A decision needs the listener's id.", code="listener_required", status=422)
    rng = rng or random
    now = clock.now()
    floor_micros = floor_cpm_micros // 1000
    book = campaign_book.cached(session) or campaign_book.current(redis, session, now=now)
    version, eligible = _scan(redis, book, slot, context, now, currency, floor_micros, listener_id, rng)
    if version != book.version:  # campaigns changed since this process loaded them
        book = campaign_book.current(redis, session, now=now, version=version)
        _, eligible = _scan(redis, book, slot, context, now, currency, floor_micros, listener_id, rng)
    if not eligible:
        return None

    # Second price: the highest bid wins (ties in random order) and pays the next bid, or the floor.
    winner, creatives = eligible[0]
    runner_up = eligible[1][0].cap_micros if len(eligible) > 1 else 0
    price_micros = min(winner.cap_micros, max(runner_up, floor_micros, 1))
    creative = rng.choice(creatives)
    issued = int(now.timestamp())
    min_view_ms = creative.duration_ms if creative.kind == "audio" and creative.duration_ms else int(min_view_s * 1000)
    track_id = context.get("track_id")
    decision = Decision(
        id=uuid.uuid4().hex, campaign_id=winner.id, advertiser_id=winner.advertiser_id, creative_id=creative.id,
        slot=slot, track_id=int(track_id) if track_id not in (None, "") else None, listener_id=listener_id,
        mode=mode, price_micros=price_micros, currency=winner.currency, issued_at=issued,
        expires_at=issued + int(ttl_s), min_view_ms=min_view_ms, kind=creative.kind)
    return Placement(decision=decision, token=sign(decision, secret), creative=creative)
