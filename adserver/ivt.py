"""Invalid-traffic filtering: known bots (the maintained `crawler-user-agents` list), with an allow-list for
real audio players, and requests whose headers do not add up. Rate limits per IP and listener are counted in
the charging script (see adserver.beacons).

Listener ids carry their creation time (`new_listener_id`), so the beacon can tell a fresh id from an
established one: fresh ids are counted per IP and per network (a flood of them is a script minting a cookie
per ad), and an id younger than the decision's minimum view is held back rather than counted.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import secrets
from datetime import UTC, datetime

from adserver.signing import Decision

# Real players whose user agents the crawler list would otherwise catch (it lists generic HTTP libraries).
DEFAULT_PLAYER_ALLOW_LIST = (
    "VLC/", "LibVLC/", "foobar2000/", "Lavf/", "AppleCoreMedia/", "ExoPlayer", "Winamp", "mpv ", "NinetyPlayer/",
    "Music Player Daemon", "GStreamer", "Clementine", "Rhythmbox", "Audacious", "iTunes/",
)
MAX_UA_CHARS = 512


@functools.cache
def _bot_pattern() -> re.Pattern:
    import crawleruseragents

    return re.compile("|".join(f"(?:{p['pattern']})" for p in crawleruseragents.CRAWLER_USER_AGENTS_DATA))


def warm() -> None:
    """Compile the crawler pattern now (a server's worker, before its first request): otherwise the first
    beacons pay for it, every thread that arrives before it is made compiling it again."""
    _bot_pattern()


@functools.lru_cache(maxsize=4096)
def is_bot(user_agent: str, allow_list: tuple[str, ...] = DEFAULT_PLAYER_ALLOW_LIST) -> bool:
    if any(token in user_agent for token in allow_list):
        return False
    return _bot_pattern().search(user_agent) is not None


def classify(decision: Decision, visitor, *, allow_list: tuple[str, ...] = ()) -> str | None:
    """The reason a beacon is invalid traffic, or None when it looks like a person."""
    ua = visitor.user_agent or ""
    if not ua.strip() or len(ua) > MAX_UA_CHARS:
        return "missing_headers"
    if is_bot(ua, DEFAULT_PLAYER_ALLOW_LIST + tuple(allow_list)):
        return "bot"
    headers = visitor.headers
    # Browsers mark cross-site subresource requests; an ad page's beacon never comes from another site.
    if decision.slot != "player" and headers.get("Sec-Fetch-Site") == "cross-site":
        return "cross_site"
    # Gate and browse decisions are bound to the listener they were shown to (players may lack cookies).
    if decision.slot != "player" and visitor.listener_id and visitor.listener_id != decision.listener_id:
        return "listener_mismatch"
    return None


# --- listener ids and their age -------------------------------------------------------------------------
# "t" + creation time (8 hex digits of epoch seconds) + 20 random hex digits. Ids minted before this format
# ("a…" cookies) and signed-in users ("u{id}") carry no time: they count as established.
TIMED_PREFIX = "t"
_TIMED = re.compile(r"^t([0-9a-f]{8})[0-9a-f]{20}$")
# An id younger than this is "new" for the per-IP and per-network counts.
FRESH_ID_WINDOW_S = 3600


def new_listener_id(now: datetime) -> str:
    """A fresh pseudonymous listener id that carries when it was made (the cookie signing covers it)."""
    return f"{TIMED_PREFIX}{int(now.timestamp()) & 0xFFFFFFFF:08x}{secrets.token_hex(10)}"


def listener_created_at(listener_id: str) -> datetime | None:
    """When a timed listener id was made; None for ids that carry no time."""
    match = _TIMED.match(listener_id or "")
    return datetime.fromtimestamp(int(match.group(1), 16), UTC) if match else None


def listener_age_s(listener_id: str, now: datetime) -> float | None:
    created = listener_created_at(listener_id)
    return None if created is None else (now - created).total_seconds()


def network_of(ip: str) -> str:
    """The network an address belongs to for flood counting: its /24 (IPv4) or /48 (IPv6)."""
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return (ip or "")[:64]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
