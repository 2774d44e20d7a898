"""The catalog's business operations: artists, releases, tracks, prices, split sheets, publishing.

Functions over a session and plain values; each commits unless given `commit=False`. The contract
functions other packages use (see docs/contracts.md) are `track_context`, `split_sheet_at`,
`split_sheets_at`, `issue_grant` and `record_download` (the last two live in catalog.delivery and are
re-exported here).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

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
    InvalidSplitSheet,
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
from core.clock import Clock
from core.money import Money, MoneyError, check_currency
from core.users import EMAIL_RE, User

FULL_SHARE_BP = 10_000
MAX_SHARES = 50
ISRC_RE = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}\d{7}$")
UPC_RE = re.compile(r"^\d{12,14}$")
TAG_RE = re.compile(r"^[\w][\w \-&'.]{0,59}$", re.UNICODE)


# --- small helpers ------------------------------------------------------------------------------------
def slugify(value: str, fallback: str = "item") -> str:
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60]
    return slug or fallback


def _text(value, field: str, *, max_len: int, required: bool = False) -> str:
    value = "" if value is None else str(value)
    value = value.replace("\x00", "").strip()
    if required and not value:
        raise InvalidCatalogInput(f"Give the {field.replace('_', ' ')}.", code="missing_field", field=field)
    if len(value) > max_len:
        raise InvalidCatalogInput(f"The {field.replace('_', ' ')} is longer than {max_len} characters.",
                                  code="too_long", field=field)
    return value


def _tags(values: Iterable[str] | str | None) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = values.split(",")
    result: list[str] = []
    for raw in values:
        tag = str(raw).replace("\x00", "").strip().lower()
        if not tag:
            continue
        if not TAG_RE.match(tag):
            raise InvalidCatalogInput(f"The tag {tag[:40]!r} has characters a tag cannot have; use letters, "
                                      "digits, spaces and dashes.", code="invalid_tag", field="tags")
        if tag not in result:
            result.append(tag)
    if len(result) > 20:
        raise InvalidCatalogInput("Use at most 20 tags.", code="too_many_tags", field="tags")
    return result


def _isrc(value: str | None) -> str | None:
    if value is None or not str(value).strip():
        return None
    code = re.sub(r"[-\s]", "", str(value)).upper()
    if not ISRC_RE.match(code):
        raise InvalidCatalogInput("An ISRC looks like CC-XXX-YY-NNNNN (12 letters and digits).",
                                  code="invalid_isrc", field="isrc")
    return code


def _upc(value: str | None) -> str | None:
    if value is None or not str(value).strip():
        return None
    code = str(value).strip()
    if not UPC_RE.match(code):
        raise InvalidCatalogInput("A UPC/EAN is 12 to 14 digits.", code="invalid_upc", field="upc")
    return code


def _finish(session: Session, commit: bool) -> None:
    if commit:
        session.commit()
    else:
        session.flush()


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
                  links: Sequence[str] = (), currency: str = "USD", slug: str | None = None,
                  commit: bool = True) -> Artist:
    name = _text(name, "name", max_len=200, required=True)
    try:
        currency = check_currency(currency)
    except MoneyError as exc:
        raise InvalidPrice(exc.message, code="unsupported_currency", field="currency") from None
    base = slugify(slug or name, "artist")
    candidate, n = base, 1
    while session.scalar(select(Artist.id).where(Artist.slug == candidate)) is not None:
        n += 1
        candidate = f"{base}-{n}"
    artist = Artist(slug=candidate, name=name, bio=_text(bio, "bio", max_len=5000),
                    location=_text(location, "location", max_len=200), links=_links(links), currency=currency)
    session.add(artist)
    session.flush()
    session.add(ArtistMember(artist_id=artist.id, user_id=user.id))
    session.add(Payee(display_name=name, artist_id=artist.id, user_id=user.id, email=user.email))
    _finish(session, commit)
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


def update_artist(session: Session, artist: Artist, *, commit: bool = True, **values) -> Artist:
    if "name" in values:
        artist.name = _text(values["name"], "name", max_len=200, required=True)
        payee = artist_payee(session, artist.id)
        payee.display_name = artist.name
    if "bio" in values:
        artist.bio = _text(values["bio"], "bio", max_len=5000)
    if "location" in values:
        artist.location = _text(values["location"], "location", max_len=200)
    if "links" in values:
        artist.links = _links(values["links"])
    session.flush()
    for release_id in session.scalars(select(Release.id).where(Release.artist_id == artist.id)):
        refresh_search(session, release_id)
    _finish(session, commit)
    return artist


def artist_payee(session: Session, artist_id: int) -> Payee:
    payee = session.scalar(select(Payee).where(Payee.artist_id == artist_id))
    if payee is None:  # pragma: no cover - every artist is created with its payee
        raise CatalogNotFound("The artist has no payee.", code="payee_not_found")
    return payee


# --- payees (collaborators) -------------------------------------------------------------------------------
def invite_payee(session: Session, artist_id: int, *, email: str, display_name: str | None = None,
                 commit: bool = True) -> Payee:
    """A collaborator invited by email is a payee from the start; their earnings wait in the books."""
    email = (email or "").strip()
    if not EMAIL_RE.match(email):
        raise InvalidSplitSheet(f"{email[:80]!r} is not an email address.", code="invalid_email", field="email")
    normalized = email.lower()
    existing = session.scalar(select(Payee).where(func.lower(Payee.email) == normalized)
                              .order_by(Payee.artist_id.is_(None), Payee.id))
    if existing is not None:
        return existing
    # Not linked to an account with that email yet: emails are not verified, so the collaborator accepts
    # through the signed invitation link (accept_invitation) instead.
    payee = Payee(display_name=_text(display_name or email.split("@")[0], "display_name", max_len=200),
                  email=email, invited_by_artist_id=artist_id)
    session.add(payee)
    _finish(session, commit)
    return payee


def invitation_token(payee: Payee, secret: str) -> str:
    """The link a collaborator follows to accept: signed over the payee and the email they were invited at."""
    payload = f"{payee.id}"
    mac = hmac.new(secret.encode(), f"invite:{payee.id}:{(payee.email or '').lower()}".encode(),
                   hashlib.sha256).digest()
    return f"{payload}.{base64.urlsafe_b64encode(mac[:18]).decode()}"


def payee_for_invitation(session: Session, token: str, secret: str) -> Payee:
    match = re.fullmatch(r"(\d{1,12})\.([A-Za-z0-9_-]{24})", token or "")
    payee = session.get(Payee, int(match[1])) if match else None
    if payee is None or payee.artist_id is not None or not hmac.compare_digest(invitation_token(payee, secret),
                                                                                token):
        raise CatalogNotFound("This invitation link is not valid.", code="invitation_invalid")
    return payee


def accept_invitation(session: Session, token: str, user: User, *, secret: str, clock: Clock,
                      commit: bool = True) -> Payee:
    """Link an invited payee to the signed-in account; what they earned so far is already theirs."""
    payee = payee_for_invitation(session, token, secret)
    if payee.user_id is not None and payee.user_id != user.id:
        raise CatalogConflict("This invitation was already accepted by another account.",
                              code="invitation_taken")
    payee.user_id = user.id
    payee.accepted_at = payee.accepted_at or clock.now()
    _finish(session, commit)
    return payee


def payees_of_user(session: Session, user_id: int) -> list[Payee]:
    return list(session.scalars(select(Payee).where(Payee.user_id == user_id).order_by(Payee.id)))


def payees_for_artist(session: Session, artist_id: int) -> list[Payee]:
    """The artist's own payee, then everyone it invited or already splits with."""
    in_sheets = (select(SplitShare.payee_id).join(SplitSheet).join(Track).join(Release)
                 .where(Release.artist_id == artist_id))
    return list(session.scalars(select(Payee).where(
        (Payee.artist_id == artist_id) | (Payee.invited_by_artist_id == artist_id) | Payee.id.in_(in_sheets))
        .order_by(Payee.artist_id.is_(None), Payee.id)))


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
    return release.status == "published" or (
        release.status == "scheduled" and release.publish_at is not None and release.publish_at <= now)


