"""The ad server over HTTP: beacons, clicks, VAST, creative files, the free-download gate and key mode.

The gate composes the catalog (track context, grants) and the ad server (decisions, beacons), which never
import each other; these helpers are shared with the JSON API (app/api/ads.py).
"""

from __future__ import annotations

import base64
from datetime import timedelta

from flask import Blueprint, Response, redirect, render_template, request, send_file, url_for

from adserver import keys
from adserver import services as ads
from adserver.errors import AdError, NotAllowed, NotFoundError, TooEarly
from adserver.media import path_for
from app import context
from app.auth import access, current_listener_id
from core import ratelimit
from core.errors import Conflict
from core.money import Money

bp = Blueprint("web_ads", __name__)

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
GRANTS_PER_LISTENER_PER_HOUR = 60
GRANTS_PER_IP_PER_HOUR = 300
FREE_MARKER_TTL_S = 900
HOME_SECTION = "ads/_home_section.html"
VAST_EVENTS = ("start", "firstQuartile", "midpoint", "thirdQuartile", "complete", "error")


def init_app(app) -> None:
    app.extensions["ninety"].extras["track_gate_endpoint"] = "web_ads.gate"
    app.jinja_env.globals["ad_slot"] = browse_ad
    sections = app.extensions["ninety"].extras.setdefault("home_sections", [])
    if HOME_SECTION not in sections:
        sections.append(HOME_SECTION)
    runtime = app.extensions["ninety"]
    runtime.extras["ad_beacon_limits"] = ads.Limits.parse(runtime.config.ad_beacon_limits)
    runtime.extras["ad_floor_cpm_micros"] = Money.parse(runtime.config.ad_floor_cpm, runtime.config.currency).micros


# --- shared helpers -------------------------------------------------------------------------------------
def visitor() -> ads.Visitor:
    return ads.Visitor(ip=request.remote_addr or "", user_agent=request.headers.get("User-Agent", ""),
                       listener_id=current_listener_id(), headers=request.headers)


def place(slot: str, *, track: dict | None = None, mode: str = "gate"):
    """Ask the ad server for an ad for this request's listener (None is no fill)."""
    cfg = context.config()
    ctx = {"listener_id": current_listener_id(), "mode": mode, "ip": request.remote_addr or "",
           "user_agent": request.headers.get("User-Agent", ""),
           "country": (request.headers.get("CF-IPCountry") or "")[:2].upper() or None}
    if track is not None:
        ctx.update(track_id=track["track_id"], genre=track.get("genre"))
    return ads.decide(context.redis(), context.db(), slot, ctx, secret=cfg.secret_key, clock=context.clock(),
                      floor_cpm_micros=context.runtime().extras["ad_floor_cpm_micros"], currency=cfg.currency,
                      ttl_s=cfg.ad_decision_ttl_s, min_view_s=cfg.ad_min_view_s)


def creative_json(placement) -> dict:
    c = placement.creative
    body = {"id": c.id, "kind": c.kind, "name": c.name, "alt_text": c.alt_text,
            "click_url": url_for("web_ads.click", token=placement.token, _external=True)}
    if c.image_sha256:
        body["image_url"] = url_for("web_ads.media", name=_name(c.image_sha256, c.image_mime), _external=True)
    if c.audio_sha256:
        body["audio_url"] = url_for("web_ads.media", name=_name(c.audio_sha256, c.audio_mime), _external=True)
        body["duration_ms"] = c.duration_ms
    return body


def _name(sha: str, mime: str) -> str:
    from adserver.media import file_name

    return file_name(sha, mime)


def placement_json(placement) -> dict:
    d = placement.decision
    return {"fill": True, "decision": placement.token, "decision_id": d.id, "slot": d.slot, "mode": d.mode,
            "track_id": d.track_id, "expires_at": d.expires_at, "min_view_ms": d.min_view_ms,
            "price": {"micros": d.price_micros, "currency": d.currency},
            "impression_url": url_for("web_ads.impression", token=placement.token, _external=True),
            "creative": creative_json(placement)}


def free_track(track_id: int) -> dict:
    """The track's context, if it can be downloaded for free (with an ad or in key mode)."""
    from catalog.errors import TrackUnavailable
    from catalog.services import track_context

    track = track_context(context.db(), track_id)
    if track["status"] == "taken_down":
        raise TrackUnavailable("This track has been taken down and cannot be downloaded.", code="track_taken_down")
    if track["status"] != "published":
        raise TrackUnavailable("This track is not published yet.", code="track_not_published")
    if track["price_model"] != "free_with_ads":
        raise Conflict("This track is sold, not free with ads; buy it from the release page.", code="not_free")
    return track


