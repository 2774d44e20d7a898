"""The JSON API under /api/v1: one blueprint per area (`app/api/<area>.py`, each exporting `bp`).

Helpers here parse bodies with marshmallow and refuse what is malformed with a problem, never a 500.
"""

from __future__ import annotations

import json

from flask import request
from marshmallow import Schema

from app import context
from core.errors import ValidationError

API_PREFIX = "/api/v1"


def json_body() -> dict:
    """The request's JSON object, or a 4xx problem saying what is wrong with it."""
    if request.content_length is not None and request.content_length > context.config().max_json_bytes:
        raise ValidationError("The JSON body is too large.", code="payload_too_large", status=413)
    raw = request.get_data(cache=True)
    if len(raw) > context.config().max_json_bytes:
        raise ValidationError("The JSON body is too large.", code="payload_too_large", status=413)
    if not request.is_json:
        raise ValidationError("Send the body as application/json.", code="unsupported_media_type", status=415)
    try:
        data = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"The body is not valid JSON: {exc}", code="malformed_json", status=400) from None
    if not isinstance(data, dict):
        raise ValidationError("The body must be a JSON object.", code="malformed_json", status=400)
    reject_nul(data)
    return data


def reject_nul(value) -> None:
    """Text with NUL characters cannot be stored (PostgreSQL refuses them): say so instead of failing later."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValidationError("Text may not contain NUL (\\0) characters.", code="nul_character")
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_nul(key)
            reject_nul(item)
    elif isinstance(value, list):
        for item in value:
            reject_nul(item)


def load(schema: Schema, data: dict | None = None) -> dict:
    """Validate with a marshmallow schema (unknown fields are refused); errors become a 422 problem."""
    return schema.load(json_body() if data is None else data)
