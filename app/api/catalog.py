"""Catalog API: artists, payees, releases, tracks (upload), prices, split sheets, publishing, search."""

from __future__ import annotations

from flask import Blueprint, request, url_for

from app import context
from app.api import API_PREFIX, load
from app.auth import access, current_user
from app.request_body import file_parts, is_multipart
from catalog import search, services
from catalog.errors import InvalidCatalogInput
from catalog.schemas import (
    ArtistCreateSchema,
    ArtistSchema,
    ArtistUpdateSchema,
    GrantSchema,
    PayeeInviteSchema,
    PayeeListSchema,
    PayeeSchema,
    PriceSchema,
    PublishSchema,
    ReleaseCreateSchema,
    ReleasePageSchema,
    ReleaseSchema,
    ReleaseUpdateSchema,
    SearchPageSchema,
    SplitSheetInputSchema,
    SplitSheetListSchema,
    SplitSheetSchema,
    TrackSchema,
    TrackUpdateSchema,
)
from catalog.storage import MediaStore
from catalog.uploads import MAX_COVER_BYTES, clean_filename, store_cover, upload_track
from core.errors import NinetyError, NotFound
from rights.staydown import screen_upload

bp = Blueprint("api_catalog", __name__, url_prefix=API_PREFIX)


# --- shared by the web pages ------------------------------------------------------------------------------
def media_store() -> MediaStore:
    return MediaStore(context.config().media_path)


class WebLinks:
    """Where a release's page and cover live on this site, for `ReleaseSchema(links=...)`."""

    def release_url(self, release) -> str:
        return url_for("web_catalog.release_page", artist_slug=release.artist.slug, release_slug=release.slug)

    def cover_url(self, release) -> str | None:
        return url_for("web_catalog.cover", sha256=release.cover_sha256) if release.cover_sha256 else None


def release_json(release) -> dict:
    return ReleaseSchema(links=WebLinks()).dump(release)


def track_json(track) -> dict:
    return TrackSchema().dump(track)


def owned_release(release_id: int):
    release = services.get_release(context.db(), release_id)
    services.require_member(context.db(), release.artist_id, current_user())
    return release


def owned_track(track_id: int):
    track = services.get_track(context.db(), track_id)
    services.require_member(context.db(), track.release.artist_id, current_user())
    return track


def visible_release(release_id: int):
    """A release anyone may see once public; its members (and admins) see drafts too."""
    session = context.db()
    release = services.get_release(session, release_id)
    if services.is_public(release, context.clock().now()):
        return release
    user = current_user()
    if user is not None and (user.has_role("admin") or services.is_member(session, release.artist_id, user.id)):
        return release
    raise NotFound("There is no such release.", code="release_not_found")


def upload_files(release, stream_items) -> list:
    """Run each (stream, filename) through the upload service; returns the new tracks.

    A per-file process, so it commits per step: each accepted file is committed before the next is read
    (a multi-file upload can take minutes, and an artist must not lose nine good files to a tenth bad one).
    When a file is refused, the ones before it are kept (committed) and the error names the file, why it was
    refused, and how many were kept; the request then rolls back only what the refused file began."""
    config = context.config()
    store = media_store()
    session = context.db()
    results = []
    for stream, filename in stream_items:
        try:
            result = upload_track(session, store, release, stream, filename, clock=context.clock(),
                                  max_bytes=config.max_upload_bytes, user_id=current_user().id,
                                  screen=screen_upload)
        except NinetyError as exc:
            name = clean_filename(filename)
            kept = len(results)
            exc.message = f"{name}: {exc.message}"
            if kept:
                exc.message += f" The {kept} file{'s' if kept != 1 else ''} before it {'were' if kept != 1 else 'was'} " \
                               "uploaded and kept."
            exc.details.update(filename=name, uploaded=kept)
            raise
        session.commit()  # this file is its own unit of work (see the docstring)
        results.append(result)
    return results


def request_files():
    """Multipart `file`/`files` parts, or a raw audio body named by ?filename=."""
    if is_multipart():
        files = file_parts("files", "file")
        if not files:
            raise InvalidCatalogInput("Choose at least one audio file to upload.", code="no_file", field="files")
        return [(f.stream, f.filename) for _, f in files]
    if request.mimetype.startswith("audio/") or request.mimetype == "application/octet-stream":
        return [(request.stream, request.args.get("filename", "upload")[:255])]
    raise InvalidCatalogInput("Send the audio as multipart/form-data (field 'files') or as the raw body with an "
                              "audio/* content type.", code="unsupported_media_type", status=415)


