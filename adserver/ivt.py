"""Invalid-traffic filtering: known bots (the maintained `crawler-user-agents` list), with an allow-list for
real audio players, and requests whose headers do not add up. Rate limits per IP and listener are counted in
the charging script (see adserver.beacons)."""

from __future__ import annotations

import functools
import re

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
