"""The free-download gate and key mode: who may download a free track, and what pays for it.

A free-with-ads track is downloaded after an ad (the impression counted by the ad server, shown for its
minimum time, one download per decision), in key mode (spending credit earned by counted browse
impressions), or, when no ad fills, once for free and unfunded. Grants are limited per listener and IP.

Services take the session, Redis, the clock and `GateSettings` as arguments and never commit: the caller
(the request) owns the transaction. Each returns a grant token; the app turns it into a download URL.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session

from adserver import keys as ad_keys
from adserver import services as ads
from adserver.errors import AdError
from adserver.ivt import listener_age_s
from catalog.errors import CatalogNotFound, TrackUnavailable
from catalog.services import issue_grant, track_context
from core import ratelimit
from entitlements import credit, keys
from entitlements.credit import KeyCredit
from entitlements.errors import GateConflict, KeyCreditShort, NotEntitled, TooEarly, WrongDecision
from sales.services import owns_track
from sales.subscriptions import is_subscriber

GRANTS_PER_LISTENER_PER_HOUR = 60
GRANTS_PER_IP_PER_HOUR = 300
NO_FILL_TTL_S = 900
MAX_ID = 2**31 - 1

__all__ = [
    "GateSettings", "KeyCredit", "KeyModeStatus", "Offer", "Requester", "browse_ad", "count_impression",
    "grant_after_ad", "grant_owned", "grant_without_ad", "key_mode_status", "open_gate", "place_ad", "set_key_mode",
]


@dataclass(frozen=True)
class GateSettings:
    """What the gate needs from configuration (the app builds it once from its Config)."""

    secret: str
    currency: str
    floor_cpm_micros: int
    decision_ttl_s: int = 900
    min_view_s: float = 5.0
    grant_ttl_s: int = 600
    key_impressions_per_download: int = 3
    beacon_limits: ads.Limits = field(default_factory=ads.Limits)

    def __post_init__(self) -> None:
        if self.key_impressions_per_download < 1:  # zero would make key mode an ad-free bypass again
            raise ValueError("key_impressions_per_download must be at least 1")


@dataclass(frozen=True)
class Requester:
    """Who is asking, as the app saw the request."""

    listener_id: str
    ip: str = ""
    user_agent: str = ""
    country: str | None = None
    headers: Mapping = field(default_factory=dict)

    def visitor(self) -> ads.Visitor:
        return ads.Visitor(ip=self.ip, user_agent=self.user_agent, listener_id=self.listener_id,
                           headers=self.headers)


@dataclass(frozen=True)
class Offer:
    """What the gate offers: "key" (no ad: credit pays), "ad" (show `placement` first), or "no_fill".

    `credit` is the listener's key-mode credit when key mode is on (None otherwise): with too little, the
    gate falls back to the ad and the page says how many ad views key mode needs. `grant` is set when the
    gate was opened with `grant_now` and needs no ad."""

    state: str
    track: dict
    placement: ads.Placement | None = None
    credit: KeyCredit | None = None
    grant: str | None = None


@dataclass(frozen=True)
class KeyModeStatus:
    enabled: bool
    credit: KeyCredit


# --- ads for a request ----------------------------------------------------------------------------------
def _track(session: Session, track_id: int, now=None) -> dict:
    if not isinstance(track_id, int) or not 1 <= track_id <= MAX_ID:
        raise CatalogNotFound("There is no such track.", code="track_not_found")
    return track_context(session, track_id, now=now)


def _place(session: Session, redis, who: Requester, slot: str, *, track: dict | None, mode: str,
           settings: GateSettings, clock) -> ads.Placement | None:
    ctx = {"listener_id": who.listener_id, "mode": mode, "ip": who.ip, "user_agent": who.user_agent,
           "country": who.country}
    if track is not None:
        ctx.update(track_id=track["track_id"], genre=track.get("genre"))
    return ads.decide(redis, session, slot, ctx, secret=settings.secret, clock=clock,
                      floor_cpm_micros=settings.floor_cpm_micros, currency=settings.currency,
                      ttl_s=settings.decision_ttl_s, min_view_s=settings.min_view_s)


def place_ad(session: Session, redis, who: Requester, slot: str, *, track_id: int | None = None,
             mode: str = "gate", settings: GateSettings, clock) -> ads.Placement | None:
    """An ad for this listener in `slot` (about the track, when given); None is no fill."""
    track = _track(session, track_id) if track_id is not None else None
    return _place(session, redis, who, slot, track=track, mode=mode, settings=settings, clock=clock)


def browse_ad(session: Session, redis, who: Requester, *, settings: GateSettings, clock) -> ads.Placement | None:
    """A display ad for a key-mode listener on a browse page (None for everyone else, or no fill)."""
    try:
        if not ads.is_key_mode(redis, who.listener_id):
            return None
        return _place(session, redis, who, "browse", track=None, mode="key", settings=settings, clock=clock)
    except AdError:
        return None


# --- beacons --------------------------------------------------------------------------------------------
def count_impression(session: Session, redis, token: str, who: Requester, *, settings: GateSettings,
                     clock) -> ads.BeaconResult | None:
    """Hand an impression beacon to the ad server; a counted key-mode browse impression earns its listener
    key-mode credit. Forged and expired tokens are recorded as invalid traffic and give None. The outcome is
    for the server only: the client is never told whether a beacon counted."""
    limits_for = None
    try:
        decision = ads.verify_decision(token, secret=settings.secret, clock=clock)
        limits_for = ads.campaign_limits(session, redis, decision.campaign_id, now=clock.now())
    except AdError:
        pass  # record_impression verifies again, records the refusal and raises
    try:
        result = ads.record_impression(redis, token, who.visitor(), secret=settings.secret, clock=clock,
                                       campaign_limits=limits_for, limits=settings.beacon_limits)
    except AdError:
        return None
    d = result.decision
    if result.counted and d is not None and d.slot == "browse" and d.mode == "key":
        credit.earn(redis, d.listener_id, d.id, at=clock.now())
    return result


# --- the gate -------------------------------------------------------------------------------------------
def free_track(session: Session, track_id: int, *, now=None) -> dict:
    """The track's context, if it can be downloaded for free (with an ad or in key mode); with `now`, a
    scheduled release's track is free from its time on (before the background step promotes it)."""
    track = _track(session, track_id, now)
    if track["status"] == "taken_down":
        raise TrackUnavailable("This track has been taken down and cannot be downloaded.", code="track_taken_down")
    if track["status"] != "published":
        raise TrackUnavailable("This track is not published yet.", code="track_not_published")
    if track["price_model"] != "free_with_ads":
        raise GateConflict("This track is sold, not free with ads; buy it from the release page.", code="not_free")
    return track


