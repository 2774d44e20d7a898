"""Public catalog pages (browse, search, artist, release) and delivery (grant redemption, the file itself)."""

from __future__ import annotations

import dataclasses
import json
import re

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, send_file, url_for
from redis.exceptions import RedisError
from sqlalchemy import select

from app import context
from app.api.catalog import media_store
from app.auth import access, current_user
from app.errors import wants_html
from app.transactions import writes_on_get
from catalog import renditions, search, services
from catalog.delivery import (
    Delivery,
    content_disposition,
    delivery_expiry,
    delivery_facts,
    delivery_token,
    is_deliverable,
    safe_filename,
    tagged_copy,
    verify_delivery_token,
)
from catalog.errors import CatalogError, TrackUnavailable
from catalog.models import Artist, Release
from rights.services import track_notice

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
    app.jinja_env.globals["catalog_my_payees"] = _my_payees
    panels = app.jinja_env.globals.setdefault("account_panels", [])
    if "catalog/_account_panel.html" not in panels:
        panels.append("catalog/_account_panel.html")
    app.jinja_env.globals["catalog_download_action"] = download_action


def _new_releases(limit: int = 6) -> list[dict]:
    try:
        return search.browse_releases(context.db(), now=context.clock().now(), limit=limit).items
    except CatalogError:
        return []


def _my_payees() -> list:
    user = current_user()
    return services.payees_of_user(context.db(), user.id) if user is not None else []


def download_action(track, release) -> dict | None:
    """What the release page offers for a track: the ad gate, a purchase, or nothing yet.

    Other areas register their endpoints in `app.extensions["ninety"].extras`: `track_gate_endpoint`
    (called with track_id) for free-with-ads tracks, `release_buy_endpoint` (called with release_id) and
    `track_buy_endpoint` (track_id) for sales.
    """
    from flask import current_app

    extras = current_app.extensions["ninety"].extras
    if not services.is_track_public(track, context.clock().now()):
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
    now = context.clock().now()
    genre = request.args.get("genre", "")[:60] or None
    page = search.browse_releases(session, now=now, genre=genre, limit=24, cursor=request.args.get("cursor"))
    return render_template("catalog/browse.html", page=page, genre=genre, genres=search.genres(session, now=now),
                           artists=search.browse_artists(session, now=now, limit=50).items)


@bp.get("/search")
@access(public=True)
def search_page():
    query = request.args.get("q", "")[:200]
    page = search.search_tracks(context.db(), query, now=context.clock().now(), limit=25,
                                cursor=request.args.get("cursor")) if query else search.Page([], None)
    return render_template("catalog/search.html", query=query, page=page)


@bp.get("/artists/<artist_slug>")
@access(public=True)
def artist_page(artist_slug: str):
    session = context.db()
    artist = services.get_artist_by_slug(session, artist_slug)
    page = search.browse_releases(session, now=context.clock().now(), artist_id=artist.id, limit=50,
                                  cursor=request.args.get("cursor"))
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
    public = services.is_public(release, context.clock().now())
    notices = _takedown_notices(session, release)
    if not public and not is_member:
        if release.status == "taken_down" and notices:  # says why, with HTTP's own status for it
            return render_template("rights/unavailable.html", release=release, notices=notices), 451
        abort(404)
    tracks = [t for t in release.tracks if t.status != "taken_down" or is_member or t.id in notices]
    total_ms = sum(t.asset.duration_ms for t in tracks if t.asset)
    from flask import current_app

    buy_endpoint = current_app.extensions["ninety"].extras.get("release_buy_endpoint")
    buy_url = url_for(buy_endpoint, release_id=release.id) if buy_endpoint and public else None
    return render_template("catalog/release.html", release=release, tracks=tracks, is_member=is_member, public=public,
                           price=services.release_price(release), total_ms=total_ms,
                           effective_price=services.effective_price, release_buy_url=buy_url,
                           takedown_notices=notices)


def _takedown_notices(session, release) -> dict:
    """The takedown case that makes each unavailable track of the release unavailable, by track id."""
    found = {t.id: track_notice(session, t.id) for t in release.tracks if t.status == "taken_down"}
    return {track_id: case for track_id, case in found.items() if case is not None}


