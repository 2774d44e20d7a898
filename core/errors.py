"""Base error types. Every domain error carries a stable machine code and a sentence a person can act on.

`app` maps them to one application/problem+json shape (RFC 9457); `status` is the HTTP status it suggests.
"""

from __future__ import annotations

from typing import Any


class NinetyError(Exception):
    code = "error"
    status = 400
    title = "Request failed"

    def __init__(self, message: str | None = None, *, code: str | None = None, status: int | None = None,
                 **details: Any) -> None:
        self.message = message or self.title
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details
        super().__init__(self.message)


class ValidationError(NinetyError):
    code = "invalid_input"
    status = 422
    title = "The input is not valid"


class NotFound(NinetyError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(NinetyError):
    code = "conflict"
    status = 409
    title = "Conflict with the current state"


class Unauthorized(NinetyError):
    code = "unauthorized"
    status = 401
    title = "Sign-in required"


class Forbidden(NinetyError):
    code = "forbidden"
    status = 403
    title = "Not allowed"


class RateLimited(NinetyError):
    code = "rate_limited"
    status = 429
    title = "Too many requests"
