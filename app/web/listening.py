"""Listening over HTTP: stream files, starting a play, the play beacon, the track page, and what the
templates need to put a player beside each track.

The rules (who hears what, tokens, counting) are in entitlements.listening and catalog.plays; these views
parse, call one service and answer.
"""

from __future__ import annotations

import weakref
from datetime import UTC, timedelta
from functools import partial

import psycopg
from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from app import context
from app.auth import access, current_listener_id, current_user
from app.media_response import send_stream
from catalog import plays, renditions
from catalog import services as catalog
from catalog.models import Release, Track
from catalog.storage import MediaStore
from core.batching import Batches, per_process
from core.db import make_engine
from entitlements import listening
from rights.services import track_notice

bp = Blueprint("web_listening", __name__)

MAX_BEACON_HEARD_MS = 24 * 3600 * 1000
# Beacons are written in batches by one thread per process, a connection at a time: the pool is for the
# moment a batch thread makes a new connection while the one before is still being closed.
BEACON_POOL_SIZE = 2
BEACON_BATCH_MAX = 256


def init_app(app) -> None:
    app.jinja_env.globals["listening_for"] = listening_for
    app.jinja_env.globals["listening_artist_tracks"] = artist_tracks
    app.jinja_env.globals["listening_plays_of_payee"] = plays_of_payee
    app.jinja_env.globals["listening_download_formats"] = download_formats


def download_formats(track) -> list[tuple[str, str]]:
    """The formats a download of the track may be chosen in (the track page's chooser)."""
    return renditions.format_choices(context.db(), track.id)


def settings() -> listening.ListenSettings:
    runtime = context.runtime()
    found = runtime.extras.get("listen_settings")
    if found is None:
        cfg = runtime.config
        found = runtime.extras["listen_settings"] = listening.ListenSettings(
            secret=cfg.secret_key, full_plays=cfg.preview_full_plays)
    return found


def listener() -> listening.Listener:
    user = current_user()
    return listening.Listener(listener_id=current_listener_id(), user_id=user.id if user else None,
                              ip=request.remote_addr or "", user_agent=request.headers.get("User-Agent", ""),
                              headers=request.headers)


def _buy_url(track_id: int) -> str | None:
    from flask import current_app

    endpoint = current_app.extensions["ninety"].extras.get("track_buy_endpoint")
    return url_for(endpoint, track_id=track_id) if endpoint else None


def listening_for(tracks) -> dict[int, dict]:
    """For a page's tracks: what each plays without the player's script (hearing, sources), read only."""
    found = listening.stream_sources(context.db(), [t.id for t in tracks], listener(), now=context.clock().now(),
                                     settings=settings())
    return {track_id: {"hearing": hearing, "sources": sources, "buy_url": _buy_url(track_id)}
            for track_id, (hearing, sources) in found.items()}


def artist_tracks(artist, limit: int = 12) -> list[Track]:
    """The artist's most recent public tracks, for the artist page's player."""
    session = context.db()
    now = context.clock().now()
    releases = session.scalars(select(Release).where(Release.artist_id == artist.id)
                               .order_by(Release.id.desc()).limit(20)).all()
    tracks = []
    for release in releases:
        if catalog.is_public(release, now):
            tracks += [t for t in release.tracks if catalog.is_track_public(t, now) and t.asset_id]
        if len(tracks) >= limit:
            break
    return tracks[:limit]


def plays_of_payee(payee, days: int = 30) -> dict | None:
    """The dashboard's plays: per track the payee may see, counted plays per UTC day over the last `days`
    (today included), and the days' totals for the chart."""
    if payee is None:
        return None
    last_day = context.clock().now().astimezone(UTC).date()
    rows = plays.payee_daily_plays(context.db(), payee.id, first_day=last_day - timedelta(days=days - 1),
                                   last_day=last_day)
    if not rows:
        return None
    totals = [(day, sum(row["days"][i][1] for row in rows)) for i, (day, _) in enumerate(rows[0]["days"])]
    return {"tracks": rows, "totals": totals, "peak": max(n for _, n in totals), "sum": sum(n for _, n in totals)}


