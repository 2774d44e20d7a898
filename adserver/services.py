"""Ad-server operations: advertisers, campaigns, creatives, review, funding, decisions, beacons and reports.

Services are functions over a session (and Redis where hot state lives) and never commit: the caller owns
the transaction (DESIGN.md). What they change in Redis because of a database change (a funding's spendable
credit, the campaign book's version) is queued with `core.after_commit` and happens only once the caller's
commit lands, so a rolled-back change never reaches Redis.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from adserver import book as campaign_book
from adserver import keys, media
from adserver.beacons import (
    BeaconResult,
    Limits,
    Visitor,
    impression_seen_at,
    record_click,
    record_impression,
    release_held,
)
from adserver.budgets import credit_available, funding_seed, reconcile, seed_budgets
from adserver.decisions import Placement, decide
from adserver.errors import AdError, CampaignInvalid, CreativeInvalid, NotAllowed, NotFoundError
from adserver.models import (
    CAMPAIGN_STATUSES,
    MODES,
    PACINGS,
    SLOTS,
    Advertiser,
    AdvertiserMember,
    Campaign,
    Creative,
)
from adserver.signing import Decision, verify
from core.after_commit import after_commit
from core.money import check_currency

__all__ = [
    "BeaconResult", "Decision", "Limits", "Placement", "Visitor", "create_advertiser", "create_campaign",
    "create_creative", "decide", "fund", "impression_seen_at", "reconcile", "record_click", "record_impression",
    "report", "review_creative", "set_campaign_status", "verify_decision", "campaign_limits",
    "settle_held_impression",
]


def verify_decision(token: str, *, secret: str, clock) -> Decision:
    return verify(token, secret, now_s=clock.now().timestamp())


# --- advertisers ------------------------------------------------------------------------------------
def create_advertiser(session: Session, *, name: str, currency: str, member_user_ids=()) -> Advertiser:
    name = (name or "").strip()
    if not 1 <= len(name) <= 120:
        raise AdError("Give the advertiser a name of up to 120 characters.", code="invalid_name", status=422)
    advertiser = Advertiser(name=name, currency=check_currency(currency))
    advertiser.members = [AdvertiserMember(user_id=uid) for uid in member_user_ids]
    session.add(advertiser)
    session.flush()
    return advertiser


def advertisers_of(session: Session, user_id: int) -> list[Advertiser]:
    return list(session.scalars(select(Advertiser).join(AdvertiserMember)
                                .where(AdvertiserMember.user_id == user_id).order_by(Advertiser.id)))


def get_advertiser(session: Session, advertiser_id: int, *, user_id: int | None = None,
                   is_admin: bool = False) -> Advertiser:
    advertiser = session.get(Advertiser, advertiser_id)
    if advertiser is None:
        raise NotFoundError("No such advertiser.", code="advertiser_not_found")
    if not is_admin and user_id not in {m.user_id for m in advertiser.members}:
        raise NotAllowed("You are not a member of that advertiser.", code="not_a_member")
    return advertiser


def fund(session: Session, redis, *, advertiser_id: int, amount_micros: int, currency: str, clock,
         idempotency_key: str, note: str = "", paid_by: list | None = None) -> int:
    """Credit an advertiser's prepaid balance with a ledger entry: money received by bank transfer (Dr
    assets:bank), or by card when `paid_by` gives the debits (sales' top-up: Dr assets:stripe net, Dr fees).

    The spendable balance in Redis rises only after the caller commits (a rolled-back funding credits
    nothing); its seed, should Redis have none, is read now, inside the transaction that holds the entry."""
    from ledger.accounts import BANK, advertiser_prepaid
    from ledger.services import Entry, Posting, post

    advertiser = session.get(Advertiser, advertiser_id)
    if advertiser is None:
        raise NotFoundError("No such advertiser.", code="advertiser_not_found")
    currency = check_currency(currency)
    if currency != advertiser.currency:
        raise AdError(f"This advertiser pays in {advertiser.currency}.", code="currency_mismatch", status=422)
    if amount_micros <= 0:
        raise AdError("Fund a positive amount.", code="invalid_amount", status=422)
    entry_id = post(session, Entry(
        idempotency_key=idempotency_key, effective_at=clock.now(),
        description=f"Prepaid funds for advertiser {advertiser.name}" + (f": {note}" if note else ""),
        postings=[*(paid_by or [Posting(BANK, "debit", amount_micros, currency)]),
                  Posting(advertiser_prepaid(advertiser_id), "credit", amount_micros, currency,
                          ref=f"advertiser:{advertiser_id}")],
        metadata={"event": "advertiser_funding", "advertiser_id": advertiser_id}))
    seed = funding_seed(session, advertiser_id, currency)
    after_commit(session, partial(credit_available, redis, None, advertiser_id, amount_micros, currency,
                                  entry_id=entry_id, seed=seed))
    return entry_id


def _bump_after_commit(session: Session, redis) -> None:
    """Campaigns or creatives changed: tell every process once the change is committed (before, a process
    could reload the old book and keep it under the new version)."""
    after_commit(session, partial(campaign_book.bump, redis))


# --- campaigns ----------------------------------------------------------------------------------------
@dataclass
class CampaignInput:
    name: str
    starts_at: datetime
    ends_at: datetime | None
    total_budget_micros: int
    daily_budget_micros: int
    bid_cpm_micros: int
    pacing: str = "even"
    slots: tuple = ("gate",)
    target_genres: tuple = ()
    target_countries: tuple = ()
    target_modes: tuple = ()
    frequency_cap_per_day: int | None = None
    status: str = "active"


def _check_campaign(data: CampaignInput, floor_cpm_micros: int) -> None:
    def bad(message, code):
        raise CampaignInvalid(message, code=code)

    if not 1 <= len((data.name or "").strip()) <= 120:
        bad("Give the campaign a name of up to 120 characters.", "invalid_name")
    if data.starts_at.tzinfo is None or (data.ends_at is not None and data.ends_at.tzinfo is None):
        bad("Give the dates with a time zone.", "invalid_dates")
    if data.ends_at is not None and data.ends_at <= data.starts_at:
        bad("The campaign must end after it starts.", "bad_dates")
    if data.bid_cpm_micros <= 0:
        bad("The CPM bid must be more than zero.", "zero_bid")
    if data.bid_cpm_micros % 1000:
        bad("A CPM bid has at most three decimal places (a whole micro per impression).", "bid_too_precise")
    if data.bid_cpm_micros < floor_cpm_micros:
        bad(f"The CPM bid is below the platform floor of {floor_cpm_micros / 1_000_000:.2f}.", "bid_below_floor")
    if data.total_budget_micros <= 0 or data.daily_budget_micros <= 0:
        bad("Budgets must be more than zero.", "zero_budget")
    if data.daily_budget_micros > data.total_budget_micros:
        bad("The daily budget cannot exceed the total budget.", "daily_over_total")
    if data.pacing not in PACINGS:
        bad("Pacing is 'even' or 'asap'.", "invalid_pacing")
    if not data.slots or any(s not in SLOTS for s in data.slots):
        bad(f"Choose slots among {', '.join(SLOTS)}.", "invalid_slots")
    if any(m not in MODES for m in data.target_modes):
        bad(f"Listener modes are {', '.join(MODES)}.", "invalid_modes")
    if any(len(c) != 2 or not c.isalpha() for c in data.target_countries):
        bad("Countries are two-letter codes such as DE or US.", "invalid_countries")
    if any(not 1 <= len(g) <= 64 for g in data.target_genres):
        bad("Genres are 1 to 64 characters.", "invalid_genres")
    if data.frequency_cap_per_day is not None and not 1 <= data.frequency_cap_per_day <= 1000:
        bad("A frequency cap is between 1 and 1000 impressions per listener per day.", "invalid_frequency_cap")
    if data.status not in CAMPAIGN_STATUSES:
        bad(f"Status is one of {', '.join(CAMPAIGN_STATUSES)}.", "invalid_status")


def create_campaign(session: Session, redis, advertiser_id: int, data: CampaignInput, *, floor_cpm_micros: int
                    ) -> Campaign:
    advertiser = session.get(Advertiser, advertiser_id)
    if advertiser is None:
        raise NotFoundError("No such advertiser.", code="advertiser_not_found")
    _check_campaign(data, floor_cpm_micros)
    campaign = Campaign(
        advertiser_id=advertiser_id, name=data.name.strip(), status=data.status, starts_at=data.starts_at,
        ends_at=data.ends_at, currency=advertiser.currency, total_budget_micros=data.total_budget_micros,
        daily_budget_micros=data.daily_budget_micros, bid_cpm_micros=data.bid_cpm_micros, pacing=data.pacing,
        slots=list(dict.fromkeys(data.slots)), target_genres=[g.strip().lower() for g in data.target_genres],
        target_countries=[c.upper() for c in data.target_countries], target_modes=list(data.target_modes),
        frequency_cap_per_day=data.frequency_cap_per_day)
    session.add(campaign)
    session.flush()
    _bump_after_commit(session, redis)
    return campaign


def set_campaign_status(session: Session, redis, campaign_id: int, status: str) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFoundError("No such campaign.", code="campaign_not_found")
    if status not in CAMPAIGN_STATUSES:
        raise CampaignInvalid(f"Status is one of {', '.join(CAMPAIGN_STATUSES)}.", code="invalid_status")
    campaign.status = status
    session.flush()
    _bump_after_commit(session, redis)
    return campaign


def campaign_limits(session: Session, redis, campaign_id: int, *, now: datetime) -> dict | None:
    """What the charging script needs about a campaign (from the in-process book when it is there)."""
    book = campaign_book.cached(session) or campaign_book.current(redis, session, now=now)
    snap = book.campaigns.get(campaign_id)
    if snap is not None:
        return {"total_budget_micros": snap.total_budget_micros, "daily_budget_micros": snap.daily_budget_micros,
                "seed": lambda: seed_budgets(redis, session, [snap], now=now)}
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        return None
    return {"total_budget_micros": campaign.total_budget_micros, "daily_budget_micros": campaign.daily_budget_micros,
            "seed": lambda: seed_budgets(redis, session, [campaign], now=now)}


def settle_held_impression(session: Session, redis, token: str, visitor: Visitor, *, secret: str, clock,
                           limits: Limits = Limits()) -> BeaconResult | None:
    """Before a download after an ad: count the ad's impression if it was held back because the listener id
    was newer than the minimum view and is old enough now. None when nothing was held."""
    decision = verify(token, secret, now_s=clock.now().timestamp())
    if not redis.exists(keys.held(decision.id)):
        return None
    return release_held(redis, token, visitor, secret=secret, clock=clock, limits=limits,
                        campaign_limits=campaign_limits(session, redis, decision.campaign_id, now=clock.now()))


# --- creatives ----------------------------------------------------------------------------------------
def _check_click_url(url: str) -> str:
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc or len(url) > 2000 or any(c in url for c in "\r\n\t "):
        raise CreativeInvalid("The click URL must be an http:// or https:// address.", code="invalid_click_url")
    return url


def create_creative(session: Session, redis, campaign_id: int, *, kind: str, name: str, click_url: str,
                    alt_text: str = "", image: bytes | None = None, audio: bytes | None = None, media_root: Path
                    ) -> Creative:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFoundError("No such campaign.", code="campaign_not_found")
    if kind not in ("display", "audio"):
        raise CreativeInvalid("A creative is 'display' or 'audio'.", code="invalid_kind")
    name = (name or "").strip()
    if not 1 <= len(name) <= 120:
        raise CreativeInvalid("Give the creative a name of up to 120 characters.", code="invalid_name")
    creative = Creative(campaign_id=campaign_id, kind=kind, name=name, click_url=_check_click_url(click_url),
                        alt_text=(alt_text or "").strip()[:300], status="pending", review_note="")
    if kind == "display":
        if not image:
            raise CreativeInvalid("A display creative needs an image.", code="image_required")
        if not creative.alt_text:
            raise CreativeInvalid("Describe the image in the alt text, for people who cannot see it.",
                                  code="alt_text_required")
    if kind == "audio":
        if not audio:
            raise CreativeInvalid("An audio creative needs an audio file.", code="audio_required")
        creative.audio_mime, creative.duration_ms = media.inspect_audio(audio)
    if image:
        creative.image_mime = media.image_mime(image)
    if kind == "audio":
        creative.audio_sha256 = media.store(media_root, audio, creative.audio_mime)
    if image:
        creative.image_sha256 = media.store(media_root, image, creative.image_mime)
    session.add(creative)
    session.flush()
    return creative


def review_creative(session: Session, redis, creative_id: int, *, approve: bool, reviewer_id: int, note: str = "",
                    clock) -> Creative:
    creative = session.get(Creative, creative_id)
    if creative is None:
        raise NotFoundError("No such creative.", code="creative_not_found")
    if not approve and not (note or "").strip():
        raise CreativeInvalid("Say why the creative is rejected, so the advertiser can fix it.", code="note_required")
    creative.status = "approved" if approve else "rejected"
    creative.review_note = (note or "").strip()[:500]
    creative.reviewed_by = reviewer_id
    creative.reviewed_at = clock.now()
    session.flush()
    _bump_after_commit(session, redis)
    return creative


# --- reports -----------------------------------------------------------------------------------------
@dataclass
class ReportRow:
    period: str
    impressions: int
    invalid: int
    clicks: int
    spend_micros: int
    unbilled: int = 0

    @property
    def ctr_bp(self) -> int:
        """Click-through rate in basis points (1/100 of a percent)."""
        return self.clicks * 10_000 // self.impressions if self.impressions else 0

    @property
    def ecpm_micros(self) -> int:
        return self.spend_micros * 1000 // self.impressions if self.impressions else 0

    def to_json(self) -> dict:
        return {"period": self.period, "impressions": self.impressions, "invalid": self.invalid,
                "clicks": self.clicks, "ctr_bp": self.ctr_bp, "spend_micros": self.spend_micros,
                "ecpm_micros": self.ecpm_micros}


@dataclass
class Report:
    scope: str
    ident: int
    by: str
    rows: list[ReportRow]
    total: ReportRow
    unique_listeners: int


def report(redis, scope: str, ident: int, *, start: datetime, end: datetime, by: str = "day") -> Report:
    """Delivery of a campaign (scope "campaign") or creative ("creative") between two instants, by hour or
    day, straight from the Redis counters the beacons update (so it is fresh the moment a beacon lands)."""
    if scope not in {"campaign", "creative"} or by not in {"hour", "day"}:
        raise AdError("Report a campaign or creative, by hour or day.", code="invalid_report", status=422)
    if end <= start or end - start > timedelta(days=93):
        raise AdError("A report covers up to 93 days, and must end after it starts.", code="invalid_range",
                      status=422)
    short = "c" if scope == "campaign" else "k"
    hours = []
    at = start.replace(minute=0, second=0, microsecond=0)
    while at < end:
        hours.append(at)
        at += timedelta(hours=1)
    pipe = redis.pipeline(transaction=False)
    for h in hours:
        pipe.hgetall(keys.stats(short, ident, keys.hour(h)))
    buckets: dict[str, ReportRow] = {}
    for h, raw in zip(hours, pipe.execute(), strict=True):
        period = h.strftime("%Y-%m-%dT%H:00Z") if by == "hour" else h.strftime("%Y-%m-%d")
        row = buckets.setdefault(period, ReportRow(period, 0, 0, 0, 0))
        row.impressions += int(raw.get(b"imps", 0))
        row.invalid += int(raw.get(b"invalid", 0))
        row.clicks += int(raw.get(b"clicks", 0))
        row.spend_micros += int(raw.get(b"spend", 0))
        row.unbilled += int(raw.get(b"unbilled", 0))
    rows = list(buckets.values())
    total = ReportRow("total", sum(r.impressions for r in rows), sum(r.invalid for r in rows),
                      sum(r.clicks for r in rows), sum(r.spend_micros for r in rows), sum(r.unbilled for r in rows))
    days = sorted({keys.day(h) for h in hours})
    unique = redis.pfcount(*[keys.uniques(short, ident, d) for d in days]) if days else 0
    return Report(scope, ident, by, rows, total, int(unique))


# --- key mode -------------------------------------------------------------------------------------------
def set_key_mode(redis, listener_id: str, enabled: bool) -> None:
    if enabled:
        redis.sadd(keys.KEY_MODE, listener_id)
    else:
        redis.srem(keys.KEY_MODE, listener_id)


def is_key_mode(redis, listener_id: str) -> bool:
    return bool(redis.sismember(keys.KEY_MODE, listener_id))


def count_no_fill(redis, at: datetime) -> None:
    redis.incr(keys.no_fill(keys.day(at)))
