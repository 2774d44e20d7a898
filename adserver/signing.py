"""Signed ad decisions: a compact, self-contained token (payload + HMAC-SHA256 with the app's secret).

A beacon carries the token back; the server trusts nothing in it that the signature does not cover.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass

from adserver.errors import ExpiredDecision, InvalidDecision

_SALT = b"ninety.ad-decision.v1"
MAX_TOKEN_CHARS = 1200


@dataclass(frozen=True, slots=True)
class Decision:
    id: str                 # 32 hex chars (a UUID)
    campaign_id: int
    advertiser_id: int
    creative_id: int
    slot: str
    track_id: int | None
    listener_id: str
    mode: str
    price_micros: int
    currency: str
    issued_at: int          # epoch seconds
    expires_at: int         # epoch seconds
    min_view_ms: int
    kind: str = "display"   # the creative's kind: display or audio

    def signed(self, secret: str) -> str:
        return sign(self, secret)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, body: bytes) -> bytes:
    return hmac.new(hashlib.sha256(_SALT + secret.encode()).digest(), body, hashlib.sha256).digest()


def sign(decision: Decision, secret: str) -> str:
    body = json.dumps(list(asdict(decision).values()), separators=(",", ":")).encode()
    return f"{_b64(body)}.{_b64(_mac(secret, body))}"


_FIELDS = [f for f in Decision.__dataclass_fields__]


def verify(token: str, secret: str, *, now_s: float | None = None) -> Decision:
    """The decision a token carries, if its signature holds and it has not expired."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise InvalidDecision("That ad decision is malformed; ask for a new ad.", code="malformed_decision")
    body_b64, mac_b64 = token.split(".")
    try:
        body, mac = _unb64(body_b64), _unb64(mac_b64)
    except (binascii.Error, ValueError):
        raise InvalidDecision("That ad decision is malformed; ask for a new ad.", code="malformed_decision") from None
    if not hmac.compare_digest(mac, _mac(secret, body)):
        raise InvalidDecision("That ad decision was not signed by Ninety.", code="forged_decision")
    try:
        values = json.loads(body)
        decision = Decision(**dict(zip(_FIELDS, values, strict=True)))
    except (ValueError, TypeError):
        raise InvalidDecision("That ad decision is malformed; ask for a new ad.", code="malformed_decision") from None
    if now_s is not None and now_s > decision.expires_at:
        exc = ExpiredDecision("That ad decision has expired; reload the page for a new ad.", decision=decision.id)
        exc.expired = decision
        raise exc
    return decision