# --- streams ----------------------------------------------------------------------------------------------
@bp.get("/stream/<name>")
@access(public=True)
def stream(name: str):
    """A stream copy from a short-lived signed URL, with ranges and conditional requests (no database)."""
    runtime = context.runtime()
    found = listening.verify_stream(name, secret=runtime.config.secret_key, now=runtime.clock.now())
    store = MediaStore(runtime.config.media_path)
    path = store.path_for("renditions", found.sha256, "." + found.extension)
    if not path.is_file():
        abort(404)
    remaining = found.expires_at - int(runtime.clock.now().timestamp())
    return send_stream(path, mimetype=found.mime, etag=found.sha256, cache_seconds=remaining,
                       x_accel=runtime.config.x_accel_redirect, relative=path.relative_to(store.root).as_posix())


# --- plays ------------------------------------------------------------------------------------------------
def ticket_json(ticket: listening.Ticket, track_id: int) -> dict:
    hearing = ticket.hearing
    body = {
        "track_id": track_id,
        "access": hearing.access,
        "reason": hearing.reason,
        "full_plays_left": hearing.full_plays_left,
        "ad_first": ticket.ad_first,
        "vast_url": url_for("web_ads.vast", slot="player", track=track_id) if ticket.ad_first else None,
        "session_id": ticket.session_id,
        "play_token": ticket.play_token,
        "beacon_url": url_for("web_listening.beacon"),
        "duration_ms": ticket.duration_ms,
        "expires_at": ticket.expires_at,
        "sources": [{"url": s.url, "type": s.mime, "codec": s.codec} for s in ticket.sources],
        "buy_url": _buy_url(track_id) if hearing.offer_purchase else None,
    }
    return body


def _body() -> dict:
    """A JSON object or a form, as a dict (anything else is an empty one)."""
    data = request.get_json(silent=True) if request.is_json else request.form
    return data if isinstance(data, dict) or hasattr(data, "getlist") else {}


@bp.post("/listen/tracks/<int:track_id>/play")
@access(public=True)
def start_play(track_id: int):
    """Start a play: stream URLs (full or the 30-second preview), whether an audio ad plays first, and the
    play token for beacons. A priced track's full stream spends one of the listener's full plays (once per
    listening session)."""
    data = _body()
    session_id = data.get("session_id") or None
    if session_id is not None and (not isinstance(session_id, str) or len(session_id) > 32):
        session_id = None
    ticket = listening.start_play(context.db(), track_id, listener(), session_id=session_id, settings=settings(),
                                  clock=context.clock())
    response = jsonify(ticket_json(ticket, track_id))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/listen/beacon")
@access(public=True, csrf=False)
def beacon():
    """A play beacon (sendBeacon or fetch): how much of a play has been heard. Always 204: the client is not
    told whether it counted. Signed and bound to the listener, so no CSRF token is needed.

    The beacon is the hottest write on the site (every listener, every ten seconds), and nothing else in the
    request writes. The view checks the report (signature, listener, bot filter) and offers it to this
    process's beacon batches (core.batching), answering at once: the reports that arrive while one batch is
    written go into the next, and each batch is one pipelined Redis round trip and one SQL statement
    (catalog.plays) on a pooled DB-API connection in autocommit, its own transaction with no BEGIN, SET or
    COMMIT round trips and no ORM session. A report lost on the way (a worker killed before its batch was
    written, a database that refused it) does no harm a later one does not mend: each report carries the
    play's whole time heard so far, and the player sends one every ten seconds and at the end."""
    data = _body()
    token, raw = data.get("token"), data.get("heard_ms")
    try:
        heard_ms = int(raw)
    except (TypeError, ValueError):
        heard_ms = -1
    if isinstance(token, str) and 0 <= heard_ms <= MAX_BEACON_HEARD_MS:
        runtime = context.runtime()
        checked = listening.play_report(token, heard_ms, listener(), settings=settings(), clock=runtime.clock)
        if isinstance(checked, listening.HeardReport):
            beacon_batches(runtime).offer(checked)
    return Response(status=204, headers={"Cache-Control": "no-store"})


