"""The catalog's errors: each carries a stable code and a sentence a musician (or listener) can act on."""

from __future__ import annotations

from core.errors import NinetyError


class CatalogError(NinetyError):
    code = "catalog_error"
    status = 400
    title = "The catalog could not do that"


class CatalogNotFound(CatalogError):
    code = "not_found"
    status = 404
    title = "Not found"


class NotArtistMember(CatalogError):
    code = "not_artist_member"
    status = 403
    title = "Not your artist profile"


class InvalidCatalogInput(CatalogError):
    code = "invalid_input"
    status = 422
    title = "The input is not valid"


class InvalidPrice(CatalogError):
    code = "invalid_price"
    status = 422
    title = "The price is not valid"


class InvalidSplitSheet(CatalogError):
    code = "invalid_split_sheet"
    status = 422
    title = "The split sheet is not valid"


class CatalogConflict(CatalogError):
    code = "conflict"
    status = 409
    title = "Conflict with the release's current state"


class AudioRejected(CatalogError):
    """An upload that is not audio Ninety can deliver; `code` says why (see catalog.inspection)."""

    code = "unsupported_audio_format"
    status = 422
    title = "The file was not accepted"


class UploadTooLarge(CatalogError):
    code = "file_too_large"
    status = 413
    title = "The file is too large"


class GrantRefused(CatalogError):
    code = "grant_invalid"
    status = 403
    title = "This download link cannot be used"


class TrackUnavailable(CatalogError):
    code = "track_unavailable"
    status = 410
    title = "This track is not available"


class RangeNotSatisfiable(CatalogError):
    """A Range header the server rejects (RFC 9110 §14.2, §15.5.17): nothing satisfiable, or invalid."""

    code = "range_not_satisfiable"
    status = 416
    title = "The requested range cannot be served"
