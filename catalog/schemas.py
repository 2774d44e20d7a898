"""Marshmallow schemas for the catalog's JSON API (requests refuse unknown fields; amounts are text).

The output schemas dump the models themselves: what the OpenAPI document names is what the API returns.
Addresses of pages and files are the app's business, so `ReleaseSchema(links=...)` takes an object that
builds them (`CatalogLinks`); without one they dump as null.
"""

from __future__ import annotations

from typing import Protocol

from marshmallow import Schema, fields, validate

from catalog.models import GRANT_VIAS, PRICE_MODELS, RELEASE_KINDS  # noqa: F401
from catalog.services import effective_price, release_price
from core.fields import Id

AMOUNT = {"description": "an amount in the release's currency, like \"4.99\" (whole cents)"}


def computed(field_class: type[fields.Field], compute, *args, **kwargs) -> fields.Field:
    """A field of `field_class` (documented as such) whose value is `compute(obj)` rather than an attribute."""

    class Computed(field_class):
        def get_value(self, obj, attr, accessor=None, default=None):
            return compute(obj)

    kwargs.setdefault("dump_only", True)
    return Computed(*args, **kwargs)


class CatalogLinks(Protocol):
    def release_url(self, release) -> str: ...

    def cover_url(self, release) -> str | None: ...


def _link(name: str) -> fields.Field:
    """A URL that the root schema's `links` builds (null when it has none)."""

    class Link(fields.String):
        def get_value(self, obj, attr, accessor=None, default=None):
            links = getattr(self.root, "links", None)
            return getattr(links, name)(obj) if links is not None else None

    return Link(allow_none=True, dump_only=True)


class MoneySchema(Schema):
    micros = fields.Integer()
    currency = fields.String()
    display = computed(fields.String, lambda money: money.format())


class ArtistCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    bio = fields.String(load_default="", validate=validate.Length(max=5000))
    location = fields.String(load_default="", validate=validate.Length(max=200))
    links = fields.List(fields.String(validate=validate.Length(max=300)), load_default=list,
                        validate=validate.Length(max=10))
    currency = fields.String(load_default="USD", validate=validate.Length(equal=3))


class ArtistUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    bio = fields.String(validate=validate.Length(max=5000))
    location = fields.String(validate=validate.Length(max=200))
    links = fields.List(fields.String(validate=validate.Length(max=300)), validate=validate.Length(max=10))


class ArtistSchema(Schema):
    id = fields.Integer()
    slug = fields.String()
    name = fields.String()
    bio = fields.String()
    location = fields.String()
    links = fields.List(fields.String())
    currency = fields.String()


class PayeeInviteSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(max=320))
    display_name = fields.String(validate=validate.Length(min=1, max=200))


class PayeeSchema(Schema):
    id = fields.Integer()
    display_name = fields.String()
    artist_id = fields.Integer(allow_none=True)
    accepted = computed(fields.Boolean, lambda payee: payee.user_id is not None)


class PayeeListSchema(Schema):
    items = fields.List(fields.Nested(PayeeSchema))


class ReleaseCreateSchema(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=300))
    kind = fields.String(load_default="album", validate=validate.OneOf(RELEASE_KINDS))
    release_date = fields.Date(allow_none=True)
    genre = fields.String(load_default="", validate=validate.Length(max=60))
    tags = fields.List(fields.String(validate=validate.Length(max=60)), load_default=list,
                       validate=validate.Length(max=20))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    upc = fields.String(allow_none=True, validate=validate.Length(max=14))


class ReleaseUpdateSchema(Schema):
    title = fields.String(validate=validate.Length(min=1, max=300))
    kind = fields.String(validate=validate.OneOf(RELEASE_KINDS))
    release_date = fields.Date(allow_none=True)
    genre = fields.String(validate=validate.Length(max=60))
    tags = fields.List(fields.String(validate=validate.Length(max=60)), validate=validate.Length(max=20))
    description = fields.String(validate=validate.Length(max=5000))
    upc = fields.String(allow_none=True, validate=validate.Length(max=14))


class PriceSchema(Schema):
    price_model = fields.String(required=True, allow_none=True,
                                validate=validate.OneOf(PRICE_MODELS),
                                metadata={"description": "null on a track removes its override"})
    currency = fields.String(validate=validate.Length(equal=3))
    price = fields.String(allow_none=True, validate=validate.Length(max=20), metadata=AMOUNT)
    minimum_price = fields.String(allow_none=True, validate=validate.Length(max=20), metadata=AMOUNT)
    suggested_price = fields.String(allow_none=True, validate=validate.Length(max=20), metadata=AMOUNT)


