"""The catalog's business operations: artists, releases, tracks, prices, split sheets, publishing.

Functions over a session and plain values. They never commit: they flush when they need ids, raise on
failure, and leave the commit to the caller (the request, a CLI command, a worker batch). The contract
functions other packages use (see docs/contracts.md) are `track_context`, `split_sheet_at`,
`split_sheets_at`, `issue_grant` and `record_download` (the last two live in catalog.delivery and are
re-exported here).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from catalog.common import clean_isrc, clean_tags, clean_text, clean_upc, slugify
from catalog.delivery import (  # noqa: F401 - the contract's names, re-exported
    issue_grant,
    record_download,
    redeem_grant,
)
from catalog.errors import (
    CatalogConflict,
    CatalogNotFound,
    InvalidCatalogInput,
    InvalidPrice,
    NotArtistMember,
)
from catalog.models import (
    PRICE_MODELS,
    RELEASE_KINDS,
    Artist,
    ArtistMember,
    Payee,
    Release,
    SplitShare,
    SplitSheet,
    Track,
)
from catalog.payees import (  # noqa: F401 - part of the service layer's surface
    accept_invitation,
    artist_payee,
    invitation_token,
    invite_payee,
    payee_for_invitation,
    payees_for_artist,
    payees_of_user,
)
from catalog.splits import (  # noqa: F401 - the contract's names, re-exported
    FULL_SHARE_BP,
    current_split_sheet,
    set_release_split,
    set_split_sheet,
    split_sheet_at,
    split_sheets_at,
)
from core.clock import Clock
from core.money import Money, MoneyError, chargeable_minor_units, check_currency
from core.users import User


# --- artists and membership ---------------------------------------------------------------------------
def get_artist(session: Session, artist_id: int) -> Artist:
    artist = session.get(Artist, artist_id)
    if artist is None:
        raise CatalogNotFound("There is no such artist.", code="artist_not_found")
    return artist


def get_artist_by_slug(session: Session, slug: str) -> Artist:
    artist = session.scalar(select(Artist).where(Artist.slug == slug))
    if artist is None:
        raise CatalogNotFound("There is no artist at that address.", code="artist_not_found")
    return artist


def artists_for_user(session: Session, user_id: int) -> list[Artist]:
    return list(session.scalars(select(Artist).join(ArtistMember).where(ArtistMember.user_id == user_id)
                                .order_by(Artist.id)))


def is_member(session: Session, artist_id: int, user_id: int) -> bool:
    return session.get(ArtistMember, (artist_id, user_id)) is not None


def require_member(session: Session, artist_id: int, user: User | None, *, admin_ok: bool = True) -> Artist:
    artist = get_artist(session, artist_id)
    if user is None:
        raise NotArtistMember("Sign in as a member of this artist.")
    if admin_ok and user.has_role("admin"):
        return artist
    if not is_member(session, artist_id, user.id):
        raise NotArtistMember("Only the artist's members can change this.")
    return artist


def create_artist(session: Session, *, user: User, name: str, bio: str = "", location: str = "",
                  links: Sequence[str] = (), currency: str = "USD", slug: str | None = None) -> Artist:
    name = clean_text(name, "name", max_len=200, required=True)
    try:
        currency = check_currency(currency)
    except MoneyError as exc:
        raise InvalidPrice(exc.message, code="unsupported_currency", field="currency") from None
    base = slugify(slug or name, "artist")
    candidate, n = base, 1
    while session.scalar(select(Artist.id).where(Artist.slug == candidate)) is not None:
        n += 1
        candidate = f"{base}-{n}"
    artist = Artist(slug=candidate, name=name, bio=clean_text(bio, "bio", max_len=5000),
                    location=clean_text(location, "location", max_len=200), links=_links(links), currency=currency)
    session.add(artist)
    session.flush()
    session.add(ArtistMember(artist_id=artist.id, user_id=user.id))
    session.add(Payee(display_name=name, artist_id=artist.id, user_id=user.id, email=user.email))
    session.flush()
    return artist


def _links(links: Sequence[str] | str | None) -> list[str]:
    if not links:
        return []
    if isinstance(links, str):
        links = links.split()
    cleaned = []
    for link in links:
        link = str(link).strip()
        if not link:
            continue
        if not re.match(r"^https?://[^\s<>\"']{1,300}$", link):
            raise InvalidCatalogInput("Links must be web addresses starting with https:// or http://.",
                                      code="invalid_link", field="links")
        cleaned.append(link)
    return cleaned[:10]


def update_artist(session: Session, artist: Artist, **values) -> Artist:
    if "name" in values:
        artist.name = clean_text(values["name"], "name", max_len=200, required=True)
        payee = artist_payee(session, artist.id)
        payee.display_name = artist.name
    if "bio" in values:
        artist.bio = clean_text(values["bio"], "bio", max_len=5000)
    if "location" in values:
        artist.location = clean_text(values["location"], "location", max_len=200)
    if "links" in values:
        artist.links = _links(values["links"])
    session.flush()
    for release_id in session.scalars(select(Release.id).where(Release.artist_id == artist.id)):
        refresh_search(session, release_id)
    session.flush()
    return artist


def set_artist_image(session: Session, artist: Artist, sha256: str, mime: str) -> Artist:
    artist.image_sha256, artist.image_mime = sha256, mime
    session.flush()
    return artist


def add_member(session: Session, artist: Artist, email: str) -> User:
    """Another account (with the artist role) joins the artist: they can edit releases, prices and splits."""
    user = session.scalar(select(User).where(func.lower(User.email) == (email or "").strip().lower()))
    if user is None or not user.has_role("artist"):
        raise InvalidCatalogInput("There is no artist account with that email; ask them to sign up as an artist "
                                  "first.", code="member_not_found", field="email")
    if is_member(session, artist.id, user.id):
        raise CatalogConflict(f"{user.display_name} is already a member.", code="already_member")
    session.add(ArtistMember(artist_id=artist.id, user_id=user.id))
    session.flush()
    return user


def members_of(session: Session, artist_id: int) -> list[User]:
    return list(session.scalars(select(User).join(ArtistMember, ArtistMember.user_id == User.id)
                                .where(ArtistMember.artist_id == artist_id).order_by(User.id)))


# --- releases ---------------------------------------------------------------------------------------------
def get_release(session: Session, release_id: int) -> Release:
    release = session.get(Release, release_id)
    if release is None:
        raise CatalogNotFound("There is no such release.", code="release_not_found")
    return release


def get_release_by_slug(session: Session, artist_slug: str, release_slug: str) -> Release:
    release = session.scalar(select(Release).join(Artist).where(Artist.slug == artist_slug,
                                                               Release.slug == release_slug))
    if release is None:
        raise CatalogNotFound("There is no release at that address.", code="release_not_found")
    return release


def is_public(release: Release, now: datetime) -> bool:
    """Published, or scheduled and its time has come: decided at read time (GET handlers do not write);
    `promote_due_releases` records the status change later, in the background."""
    return release.status == "published" or (
        release.status == "scheduled" and release.publish_at is not None and release.publish_at <= now)


def is_track_public(track: Track, now: datetime) -> bool:
    """Listed and downloadable: published, or a draft on a scheduled release whose time has come."""
    release = track.release
    if track.status == "published":
        return release.status == "published"
    return track.status == "draft" and release.status == "scheduled" and is_public(release, now)


def create_release(session: Session, artist_id: int, *, title: str, kind: str = "album",
                   release_date: date | None = None, genre: str = "", tags=None, description: str = "",
                   upc: str | None = None) -> Release:
    artist = get_artist(session, artist_id)
    title = clean_text(title, "title", max_len=300, required=True)
    if kind not in RELEASE_KINDS:
        raise InvalidCatalogInput("A release is a single, an EP or an album.", code="invalid_kind", field="kind")
    base = slugify(title, "release")
    candidate, n = base, 1
    while session.scalar(select(Release.id).where(Release.artist_id == artist.id,
                                                  Release.slug == candidate)) is not None:
        n += 1
        candidate = f"{base}-{n}"
    release = Release(artist_id=artist.id, slug=candidate, title=title, kind=kind, release_date=release_date,
                      genre=clean_text(genre, "genre", max_len=60).lower(), tags=clean_tags(tags),
                      description=clean_text(description, "description", max_len=5000), upc=clean_upc(upc),
                      currency=artist.currency, price_model="free_with_ads", status="draft")
    session.add(release)
    session.flush()
    return release


def update_release(session: Session, release: Release, **values) -> Release:
    if release.status == "taken_down":
        raise CatalogConflict("This release was taken down and cannot be edited.", code="release_taken_down")
    if "title" in values:
        release.title = clean_text(values["title"], "title", max_len=300, required=True)
    if "kind" in values:
        if values["kind"] not in RELEASE_KINDS:
            raise InvalidCatalogInput("A release is a single, an EP or an album.", code="invalid_kind",
                                      field="kind")
        release.kind = values["kind"]
    if "release_date" in values:
        release.release_date = values["release_date"]
    if "genre" in values:
        release.genre = clean_text(values["genre"], "genre", max_len=60).lower()
    if "tags" in values:
        release.tags = clean_tags(values["tags"])
    if "description" in values:
        release.description = clean_text(values["description"], "description", max_len=5000)
    if "upc" in values:
        release.upc = clean_upc(values["upc"])
    session.flush()
    refresh_search(session, release.id)
    session.flush()
    return release


def set_cover(session: Session, release: Release, sha256: str, mime: str) -> Release:
    release.cover_sha256, release.cover_mime = sha256, mime
    session.flush()
    return release


# --- prices -----------------------------------------------------------------------------------------------
def _money(value: Money | str | int | None, currency: str, field: str) -> int | None:
    """Integer micros of a price in `currency`: positive, whole cents, the release's currency."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, Money):
            money = value
        elif isinstance(value, int) and not isinstance(value, bool):
            money = Money(value, currency)
        elif isinstance(value, str):
            money = Money.parse(value, currency)
        else:
            raise InvalidPrice(f"The {field.replace('_', ' ')} must be an amount like 4.99.", code="invalid_price",
                               field=field)
    except MoneyError as exc:
        raise InvalidPrice(exc.message, code=exc.code, field=field) from None
    if money.currency != currency:
        raise InvalidPrice(f"Prices for this release are in {currency}, not {money.currency}.",
                           code="currency_mismatch", field=field)
    if money.micros <= 0:
        raise InvalidPrice(f"The {field.replace('_', ' ')} must be more than zero; for a free release choose "
                           "'free with ads'.", code="non_positive_price", field=field)
    try:
        money.minor_units  # noqa: B018 - raises for fractions of a cent
    except MoneyError:
        raise InvalidPrice(f"{money} is finer than one cent of {currency}; round it to whole cents.",
                           code="fractional_minor_unit", field=field) from None
    try:
        chargeable_minor_units(money)  # a price a card cannot be charged exactly is refused when it is set
    except MoneyError as exc:
        raise InvalidPrice(exc.message, code=exc.code, field=field) from None
    return money.micros


