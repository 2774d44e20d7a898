"""The impression stream's record: one counted impression as the beacon appends it to the Redis stream and as
the flush reads it back. This module is the record's only owner: `encode` is what the charge script appends
(adserver.beacons), `decode` is what the flush parses (royalties.worker); nothing else spells its fields.

The record is a flat list of field names and values (what XADD takes). The stream is sharded by advertiser
(adserver.keys): `stream_for` names an advertiser's shard, `length` and `entries` read every shard.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import NamedTuple

from adserver import keys
from core.money import check_currency

MAX_PRICE_MICROS = 10**9  # no single impression costs 1,000 units; anything above is a corrupt entry
SLOTS = frozenset(("gate", "browse", "player"))
MODES = frozenset(("gate", "key"))

FIELDS = ("decision_id", "campaign_id", "advertiser_id", "creative_id", "slot", "track_id", "listener_id", "mode",
          "price_micros", "currency", "at")
_FIELDS_BYTES = tuple(name.encode() for name in FIELDS)


class StreamImpression(NamedTuple):
    decision_id: str  # 32 lowercase hex digits (a UUID)
    campaign_id: int
    advertiser_id: int
    creative_id: int
    slot: str
    track_id: int | None
    listener_id: str
    mode: str
    price_micros: int
    currency: str
    at: datetime


def encode(decision, at: datetime) -> list[str]:
    """The stream record for a counted impression of `decision` (an adserver.signing.Decision) at `at`."""
    return ["decision_id", decision.id, "campaign_id", str(decision.campaign_id),
            "advertiser_id", str(decision.advertiser_id), "creative_id", str(decision.creative_id),
            "slot", decision.slot, "track_id", "" if decision.track_id is None else str(decision.track_id),
            "listener_id", decision.listener_id, "mode", decision.mode,
            "price_micros", str(decision.price_micros), "currency", decision.currency, "at", at.isoformat()]


def encode_impression(imp: StreamImpression) -> dict[str, str]:
    """A record as a mapping (for XADD from Python: the demo seed, benchmarks, tests)."""
    return {"decision_id": imp.decision_id, "campaign_id": str(imp.campaign_id),
            "advertiser_id": str(imp.advertiser_id), "creative_id": str(imp.creative_id), "slot": imp.slot,
            "track_id": "" if imp.track_id is None else str(imp.track_id), "listener_id": imp.listener_id,
            "mode": imp.mode, "price_micros": str(imp.price_micros), "currency": imp.currency,
            "at": imp.at.isoformat()}


_HEX = frozenset("0123456789abcdef")


def _hex32(value: str) -> str:
    value = value.lower()
    if len(value) != 32 or not _HEX.issuperset(value):
        raise ValueError(f"decision id {value[:40]!r} is not 32 hex digits")
    return value


@functools.lru_cache(maxsize=64)
def _currency(code: str) -> str:
    return check_currency(code)


@functools.lru_cache(maxsize=4096)
def _timestamp(value: str) -> datetime:
    """Beacons of the same second share their timestamp text; datetimes are immutable, so sharing is safe."""
    return datetime.fromisoformat(value)


def decode(fields: dict) -> StreamImpression:
    """One stream entry as an impression, or ValueError saying what is wrong with it."""
    try:
        try:  # the stream's own shape: bytes keys (a single lookup per field)
            values = list(map(fields.__getitem__, _FIELDS_BYTES))
        except (KeyError, TypeError, AttributeError):
            values = [fields.get(name, fields.get(name.decode())) for name in _FIELDS_BYTES]
            missing = [name for name, value in zip(FIELDS, values, strict=True) if value is None]
            if missing:
                raise ValueError(f"missing field {missing[0]}") from None
        try:  # all bytes: decode them at once. NUL cannot occur in any valid field, so it separates them;
            # a field holding one splits into too many parts, which is refused like any other bad entry.
            texts = b"\x00".join(values).decode().split("\x00")
        except TypeError:
            texts = [v.decode() if isinstance(v, bytes) else str(v) for v in values]
        (decision, campaign, advertiser, creative, slot, track, listener, mode, price, currency, at) = texts
        imp = StreamImpression(
            decision_id=_hex32(decision), campaign_id=int(campaign), advertiser_id=int(advertiser),
            creative_id=int(creative), slot=slot, track_id=int(track) if track else None, listener_id=listener,
            mode=mode, price_micros=int(price), currency=_currency(currency), at=_timestamp(at))
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise ValueError(f"unparseable impression: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a MoneyError for an unknown currency, for instance
        raise ValueError(f"unparseable impression: {exc}") from None
    if imp.at.tzinfo is None:
        raise ValueError("unparseable impression: naive timestamp")
    if not 0 < imp.price_micros <= MAX_PRICE_MICROS:
        raise ValueError(f"unparseable impression: price {imp.price_micros} out of range")
    if imp.mode not in MODES or not imp.listener_id or len(imp.listener_id) > 64 \
            or "\x00" in imp.listener_id or imp.slot not in SLOTS:
        raise ValueError("unparseable impression: bad mode, slot or listener")
    return imp


def arrived_before(fields: dict, cutoff: datetime) -> bool:
    """Whether a record's `at` lies before `cutoff` (False when it has none or it is unreadable)."""
    raw = fields.get(b"at") or fields.get("at")
    if not raw:
        return False
    try:
        at = datetime.fromisoformat(raw.decode() if isinstance(raw, bytes) else raw)
    except ValueError:
        return False
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at < cutoff


def stream_for(advertiser_id: int) -> str:
    """The shard stream an advertiser's impressions are appended to (adserver.keys says why it is sharded)."""
    return keys.impression_stream(keys.shard_of(advertiser_id))


def append(redis, imp: StreamImpression) -> None:
    """XADD a record to its advertiser's shard (the demo seed, benchmarks and tests; beacons use the script)."""
    redis.xadd(stream_for(imp.advertiser_id), encode_impression(imp))


def length(redis) -> int:
    """How many records every shard of the impression stream holds."""
    pipe = redis.pipeline(transaction=False)
    for name in keys.impression_streams():
        pipe.xlen(name)
    return sum(pipe.execute())


def entries(redis, *, invalid: bool = False) -> list[tuple]:
    """Every record of every shard, [(message id, fields)], shard by shard (for reconcile, reports, tests)."""
    found = []
    for name in keys.invalid_streams() if invalid else keys.impression_streams():
        start = "-"
        while True:
            page = redis.xrange(name, min=start, max="+", count=5000)
            found += page
            if len(page) < 5000:
                break
            last = page[-1][0]
            start = "(" + (last.decode() if isinstance(last, bytes) else str(last))
    return found