class ShareSchema(Schema):
    payee_id = Id(required=True)
    share_bp = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10_000),
                              metadata={"description": "basis points; the shares sum to 10000"})
    role = fields.String(load_default="", validate=validate.Length(max=60))


class SplitSheetInputSchema(Schema):
    shares = fields.List(fields.Nested(ShareSchema), required=True, validate=validate.Length(min=1, max=50))


class SplitSheetSchema(Schema):
    track_id = fields.Integer()
    version = fields.Integer()
    effective_at = fields.DateTime()
    shares = fields.List(fields.Nested(ShareSchema))


class SplitSheetListSchema(Schema):
    items = fields.List(fields.Nested(SplitSheetSchema))


class TrackUpdateSchema(Schema):
    title = fields.String(validate=validate.Length(min=1, max=300))
    position = fields.Integer(strict=True, validate=validate.Range(min=1, max=9999))
    isrc = fields.String(allow_none=True, validate=validate.Length(max=20))
    explicit = fields.Boolean()


class AudioSchema(Schema):
    sha256 = fields.String()
    format = fields.String()
    codec = fields.String()
    duration_ms = fields.Integer()
    bitrate = fields.Integer()
    sample_rate = fields.Integer()
    channels = fields.Integer()
    size_bytes = fields.Integer()


class PriceOutSchema(Schema):
    price_model = fields.String()
    currency = fields.String()
    price = fields.Nested(MoneySchema, allow_none=True)
    minimum = fields.Nested(MoneySchema, allow_none=True)
    suggested = fields.Nested(MoneySchema, allow_none=True)


class TrackSchema(Schema):
    id = fields.Integer()
    release_id = fields.Integer()
    position = fields.Integer()
    title = fields.String()
    isrc = fields.String(allow_none=True)
    explicit = fields.Boolean()
    status = fields.String()
    audio = fields.Nested(AudioSchema, allow_none=True, attribute="asset")
    price = computed(fields.Nested, effective_price, PriceOutSchema,
                     metadata={"description": "the track's own price, else its release's"})


class UploadedTrackSchema(TrackSchema):
    deduplicated = fields.Boolean(metadata={"description": "the same audio was already stored"})


class UploadedTracksSchema(Schema):
    items = fields.List(fields.Nested(UploadedTrackSchema))


class ReleaseSchema(Schema):
    id = fields.Integer()
    artist = fields.Nested(ArtistSchema)
    slug = fields.String()
    title = fields.String()
    kind = fields.String()
    release_date = fields.Date(allow_none=True)
    genre = fields.String()
    tags = fields.List(fields.String())
    description = fields.String()
    upc = fields.String(allow_none=True)
    status = fields.String()
    publish_at = fields.DateTime(allow_none=True)
    published_at = fields.DateTime(allow_none=True)
    cover_url = _link("cover_url")
    url = _link("release_url")
    price = computed(fields.Nested, release_price, PriceOutSchema)
    tracks = fields.List(fields.Nested(TrackSchema))

    def __init__(self, *args, links: CatalogLinks | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.links = links


class ReleaseCardSchema(Schema):
    """A release in a browse page (a search row, not the model: hence no tracks or prices)."""

    id = fields.Integer(attribute="release_id")
    title = fields.String()
    artist_id = fields.Integer()
    artist_name = fields.String()
    genre = fields.String()
    kind = fields.String()
    published_at = fields.DateTime()
    track_count = fields.Integer()
    url = fields.String()


class ReleasePageSchema(Schema):
    items = fields.List(fields.Nested(ReleaseCardSchema))
    next_cursor = fields.String(allow_none=True)


class PublishSchema(Schema):
    at = fields.AwareDateTime(allow_none=True, metadata={"description": "schedule for later (UTC); omit for now"})


class GrantSchema(Schema):
    download_url = fields.String()
    expires_in = fields.Integer()


class SearchHitSchema(Schema):
    track_id = fields.Integer()
    title = fields.String()
    artist_name = fields.String()
    release_title = fields.String()
    genre = fields.String()
    tags = fields.List(fields.String())
    duration_ms = fields.Integer(allow_none=True)
    url = fields.String()


class SearchPageSchema(Schema):
    items = fields.List(fields.Nested(SearchHitSchema))
    next_cursor = fields.String(allow_none=True)