def validate_price(model: str, currency: str, price=None, minimum=None, suggested=None) -> dict:
    if model not in PRICE_MODELS:
        raise InvalidPrice("Choose free with ads, a fixed price or name your price.", code="invalid_price_model",
                           field="price_model")
    values = {"price_model": model, "price_micros": None, "min_price_micros": None,
              "suggested_price_micros": None}
    if model == "fixed":
        micros = _money(price, currency, "price")
        if micros is None:
            raise InvalidPrice("Give the fixed price.", code="missing_price", field="price")
        values["price_micros"] = micros
    elif model == "name_your_price":
        low = _money(minimum, currency, "minimum_price")
        if low is None:
            raise InvalidPrice("Give a minimum price above zero (listeners may always pay more); for free "
                               "downloads choose 'free with ads'.", code="missing_minimum", field="minimum_price")
        high = _money(suggested, currency, "suggested_price")
        if high is not None and high < low:
            raise InvalidPrice("The suggested price must not be below the minimum.",
                               code="suggested_below_minimum", field="suggested_price")
        values["min_price_micros"], values["suggested_price_micros"] = low, high
    return values


def set_release_price(session: Session, release: Release, model: str, *, currency: str | None = None,
                      price=None, minimum=None, suggested=None) -> Release:
    if currency is not None and currency.upper() != release.currency:
        raise InvalidPrice(f"Prices for this release are in {release.currency}, not {currency}.",
                           code="currency_mismatch", field="currency")
    for key, value in validate_price(model, release.currency, price, minimum, suggested).items():
        setattr(release, key, value)
    session.flush()
    return release