def key_mode_status(redis, listener_id: str, *, settings: GateSettings, clock) -> KeyModeStatus:
    return KeyModeStatus(enabled=ads.is_key_mode(redis, listener_id),
                         credit=credit.balance(redis, listener_id, needed=settings.key_impressions_per_download,
                                               now=clock.now()))


def set_key_mode(redis, listener_id: str, enabled: bool) -> None:
    ads.set_key_mode(redis, listener_id, enabled)


def open_gate(session: Session, redis, who: Requester, track_id: int, *, settings: GateSettings, clock,
              grant_now: bool = False) -> Offer:
    """What the gate offers this listener for the track. With `grant_now` (a client that downloads at once,
    like the JSON API), a key-mode or no-fill offer comes with its grant already issued."""
    track = free_track(session, track_id, now=clock.now())
    if _is_subscriber(session, who, clock):  # premium: no ad before a free download
        if not grant_now:
            return Offer("subscriber", track)
        _limit_grants(redis, who)
        return Offer("subscriber", track, grant=_issue(session, who, track["track_id"], "subscriber",
                                                       settings=settings, clock=clock))
    balance = None
    if ads.is_key_mode(redis, who.listener_id):
        balance = credit.balance(redis, who.listener_id, needed=settings.key_impressions_per_download,
                                 now=clock.now())
        if balance.enough and not grant_now:
            return Offer("key", track, credit=balance)
        if balance.enough:
            try:
                grant, balance = _grant_in_key_mode(session, redis, who, track, settings=settings, clock=clock)
                return Offer("key", track, credit=balance, grant=grant)
            except KeyCreditShort as exc:  # a parallel download spent it first: the ad pays instead
                balance = KeyCredit(have=exc.details["have"], needed=exc.details["needed"])
    placement = _place(session, redis, who, "gate", track=track, mode="gate", settings=settings, clock=clock)
    if placement is not None:
        return Offer("ad", track, placement=placement, credit=balance)
    ads.count_no_fill(redis, clock.now())
    if grant_now:
        _limit_grants(redis, who)
        return Offer("no_fill", track, credit=balance, grant=_issue(session, who, track["track_id"], "free",
                                                                   settings=settings, clock=clock))
    redis.set(keys.no_fill(who.listener_id, track["track_id"]), 1, ex=NO_FILL_TTL_S)
    return Offer("no_fill", track, credit=balance)