@bp.get("/media/covers/<sha256>")
@access(public=True)
def cover(sha256: str):
    return image(sha256)


@bp.get("/media/images/<sha256>")
@access(public=True)
def image(sha256: str):
    """Cover art and artist images (only ones the catalog refers to), cached for good: the name is the hash."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        abort(404)
    session = context.db()
    mime = session.scalar(select(Release.cover_mime).where(Release.cover_sha256 == sha256).limit(1)) or \
        session.scalar(select(Artist.image_mime).where(Artist.image_sha256 == sha256).limit(1))
    path = media_store().path_for("images", sha256)
    if mime is None or not path.exists():
        abort(404)
    response = send_file(path, mimetype=mime, etag=sha256, conditional=True, max_age=86400)
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


# --- collaborators accepting an invitation ---------------------------------------------------------------------
@bp.route("/invitations/<token>", methods=["GET", "POST"])
@access()
def invitation(token: str):
    session = context.db()
    secret = context.config().secret_key
    payee = services.payee_for_invitation(session, token, secret)
    inviter = services.get_artist(session, payee.invited_by_artist_id) if payee.invited_by_artist_id else None
    if request.method == "POST":
        services.accept_invitation(session, token, current_user(), secret=secret, clock=context.clock())
        flash(f"Accepted: your earnings as {payee.display_name} are now linked to this account.", "success")
        return redirect(url_for("web_accounts.account"), code=303)
    return render_template("catalog/invitation.html", payee=payee, inviter=inviter, token=token)


# --- delivery -------------------------------------------------------------------------------------------------
@bp.get("/download/<token>")
@access(public=True)
@writes_on_get("a single-use download link a browser or download manager follows: redeeming records it")
def download(token: str):
    """Redeem a download grant (once) and send the browser to the file it allows."""
    config = context.config()
    session = context.db()
    record = services.redeem_grant(session, token, secret=config.secret_key, clock=context.clock())
    facts = delivery_facts(session, record.id, config.public_url)
    # a format the track cannot give is refused (422) before anything is committed: the grant stays unused
    raw_format = renditions.chosen_format(session, facts.track_id, request.args.get("format"))
    _remember(facts)
    extension = renditions.download_extension(session, facts.track_id, raw_format) if raw_format else facts.extension
    name = safe_filename(f"{facts.artist_name} - {facts.title}", extension)
    file_token = delivery_token(record.id, delivery_expiry(session, record), config.secret_key)
    return redirect(url_for("web_catalog.deliver", file_token=file_token, filename=name, format=raw_format),
                    code=303)


# What serving a download needs is kept in Redis for a minute, so the file requests (a browser's, or a
# download manager's ranges) do not rebuild it; whether the track may still be served is asked every time
# (catalog.delivery.is_deliverable, one primary-key read), so a takedown stops open links at once.
FACTS_TTL_S = 60


def _remember(facts: Delivery) -> None:
    try:
        context.redis().set(f"catalog:delivery:{facts.download_id}", json.dumps(dataclasses.asdict(facts)),
                            ex=FACTS_TTL_S)
    except RedisError:  # the cache is an optimisation; the database has the facts
        pass


def _recall(download_id: int) -> Delivery | None:
    try:
        raw = context.redis().get(f"catalog:delivery:{download_id}")
    except RedisError:
        return None
    return Delivery(**json.loads(raw)) if raw else None


@bp.get("/files/<file_token>/<filename>")
@access(public=True)
@writes_on_get("a download format is made on first request: asking for one not made yet queues its job")
def deliver(file_token: str, filename: str):
    """The tagged file (HTTP Range, ETag/If-None-Match, sendfile or X-Accel-Redirect), in the chosen
    `?format=` if one was chosen: a format not made yet answers 202 with its job's progress until it is."""
    config = context.config()
    download_id = verify_delivery_token(file_token, secret=config.secret_key, clock=context.clock())
    facts = _recall(download_id)
    if facts is None:
        facts = delivery_facts(context.db(), download_id, config.public_url)
        _remember(facts)
    if facts.unavailable or not is_deliverable(context.db(), facts.track_id):
        raise TrackUnavailable("This track has been taken down and cannot be downloaded.", code="track_taken_down")
    store = media_store()
    mime, extension = facts.mime, facts.extension
    if request.args.get("format"):
        made = renditions.download_or_job(context.db(), store, facts.track_id,
                                          renditions.chosen_format(context.db(), facts.track_id,
                                                                   request.args["format"]),
                                          facts.tags, retry=request.args.get("retry") == "1")
        if not isinstance(made, renditions.DownloadFile):
            return preparing(made, request.args["format"])
        path, fingerprint, mime, extension = made.path, made.etag, made.mime, made.extension
    else:
        path, fingerprint = tagged_copy(store, facts, facts.tags)
    disposition = content_disposition(f"{facts.artist_name} - {facts.title}", extension)
    if config.x_accel_redirect:
        response = Response(status=200, mimetype=mime)
        relative = path.relative_to(store.root).as_posix()
        response.headers["X-Accel-Redirect"] = f"{config.x_accel_redirect.rstrip('/')}/{relative}"
        response.headers["Content-Disposition"] = disposition
        response.headers["ETag"] = f'"{fingerprint}"'
        response.headers["Cache-Control"] = "private, no-store"
        return response
    return send_media(path, mimetype=mime, disposition=disposition, etag=fingerprint)