def set_track_price(session: Session, track: Track, model: str | None, *, currency: str | None = None,
                    price=None, minimum=None, suggested=None) -> Track:
    """A per-track override of the release's price; `model=None` removes the override."""
    release = track.release
    if model is None:
        track.price_model = track.price_micros = track.min_price_micros = track.suggested_price_micros = None
    else:
        if currency is not None and currency.upper() != release.currency:
            raise InvalidPrice(f"Prices for this release are in {release.currency}, not {currency}.",
                               code="currency_mismatch", field="currency")
        for key, value in validate_price(model, release.currency, price, minimum, suggested).items():
            setattr(track, key, value)
    session.flush()
    return track


def effective_price(track: Track) -> dict:
    """The price a listener sees for a track: its own override, else the release's."""
    source = track if track.price_model else track.release
    currency = track.release.currency

    def money(micros):
        return Money(micros, currency) if micros is not None else None

    return {"price_model": source.price_model, "currency": currency, "price": money(source.price_micros),
            "minimum": money(source.min_price_micros), "suggested": money(source.suggested_price_micros)}


def release_price(release: Release) -> dict:
    def money(micros):
        return Money(micros, release.currency) if micros is not None else None

    return {"price_model": release.price_model, "currency": release.currency,
            "price": money(release.price_micros), "minimum": money(release.min_price_micros),
            "suggested": money(release.suggested_price_micros)}


