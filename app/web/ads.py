"""The ad server over HTTP: beacons, clicks, VAST, creative files, the free-download gate and key mode.

The gate's rules live in `entitlements`; these views parse the request, call one service and render.
What they share with the JSON API is in app/adrequest.py.
"""

from __future__ import annotations

import base64

from flask import Blueprint, Response, redirect, render_template, request, send_file, url_for
from redis.exceptions import RedisError

from adserver import keys
from adserver import services as ads
from adserver.errors import AdError, NotFoundError
from adserver.media import path_for
from app import context
from app.adrequest import creative_json, download_url, gate_settings, requester
from app.auth import access, current_listener_id
from app.errors import wants_html
from app.transactions import writes_on_get
from catalog import renditions
from entitlements import services as entitlements
from entitlements.errors import KeyCreditShort, TooEarly

bp = Blueprint("web_ads", __name__)

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
HOME_SECTION = "ads/_home_section.html"
VAST_EVENTS = ("start", "firstQuartile", "midpoint", "thirdQuartile", "complete", "error")


def init_app(app) -> None:
    app.extensions["ninety"].extras["track_gate_endpoint"] = "web_ads.gate"
    app.jinja_env.globals["ad_slot"] = browse_ad
    sections = app.extensions["ninety"].extras.setdefault("home_sections", [])
    if HOME_SECTION not in sections:
        sections.append(HOME_SECTION)


def visitor() -> ads.Visitor:
    return requester().visitor()


def browse_ad():
    """The `ad_slot()` of browse templates: a display ad for key-mode listeners, else None."""
    try:
        placement = entitlements.browse_ad(context.db(), context.redis(), requester(), settings=gate_settings(),
                                           clock=context.clock())
    except RedisError:  # an ad slot never takes a browse page down with it
        return None
    return {"placement": placement, "creative": creative_json(placement)} if placement else None


# --- beacons ------------------------------------------------------------------------------------------------
@bp.route("/ads/i/<token>", methods=["GET", "POST"])
@access(public=True, csrf=False)
def impression(token: str):
    """The impression beacon: a 1x1 GIF for <img> (GET) or 204 for sendBeacon/fetch (POST).

    The answer is the same whether the beacon counted, was a duplicate, invalid or forged: telling the
    client would teach a script which of its impressions pass."""
    entitlements.count_impression(context.db(), context.redis(), token, requester(), settings=gate_settings(),
                                  clock=context.clock())
    headers = {"Cache-Control": "no-store"}
    if request.method == "POST":
        return Response(status=204, headers=headers)
    return Response(PIXEL, mimetype="image/gif", headers=headers)


@bp.get("/ads/c/<token>")
@access(public=True)
@writes_on_get("a click on an ad is a link: it is counted once, then redirected")
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
    if event == "complete":  # played through: an impression held back for a brand-new listener id counts now
        settings = gate_settings()
        ads.settle_held_impression(context.db(), runtime.redis, token, requester().visitor(), secret=settings.secret,
                                   clock=runtime.clock, limits=settings.beacon_limits)
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
    raw_track = request.args.get("track")
    if raw_track and (not raw_track.isdigit() or not 1 <= int(raw_track) <= entitlements.MAX_ID):
        raise AdError("track must be a track id.", code="invalid_track", status=422)
    placement = entitlements.place_ad(context.db(), context.redis(), requester(), "player",
                                      track_id=int(raw_track) if raw_track else None, settings=gate_settings(),
                                      clock=context.clock())
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
    """The free-download gate: the ad shows, its impression beacon fires, then the download starts (or key
    mode's credit pays, or no ad fills)."""
    fmt = renditions.chosen_format(context.db(), track_id, request.args.get("format"))
    offer = entitlements.open_gate(context.db(), context.redis(), requester(), track_id, settings=gate_settings(),
                                   clock=context.clock())
    placement = offer.placement
    after_ad_url = (url_for("web_ads.gate_download", track_id=track_id, d=placement.token, format=fmt)
                    if placement else None)
    return render_template("ads/gate.html", offer=offer, track=offer.track, placement=placement,
                           creative=creative_json(placement) if placement else None, download_url=after_ad_url,
                           min_view_s=(placement.decision.min_view_ms / 1000) if placement else 0,
                           formats=renditions.format_choices(context.db(), track_id), chosen_format=fmt)


@bp.get("/tracks/<int:track_id>/free/download")
@access(public=True)
@writes_on_get("the no-JavaScript gate reaches it by meta refresh; it issues the single-use grant")
def gate_download(track_id: int):
    """After the ad: issue the single-use grant and start the download (or say how long to wait).

    A GET that issues a grant, because the no-JavaScript gate reaches it by meta refresh."""
    token = request.args.get("d", "")
    try:
        grant = entitlements.grant_after_ad(context.db(), context.redis(), requester(), token, track_id=track_id,
                                            settings=gate_settings(), clock=context.clock())
    except TooEarly as exc:
        if not wants_html():
            raise
        wait = exc.details.get("retry_after", 1)
        response = Response(render_template("ads/too_early.html", wait=wait, message=exc.message,
                                            retry_url=request.full_path), status=425)
        response.headers["Retry-After"] = str(wait)
        return response
    return redirect(download_url(grant, request.args.get("format") or None), code=303)


@bp.post("/tracks/<int:track_id>/free/without-ad")
@access(public=True)
def gate_without_ad(track_id: int):
    """Key mode (spends the listener's credit), premium, or no ad to show: the grant says which (via "key",
    "subscriber" or "free").

    Without enough key-mode credit a browser goes back to the gate, which shows the ad and says why."""
    via = request.form.get("via") if request.form.get("via") in ("key", "subscriber") else "free"
    fmt = renditions.chosen_format(context.db(), track_id, request.form.get("format"))  # before credit is spent
    try:
        grant = entitlements.grant_without_ad(context.db(), context.redis(), requester(), track_id, via,
                                              settings=gate_settings(), clock=context.clock())
    except KeyCreditShort:
        if not wants_html():
            raise
        return redirect(url_for("web_ads.gate", track_id=track_id, format=fmt), code=303)
    return redirect(download_url(grant, fmt), code=303)


# --- key mode -------------------------------------------------------------------------------------------------
@bp.route("/key-mode", methods=["GET", "POST"])
@access(public=True)
def key_mode():
    """Key mode: no ad before each download, paid for by display ads seen while browsing, which fund the
    listener's monthly pool; each download spends a few of those ad views."""
    listener = current_listener_id()
    if request.method == "POST":
        entitlements.set_key_mode(context.redis(), listener, request.form.get("enabled") == "on")
        return redirect(url_for("web_ads.key_mode"), code=303)
    status = entitlements.key_mode_status(context.redis(), listener, settings=gate_settings(), clock=context.clock())
    return render_template("ads/key_mode.html", enabled=status.enabled, credit=status.credit,
                           ad=browse_ad() if status.enabled else None)
