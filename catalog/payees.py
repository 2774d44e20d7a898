"""Payees: whoever can be paid — an artist (one payee each) or a collaborator invited by email.

An invited collaborator is a payee from the start, so their earnings accrue in the books at once; they are
linked to an account only through the signed invitation link (emails are not verified).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.common import clean_text, finish
from catalog.errors import CatalogConflict, CatalogNotFound, InvalidSplitSheet
from catalog.models import Payee, Release, SplitShare, SplitSheet, Track
from core.clock import Clock
from core.users import EMAIL_RE, User


def artist_payee(session: Session, artist_id: int) -> Payee:
    payee = session.scalar(select(Payee).where(Payee.artist_id == artist_id))
    if payee is None:  # pragma: no cover - every artist is created with its payee
        raise CatalogNotFound("The artist has no payee.", code="payee_not_found")
    return payee


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
    payee = Payee(display_name=clean_text(display_name or email.split("@")[0], "display_name", max_len=200),
                  email=email, invited_by_artist_id=artist_id)
    session.add(payee)
    finish(session, commit)
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
    finish(session, commit)
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