# --- tracks -----------------------------------------------------------------------------------------------
def get_track(session: Session, track_id: int) -> Track:
    track = session.get(Track, track_id)
    if track is None:
        raise CatalogNotFound("There is no such track.", code="track_not_found")
    return track


def add_track(session: Session, release: Release, *, title: str, clock: Clock, position: int | None = None,
              isrc: str | None = None, explicit: bool = False, asset_id: int | None = None,
              original_filename: str = "", user_id: int | None = None) -> Track:
    if release.status == "taken_down":
        raise CatalogConflict("This release was taken down.", code="release_taken_down")
    if position is None or position < 1:
        position = (session.scalar(select(func.max(Track.position)).where(Track.release_id == release.id))
                    or 0) + 1
    track = Track(release_id=release.id, position=min(int(position), 9999),
                  title=clean_text(title, "title", max_len=300, required=True), isrc=clean_isrc(isrc),
                  explicit=bool(explicit), asset_id=asset_id, original_filename=original_filename[:255],
                  status="published" if release.status == "published" else "draft")
    session.add(track)
    session.flush()
    payee = artist_payee(session, release.artist_id)
    sheet = SplitSheet(track_id=track.id, version=1, effective_at=clock.now(), created_by_user_id=user_id)
    sheet.shares = [SplitShare(payee_id=payee.id, share_bp=FULL_SHARE_BP, position=0, role="artist")]
    session.add(sheet)
    session.flush()
    refresh_search(session, release.id)
    session.flush()
    return track


def update_track(session: Session, track: Track, **values) -> Track:
    if track.status == "taken_down":
        raise CatalogConflict("This track was taken down and cannot be edited.", code="track_taken_down")
    if "title" in values:
        track.title = clean_text(values["title"], "title", max_len=300, required=True)
    if "position" in values and values["position"] is not None:
        position = int(values["position"])
        if not 0 < position < 10_000:
            raise InvalidCatalogInput("The track number must be between 1 and 9999.", code="invalid_position",
                                      field="position")
        track.position = position
    if "isrc" in values:
        track.isrc = clean_isrc(values["isrc"])
    if "explicit" in values:
        track.explicit = bool(values["explicit"])
    session.flush()
    refresh_search(session, track.release_id)
    session.flush()
    return track


def delete_track(session: Session, track: Track) -> None:
    if track.release.status != "draft":
        raise CatalogConflict("Tracks of a published release cannot be deleted; take the track down instead.",
                              code="release_not_draft")
    for sheet in session.scalars(select(SplitSheet).where(SplitSheet.track_id == track.id)):
        session.delete(sheet)
    session.flush()
    session.delete(track)
    session.flush()



# --- publishing and takedown ------------------------------------------------------------------------------
def publish_release(session: Session, release: Release, *, clock: Clock, at: datetime | None = None) -> Release:
    """Publish now, or schedule for `at`; refuses a release with no tracks or a track without audio."""
    if release.status == "taken_down":
        raise CatalogConflict("This release was taken down and cannot be published.", code="release_taken_down")
    if release.status == "published":
        return release
    refuse_if_suspended(release.artist)
    tracks = [t for t in release.tracks if t.status != "taken_down"]
    if not tracks:
        raise CatalogConflict("Add at least one track before publishing.", code="release_has_no_tracks")
    missing = [t.title for t in tracks if t.asset_id is None]
    if missing:
        raise CatalogConflict(f"The track {missing[0]!r} has no audio yet; upload it or remove the track.",
                              code="track_without_audio")
    now = clock.now()
    if at is not None and at > now:
        release.status, release.publish_at = "scheduled", at
    else:
        _make_public(release, now)
    session.flush()
    refresh_search(session, release.id)
    session.flush()
    return release