def grant_after_ad(session: Session, redis, who: Requester, token: str, *, settings: GateSettings, clock,
                   track_id: int | None = None) -> str:
    """A grant once the ad's impression was counted and shown for its minimum time (once per decision)."""
    decision = ads.verify_decision(token, secret=settings.secret, clock=clock)
    if decision.slot != "gate" or decision.track_id is None:
        raise WrongDecision("That ad was not shown on a download gate.", code="not_a_gate_decision")
    if track_id is not None and decision.track_id != track_id:
        raise WrongDecision("That ad belongs to another track.", code="wrong_track")
    if decision.listener_id != who.listener_id:
        raise NotEntitled("That ad was shown to someone else.", code="listener_mismatch")
    seen_at = ads.impression_seen_at(redis, decision)
    if seen_at is None:  # held back for a too-new listener id? it counts now if the id is old enough
        seen_at = _settle_held(session, redis, who, token, decision, settings=settings, clock=clock)
    if seen_at is None:
        raise GateConflict("The ad has not been displayed yet; keep the page open while it shows.",
                           code="impression_not_counted")
    remaining = seen_at + timedelta(milliseconds=decision.min_view_ms) - clock.now()
    if remaining > timedelta(0):
        raise TooEarly(f"The ad needs {remaining.total_seconds():.1f} more seconds before the download starts.",
                       retry_after=max(1, int(remaining.total_seconds() + 0.999)))
    free_track(session, decision.track_id, now=clock.now())
    _limit_grants(redis, who)
    used = ad_keys.granted(decision.id)
    if not redis.set(used, 1, nx=True, ex=settings.decision_ttl_s + 86400):
        raise GateConflict("This ad already unlocked a download; open the track's page again for another.",
                           code="decision_used", status=410)
    try:
        return _issue(session, who, decision.track_id, "ad", settings=settings, clock=clock,
                      decision_id=decision.id)
    except Exception:
        redis.delete(used)
        raise


def _settle_held(session: Session, redis, who: Requester, token: str, decision, *, settings: GateSettings,
                 clock):
    """An impression the ad server held back (the listener id was newer than the minimum view) counts once
    the id is old enough: settle it now, or say how long until it can be."""
    settled = ads.settle_held_impression(session, redis, token, who.visitor(), secret=settings.secret, clock=clock,
                                         limits=settings.beacon_limits)
    if settled is not None and settled.status == "held":
        age_s = listener_age_s(decision.listener_id, clock.now()) or 0.0
        wait_s = decision.min_view_ms / 1000 - age_s
        raise TooEarly(f"The ad needs {max(wait_s, 0.1):.1f} more seconds before the download starts.",
                       retry_after=max(1, math.ceil(wait_s)))
    return ads.impression_seen_at(redis, decision)