def open_gate(track_id: int) -> dict:
    """What the gate offers: key mode (no ad), an ad, or no fill (a free, unfunded download)."""
    track = free_track(track_id)
    redis = context.redis()
    listener = current_listener_id()
    if ads.is_key_mode(redis, listener):
        return {"state": "key", "track": track}
    placement = place("gate", track=track)
    if placement is None:
        ads.count_no_fill(redis, context.clock().now())
        redis.set(f"ads:free:{listener}:{track_id}", 1, ex=FREE_MARKER_TTL_S)
        return {"state": "no_fill", "track": track}
    return {"state": "ad", "track": track, "placement": placement}


def _limit_grants() -> None:
    redis = context.redis()
    message = "You have downloaded a lot in the last hour; try again later."
    ratelimit.enforce(redis, f"grant:l:{current_listener_id()}", limit=GRANTS_PER_LISTENER_PER_HOUR, window_s=3600,
                      message=message)
    ratelimit.enforce(redis, f"grant:ip:{request.remote_addr}", limit=GRANTS_PER_IP_PER_HOUR, window_s=3600,
                      message=message)


def _issue(track_id: int, via: str, decision_id: str | None = None) -> str:
    from catalog.services import issue_grant

    cfg = context.config()
    token = issue_grant(context.db(), track_id=track_id, listener_id=current_listener_id(), via=via,
                        secret=cfg.secret_key, clock=context.clock(), ttl_s=cfg.download_grant_ttl_s,
                        decision_id=decision_id)
    return url_for("web_catalog.download", token=token)


def grant_after_ad(token: str) -> str:
    """The download URL once the ad's impression was counted and shown for its minimum time."""
    cfg = context.config()
    redis = context.redis()
    decision = ads.verify_decision(token, secret=cfg.secret_key, clock=context.clock())
    if decision.slot != "gate" or decision.track_id is None:
        raise AdError("That ad was not shown on a download gate.", code="not_a_gate_decision", status=422)
    if decision.listener_id != current_listener_id():
        raise NotAllowed("That ad was shown to someone else.", code="listener_mismatch")
    seen_at = ads.impression_seen_at(redis, decision.id)
    if seen_at is None:
        raise Conflict("The ad has not been displayed yet; keep the page open while it shows.",
                       code="impression_not_counted")
    remaining = seen_at + timedelta(milliseconds=decision.min_view_ms) - context.clock().now()
    if remaining > timedelta(0):
        raise TooEarly(f"The ad needs {remaining.total_seconds():.1f} more seconds before the download starts.",
                       retry_after=max(1, int(remaining.total_seconds() + 0.999)))
    free_track(decision.track_id)
    _limit_grants()
    if not redis.set(keys.granted(decision.id), 1, nx=True, ex=cfg.ad_decision_ttl_s + 86400):
        raise Conflict("This ad already unlocked a download; open the track's page again for another.",
                       code="decision_used", status=410)
    try:
        return _issue(decision.track_id, "ad", decision.id)
    except Exception:
        redis.delete(keys.granted(decision.id))
        raise


def grant_without_ad(track_id: int, via: str) -> str:
    """Key mode (no per-download ad) or no fill (free and unfunded): recorded as such on the grant."""
    free_track(track_id)
    redis = context.redis()
    listener = current_listener_id()
    if via == "key" and not ads.is_key_mode(redis, listener):
        raise NotAllowed("Switch on key mode first, or download through the ad.", code="key_mode_off")
    if via == "free" and not redis.delete(f"ads:free:{listener}:{track_id}"):
        raise Conflict("There is an ad for this download now; open the track's download page.", code="ad_available")
    _limit_grants()
    return _issue(track_id, via)


def browse_ad():
    """A display ad for key-mode listeners on browse pages (None for everyone else, or no fill)."""
    try:
        if not ads.is_key_mode(context.redis(), current_listener_id()):
            return None
        placement = place("browse", mode="key")
    except AdError:
        return None
    return {"placement": placement, "creative": creative_json(placement)} if placement else None


# --- beacons ------------------------------------------------------------------------------------------------
def count_impression(token: str) -> ads.BeaconResult:
    runtime = context.runtime()
    session = context.db()
    limits_for = None
    try:
        decision = ads.verify_decision(token, secret=runtime.config.secret_key, clock=runtime.clock)
        limits_for = ads.campaign_limits(session, runtime.redis, decision.campaign_id, now=runtime.clock.now())
    except AdError:
        pass  # record_impression verifies again, records the refusal and raises
    return ads.record_impression(runtime.redis, token, visitor(), secret=runtime.config.secret_key,
                                 clock=runtime.clock, campaign_limits=limits_for,
                                 limits=runtime.extras["ad_beacon_limits"])


@bp.route("/ads/i/<token>", methods=["GET", "POST"])
@access(public=True, csrf=False)
def impression(token: str):
    """The impression beacon: a 1x1 GIF for <img> (GET) or 204 for sendBeacon/fetch (POST)."""
    result = count_impression(token)
    headers = {"Cache-Control": "no-store", "X-Ad-Impression": result.status}
    if request.method == "POST":
        return Response(status=204, headers=headers)
    return Response(PIXEL, mimetype="image/gif", headers=headers)