def beacon_batches(runtime) -> Batches:
    """This process's beacon batches (`drain()` waits for the reports offered so far to be written)."""
    return per_process(runtime.extras, "beacon_batches",
                       lambda: Batches(partial(_count_batch, runtime), name="play-beacon-batches",
                                       max_batch=BEACON_BATCH_MAX, drain_at_exit=True))


def _count_batch(runtime, batch: list[listening.HeardReport]) -> list[str]:
    try:
        return _count(runtime, batch)
    except psycopg.OperationalError:
        return _count(runtime, batch)  # a connection the database had closed: once more, on a new one


def _count(runtime, batch: list[listening.HeardReport]) -> list[str]:
    connection = beacon_engine(runtime).raw_connection()  # the pool's DB-API connection, in autocommit
    try:
        return listening.count_plays(connection, runtime.redis, batch)
    except psycopg.OperationalError:
        if connection.dbapi_connection is not None and connection.dbapi_connection.closed:
            connection.invalidate()  # not back into the pool
        raise
    finally:
        connection.close()


def beacon_engine(runtime):
    """The beacons' own pool of autocommit connections to the app's database, made on first use: no
    pre-ping round trip per checkout (a connection the server closed is retried once instead), so a batch
    of beacons is one Redis and one PostgreSQL round trip. The beacons' statement is prepared on each
    connection and planned once there (a generic plan: planning it for every batch took longer than running
    it). Disposed with the app."""
    engine = runtime.extras.get("beacon_engine")
    if engine is None:
        made = make_engine(runtime.engine.url.render_as_string(hide_password=False), pool_pre_ping=False,
                           isolation_level="AUTOCOMMIT", pool_recycle=1800, pool_size=BEACON_POOL_SIZE,
                           max_overflow=BEACON_POOL_SIZE // 2,
                           connect_args={"options": "-c plan_cache_mode=force_generic_plan"})
        engine = runtime.extras.setdefault("beacon_engine", made)
        if engine is not made:  # another thread made one first
            made.dispose()
        else:
            weakref.finalize(runtime, made.dispose)
    return engine


@bp.get("/tracks/<int:track_id>/waveform.json")
@access(public=True)
def waveform(track_id: int):
    """The track's waveform peaks (min/max per bucket) for the player to draw."""
    session = context.db()
    track = session.get(Track, track_id)
    if track is None or track.asset_id is None or not catalog.is_track_public(track, context.clock().now()):
        abort(404)
    peaks = renditions.waveform_peaks(session, MediaStore(context.config().media_path), track.asset_id)
    if peaks is None:
        abort(404)
    response = jsonify(peaks)
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


@bp.post("/studio/tracks/<int:track_id>/previews-only")
@access("artist", "admin")
def previews_only(track_id: int):
    """The artist's choice: a priced track is only ever heard as its 30-second preview (or not)."""
    session = context.db()
    track = catalog.get_track(session, track_id)
    catalog.require_member(session, track.release.artist_id, current_user())
    plays.set_previews_only(session, track, request.form.get("previews_only") == "on")
    flash("Listeners hear only the 30-second preview of this track." if track.previews_only else
          "Listeners hear this track in full a few times before the preview.", "success")
    return redirect(url_for("web_studio.release", release_id=track.release_id), code=303)


# --- the track page -----------------------------------------------------------------------------------------
@bp.get("/tracks/<int:track_id>")
@access(public=True)
def track_page(track_id: int):
    session = context.db()
    track = session.get(Track, track_id)
    now = context.clock().now()
    if track is not None and track.status == "taken_down" and (case := track_notice(session, track.id)):
        # a takedown notice made it unavailable: say so, with HTTP's own status for it (issue 11)
        return render_template("rights/unavailable.html", release=track.release, track=track,
                               notices={track.id: case}), 451
    if track is None or not catalog.is_track_public(track, now):
        abort(404)
    release = track.release
    return render_template("listening/track.html", track=track, release=release,
                           price=catalog.effective_price(track), siblings=[t for t in release.tracks
                                                                           if catalog.is_track_public(t, now)])
