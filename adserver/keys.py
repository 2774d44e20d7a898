"""Redis key names for the ad server's hot state, in one place.

Budgets: `spent` is every micro a campaign was ever charged in Redis; `day:{YYYYMMDD}` what it was charged
that UTC day; an advertiser's `avail` is its prepaid ledger balance less what Redis charged and the flush has
not yet posted. All are seeded from PostgreSQL when missing and reconciled by `ninety ads reconcile`.
"""

from __future__ import annotations

from datetime import datetime

IMPRESSIONS_STREAM = "ads:impressions"
INVALID_STREAM = "ads:invalid"
CONSUMER_GROUP = "flush"
BOOK_VERSION = "ads:book:version"
KEY_MODE = "ads:keymode"


def day(at: datetime) -> str:
    return at.strftime("%Y%m%d")


def hour(at: datetime) -> str:
    return at.strftime("%Y%m%d%H")


def campaign_spent(cid: int) -> str:
    return f"ads:c:{cid}:spent"


def campaign_day(cid: int, yyyymmdd: str) -> str:
    return f"ads:c:{cid}:day:{yyyymmdd}"


def advertiser_avail(aid: int) -> str:
    return f"ads:a:{aid}:avail"


def advertiser_charged(aid: int) -> str:
    return f"ads:a:{aid}:charged"


def advertiser_funded(aid: int, entry_id: int) -> str:
    """Marks a funding entry as added to the advertiser's spendable balance (so a replay adds nothing)."""
    return f"ads:a:{aid}:funded:{entry_id}"


def frequency(cid: int, yyyymmdd: str, listener_id: str) -> str:
    return f"ads:fc:{cid}:{yyyymmdd}:{listener_id}"


def seen(decision_id: str) -> str:
    return f"ads:seen:{decision_id}"


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
    return f"ads:hll:{scope}:{ident}:{yyyymmdd}"


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