# --- artists and payees -----------------------------------------------------------------------------------
@bp.post("/artists")
@access("artist", "admin")
def create_artist():
    """Create an artist profile; the caller becomes its member and it gets its payee.
    ---
    post:
      requestBody:
        content:
          application/json:
            schema: ArtistCreateSchema
      responses:
        201:
          content:
            application/json:
              schema: ArtistSchema
    """
    data = load(ArtistCreateSchema())
    artist = services.create_artist(context.db(), user=current_user(), **data)
    return ArtistSchema().dump(artist), 201


@bp.get("/artists/<int:artist_id>")
@access(public=True)
def get_artist(artist_id: int):
    """An artist profile.
    ---
    get:
      responses:
        200:
          content:
            application/json:
              schema: ArtistSchema
    """
    return ArtistSchema().dump(services.get_artist(context.db(), artist_id))


@bp.patch("/artists/<int:artist_id>")
@access("artist", "admin")
def update_artist(artist_id: int):
    """Edit an artist profile (members only).
    ---
    patch:
      requestBody:
        content:
          application/json:
            schema: ArtistUpdateSchema
      responses:
        200:
          content:
            application/json:
              schema: ArtistSchema
    """
    data = load(ArtistUpdateSchema())
    artist = services.require_member(context.db(), artist_id, current_user())
    return ArtistSchema().dump(services.update_artist(context.db(), artist, **data))


@bp.get("/artists/<int:artist_id>/payees")
@access("artist", "admin")
def list_payees(artist_id: int):
    """The payees this artist can put on split sheets.
    ---
    get:
      responses:
        200:
          content:
            application/json:
              schema: PayeeListSchema
    """
    services.require_member(context.db(), artist_id, current_user())
    return PayeeListSchema().dump({"items": services.payees_for_artist(context.db(), artist_id)})


@bp.post("/artists/<int:artist_id>/payees")
@access("artist", "admin")
def invite_payee(artist_id: int):
    """Invite a collaborator by email: a payee from now on, whose earnings wait until they accept.
    ---
    post:
      requestBody:
        content:
          application/json:
            schema: PayeeInviteSchema
      responses:
        201:
          content:
            application/json:
              schema: PayeeSchema
    """
    data = load(PayeeInviteSchema())
    services.require_member(context.db(), artist_id, current_user())
    secret = context.config().secret_key
    payee = services.invite_payee(context.db(), artist_id, **data, invitation_link=lambda p: url_for(
        "web_catalog.invitation", token=services.invitation_token(p, secret), _external=True))
    return PayeeSchema().dump(payee), 201


# --- releases ---------------------------------------------------------------------------------------------
@bp.post("/artists/<int:artist_id>/releases")
@access("artist", "admin")
def create_release(artist_id: int):
    """Create a draft release.
    ---
    post:
      requestBody:
        content:
          application/json:
            schema: ReleaseCreateSchema
      responses:
        201:
          content:
            application/json:
              schema: ReleaseSchema
    """
    data = load(ReleaseCreateSchema())
    services.require_member(context.db(), artist_id, current_user())
    release = services.create_release(context.db(), artist_id, **data)
    return release_json(release), 201


@bp.get("/releases")
@access(public=True)
def list_releases():
    """Published releases, newest first (?genre=, ?artist_id=, ?limit=, ?cursor=).
    ---
    get:
      parameters:
        - {name: genre, in: query, schema: {type: string}}
        - {name: artist_id, in: query, schema: {type: integer}}
        - {name: limit, in: query, schema: {type: integer}}
        - {name: cursor, in: query, schema: {type: string}}
      responses:
        200:
          content:
            application/json:
              schema: ReleasePageSchema
    """
    artist_id = request.args.get("artist_id", type=int)
    page = search.browse_releases(context.db(), now=context.clock().now(), genre=request.args.get("genre") or None,
                                  artist_id=artist_id, limit=_limit_arg(), cursor=request.args.get("cursor"))
    items = [dict(r, url=url_for("web_catalog.release_page", artist_slug=r["artist_slug"],
                                 release_slug=r["release_slug"])) for r in page.items]
    return ReleasePageSchema().dump({"items": items, "next_cursor": page.next_cursor})


@bp.get("/releases/<int:release_id>")
@access(public=True)
def get_release(release_id: int):
    """A release with its tracks and prices (drafts only for the artist's members).
    ---
    get:
      responses:
        200:
          content:
            application/json:
              schema: ReleaseSchema
    """
    return release_json(visible_release(release_id))


