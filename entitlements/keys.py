"""Redis key names for entitlements, in one place.

Each listener's keys share the hash tag `{listener}`, so a script may touch them together on Redis Cluster.
The decision-used mark of the gate is the ad server's (`adserver.keys.granted`).
"""

from __future__ import annotations


def key_credit(listener_id: str) -> str:
    """Sorted set: counted browse impressions (member: decision id, score: ms counted) not yet spent."""
    return f"ent:{{{listener_id}}}:keycredit"


def no_fill(listener_id: str, track_id: int) -> str:
    """Set when the gate had no ad for this listener and track: allows one free, unfunded download."""
    return f"ent:{{{listener_id}}}:nofill:{track_id}"


def grants_by_listener(listener_id: str) -> str:
    """Rate-limit window name (core.ratelimit adds its prefix)."""
    return f"grant:l:{listener_id}"


def grants_by_ip(ip: str) -> str:
    return f"grant:ip:{ip}"