def create_release(session: Session, artist_id: int, *, title: str, kind: str = "album",
                   release_date: date | None = None, genre: str = "", tags=None, description: str = "",
                   upc: str | None = None, commit: bool = True) -> Release:
    artist = get_artist(session, artist_id)
    title = _text(title, "title", max_len=300, required=True)
    if kind not in RELEASE_KINDS:
        raise InvalidCatalogInput("A release is a single, an EP or an album.", code="invalid_kind", field="kind")
    base = slugify(title, "release")
    candidate, n = base, 1
    while session.scalar(select(Release.id).where(Release.artist_id == artist.id,
                                                  Release.slug == candidate)) is not None:
        n += 1
        candidate = f"{base}-{n}"
    release = Release(artist_id=artist.id, slug=candidate, title=title, kind=kind, release_date=release_date,
                      genre=_text(genre, "genre", max_len=60).lower(), tags=_tags(tags),
                      description=_text(description, "description", max_len=5000), upc=_upc(upc),
                      currency=artist.currency, price_model="free_with_ads", status="draft")
    session.add(release)
    _finish(session, commit)
    return release


def update_release(session: Session, release: Release, *, commit: bool = True, **values) -> Release:
    if release.status == "taken_down":
        raise CatalogConflict("This release was taken down and cannot be edited.", code="release_taken_down")
    if "title" in values:
        release.title = _text(values["title"], "title", max_len=300, required=True)
    if "kind" in values:
        if values["kind"] not in RELEASE_KINDS:
            raise InvalidCatalogInput("A release is a single, an EP or an album.", code="invalid_kind",
                                      field="kind")
        release.kind = values["kind"]
    if "release_date" in values:
        release.release_date = values["release_date"]
    if "genre" in values:
        release.genre = _text(values["genre"], "genre", max_len=60).lower()
    if "tags" in values:
        release.tags = _tags(values["tags"])
    if "description" in values:
        release.description = _text(values["description"], "description", max_len=5000)
    if "upc" in values:
        release.upc = _upc(values["upc"])
    session.flush()
    refresh_search(session, release.id)
    _finish(session, commit)
    return release


