"""The artist studio: profile, releases, uploads (with per-file progress), prices, splits, preview, publish.

Every form works without JavaScript; app/static/catalog/upload.js only adds per-file upload progress.
Bad input re-renders the page with the reason (422) and nothing written: the request's session is rolled
back for any response of 400 or more.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from app import context
from app.api.catalog import media_store, owned_release, owned_track, request_files, upload_files
from app.auth import access, current_user
from catalog import renditions, services
from catalog.errors import InvalidCatalogInput, InvalidSplitSheet
from catalog.payees import invitations_for_artist
from catalog.uploads import store_cover
from core.errors import NinetyError

bp = Blueprint("web_studio", __name__, url_prefix="/studio")


def init_app(app) -> None:
    app.jinja_env.globals["nav_links"].append(("Studio", "web_studio.index", ("artist",)))


def _render_release(release, *, error: str | None = None, status: int = 200, form=None):
    session = context.db()
    payees = services.payees_for_artist(session, release.artist_id)
    sheets = {t.id: services.current_split_sheet(session, t.id, context.clock().now()) for t in release.tracks}
    # Only the links of invitations this artist sent itself, never those of payees it merely lists.
    invitations = {p.id: _invitation_link(p) for p in invitations_for_artist(session, release.artist_id)}
    media_jobs = renditions.stream_jobs(session, [t.asset_id for t in release.tracks if t.asset_id])
    return render_template("catalog/studio_release.html", release=release, payees=payees, sheets=sheets,
                           invitations=invitations, media_jobs=media_jobs,
                           price=services.release_price(release), error=error, form=form or {},
                           max_upload_mb=context.config().max_upload_bytes // (1024 * 1024)), status


def _invitation_link(payee) -> str:
    return url_for("web_catalog.invitation", token=services.invitation_token(payee, context.config().secret_key),
                   _external=True)


def _fail(release, exc: NinetyError, form=None):
    context.db().rollback()
    return _render_release(release, error=exc.message, status=exc.status if exc.status >= 400 else 422, form=form)


@bp.get("")
@access("artist", "admin")
def index():
    session = context.db()
    artists = services.artists_for_user(session, current_user().id)
    return render_template("catalog/studio_index.html", artists=artists, error=None, form={})


@bp.post("/artists")
@access("artist", "admin")
def create_artist():
    form = {k: request.form.get(k, "") for k in ("name", "bio", "location", "links", "currency")}
    try:
        artist = services.create_artist(context.db(), user=current_user(), name=form["name"], bio=form["bio"],
                                        location=form["location"], links=form["links"],
                                        currency=form["currency"] or context.config().currency)
    except NinetyError as exc:
        context.db().rollback()
        artists = services.artists_for_user(context.db(), current_user().id)
        return render_template("catalog/studio_index.html", artists=artists, error=exc.message, form=form), 422
    flash(f"Artist profile “{artist.name}” created.", "success")
    return redirect(url_for("web_studio.index"), code=303)


@bp.route("/artists/<int:artist_id>", methods=["GET", "POST"])
@access("artist", "admin")
def edit_artist(artist_id: int):
    session = context.db()
    artist = services.require_member(session, artist_id, current_user())
    error = None
    if request.method == "POST":
        try:
            services.update_artist(session, artist, name=request.form.get("name", ""),
                                   bio=request.form.get("bio", ""), location=request.form.get("location", ""),
                                   links=request.form.get("links", ""))
            flash("Profile saved.", "success")
            return redirect(url_for("web_studio.edit_artist", artist_id=artist.id), code=303)
        except NinetyError as exc:
            session.rollback()
            error = exc.message
    return render_template("catalog/studio_artist.html", artist=artist, error=error,
                           members=services.members_of(session, artist.id)), 422 if error else 200


@bp.post("/artists/<int:artist_id>/image")
@access("artist", "admin")
def artist_image(artist_id: int):
    session = context.db()
    artist = services.require_member(session, artist_id, current_user())
    file = request.files.get("image")
    try:
        if file is None or not file.filename:
            raise InvalidCatalogInput("Choose an image file.", code="no_file", field="image")
        sha, mime = store_cover(media_store(), file.stream.read(10 * 1024 * 1024 + 1))
        services.set_artist_image(session, artist, sha, mime)
    except NinetyError as exc:
        session.rollback()
        return render_template("catalog/studio_artist.html", artist=artist, error=exc.message,
                               members=services.members_of(session, artist.id)), 422
    flash("Image saved.", "success")
    return redirect(url_for("web_studio.edit_artist", artist_id=artist.id), code=303)


@bp.post("/artists/<int:artist_id>/members")
@access("artist", "admin")
def add_member(artist_id: int):
    session = context.db()
    artist = services.require_member(session, artist_id, current_user())
    try:
        user = services.add_member(session, artist, request.form.get("email", ""))
    except NinetyError as exc:
        session.rollback()
        return render_template("catalog/studio_artist.html", artist=artist, error=exc.message,
                               members=services.members_of(session, artist.id)), exc.status
    flash(f"{user.display_name} can now manage {artist.name}.", "success")
    return redirect(url_for("web_studio.edit_artist", artist_id=artist.id), code=303)


@bp.post("/artists/<int:artist_id>/releases")
@access("artist", "admin")
def create_release(artist_id: int):
    session = context.db()
    services.require_member(session, artist_id, current_user())
    try:
        release = services.create_release(session, artist_id, title=request.form.get("title", ""),
                                          kind=request.form.get("kind", "album"),
                                          genre=request.form.get("genre", ""), tags=request.form.get("tags", ""),
                                          release_date=_date(request.form.get("release_date")))
    except NinetyError as exc:
        session.rollback()
        artists = services.artists_for_user(session, current_user().id)
        return render_template("catalog/studio_index.html", artists=artists, error=exc.message,
                               form=dict(request.form)), 422
    return redirect(url_for("web_studio.release", release_id=release.id), code=303)


def _datetime(value: str | None) -> datetime | None:
    if not value or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidCatalogInput("Write the time as YYYY-MM-DDTHH:MM (UTC).", code="invalid_datetime",
                                  field="publish_at") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidCatalogInput("Write the release date as YYYY-MM-DD.", code="invalid_date",
                                  field="release_date") from None


@bp.get("/releases/<int:release_id>")
@access("artist", "admin")
def release(release_id: int):
    return _render_release(owned_release(release_id))


@bp.post("/releases/<int:release_id>")
@access("artist", "admin")
def update_release(release_id: int):
    release = owned_release(release_id)
    try:
        services.update_release(context.db(), release, title=request.form.get("title", ""),
                                kind=request.form.get("kind", release.kind), genre=request.form.get("genre", ""),
                                tags=request.form.get("tags", ""), description=request.form.get("description", ""),
                                upc=request.form.get("upc") or None,
                                release_date=_date(request.form.get("release_date")))
    except NinetyError as exc:
        return _fail(release, exc)
    flash("Release details saved.", "success")
    return redirect(url_for("web_studio.release", release_id=release.id), code=303)


@bp.post("/releases/<int:release_id>/cover")
@access("artist", "admin")
def upload_cover(release_id: int):
    release = owned_release(release_id)
    file = request.files.get("cover")
    try:
        if file is None or not file.filename:
            raise InvalidCatalogInput("Choose an image file.", code="no_file", field="cover")
        data = file.stream.read(10 * 1024 * 1024 + 1)
        sha, mime = store_cover(media_store(), data)
        services.set_cover(context.db(), release, sha, mime)
    except NinetyError as exc:
        return _fail(release, exc)
    flash("Cover art saved.", "success")
    return redirect(url_for("web_studio.release", release_id=release.id), code=303)


@bp.post("/releases/<int:release_id>/tracks")
@access("artist", "admin")
def upload(release_id: int):
    """The no-JavaScript upload: every chosen file in one multipart form."""
    release = owned_release(release_id)
    try:
        results = upload_files(release, request_files())
    except NinetyError as exc:
        return _fail(release, exc)
    flash(f"{len(results)} file{'s' if len(results) != 1 else ''} uploaded and checked.", "success")
    return redirect(url_for("web_studio.release", release_id=release.id), code=303)


@bp.post("/tracks/<int:track_id>")
@access("artist", "admin")
def update_track(track_id: int):
    track = owned_track(track_id)
    try:
        position = request.form.get("position", "").strip()
        if position and not position.isdigit():
            raise InvalidCatalogInput("The track number must be a whole number.", code="invalid_position")
        services.update_track(context.db(), track, title=request.form.get("title", ""),
                              position=int(position) if position else None,
                              isrc=request.form.get("isrc") or None, explicit=bool(request.form.get("explicit")))
    except NinetyError as exc:
        return _fail(track.release, exc)
    flash(f"Track “{track.title}” saved.", "success")
    return redirect(url_for("web_studio.release", release_id=track.release_id), code=303)


@bp.post("/tracks/<int:track_id>/price")
@access("artist", "admin")
def set_track_price(track_id: int):
    track = owned_track(track_id)
    model = request.form.get("price_model") or None
    amount = request.form.get("amount") or None
    try:
        services.set_track_price(context.db(), track, model, price=amount if model == "fixed" else None,
                                 minimum=amount if model == "name_your_price" else None)
    except NinetyError as exc:
        return _fail(track.release, exc)
    flash(f"Price of “{track.title}” saved.", "success")
    return redirect(url_for("web_studio.release", release_id=track.release_id), code=303)


@bp.post("/tracks/<int:track_id>/delete")
@access("artist", "admin")
def delete_track(track_id: int):
    track = owned_track(track_id)
    release = track.release
    try:
        services.delete_track(context.db(), track)
    except NinetyError as exc:
        return _fail(release, exc)
    flash("Track removed.", "info")
    return redirect(url_for("web_studio.release", release_id=release.id), code=303)


@bp.get("/releases/<int:release_id>/media-status")
@access("artist", "admin")
def media_status(release_id: int):
    """The stream-copy jobs of a release's tracks, for the studio page's progress (media-status.js)."""
    release = owned_release(release_id)
    jobs = renditions.stream_jobs(context.db(), [t.asset_id for t in release.tracks if t.asset_id])
    tracks = {str(t.id): {"status": job.status, "progress": job.progress, "step": job.step,
                          "error": job.error_detail} for t in release.tracks if (job := jobs.get(t.asset_id))}
    response = jsonify({"tracks": tracks})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/tracks/<int:track_id>/media-retry")
@access("artist", "admin")
def retry_media(track_id: int):
    """Queue the stream copies of a track again after a failed job (after the request's commit)."""
    track = owned_track(track_id)
    if track.asset_id is not None:
        renditions.request_streams(context.db(), track.asset_id)
        flash("The stream copies will be made again.", "info")
    return redirect(url_for("web_studio.release", release_id=track.release_id), code=303)


@bp.post("/tracks/<int:track_id>/preview")
@access("artist", "admin")
def preview(track_id: int):
    track = owned_track(track_id)
    config = context.config()
    try:
        token = services.issue_grant(context.db(), track_id=track.id, listener_id=f"u{current_user().id}",
                                     via="preview", secret=config.secret_key, clock=context.clock(),
                                     ttl_s=config.download_grant_ttl_s)
    except NinetyError as exc:
        return _fail(track.release, exc)
    return redirect(url_for("web_catalog.download", token=token), code=303)


@bp.post("/releases/<int:release_id>/price")
@access("artist", "admin")
def set_price(release_id: int):
    release = owned_release(release_id)
    form = dict(request.form)
    try:
        services.set_release_price(context.db(), release, request.form.get("price_model", ""),
                                   price=request.form.get("price") or None,
                                   minimum=request.form.get("minimum_price") or None,
                                   suggested=request.form.get("suggested_price") or None)
    except NinetyError as exc:
        return _fail(release, exc, form=form)
    flash("Price saved.", "success")
    return redirect(url_for("web_studio.release", release_id=release.id), code=303)


def _percent_to_bp(text: str) -> int:
    text = text.strip().rstrip("%").strip()
    try:
        whole, _, frac = text.partition(".")
        if not whole.isdigit() or (frac and (not frac.isdigit() or len(frac) > 2)):
            raise ValueError
        return int(whole) * 100 + int(frac.ljust(2, "0") if frac else 0)
    except ValueError:
        raise InvalidSplitSheet(f"{text[:20]!r} is not a percentage; write it like 70 or 12.5.",
                                code="invalid_share") from None


@bp.post("/releases/<int:release_id>/split")
@access("artist", "admin")
def set_split(release_id: int):
    """One split for every track: existing payees by percentage, plus collaborators invited by email."""
    session = context.db()
    release = owned_release(release_id)
    form = dict(request.form)
    try:
        shares: list[tuple[int, int]] = []
        for payee in services.payees_for_artist(session, release.artist_id):
            raw = request.form.get(f"share_{payee.id}", "").strip()
            if raw:
                bp_value = _percent_to_bp(raw)
                if bp_value:
                    shares.append((payee.id, bp_value))
        for index in range(3):
            email = request.form.get(f"new_email_{index}", "").strip()
            raw = request.form.get(f"new_share_{index}", "").strip()
            if not email and not raw:
                continue
            if not email or not raw:
                raise InvalidSplitSheet("A new collaborator needs both an email and a share.",
                                        code="incomplete_collaborator")
            payee = services.invite_payee(session, release.artist_id, email=email,
                                          display_name=request.form.get(f"new_name_{index}") or None,
                                          invitation_link=_invitation_link)
            shares.append((payee.id, _percent_to_bp(raw)))
        services.set_release_split(session, release, shares, clock=context.clock(), user_id=current_user().id)
    except NinetyError as exc:
        return _fail(release, exc, form=form)
    flash("Split saved for every track.", "success")
    return redirect(url_for("web_studio.release", release_id=release.id), code=303)


@bp.post("/releases/<int:release_id>/publish")
@access("artist", "admin")
def publish(release_id: int):
    release = owned_release(release_id)
    try:
        at = _datetime(request.form.get("publish_at"))
        services.publish_release(context.db(), release, clock=context.clock(), at=at)
    except NinetyError as exc:
        return _fail(release, exc)
    if release.status == "scheduled":
        flash(f"Scheduled: the release goes live at {release.publish_at:%Y-%m-%d %H:%M} UTC.", "success")
        return redirect(url_for("web_studio.release", release_id=release.id), code=303)
    flash("Published. Your release is live.", "success")
    return redirect(url_for("web_catalog.release_page", artist_slug=release.artist.slug,
                            release_slug=release.slug), code=303)