def preparing(job, fmt: str):
    """The page (or JSON) a listener sees while their format is made: progress, then the file by itself."""
    failed = job.status == "failed"
    body = {"status": job.status, "progress": job.progress, "format": fmt,
            "error": job.error_detail if failed else None}
    if not wants_html():
        response = Response(json.dumps(body), status=503 if failed else 202, mimetype="application/json")
    else:
        label = renditions.FORMAT_LABELS.get(fmt, fmt)
        response = Response(render_template("listening/preparing.html", job=job, label=label, failed=failed,
                                            retry_url=url_for(request.endpoint, **request.view_args,
                                                              format=fmt, retry="1")),
                            status=503 if failed else 202)
    response.headers["Retry-After"] = "3"
    response.headers["Cache-Control"] = "no-store"
    return response


class _FileRange:
    """A WSGI body of `length` bytes of an open file, for servers without wsgi.file_wrapper."""

    def __init__(self, file, length: int, block: int = 1024 * 1024) -> None:
        self.file, self.remaining, self.block = file, length, block

    def __iter__(self):
        while self.remaining > 0:
            data = self.file.read(min(self.block, self.remaining))
            if not data:
                break
            self.remaining -= len(data)
            yield data

    def close(self) -> None:
        self.file.close()


def send_media(path, *, mimetype: str, disposition: str, etag: str) -> Response:
    """Serve a file as an attachment with ETag/If-None-Match and single byte ranges (If-Range honoured).

    The body is the server's wsgi.file_wrapper over a file positioned at the range's start, with
    Content-Length set, so gunicorn sends whole files and ranges alike with sendfile(2).
    """
    from werkzeug.http import quote_etag

    size = path.stat().st_size
    quoted = quote_etag(etag)
    headers = {"ETag": quoted, "Accept-Ranges": "bytes", "Cache-Control": "private, no-store",
               "Content-Disposition": disposition,
               "X-Content-Type-Options": "nosniff"}
    if request.if_none_match and request.if_none_match.contains(etag):
        return Response(status=304, headers=headers)
    start, length, status = 0, size, 200
    byte_range = request.range
    if byte_range is not None and (request.if_range.etag is None and request.if_range.date is None
                                   or request.if_range.etag == etag):
        span = byte_range.range_for_length(size)
        if span is None and len(byte_range.ranges) == 1:
            return Response(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
        if span is not None:  # several ranges at once: answer with the whole file instead
            start, stop = span
            length, status = stop - start, 206
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status=status, headers=headers, mimetype=mimetype)
    file = open(path, "rb")  # noqa: SIM115 - closed by the server through the body's close()
    file.seek(start)
    wrapper = request.environ.get("wsgi.file_wrapper")
    body = wrapper(file, 1024 * 1024) if wrapper is not None else _FileRange(file, length)
    response = Response(body, status=status, headers=headers, mimetype=mimetype, direct_passthrough=True)
    return response
