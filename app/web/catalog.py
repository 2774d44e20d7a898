"""Public catalog pages (browse, search, artist, release) and delivery (grant redemption, the file itself)."""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, redirect, render_template, request, send_file, url_for
from sqlalchemy import select

from app import context
from app.api.catalog import media_store
from app.auth import access, current_user
from catalog import search, services
from catalog.delivery import (
    delivery_expiry,
    delivery_token,
    find_download,
    safe_filename,
    tag_values,
    tagged_copy,
    verify_delivery_token,
)
from catalog.errors import CatalogError, TrackUnavailable
from catalog.models import Release

bp = Blueprint("web_catalog", __name__)

HOME_SECTION = "catalog/_home_section.html"


def init_app(app) -> None:
    app.jinja_env.globals["nav_links"].extend([
        ("Music", "web_catalog.browse", ()),
        ("Search", "web_catalog.search_page", ()),
    ])
    sections = app.extensions["ninety"].extras.setdefault("home_sections", [])
    if HOME_SECTION not in sections:
        sections.append(HOME_SECTION)
    app.jinja_env.globals["catalog_new_releases"] = _new_releases
    app.jinja_env.globals["catalog_download_action"] = download_action


def _new_releases(limit: int = 6) -> list[dict]:
    try:
        return search.browse_releases(context.db(), limit=limit).items
    except CatalogError:
        return []


def download_action(track, release) -> dict | None:
    """What the release page offers for a track: the ad gate, a purchase, or nothing yet.

    Other areas register their endpoints in `app.extensions["ninety"].extras`: `track_gate_endpoint`
    (called with track_id) for free-with-ads tracks, `release_buy_endpoint` (called with release_id) and
    `track_buy_endpoint` (track_id) for sales.
    """
    from flask import current_app

    extras = current_app.extensions["ninety"].extras
    if track.status != "published":
        return None
    price = services.effective_price(track)
    if price["price_model"] == "free_with_ads":
        endpoint = extras.get("track_gate_endpoint")
        if endpoint:
            return {"label": "Free download", "url": url_for(endpoint, track_id=track.id), "method": "get"}
        return None
    endpoint = extras.get("track_buy_endpoint")
    if endpoint and track.price_model:
        return {"label": "Buy track", "url": url_for(endpoint, track_id=track.id), "method": "get"}
    return None


# --- discovery ----------------------------------------------------------------------------------------------
@bp.get("/music")
@access(public=True)
def browse():
    session = context.db()
    services.promote_due_releases(session, context.clock())
    genre = request.args.get("genre", "")[:60] or None
    page = search.browse_releases(session, genre=genre, limit=24, cursor=request.args.get("cursor"))
    return render_template("catalog/browse.html", page=page, genre=genre, genres=search.genres(session),
                           artists=search.browse_artists(session, limit=50).items)


@bp.get("/search")
@access(public=True)
def search_page():
    query = request.args.get("q", "")[:200]
    page = search.search_tracks(context.db(), query, limit=25, cursor=request.args.get("cursor")) if query \
        else search.Page([], None)
    return render_template("catalog/search.html", query=query, page=page)


@bp.get("/artists/<artist_slug>")
@access(public=True)
def artist_page(artist_slug: str):
    session = context.db()
    artist = services.get_artist_by_slug(session, artist_slug)
    page = search.browse_releases(session, artist_id=artist.id, limit=50, cursor=request.args.get("cursor"))
    user = current_user()
    is_member = user is not None and services.is_member(session, artist.id, user.id)
    return render_template("catalog/artist.html", artist=artist, page=page, is_member=is_member)


@bp.get("/artists/<artist_slug>/<release_slug>")
@access(public=True)
def release_page(artist_slug: str, release_slug: str):
    session = context.db()
    release = services.get_release_by_slug(session, artist_slug, release_slug)
    user = current_user()
    is_member = user is not None and (services.is_member(session, release.artist_id, user.id)
                                      or user.has_role("admin"))
    if not services.is_public(release, context.clock().now()) and not is_member:
        abort(404)
    tracks = [t for t in release.tracks if t.status != "taken_down" or is_member]
    total_ms = sum(t.asset.duration_ms for t in tracks if t.asset)
    from flask import current_app

    buy_endpoint = current_app.extensions["ninety"].extras.get("release_buy_endpoint")
    buy_url = url_for(buy_endpoint, release_id=release.id) if buy_endpoint and release.status == "published" \
        else None
    return render_template("catalog/release.html", release=release, tracks=tracks, is_member=is_member,
                           price=services.release_price(release), total_ms=total_ms,
                           effective_price=services.effective_price, release_buy_url=buy_url)


@bp.get("/media/covers/<sha256>")
@access(public=True)
def cover(sha256: str):
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        abort(404)
    mime = context.db().scalar(select(Release.cover_mime).where(Release.cover_sha256 == sha256).limit(1))
    path = media_store().path_for("images", sha256)
    if mime is None or not path.exists():
        abort(404)
    response = send_file(path, mimetype=mime, etag=sha256, conditional=True, max_age=86400)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


# --- delivery -------------------------------------------------------------------------------------------------
@bp.get("/download/<token>")
@access(public=True)
def download(token: str):
    """Redeem a download grant (once) and send the browser to the file it allows."""
    config = context.config()
    session = context.db()
    record = services.redeem_grant(session, token, secret=config.secret_key, clock=context.clock())
    track = services.get_track(session, record.track_id)
    name = safe_filename(f"{track.release.artist.name} - {track.title}", track.asset.extension)
    file_token = delivery_token(record.id, delivery_expiry(session, record), config.secret_key)
    return redirect(url_for("web_catalog.deliver", file_token=file_token, filename=name), code=303)


@bp.get("/files/<file_token>/<filename>")
@access(public=True)
def deliver(file_token: str, filename: str):
    """The tagged file (HTTP Range, ETag/If-None-Match, sendfile or X-Accel-Redirect)."""
    config = context.config()
    session = context.db()
    download_id = verify_delivery_token(file_token, secret=config.secret_key, clock=context.clock())
    record = find_download(session, download_id)
    track = services.get_track(session, record.track_id)
    if track.status == "taken_down" or track.release.status == "taken_down":
        raise TrackUnavailable("This track has been taken down and cannot be downloaded.", code="track_taken_down")
    asset = track.asset
    store = media_store()
    path, fingerprint = tagged_copy(store, asset, tag_values(track, record.via, config.public_url))
    name = safe_filename(f"{track.release.artist.name} - {track.title}", asset.extension)
    if config.x_accel_redirect:
        response = Response(status=200, mimetype=asset.mime)
        relative = path.relative_to(store.root).as_posix()
        response.headers["X-Accel-Redirect"] = f"{config.x_accel_redirect.rstrip('/')}/{relative}"
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        response.headers["ETag"] = f'"{fingerprint}"'
        response.headers["Cache-Control"] = "private, no-store"
        return response
    response = send_file(path, mimetype=asset.mime, as_attachment=True, download_name=name, etag=fingerprint,
                         conditional=True, max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response
