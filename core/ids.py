"""Identifiers: opaque random tokens and time-ordered ids."""

from __future__ import annotations

import os
import secrets
import time
import uuid


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7): sorts by creation time, indexes well."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)
