"""Download codes: an artist hands out single-use codes for a release; redeeming one adds the release to the
listener's collection as an order at 0 (no money moves, no ledger entry).

A code is redeemed by one `UPDATE … WHERE redeemed_at IS NULL`, so two redemptions racing for it cannot both
win. Every attempt counts against a per-account and a per-address limit before the code is looked at, so
guessing codes is as slow as the limits (50 random bits a code) and gives no timing hint.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
import uuid

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from catalog.models import Release
from catalog.services import is_member, is_public, require_member
from core import ratelimit
from core.clock import Clock
from core.users import User
from sales.errors import CodeRefused, SalesError, SalesForbidden, SalesNotFound
from sales.models import DownloadCode, Order
from sales.orders import owns_release

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud, typed from a card
CODE_LENGTH = 10
MAX_CODES_PER_REQUEST = 1000
MAX_CODES_PER_RELEASE = 20_000
REDEEM_LIMIT_PER_USER = 10  # attempts a minute
REDEEM_LIMIT_PER_IP = 30
_CLEAN = re.compile(r"[\s\-]+")


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def normalize(code: str) -> str:
    """What a person typed, as stored: upper case, grouped in fives (spaces and dashes ignored)."""
    raw = _CLEAN.sub("", code or "").upper()
    return f"{raw[:5]}-{raw[5:]}" if len(raw) == CODE_LENGTH else raw


def generate_codes(session: Session, *, release_id: int, user: User, count: int, clock: Clock) -> list[DownloadCode]:
    """`count` (1..1000) new codes for one of the artist's own releases, one batch."""
    release = session.get(Release, release_id) if isinstance(release_id, int) else None
    if release is None:
        raise SalesNotFound("There is no such release.", code="release_not_found")
    require_member(session, release.artist_id, user, admin_ok=False)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_CODES_PER_REQUEST:
        raise SalesError(f"Ask for 1 to {MAX_CODES_PER_REQUEST} codes at a time.", code="invalid_count", status=422,
                         field="count")
    if release.status == "taken_down":
        raise SalesError("This release was taken down; its codes could not be redeemed.", code="release_unavailable",
                         status=409)
    existing = session.scalar(text("SELECT count(*) FROM sales_download_codes WHERE release_id = :r"),
                              {"r": release.id})
    if existing + count > MAX_CODES_PER_RELEASE:
        raise SalesError(f"A release can have at most {MAX_CODES_PER_RELEASE} codes.", code="too_many_codes",
                         status=422)
    now = clock.now()
    batch = f"{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    codes = [DownloadCode(release_id=release.id, code=new_code(), batch=batch, created_by_user_id=user.id,
                          created_at=now) for _ in range(count)]
    session.add_all(codes)
    session.flush()
    return codes


def codes_for_release(session: Session, release_id: int, *, user: User) -> list[DownloadCode]:
    release = session.get(Release, release_id) if isinstance(release_id, int) else None
    if release is None:
        raise SalesNotFound("There is no such release.", code="release_not_found")
    require_member(session, release.artist_id, user, admin_ok=True)
    return list(session.scalars(select(DownloadCode).where(DownloadCode.release_id == release.id)
                                .order_by(DownloadCode.id)))


def codes_csv(codes: list[DownloadCode]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["code", "batch", "created_at", "redeemed", "redeemed_at"])
    for code in codes:
        writer.writerow([code.code, code.batch, code.created_at.isoformat(), "yes" if code.redeemed_at else "no",
                         code.redeemed_at.isoformat() if code.redeemed_at else ""])
    return out.getvalue()


def redeem_code(session: Session, redis, *, code: str, user: User, ip: str, clock: Clock) -> Order:
    """Add the code's release to the listener's collection; the code can never be used again."""
    message = "Too many codes tried; wait a minute and try again."
    ratelimit.enforce(redis, f"code-redeem:user:{user.id}", limit=REDEEM_LIMIT_PER_USER, window_s=60, message=message)
    ratelimit.enforce(redis, f"code-redeem:ip:{ip or 'unknown'}", limit=REDEEM_LIMIT_PER_IP, window_s=60,
                      message=message)
    value = normalize(code if isinstance(code, str) else "")
    if not value or len(value) > 32:
        raise SalesNotFound("There is no such code; check it and try again.", code="code_not_found")
    found = session.scalar(select(DownloadCode).where(DownloadCode.code == value))
    if found is None:
        raise SalesNotFound("There is no such code; check it and try again.", code="code_not_found")
    if found.redeemed_at is not None:
        raise CodeRefused("This code has already been used.", code="code_used")
    release = session.get(Release, found.release_id)
    if release.status == "taken_down" or not is_public(release, clock.now()):
        raise CodeRefused("This release is not available now; keep the code and try again when it is out.",
                          code="release_unavailable")
    if is_member(session, release.artist_id, user.id):
        raise SalesForbidden("This is your own release; give the code to a listener.", code="own_release")
    if owns_release(session, user.id, release.id):
        raise CodeRefused("This release is in your collection already; the code is still unused, so give it to "
                          "someone else.", code="already_owned")
    now = clock.now()
    claimed = session.execute(text(
        "UPDATE sales_download_codes SET redeemed_at = :now, redeemed_by_user_id = :user "
        "WHERE id = :id AND redeemed_at IS NULL RETURNING id"), {"now": now, "user": user.id, "id": found.id}).first()
    if claimed is None:  # someone redeemed it between our read and our update
        raise CodeRefused("This code has already been used.", code="code_used")
    order = Order(kind="code", buyer_user_id=user.id, artist_id=release.artist_id, release_id=release.id,
                  currency=release.currency, amount_micros=0, status="paid", created_at=now, paid_at=now)
    session.add(order)
    session.flush()
    session.execute(text("UPDATE sales_download_codes SET order_id = :order WHERE id = :id"),
                    {"order": order.id, "id": found.id})
    session.expire(found)
    return order