@bp.get("/ads/c/<token>")
@access(public=True)
def click(token: str):
    """Count the click once, then go to the creative's own URL (never one from the request)."""
    runtime = context.runtime()
    url = ads.record_click(runtime.redis, context.db(), token, visitor(), secret=runtime.config.secret_key,
                           clock=runtime.clock)
    response = redirect(url, code=302)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/ads/e/<token>/<event>")
@access(public=True)
def vast_event(token: str, event: str):
    """VAST tracking events (start, quartiles, complete, error) counted per creative and hour."""
    runtime = context.runtime()
    if event not in VAST_EVENTS:
        raise NotFoundError("Unknown tracking event.", code="unknown_event")
    decision = ads.verify_decision(token, secret=runtime.config.secret_key, clock=runtime.clock)
    key = keys.stats("k", decision.creative_id, keys.hour(runtime.clock.now()))
    runtime.redis.hincrby(key, f"vast_{event}", 1)
    return Response(PIXEL, mimetype="image/gif", headers={"Cache-Control": "no-store"})


@bp.get("/ads/media/<name>")
@access(public=True)
def media(name: str):
    path = path_for(context.config().media_path, name)
    if path is None:
        raise NotFoundError("No such ad file.", code="media_not_found")
    response = send_file(path, conditional=True, max_age=86400)
    response.headers["Cache-Control"] = "public, max-age=86400, immutable"
    return response


@bp.get("/ads/vast")
@access(public=True)
def vast():
    """A VAST 4.2 inline audio ad for a player (or an empty VAST response when nothing fills)."""
    slot = request.args.get("slot", "player")
    if slot != "player":
        raise AdError("VAST serves the player slot; use slot=player.", code="unknown_slot", status=422)
    track = None
    raw_track = request.args.get("track")
    if raw_track:
        if not raw_track.isdigit() or len(raw_track) > 10:
            raise AdError("track must be a track id.", code="invalid_track", status=422)
        from catalog.services import track_context

        track = track_context(context.db(), int(raw_track))
    placement = place("player", track=track)
    body = render_template("ads/vast.xml", placement=placement,
                           duration=_vast_duration(placement.decision.min_view_ms) if placement else None,
                           events=VAST_EVENTS[:-1], creative=creative_json(placement) if placement else None)
    return Response(body, mimetype="application/xml", headers={"Cache-Control": "no-store"})


def _vast_duration(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{millis:03d}"


# --- the gate -------------------------------------------------------------------------------------------------
@bp.get("/tracks/<int:track_id>/free")
@access(public=True)
def gate(track_id: int):
    """The free-download gate: the ad shows, its impression beacon fires, then the download starts."""
    offer = open_gate(track_id)
    placement = offer.get("placement")
    download_url = (url_for("web_ads.gate_download", track_id=track_id, d=placement.token)
                    if placement else None)
    return render_template("ads/gate.html", offer=offer, track=offer["track"], placement=placement,
                           creative=creative_json(placement) if placement else None, download_url=download_url,
                           min_view_s=(placement.decision.min_view_ms / 1000) if placement else 0)


@bp.get("/tracks/<int:track_id>/free/download")
@access(public=True)
def gate_download(track_id: int):
    """After the ad: issue the single-use grant and start the download (or say how long to wait)."""
    token = request.args.get("d", "")
    try:
        url = grant_after_ad(token)
    except TooEarly as exc:
        from app.errors import wants_html

        if not wants_html():
            raise
        wait = exc.details.get("retry_after", 1)
        response = Response(render_template("ads/too_early.html", wait=wait, message=exc.message,
                                            retry_url=request.full_path), status=425)
        response.headers["Retry-After"] = str(wait)
        return response
    if ads.verify_decision(token, secret=context.config().secret_key, clock=context.clock()).track_id != track_id:
        raise AdError("That ad belongs to another track.", code="wrong_track", status=422)
    return redirect(url, code=303)


@bp.get("/tracks/<int:track_id>/free/without-ad")
@access(public=True)
def gate_without_ad(track_id: int):
    """Key mode, or no ad to show: the grant says which (via "key" or "free")."""
    via = "key" if request.args.get("via") == "key" else "free"
    return redirect(grant_without_ad(track_id, via), code=303)


# --- key mode -------------------------------------------------------------------------------------------------
@bp.route("/key-mode", methods=["GET", "POST"])
@access(public=True)
def key_mode():
    """Key mode: no ad before each download; display ads while browsing fund the listener's monthly pool."""
    redis = context.redis()
    listener = current_listener_id()
    if request.method == "POST":
        ads.set_key_mode(redis, listener, request.form.get("enabled") == "on")
        return redirect(url_for("web_ads.key_mode"), code=303)
    enabled = ads.is_key_mode(redis, listener)
    return render_template("ads/key_mode.html", enabled=enabled, ad=browse_ad() if enabled else None)