@bp.patch("/releases/<int:release_id>")
@access("artist", "admin")
def update_release(release_id: int):
    """Edit a release's metadata.
    ---
    patch:
      requestBody:
        content:
          application/json:
            schema: ReleaseUpdateSchema
      responses:
        200:
          content:
            application/json:
              schema: ReleaseSchema
    """
    data = load(ReleaseUpdateSchema())
    release = owned_release(release_id)
    return release_json(services.update_release(context.db(), release, **data))


@bp.put("/releases/<int:release_id>/price")
@access("artist", "admin")
def set_release_price(release_id: int):
    """Set the release's price: free with ads, fixed, or name your price (minimum and suggested).
    ---
    put:
      requestBody:
        content:
          application/json:
            schema: PriceSchema
      responses:
        200:
          content:
            application/json:
              schema: ReleaseSchema
    """
    data = load(PriceSchema())
    release = owned_release(release_id)
    if data["price_model"] is None:
        raise InvalidCatalogInput("A release always has a price model.", code="invalid_price_model",
                                  field="price_model")
    services.set_release_price(context.db(), release, data["price_model"], currency=data.get("currency"),
                               price=data.get("price"), minimum=data.get("minimum_price"),
                               suggested=data.get("suggested_price"))
    return release_json(release)


@bp.put("/releases/<int:release_id>/split")
@access("artist", "admin")
def set_release_split(release_id: int):
    """The same split sheet (a new version, in force from now) for every track of the release.
    ---
    put:
      requestBody:
        content:
          application/json:
            schema: SplitSheetInputSchema
      responses:
        200:
          content:
            application/json:
              schema: SplitSheetListSchema
    """
    data = load(SplitSheetInputSchema())
    release = owned_release(release_id)
    sheets = services.set_release_split(context.db(), release, [(s["payee_id"], s["share_bp"]) for s in
                                                                data["shares"]],
                                        clock=context.clock(), user_id=current_user().id,
                                        roles=[s["role"] for s in data["shares"]])
    return SplitSheetListSchema().dump({"items": sheets})


@bp.post("/releases/<int:release_id>/publish")
@access("artist", "admin")
def publish_release(release_id: int):
    """Publish now, or schedule with `at`; a release needs at least one track with audio.
    ---
    post:
      requestBody:
        content:
          application/json:
            schema: PublishSchema
      responses:
        200:
          content:
            application/json:
              schema: ReleaseSchema
    """
    data = load(PublishSchema()) if request.content_length else {}
    release = owned_release(release_id)
    services.publish_release(context.db(), release, clock=context.clock(), at=data.get("at"))
    return release_json(release)


@bp.put("/releases/<int:release_id>/cover")
@access("artist", "admin")
def set_cover(release_id: int):
    """Set the cover art: the raw body as image/jpeg or image/png (or multipart field `cover`).
    ---
    put:
      requestBody:
        content:
          image/jpeg:
            schema:
              type: string
              format: binary
          image/png:
            schema:
              type: string
              format: binary
      responses:
        200:
          content:
            application/json:
              schema: ReleaseSchema
    """
    release = owned_release(release_id)
    limit = MAX_COVER_BYTES + 1
    if is_multipart():
        files = file_parts("cover")
        data = files[0][1].stream.read(limit) if files else b""
    else:
        data = request.stream.read(limit)
    sha, mime = store_cover(media_store(), data)
    services.set_cover(context.db(), release, sha, mime)
    return release_json(release)


@bp.post("/releases/<int:release_id>/tracks")
@access("artist", "admin")
def upload_tracks(release_id: int):
    """Upload audio files as new tracks (multipart `files`, or a raw audio/* body with ?filename=).

    Each file is streamed to storage while its SHA-256 is computed, inspected, and pre-filled from its tags.
    ---
    post:
      requestBody:
        content:
          multipart/form-data:
            schema:
              type: object
              properties:
                files:
                  type: array
                  items:
                    type: string
                    format: binary
      responses:
        201:
          content:
            application/json:
              schema: UploadedTracksSchema
    """
    release = owned_release(release_id)
    results = upload_files(release, request_files())
    # `deduplicated` belongs to the upload, not the track: the one field the track's own dump lacks.
    return {"items": [TrackSchema().dump(r.track) | {"deduplicated": r.deduplicated} for r in results]}, 201


# --- tracks -----------------------------------------------------------------------------------------------
@bp.patch("/tracks/<int:track_id>")
@access("artist", "admin")
def update_track(track_id: int):
    """Edit a track's title, position, ISRC or explicit flag.
    ---
    patch:
      requestBody:
        content:
          application/json:
            schema: TrackUpdateSchema
      responses:
        200:
          content:
            application/json:
              schema: TrackSchema
    """
    data = load(TrackUpdateSchema())
    track = owned_track(track_id)
    return track_json(services.update_track(context.db(), track, **data))