def set_cover(session: Session, release: Release, sha256: str, mime: str, *, commit: bool = True) -> Release:
    release.cover_sha256, release.cover_mime = sha256, mime
    _finish(session, commit)
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
                      price=None, minimum=None, suggested=None, commit: bool = True) -> Release:
    if currency is not None and currency.upper() != release.currency:
        raise InvalidPrice(f"Prices for this release are in {release.currency}, not {currency}.",
                           code="currency_mismatch", field="currency")
    for key, value in validate_price(model, release.currency, price, minimum, suggested).items():
        setattr(release, key, value)
    _finish(session, commit)
    return release


def set_track_price(session: Session, track: Track, model: str | None, *, currency: str | None = None,
                    price=None, minimum=None, suggested=None, commit: bool = True) -> Track:
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
    _finish(session, commit)
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
              original_filename: str = "", user_id: int | None = None, commit: bool = True) -> Track:
    if release.status == "taken_down":
        raise CatalogConflict("This release was taken down.", code="release_taken_down")
    if position is None or position < 1:
        position = (session.scalar(select(func.max(Track.position)).where(Track.release_id == release.id))
                    or 0) + 1
    track = Track(release_id=release.id, position=min(int(position), 9999),
                  title=_text(title, "title", max_len=300, required=True), isrc=_isrc(isrc),
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
    _finish(session, commit)
    return track


def update_track(session: Session, track: Track, *, commit: bool = True, **values) -> Track:
    if track.status == "taken_down":
        raise CatalogConflict("This track was taken down and cannot be edited.", code="track_taken_down")
    if "title" in values:
        track.title = _text(values["title"], "title", max_len=300, required=True)
    if "position" in values and values["position"] is not None:
        position = int(values["position"])
        if not 0 < position < 10_000:
            raise InvalidCatalogInput("The track number must be between 1 and 9999.", code="invalid_position",
                                      field="position")
        track.position = position
    if "isrc" in values:
        track.isrc = _isrc(values["isrc"])
    if "explicit" in values:
        track.explicit = bool(values["explicit"])
    session.flush()
    refresh_search(session, track.release_id)
    _finish(session, commit)
    return track


def delete_track(session: Session, track: Track, *, commit: bool = True) -> None:
    if track.release.status != "draft":
        raise CatalogConflict("Tracks of a published release cannot be deleted; take the track down instead.",
                              code="release_not_draft")
    for sheet in session.scalars(select(SplitSheet).where(SplitSheet.track_id == track.id)):
        session.delete(sheet)
    session.flush()
    session.delete(track)
    _finish(session, commit)


# --- split sheets -----------------------------------------------------------------------------------------
def set_split_sheet(session: Session, track: Track, shares: Sequence[tuple[int, int]], *, clock: Clock,
                    user_id: int | None = None, effective_at: datetime | None = None,
                    roles: Sequence[str] | None = None, commit: bool = True) -> SplitSheet:
    """A new version of the track's split sheet, in force from `effective_at` (default: now).

    `shares` is [(payee_id, share_bp)]: known payees, each share above zero, summing to exactly 10,000.
    Earlier versions stay, so money earned before keeps the split it was earned under.
    """
    now = clock.now()
    if effective_at is None:
        effective_at = now
    if effective_at < now:
        raise InvalidSplitSheet("A split sheet cannot change the past; it takes effect now or later.",
                                code="split_in_past", field="effective_at")
    cleaned = _check_shares(session, shares)
    latest = session.scalar(select(func.max(SplitSheet.version)).where(SplitSheet.track_id == track.id)) or 0
    later = session.scalar(select(func.count()).select_from(SplitSheet).where(
        SplitSheet.track_id == track.id, SplitSheet.effective_at > effective_at))
    if later:
        raise InvalidSplitSheet("A later split sheet is already scheduled for this track.",
                                code="split_superseded", field="effective_at")
    sheet = SplitSheet(track_id=track.id, version=latest + 1, effective_at=effective_at,
                       created_by_user_id=user_id)
    roles = list(roles or [])
    sheet.shares = [SplitShare(payee_id=payee_id, share_bp=bp, position=i,
                               role=_text(roles[i] if i < len(roles) else "", "role", max_len=60))
                    for i, (payee_id, bp) in enumerate(cleaned)]
    session.add(sheet)
    _finish(session, commit)
    return sheet


def _check_shares(session: Session, shares: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    if not shares:
        raise InvalidSplitSheet("A split sheet needs at least one payee.", code="empty_split_sheet")
    if len(shares) > MAX_SHARES:
        raise InvalidSplitSheet(f"A split sheet can name at most {MAX_SHARES} payees.", code="too_many_payees")
    cleaned = []
    seen = set()
    for entry in shares:
        try:
            payee_id, bp = entry
        except (TypeError, ValueError):
            raise InvalidSplitSheet("Each share is a payee and a share in basis points.",
                                    code="invalid_share") from None
        if isinstance(bp, bool) or not isinstance(bp, int) or isinstance(payee_id, bool) \
                or not isinstance(payee_id, int):
            raise InvalidSplitSheet("Shares are whole numbers of basis points (1% = 100).", code="invalid_share")
        if bp <= 0 or bp > FULL_SHARE_BP:
            raise InvalidSplitSheet("Each share must be more than 0 and at most 100%.", code="invalid_share")
        if payee_id in seen:
            raise InvalidSplitSheet("A payee appears twice on the split sheet; combine their shares.",
                                    code="duplicate_payee")
        seen.add(payee_id)
        cleaned.append((payee_id, bp))
    total = sum(bp for _, bp in cleaned)
    if total != FULL_SHARE_BP:
        raise InvalidSplitSheet(f"The shares add up to {total / 100:g}%, not 100%. Adjust them so they sum to "
                                "exactly 100% (10,000 basis points).", code="split_sum_mismatch", total_bp=total)
    known = set(session.scalars(select(Payee.id).where(Payee.id.in_(seen))))
    unknown = sorted(seen - known)
    if unknown:
        raise InvalidSplitSheet(f"Unknown payee {unknown[0]}: invite collaborators by email first.",
                                code="unknown_payee", payee_ids=unknown)
    return cleaned


def set_release_split(session: Session, release: Release, shares: Sequence[tuple[int, int]], *,
                      clock: Clock, user_id: int | None = None, roles: Sequence[str] | None = None,
                      commit: bool = True) -> list[SplitSheet]:
    """The same split for every track of a release (one new sheet version per track)."""
    if not release.tracks:
        raise InvalidSplitSheet("Add tracks before setting their split.", code="release_has_no_tracks")
    sheets = [set_split_sheet(session, track, shares, clock=clock, user_id=user_id, roles=roles, commit=False)
              for track in release.tracks if track.status != "taken_down"]
    _finish(session, commit)
    return sheets


def current_split_sheet(session: Session, track_id: int, at: datetime) -> SplitSheet | None:
    sheet = session.scalar(select(SplitSheet).where(SplitSheet.track_id == track_id,
                                                    SplitSheet.effective_at <= at)
                           .order_by(SplitSheet.effective_at.desc(), SplitSheet.version.desc()).limit(1))
    if sheet is None:  # before the first version: the first version applies
        sheet = session.scalar(select(SplitSheet).where(SplitSheet.track_id == track_id)
                               .order_by(SplitSheet.version).limit(1))
    return sheet


def split_sheet_at(session: Session, track_id: int, at: datetime) -> list[tuple[int, int]]:
    """[(payee_id, share_bp)] in force for the track at `at`; the shares sum to 10,000."""
    sheet = current_split_sheet(session, track_id, at)
    if sheet is None:
        raise CatalogNotFound(f"Track {track_id} has no split sheet.", code="track_not_found")
    return [(share.payee_id, share.share_bp) for share in sheet.shares]


def split_sheets_at(session: Session, track_ids: Iterable[int], at: datetime) -> dict[int, list[tuple[int, int]]]:
    """The batch form for the flush: one query for every track."""
    ids = sorted(set(int(t) for t in track_ids))
    if not ids:
        return {}
    rows = session.execute(text("""
        WITH chosen AS (
            SELECT DISTINCT ON (s.track_id) s.track_id, s.id
            FROM split_sheets s
            WHERE s.track_id = ANY(:ids)
            ORDER BY s.track_id, (s.effective_at <= :at) DESC,
                     CASE WHEN s.effective_at <= :at THEN s.effective_at END DESC NULLS LAST,
                     s.version DESC
        )
        SELECT c.track_id, sh.payee_id, sh.share_bp
        FROM chosen c JOIN split_shares sh ON sh.sheet_id = c.id
        ORDER BY c.track_id, sh.position, sh.id
    """), {"ids": ids, "at": at})
    result: dict[int, list[tuple[int, int]]] = {}
    for track_id, payee_id, share_bp in rows:
        result.setdefault(track_id, []).append((payee_id, share_bp))
    return result


# --- publishing and takedown ------------------------------------------------------------------------------
def publish_release(session: Session, release: Release, *, clock: Clock, at: datetime | None = None,
                    commit: bool = True) -> Release:
    """Publish now, or schedule for `at`; refuses a release with no tracks or a track without audio."""
    if release.status == "taken_down":
        raise CatalogConflict("This release was taken down and cannot be published.", code="release_taken_down")
    if release.status == "published":
        return release
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
    _finish(session, commit)
    return release


def _make_public(release: Release, now: datetime) -> None:
    release.status = "published"
    release.published_at = release.publish_at if release.publish_at and release.publish_at <= now else now
    for track in release.tracks:
        if track.status == "draft":
            track.status = "published"


def promote_due_releases(session: Session, clock: Clock, *, commit: bool = True) -> int:
    """Scheduled releases whose time has come become published (cheap when there are none)."""
    now = clock.now()
    due = list(session.scalars(select(Release).where(Release.status == "scheduled", Release.publish_at <= now)))
    for release in due:
        _make_public(release, now)
        session.flush()
        refresh_search(session, release.id)
    if due:
        _finish(session, commit)
    return len(due)


def take_down_track(session: Session, track: Track, *, commit: bool = True) -> Track:
    """Stops delivery and new grants (a takedown notice, or the artist withdrawing the track)."""
    track.status = "taken_down"
    session.flush()
    refresh_search(session, track.release_id)
    _finish(session, commit)
    return track


def restore_track(session: Session, track: Track, *, commit: bool = True) -> Track:
    track.status = "published" if track.release.status == "published" else "draft"
    session.flush()
    refresh_search(session, track.release_id)
    _finish(session, commit)
    return track


def refresh_search(session: Session, release_id: int) -> None:
    """Recompute the search documents of a release's tracks: set while public, NULL otherwise."""
    session.execute(text("""
        UPDATE tracks t SET search_vector = CASE
            WHEN r.status = 'published' AND t.status = 'published' THEN
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
def track_context(session: Session, track_id: int) -> dict:
    """Plain data the app hands to the ad server (which never imports the catalog)."""
    track = get_track(session, track_id)
    release = track.release
    price = effective_price(track)
    status = track.status
    if release.status == "taken_down":
        status = "taken_down"
    return {"track_id": track.id, "release_id": release.id, "artist_id": release.artist_id,
            "title": track.title, "artist_name": release.artist.name, "genre": release.genre or None,
            "tags": list(release.tags or []), "price_model": price["price_model"], "currency": release.currency,
            "status": status}
