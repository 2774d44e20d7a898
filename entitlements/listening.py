"""Who hears what, the short-lived signed stream URLs, and the play beacon.

- Free-with-ads tracks stream in full; the first play of a listening session is preceded by an audio ad
  (`/ads/vast?slot=player&track=ID`: the track's context goes to the ad server as plain data, and the
  impression pays the track's payees like a gate impression).
- Priced tracks stream in full `full_plays` times per listener (one listening session spends one), then only
  as the 30-second preview copy, with the purchase offered; the artist may choose previews only.
- Buyers, subscribers and the artist's own members hear everything in full, without ads.

Stream URLs name a stream copy by its content hash and expire: `/stream/<sha256>-<expiry>-<mac>.<ext>`. The
server needs no database to serve one (the copy is content-addressed), and the original upload is never a
stream. A play token names one play (id, track, full or preview, listening session, start) and is bound to
the listener it was issued to; its beacons report how much of it was heard (see catalog.plays).

Services take the session, Redis, the clock and `ListenSettings` and never commit: the caller does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from adserver.ivt import DEFAULT_PLAYER_ALLOW_LIST, MAX_UA_CHARS, is_bot
from catalog import plays
from catalog.errors import CatalogNotFound, TrackUnavailable
from catalog.models import Track
from catalog.rendition_models import Rendition
from catalog.services import effective_price, is_member, is_track_public
from core.redis import is_cluster
from entitlements.errors import NotPlayable, StreamExpired, StreamRefused
from sales import services as sales
from sales import subscriptions

MAX_ID = 2**31 - 1
STREAM_KINDS = {("full", "opus"): "stream.opus", ("full", "mp3"): "stream.mp3",
                ("preview", "opus"): "preview.opus", ("preview", "mp3"): "preview.mp3"}
# Opus first: browsers that decode it get the smaller copy; the MP3 copy is the fallback.
CODECS = ("opus", "mp3")
STREAM_MIME = {"opus": "audio/ogg; codecs=opus", "mp3": "audio/mpeg"}
PREVIEW_MS = 30_000
PLAY_REPORT_TTL_S = 12 * 3600

__all__ = [
    "HeardReport", "Hearing", "ListenSettings", "Listener", "Source", "Ticket", "count_plays",
    "hearings", "is_subscriber", "owns_track", "play_report", "start_play", "stream_sources", "verify_stream",
]


@dataclass(frozen=True)
class ListenSettings:
    """What listening needs from configuration (the app builds it once from its Config)."""

    secret: str
    full_plays: int = 3
    # A stream URL lives for the track's length plus this, so a paused player can resume for a while.
    stream_grace_s: int = 900


@dataclass(frozen=True)
class Listener:
    """Who is listening, as the app saw the request."""

    listener_id: str
    user_id: int | None = None
    ip: str = ""
    user_agent: str = ""
    headers: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class Hearing:
    """What one listener hears of one track: `access` "full" or "preview", and why (`reason`)."""

    track_id: int
    access: str
    reason: str          # free | owner | subscriber | artist | full_plays_left | full_plays_used | previews_only
    price_model: str
    ad_free: bool        # bought, subscribed or the artist's own: never an ad
    full_plays_left: int | None = None
    offer_purchase: bool = False

    @property
    def ad_first(self) -> bool:
        return self.price_model == "free_with_ads" and not self.ad_free


@dataclass(frozen=True)
class Source:
    url: str
    mime: str
    codec: str
    duration_ms: int


@dataclass(frozen=True)
class Ticket:
    """What a player gets to start one play of a track."""

    hearing: Hearing
    play_token: str
    session_id: str
    new_session: bool
    sources: list[Source]
    duration_ms: int
    expires_at: int

    @property
    def ad_first(self) -> bool:
        """An audio ad plays first: the first play of a listening session of a free-with-ads track."""
        return self.new_session and self.hearing.ad_first


# --- the seams to sales (purchases, subscriptions) -----------------------------------------------------------
def owns_track(session: Session, user_id: int | None, track_id: int) -> bool:
    """Whether the user bought the track or its release, or redeemed a code for it (sales, issue 10)."""
    return sales.owns_track(session, user_id, track_id)


def is_subscriber(session: Session, user_id: int | None, at: datetime) -> bool:
    """Whether the user has a premium subscription in force at `at` (sales, issue 13)."""
    return subscriptions.is_subscriber(session, user_id, at)


# --- who hears what ----------------------------------------------------------------------------------------
def _tracks(session: Session, track_ids: list[int]) -> dict[int, Track]:
    ids = [t for t in track_ids if isinstance(t, int) and 1 <= t <= MAX_ID]
    if not ids:
        return {}
    return {t.id: t for t in session.scalars(select(Track).where(Track.id.in_(ids)))}


def hearings(session: Session, track_ids: list[int], who: Listener, *, now: datetime,
             settings: ListenSettings) -> dict[int, Hearing]:
    """What the listener hears of each public track (read only; tracks not public are left out)."""
    tracks = {i: t for i, t in _tracks(session, track_ids).items() if _listenable(t, now)}
    given = plays.full_streams(session, who.listener_id, list(tracks))
    subscribed = is_subscriber(session, who.user_id, now) if tracks else False
    members: dict[int, bool] = {}
    result = {}
    for track_id, track in tracks.items():
        artist_id = track.release.artist_id
        if who.user_id is not None and artist_id not in members:
            members[artist_id] = is_member(session, artist_id, who.user_id)
        result[track_id] = _decide(session, track, who, given.get(track_id, 0), subscribed=subscribed,
                                   member=members.get(artist_id, False), settings=settings)
    return result


def _listenable(track: Track, now: datetime) -> bool:
    return track.asset_id is not None and track.status != "taken_down" and track.release.status != "taken_down" \
        and is_track_public(track, now)


def _decide(session: Session, track: Track, who: Listener, given: int, *, subscribed: bool, member: bool,
            settings: ListenSettings) -> Hearing:
    model = effective_price(track)["price_model"]
    if member:
        return Hearing(track.id, "full", "artist", model, ad_free=True)
    if model == "free_with_ads":
        return Hearing(track.id, "full", "subscriber" if subscribed else "free", model, ad_free=subscribed)
    if subscribed:
        return Hearing(track.id, "full", "subscriber", model, ad_free=True)
    if owns_track(session, who.user_id, track.id):
        return Hearing(track.id, "full", "owner", model, ad_free=True)
    if track.previews_only:
        return Hearing(track.id, "preview", "previews_only", model, ad_free=False, offer_purchase=True)
    left = max(0, settings.full_plays - given)
    if left > 0:
        return Hearing(track.id, "full", "full_plays_left", model, ad_free=False, full_plays_left=left,
                       offer_purchase=True)
    return Hearing(track.id, "preview", "full_plays_used", model, ad_free=False, full_plays_left=0,
                   offer_purchase=True)


def _hearing(session: Session, track_id: int, who: Listener, *, now: datetime, settings: ListenSettings) -> Hearing:
    if not isinstance(track_id, int) or not 1 <= track_id <= MAX_ID:
        raise CatalogNotFound("There is no such track.", code="track_not_found")
    track = session.get(Track, track_id)
    if track is None or not (is_track_public(track, now) or track.status == "taken_down"
                             or track.release.status == "taken_down"):
        raise CatalogNotFound("There is no such track.", code="track_not_found")
    if track.status == "taken_down" or track.release.status == "taken_down":
        raise TrackUnavailable("This track has been taken down and cannot be played.", code="track_taken_down")
    if track.asset_id is None:
        raise NotPlayable("This track has no audio yet.")
    found = hearings(session, [track_id], who, now=now, settings=settings)
    return found[track_id]


# --- stream URLs --------------------------------------------------------------------------------------------
def _mac(secret: str, purpose: str, payload: str) -> str:
    digest = hmac.new(secret.encode(), f"{purpose}:{payload}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def stream_path(sha256: str, extension: str, expires_at: int, secret: str) -> str:
    payload = f"{sha256}-{expires_at}.{extension}"
    return f"/stream/{sha256}-{expires_at}-{_mac(secret, 'stream', payload)}.{extension}"


_STREAM = re.compile(r"([0-9a-f]{64})-(\d{1,12})-([A-Za-z0-9_-]{24})\.(opus|mp3)")


@dataclass(frozen=True)
class StreamFile:
    sha256: str
    extension: str
    mime: str
    expires_at: int


def verify_stream(name: str, *, secret: str, now: datetime) -> StreamFile:
    """The stream copy a URL names, if its signature holds and it has not expired (no database needed)."""
    match = _STREAM.fullmatch(name or "")
    if not match:
        raise StreamRefused("This stream link is not valid.")
    sha256, expires, mac, extension = match.groups()
    if not hmac.compare_digest(mac, _mac(secret, "stream", f"{sha256}-{expires}.{extension}")):
        raise StreamRefused("This stream link is not valid.")
    if int(expires) <= now.timestamp():
        raise StreamExpired("This stream link has expired; press play again for a new one.")
    return StreamFile(sha256, extension, STREAM_MIME[extension], int(expires))


def _renditions(session: Session, asset_ids: list[int]) -> dict[tuple[int, str], Rendition]:
    if not asset_ids:
        return {}
    rows = session.scalars(select(Rendition).where(Rendition.asset_id.in_(asset_ids),
                                                   Rendition.kind.in_(tuple(STREAM_KINDS.values()))))
    return {(r.asset_id, r.kind): r for r in rows}


def _sources(found: dict, asset_id: int, access: str, *, now: datetime, settings: ListenSettings) -> list[Source]:
    sources = []
    for codec in CODECS:
        rendition = found.get((asset_id, STREAM_KINDS[(access, codec)]))
        if rendition is None:
            continue
        expires = int(now.timestamp()) + rendition.duration_ms // 1000 + settings.stream_grace_s
        sources.append(Source(url=stream_path(rendition.sha256, rendition.extension, expires, settings.secret),
                              mime=STREAM_MIME.get(rendition.extension, rendition.mime), codec=codec,
                              duration_ms=rendition.duration_ms))
    return sources


def stream_sources(session: Session, track_ids: list[int], who: Listener, *, now: datetime,
                   settings: ListenSettings) -> dict[int, tuple[Hearing, list[Source]]]:
    """For a page (read only): each playable track's hearing and stream URLs for a plain `<audio controls>`.

    Without the player's script nothing spends a priced track's full streams, so the page's own sources of a
    priced track are its preview unless the listener may hear it all anyway (bought, subscribed, the artist's).
    """
    found_hearings = hearings(session, track_ids, who, now=now, settings=settings)
    tracks = _tracks(session, list(found_hearings))
    found = _renditions(session, [t.asset_id for t in tracks.values()])
    result = {}
    for track_id, hearing in found_hearings.items():
        access = "full" if hearing.access == "full" and (hearing.price_model == "free_with_ads"
                                                         or hearing.ad_free) else "preview"
        sources = _sources(found, tracks[track_id].asset_id, access, now=now, settings=settings)
        if sources:
            result[track_id] = (hearing, sources)
    return result


# --- starting a play -----------------------------------------------------------------------------------------
def start_play(session: Session, track_id: int, who: Listener, *, session_id: str | None, settings: ListenSettings,
               clock) -> Ticket:
    """Start one play: the listening session (reused while it is the listener's and not idle), the hearing
    (a priced track's full stream spends one of its full streams, once per listening session), stream URLs
    and the signed play token its beacons carry."""
    now = clock.now()
    hearing = _hearing(session, track_id, who, now=now, settings=settings)
    track = session.get(Track, track_id)
    found = _renditions(session, [track.asset_id])
    if not any(key[0] == track.asset_id and key[1].startswith("stream.") for key in found):
        raise NotPlayable("This track's stream copies are still being made; try again in a minute.")
    started = plays.open_session(session, listener_id=who.listener_id, user_id=who.user_id, session_id=session_id,
                                 now=now)
    if hearing.reason in ("full_plays_left", "full_plays_used"):  # the same session keeps its full stream
        given = plays.claim_full_stream(session, listener_id=who.listener_id, track_id=track_id,
                                        session_id=started.session_id, allowance=settings.full_plays, now=now)
        if given is None:  # spent meanwhile (another tab): the preview plays
            hearing = Hearing(track_id, "preview", "full_plays_used", hearing.price_model, ad_free=False,
                              full_plays_left=0, offer_purchase=True)
        else:
            hearing = Hearing(track_id, "full", "full_plays_left", hearing.price_model, ad_free=False,
                              full_plays_left=max(0, settings.full_plays - given), offer_purchase=True)
    sources = _sources(found, track.asset_id, hearing.access, now=now, settings=settings)
    if not sources:
        raise NotPlayable("This track's stream copies are still being made; try again in a minute.")
    duration_ms = sources[0].duration_ms
    play_id = uuid.uuid4().hex
    issued = int(now.timestamp() * 1000)
    token = play_token(play_id, track_id, hearing.access, started.session_id, issued, who.listener_id,
                       settings.secret)
    return Ticket(hearing=hearing, play_token=token, session_id=started.session_id, new_session=started.is_new,
                  sources=sources, duration_ms=duration_ms,
                  expires_at=int(now.timestamp()) + duration_ms // 1000 + settings.stream_grace_s)


def play_token(play_id: str, track_id: int, access: str, session_id: str, issued_ms: int, listener_id: str,
               secret: str) -> str:
    """`<play id>.<track>.<f|p>.<session>.<issued ms>.<mac>`; the MAC covers the listener too."""
    payload = f"{play_id}.{track_id}.{access[0]}.{session_id}.{issued_ms}"
    return f"{payload}.{_mac(secret, 'play', payload + '.' + listener_id)}"


_PLAY = re.compile(r"([0-9a-f]{32})\.(\d{1,10})\.([fp])\.([0-9a-f]{32})\.(\d{1,15})\.([A-Za-z0-9_-]{24})")


def _verify_play(token: str, listener_id: str, secret: str) -> plays.PlayReport:
    match = _PLAY.fullmatch(token or "")
    if not match:
        raise StreamRefused("This play token is not valid.", code="play_invalid")
    play_id, track_id, access, session_id, issued_ms, mac = match.groups()
    payload = f"{play_id}.{track_id}.{access}.{session_id}.{issued_ms}"
    if not hmac.compare_digest(mac, _mac(secret, "play", payload + "." + listener_id)):
        raise StreamRefused("This play token is not valid.", code="play_invalid")
    return plays.PlayReport(play_id=uuid.UUID(play_id), track_id=int(track_id),
                            kind="full" if access == "f" else "preview", listener_id=listener_id, user_id=None,
                            session_id=session_id,
                            started_at=datetime.fromtimestamp(int(issued_ms) / 1000, UTC))


# --- the play beacon -----------------------------------------------------------------------------------------
# KEYS: the play's heard mark. ARGV: heard ms, ttl. Returns the most heard before; keeps the maximum.
HEARD_LUA = """
local before = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > before then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
return before
"""


# KEYS: the play's heard mark. ARGV: the mark this report set, the one before, ttl. Puts the one before back
# unless a later report has moved the mark meanwhile.
UNHEARD_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[2] == '0' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end
end
return 0
"""


def _script(redis, name: str, source: str):
    script = getattr(redis, name, None)
    if script is None:
        script = redis.register_script(source)
        try:
            setattr(redis, name, script)
        except AttributeError:
            pass
    return script


def _heard_script(redis):
    return _script(redis, "_ninety_heard_script", HEARD_LUA)


def invalid_traffic(who: Listener) -> str | None:
    """Why a play beacon is not from a person listening (the ad server's bot filter), or None."""
    ua = who.user_agent or ""
    if not ua.strip() or len(ua) > MAX_UA_CHARS:
        return "missing_headers"
    if is_bot(ua, DEFAULT_PLAYER_ALLOW_LIST):
        return "bot"
    if who.headers.get("Sec-Fetch-Site") == "cross-site":
        return "cross_site"
    return None


@dataclass(frozen=True)
class HeardReport:
    """A play beacon that passed its checks (`play_report`): the play, the audio it claims heard, and when."""

    report: plays.PlayReport
    heard_ms: int
    now: datetime


def play_report(token: str, heard_ms: int, who: Listener, *, settings: ListenSettings, clock) -> HeardReport | str:
    """A play beacon's report, checked: what `count_plays` takes, or why it is refused ("invalid", "bot",
    "missing_headers", "cross_site"). A forged token, or one issued to another listener, is "invalid"."""
    try:
        report = _verify_play(token, who.listener_id, settings.secret)
    except StreamRefused:
        return "invalid"
    reason = invalid_traffic(who)
    if reason is not None:
        return reason
    if not isinstance(heard_ms, int) or heard_ms < 0:
        return "invalid"
    now = clock.now()
    report = plays.PlayReport(**{**report.__dict__, "user_id": who.user_id})
    return HeardReport(report, plays.bounded_heard(report, heard_ms, now), now)


def count_plays(session, redis, heard: list[HeardReport]) -> list[str]:
    """Count checked reports: "counted", "updated", "listening" or "stale" each, in order. Each play's most
    heard so far is kept in Redis (one pipelined round trip for them all); what is new is written in one
    statement (catalog.plays.record_heard_many) to `session`: a session, a Connection or a pooled DB-API
    connection. If the database does not take it, the marks are put back, so a retry (or the next beacon)
    counts those reports, and the error is raised."""
    keys = [f"listen:play:{{{item.report.listener_id}}}:{item.report.play_id.hex}" for item in heard]
    previous = _mark_heard(redis, keys, [item.heard_ms for item in heard])
    try:  # one statement, committed without waiting for the disk
        return plays.record_heard_many(session, [(item.report, item.heard_ms, before, item.now)
                                                 for item, before in zip(heard, previous, strict=True)])
    except BaseException:
        unheard = _script(redis, "_ninety_unheard_script", UNHEARD_LUA)
        for key, item, before in reversed(list(zip(keys, heard, previous, strict=True))):
            if item.heard_ms > before:
                unheard(keys=[key], args=[item.heard_ms, before, PLAY_REPORT_TTL_S])
        raise


def _mark_heard(redis, keys: list[str], heard: list[int]) -> list[int]:
    """Raise each play's heard mark to the report's (kept for PLAY_REPORT_TTL_S); the mark before each. In
    order, so two reports of one play each see the other's. Pipelined on one server; on a Redis Cluster,
    where the marks live on several nodes, one call each."""
    script = _heard_script(redis)
    if is_cluster(redis) or len(keys) == 1:
        return [int(script(keys=[key], args=[ms, PLAY_REPORT_TTL_S])) for key, ms in zip(keys, heard, strict=True)]
    pipe = redis.pipeline(transaction=False)
    for key, ms in zip(keys, heard, strict=True):
        script(keys=[key], args=[ms, PLAY_REPORT_TTL_S], client=pipe)
    return [int(before) for before in pipe.execute()]
