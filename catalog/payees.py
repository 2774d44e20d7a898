"""Payees: whoever can be paid — an artist (one payee each) or a collaborator invited by email.

An invited collaborator is a payee from the start, so their earnings accrue in the books at once. Each
invitation is its own payee, owned by the artist that sent it: inviting an address never hands over a payee
someone else invited (or another artist's own payee), and only the inviting artist ever sees its link.
The link is emailed to the invited address, and accepting it binds only the account with that very email
(case-insensitively): a link forwarded to, or shown to, anyone else cannot claim the earnings.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.common import clean_text
from catalog.errors import CatalogConflict, CatalogError, CatalogNotFound, InvalidSplitSheet
from catalog.models import Artist, Payee, Release, SplitShare, SplitSheet, Track
from core.clock import Clock
from core.jobs import send_mail_later
from core.mail import Message, mask_email
from core.users import EMAIL_RE, User


def artist_payee(session: Session, artist_id: int) -> Payee:
    payee = session.scalar(select(Payee).where(Payee.artist_id == artist_id))
    if payee is None:  # pragma: no cover - every artist is created with its payee
        raise CatalogNotFound("The artist has no payee.", code="payee_not_found")
    return payee


def invite_payee(session: Session, artist_id: int, *, email: str, display_name: str | None = None,
                 invitation_link: Callable[[Payee], str] | None = None) -> Payee:
    """A collaborator invited by email is a payee from the start; their earnings wait in the books.

    Always this artist's own invitation: the artist's earlier invitation of the same address that nobody
    accepted yet is reused (so re-saving a split does not multiply payees); anything else is a new payee.
    With `invitation_link`, the link is emailed to the address once the caller commits.
    """
    email = (email or "").strip()
    if not EMAIL_RE.match(email):
        raise InvalidSplitSheet(f"{email[:80]!r} is not an email address.", code="invalid_email", field="email")
    existing = session.scalar(select(Payee).where(func.lower(Payee.email) == email.lower(),
                                                  Payee.invited_by_artist_id == artist_id,
                                                  Payee.artist_id.is_(None), Payee.user_id.is_(None))
                              .order_by(Payee.id).limit(1))
    if existing is not None:
        return existing
    payee = Payee(display_name=clean_text(display_name or email.split("@")[0], "display_name", max_len=200),
                  email=email, invited_by_artist_id=artist_id)
    session.add(payee)
    session.flush()
    if invitation_link is not None:
        artist = session.get(Artist, artist_id)
        send_mail_later(session, Message(
            to=email, subject=f"{artist.name if artist else 'An artist'} credits you on Ninety",
            body=(f"{artist.name if artist else 'An artist'} added you, as {payee.display_name}, to the split "
                  "sheet of their music on Ninety: a share of what it earns is recorded in your name.\n\n"
                  f"To receive it, sign in (or sign up) with this address, {email}, and accept:\n\n"
                  f"    {invitation_link(payee)}\n\n"
                  "The invitation can only be accepted by the account with this email address.\n")))
    session.flush()
    return payee


def invitations_for_artist(session: Session, artist_id: int) -> list[Payee]:
    """The invitations this artist sent that nobody accepted yet: the only invitation links it may see."""
    return list(session.scalars(select(Payee).where(Payee.invited_by_artist_id == artist_id,
                                                    Payee.artist_id.is_(None), Payee.user_id.is_(None))
                                .order_by(Payee.id)))


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


def accept_invitation(session: Session, token: str, user: User, *, secret: str, clock: Clock) -> Payee:
    """Link an invited payee to the signed-in account, if it is the invited address's; what they earned so
    far is already theirs."""
    payee = payee_for_invitation(session, token, secret)
    if payee.user_id is not None and payee.user_id != user.id:
        raise CatalogConflict("This invitation was already accepted by another account.",
                              code="invitation_taken")
    if not is_invited_account(payee, user):
        raise CatalogError(f"This invitation was sent to {mask_email(payee.email or '')}, and only the account "
                           "with that email address can accept it. Sign in with that address (or sign up "
                           "with it) and open the link again.", code="invitation_wrong_account", status=403)
    payee.user_id = user.id
    payee.accepted_at = payee.accepted_at or clock.now()
    session.flush()
    return payee


def is_invited_account(payee: Payee, user: User | None) -> bool:
    return bool(user is not None and payee.email and user.email
                and user.email.strip().lower() == payee.email.strip().lower())


def payees_of_user(session: Session, user_id: int) -> list[Payee]:
    return list(session.scalars(select(Payee).where(Payee.user_id == user_id).order_by(Payee.id)))


def payees_for_artist(session: Session, artist_id: int) -> list[Payee]:
    """The artist's own payee, then everyone it invited or already splits with."""
    in_sheets = (select(SplitShare.payee_id).join(SplitSheet).join(Track).join(Release)
                 .where(Release.artist_id == artist_id))
    return list(session.scalars(select(Payee).where(
        (Payee.artist_id == artist_id) | (Payee.invited_by_artist_id == artist_id) | Payee.id.in_(in_sheets))
        .order_by(Payee.artist_id.is_(None), Payee.id)))