@bp.delete("/tracks/<int:track_id>")
@access("artist", "admin")
def delete_track(track_id: int):
    """Remove a track from a draft release.
    ---
    delete:
      responses:
        204:
          description: removed
    """
    track = owned_track(track_id)
    services.delete_track(context.db(), track)
    return "", 204


@bp.put("/tracks/<int:track_id>/price")
@access("artist", "admin")
def set_track_price(track_id: int):
    """Override the release's price for one track (price_model null removes the override).
    ---
    put:
      requestBody:
        content:
          application/json:
            schema: PriceSchema
      responses:
        200:
          content:
            application/json:
              schema: TrackSchema
    """
    data = load(PriceSchema())
    track = owned_track(track_id)
    services.set_track_price(context.db(), track, data["price_model"], currency=data.get("currency"),
                             price=data.get("price"), minimum=data.get("minimum_price"),
                             suggested=data.get("suggested_price"))
    return track_json(track)


@bp.get("/tracks/<int:track_id>/split")
@access("artist", "admin")
def get_split(track_id: int):
    """The track's split sheet in force now.
    ---
    get:
      responses:
        200:
          content:
            application/json:
              schema: SplitSheetSchema
    """
    track = owned_track(track_id)
    return SplitSheetSchema().dump(services.current_split_sheet(context.db(), track.id, context.clock().now()))


@bp.put("/tracks/<int:track_id>/split")
@access("artist", "admin")
def set_split(track_id: int):
    """A new version of the track's split sheet: known payees, shares in basis points summing to 10,000.
    ---
    put:
      requestBody:
        content:
          application/json:
            schema: SplitSheetInputSchema
      responses:
        200:
          content:
            application/json:
              schema: SplitSheetSchema
    """
    data = load(SplitSheetInputSchema())
    track = owned_track(track_id)
    sheet = services.set_split_sheet(context.db(), track, [(s["payee_id"], s["share_bp"]) for s in data["shares"]],
                                     clock=context.clock(), user_id=current_user().id,
                                     roles=[s["role"] for s in data["shares"]])
    return SplitSheetSchema().dump(sheet)


@bp.post("/tracks/<int:track_id>/preview")
@access("artist", "admin")
def preview_track(track_id: int):
    """A single-use download link of the tagged file, for the artist's own check (works on drafts).
    ---
    post:
      responses:
        201:
          content:
            application/json:
              schema: GrantSchema
    """
    track = owned_track(track_id)
    config = context.config()
    token = services.issue_grant(context.db(), track_id=track.id, listener_id=f"u{current_user().id}",
                                 via="preview", secret=config.secret_key, clock=context.clock(),
                                 ttl_s=config.download_grant_ttl_s)
    return GrantSchema().dump({"download_url": url_for("web_catalog.download", token=token),
                               "expires_in": config.download_grant_ttl_s}), 201


# --- discovery --------------------------------------------------------------------------------------------
def _limit_arg() -> int:
    raw = request.args.get("limit")
    if raw is None:
        return 20
    if not raw.isdigit():
        raise InvalidCatalogInput("The page size must be a whole number.", code="invalid_limit", field="limit")
    return int(raw)


@bp.get("/search")
@access(public=True)
def search_tracks():
    """Search published tracks by title, artist, release, genre and tag (?q=, ?limit=, ?cursor=), best first.
    ---
    get:
      parameters:
        - {name: q, in: query, schema: {type: string}}
        - {name: limit, in: query, schema: {type: integer}}
        - {name: cursor, in: query, schema: {type: string}}
      responses:
        200:
          content:
            application/json:
              schema: SearchPageSchema
    """
    query = request.args.get("q", "")[:200]
    page = search.search_tracks(context.db(), query, now=context.clock().now(), limit=_limit_arg(),
                                cursor=request.args.get("cursor"))
    items = [{"track_id": r["track_id"], "title": r["title"], "artist_name": r["artist_name"],
              "release_title": r["release_title"], "genre": r["genre"], "tags": list(r["tags"] or []),
              "duration_ms": r["duration_ms"],
              "url": url_for("web_catalog.release_page", artist_slug=r["artist_slug"],
                             release_slug=r["release_slug"]) + f"#track-{r['track_id']}"} for r in page.items]
    return SearchPageSchema().dump({"items": items, "next_cursor": page.next_cursor})