def refuse_if_suspended(artist: Artist) -> None:
    """Uploads and releases stop while repeated upheld takedown notices suspend the artist (rights.strikes)."""
    if artist.suspended_at is not None:
        raise CatalogConflict("Uploads and releases of this artist are suspended after repeated upheld copyright "
                              "notices, pending a review; see the Rights section of your dashboard.",
                              code="artist_suspended", status=403)


def _make_public(release: Release, now: datetime) -> None:
    release.status = "published"
    release.published_at = release.publish_at if release.publish_at and release.publish_at <= now else now
    for track in release.tracks:
        if track.status == "draft":
            track.status = "published"


def promote_due_releases(session: Session, clock: Clock) -> int:
    """Record that scheduled releases whose time has come are published (cheap when there are none).

    Reads already treat them as public (`is_public`, `PUBLIC_RELEASE_SQL`); this is the background step
    (`ninety catalog publish-due`, looped by `ninety catalog publisher` under `ninety run`), never a GET."""
    now = clock.now()
    due = list(session.scalars(select(Release).where(Release.status == "scheduled", Release.publish_at <= now)))
    for release in due:
        _make_public(release, now)
        session.flush()
        refresh_search(session, release.id)
    if due:
        session.flush()
    return len(due)


def take_down_track(session: Session, track: Track) -> Track:
    """Stops delivery and new grants (a takedown notice, or the artist withdrawing the track)."""
    track.status = "taken_down"
    session.flush()
    refresh_search(session, track.release_id)
    session.flush()
    return track


def take_down_release(session: Session, release: Release) -> Release:
    """The whole release leaves the catalog: no page, no search, no grants, no delivery."""
    release.status = "taken_down"
    for track in release.tracks:
        track.status = "taken_down"
    session.flush()
    refresh_search(session, release.id)
    session.flush()
    return release


def restore_track(session: Session, track: Track) -> Track:
    track.status = "published" if track.release.status == "published" else "draft"
    session.flush()
    refresh_search(session, track.release_id)
    session.flush()
    return track


def refresh_search(session: Session, release_id: int) -> None:
    """Recompute the search documents of a release's tracks: set while public or scheduled, NULL otherwise.

    A scheduled release's documents are written when it is scheduled; searches add the time condition
    (`PUBLIC_RELEASE_SQL`), so it is found from its `publish_at` on without a write."""
    session.execute(text("""
        UPDATE tracks t SET search_vector = CASE
            WHEN (r.status = 'published' AND t.status = 'published')
              OR (r.status = 'scheduled' AND t.status = 'draft') THEN
                setweight(to_tsvector('simple', t.title), 'A') ||
                setweight(to_tsvector('simple', a.name), 'A') ||
                setweight(to_tsvector('simple', r.title), 'B') ||
                setweight(to_tsvector('simple', coalesce(r.genre, '') || ' ' ||
                                      array_to_string(r.tags, ' ')), 'C')
            ELSE NULL END
        FROM releases r JOIN artists a ON a.id = r.artist_id
        WHERE t.release_id = r.id AND r.id = :release_id
    """), {"release_id": release_id})


# --- the ad gate's view of a track ------------------------------------------------------------------------
def track_context(session: Session, track_id: int, *, now: datetime | None = None) -> dict:
    """Plain data the app hands to the ad server (which never imports the catalog).

    With `now`, a draft track of a scheduled release whose time has come reads as "published" (as it will
    once promoted); without it, the stored status."""
    track = get_track(session, track_id)
    release = track.release
    price = effective_price(track)
    status = track.status
    if release.status == "taken_down":
        status = "taken_down"
    elif now is not None and is_track_public(track, now):
        status = "published"
    return {"track_id": track.id, "release_id": release.id, "artist_id": release.artist_id,
            "title": track.title, "artist_name": release.artist.name, "genre": release.genre or None,
            "tags": list(release.tags or []), "price_model": price["price_model"], "currency": release.currency,
            "status": status}