def grant_without_ad(session: Session, redis, who: Requester, track_id: int, via: str, *,
                     settings: GateSettings, clock) -> str:
    """A key-mode grant (spends credit; KeyCreditShort without enough), a subscriber's (premium: no ad), or the
    single no-fill grant."""
    track = free_track(session, track_id, now=clock.now())
    if via == "key":
        if not ads.is_key_mode(redis, who.listener_id):
            raise NotEntitled("Switch on key mode first, or download through the ad.", code="key_mode_off")
        return _grant_in_key_mode(session, redis, who, track, settings=settings, clock=clock)[0]
    if via == "subscriber":
        if not _is_subscriber(session, who, clock):
            raise NotEntitled("Premium lets you download without an ad; subscribe first.", code="not_a_subscriber")
        _limit_grants(redis, who)
        return _issue(session, who, track_id, "subscriber", settings=settings, clock=clock)
    if via != "free":
        raise ValueError("via is 'key', 'subscriber' or 'free'")
    if not redis.delete(keys.no_fill(who.listener_id, track_id)):
        raise GateConflict("There is an ad for this download now; open the track's download page.",
                           code="ad_available")
    _limit_grants(redis, who)
    return _issue(session, who, track_id, "free", settings=settings, clock=clock)


def grant_owned(session: Session, redis, who: Requester, track_id: int, *, user_id: int, settings: GateSettings,
                clock) -> str:
    """A single-use download grant with no ad for a track the listener owns (bought, or its release bought or
    redeemed with a code): a purchased track is never behind an ad, and can be downloaded again at any time."""
    if not owns_track(session, user_id, track_id):
        raise NotEntitled("This track is not in your collection; buy it first.", code="not_owned")
    _limit_grants(redis, who)
    return _issue(session, who, track_id, "purchase", settings=settings, clock=clock)


def _grant_in_key_mode(session: Session, redis, who: Requester, track: dict, *, settings: GateSettings,
                       clock) -> tuple[str, KeyCredit]:
    needed = settings.key_impressions_per_download
    spent = credit.spend(redis, who.listener_id, needed=needed, now=clock.now())
    if spent is None:
        have = credit.balance(redis, who.listener_id, needed=needed, now=clock.now()).have
        raise KeyCreditShort(
            f"Key mode needs {needed} counted ad views while browsing for each download; you have {have}. "
            "Download this one through the ad, or browse a little first.", have=have, needed=needed)
    try:
        _limit_grants(redis, who)
        grant = _issue(session, who, track["track_id"], "key", settings=settings, clock=clock)
    except Exception:
        credit.refund(redis, spent)
        raise
    return grant, KeyCredit(have=spent.remaining, needed=needed)


def _is_subscriber(session: Session, who: Requester, clock) -> bool:
    """A signed-in listener (`u{user id}`) with premium now (sales.subscriptions.is_subscriber)."""
    lid = who.listener_id or ""
    if not (lid.startswith("u") and lid[1:].isdigit()):
        return False
    return is_subscriber(session, int(lid[1:]), clock.now())


def _limit_grants(redis, who: Requester) -> None:
    message = "You have downloaded a lot in the last hour; try again later."
    ratelimit.enforce(redis, keys.grants_by_listener(who.listener_id), limit=GRANTS_PER_LISTENER_PER_HOUR,
                      window_s=3600, message=message)
    ratelimit.enforce(redis, keys.grants_by_ip(who.ip), limit=GRANTS_PER_IP_PER_HOUR, window_s=3600,
                      message=message)


def _issue(session: Session, who: Requester, track_id: int, via: str, *, settings: GateSettings, clock,
           decision_id: str | None = None) -> str:
    return issue_grant(session, track_id=track_id, listener_id=who.listener_id, via=via, secret=settings.secret,
                       clock=clock, ttl_s=settings.grant_ttl_s, decision_id=decision_id)
