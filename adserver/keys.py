"""Redis key names for the ad server's hot state, in one place.

Budgets: `spent` is every micro a campaign was ever charged in Redis; `day:{YYYYMMDD}` what it was charged
that UTC day; an advertiser's `avail` is its prepaid ledger balance less what Redis charged and the flush has
not yet posted. All are seeded from PostgreSQL when missing and reconciled by `ninety ads reconcile`.

Redis Cluster: every key the charge script touches together shares one hash tag, the advertiser's *shard*
(`{adN}`, N = advertiser id mod SHARDS): its budgets, its campaigns' budgets and frequency counters, the
decision's de-duplication mark, and the shard's impression and invalid-traffic streams. The impression
stream is sharded by advertiser (one stream and consumer group per shard), and the flush workers divide the
shards. SHARDS is fixed: an advertiser's keys never move to another shard, whatever the number of Redis
nodes or flush workers. Report counters, uniques, rate limits and grant marks are single-key state with no
tag, so they spread over the cluster.
"""

from __future__ import annotations

from datetime import datetime

SHARDS = 16
CONSUMER_GROUP = "flush"
BOOK_VERSION = "ads:book:version"
KEY_MODE = "ads:keymode"


def shard_of(advertiser_id: int) -> int:
    return int(advertiser_id) % SHARDS


def _tag(advertiser_id: int) -> str:
    return f"{{ad{shard_of(advertiser_id)}}}"


def impression_stream(shard: int) -> str:
    """The impression stream of one shard (`shard_of(advertiser id)`)."""
    return f"ads:{{ad{shard}}}:impressions"


def invalid_stream(shard: int) -> str:
    """Invalid-traffic records of one shard (beacons with no readable decision go to shard 0)."""
    return f"ads:{{ad{shard}}}:invalid"


def impression_streams() -> list[str]:
    return [impression_stream(s) for s in range(SHARDS)]


def invalid_streams() -> list[str]:
    return [invalid_stream(s) for s in range(SHARDS)]


def shard_of_stream(name: str | bytes) -> int:
    """The shard a stream key belongs to (the number inside its `{adN}` tag)."""
    text = name.decode() if isinstance(name, bytes) else name
    return int(text.split("{ad", 1)[1].split("}", 1)[0])


def day(at: datetime) -> str:
    return at.strftime("%Y%m%d")


def hour(at: datetime) -> str:
    return at.strftime("%Y%m%d%H")


def campaign_spent(cid: int, *, advertiser: int) -> str:
    return f"ads:{_tag(advertiser)}:c:{cid}:spent"


def campaign_day(cid: int, yyyymmdd: str, *, advertiser: int) -> str:
    return f"ads:{_tag(advertiser)}:c:{cid}:day:{yyyymmdd}"


def advertiser_avail(aid: int) -> str:
    return f"ads:{_tag(aid)}:a:{aid}:avail"


def advertiser_charged(aid: int) -> str:
    return f"ads:{_tag(aid)}:a:{aid}:charged"


def advertiser_funded(aid: int, entry_id: int) -> str:
    """Marks a funding entry as added to the advertiser's spendable balance (so a replay adds nothing)."""
    return f"ads:{_tag(aid)}:a:{aid}:funded:{entry_id}"


def frequency(cid: int, yyyymmdd: str, listener_id: str, *, advertiser: int) -> str:
    return f"ads:{_tag(advertiser)}:fc:{cid}:{yyyymmdd}:{listener_id}"


def seen(decision_id: str, *, advertiser: int) -> str:
    """The de-duplication mark of a decision's impression (in its advertiser's shard: the charge sets it)."""
    return f"ads:{_tag(advertiser)}:seen:{decision_id}"


def clicked(decision_id: str) -> str:
    return f"ads:clk:{decision_id}"


def granted(decision_id: str) -> str:
    return f"ads:granted:{decision_id}"


def rate_ip(ip: str, minute: int) -> str:
    return f"ads:rl:ip:{ip}:{minute}"


def rate_listener(listener_id: str, minute: int) -> str:
    return f"ads:rl:l:{listener_id}:{minute}"


def stats(scope: str, ident: int, yyyymmddhh: str) -> str:
    """Hourly counters: imps, invalid, clicks, spend, unbilled. scope: c (campaign), k (creative)."""
    return f"ads:st:{scope}:{ident}:{yyyymmddhh}"


def uniques(scope: str, ident: int, yyyymmdd: str) -> str:
    """Daily unique listeners (HyperLogLog); the days of one campaign or creative share a hash tag, so a
    report's PFCOUNT over many days is one slot."""
    return f"ads:hll:{{{scope}:{ident}}}:{yyyymmdd}"


def no_fill(yyyymmdd: str) -> str:
    return f"ads:nofill:{yyyymmdd}"


def new_listeners_ip(network: str, ip: str, yyyymmddhh: str) -> str:
    """Fresh listener ids admitted from one IP in an hour (invalid-traffic signal; hash tag: the network)."""
    return f"ads:ivt:{{{network}}}:ip:{ip}:{yyyymmddhh}"


def new_listeners_network(network: str, yyyymmddhh: str) -> str:
    """Fresh listener ids admitted from one /24 or /48 in an hour (same hash tag as its IPs' sets)."""
    return f"ads:ivt:{{{network}}}:net:{yyyymmddhh}"


def held(decision_id: str) -> str:
    """An impression held back because its listener id was younger than the decision's minimum view."""
    return f"ads:held:{decision_id}"
