"""People: users with roles, password hashes (argon2) and API tokens.

Users live in the kernel because every package refers to them (artists' members, advertisers' members,
finance approvers); signing in, sessions and CSRF are HTTP concerns and live in `app.auth`.

A user's `session_version` is copied into every session at sign-in and checked on each request; bumping
it (`end_sessions`: sign-out, password change, role change) ends every session of that user server-side,
even copies of a signed cookie that has not expired.

API token scopes are roles (a token acts with the roles it names that its user still holds) plus the
capability scope `tokens`, which lets a token manage its user's tokens. A token never mints a token
wider than itself: the new token's scopes must be a subset of the minting token's.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Collection
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ARRAY, CheckConstraint, ForeignKey, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from core.clock import Clock, SystemClock
from core.db import Base
from core.errors import Conflict, Forbidden, NotFound, ValidationError

ROLES = ("listener", "artist", "advertiser", "finance", "rights_holder", "admin")
SELF_SERVICE_ROLES = ("listener", "artist", "advertiser", "rights_holder")
EMAIL_RE = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,255}\.[A-Za-z]{2,63}$")
TOKEN_PREFIX = "nt_"
TOKENS_SCOPE = "tokens"
TOKEN_SCOPES = (*ROLES, TOKENS_SCOPE)

_hasher = PasswordHasher()


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("roles <@ ARRAY['listener','artist','advertiser','finance','rights_holder','admin']"
                        "::varchar[]", name="known_roles"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list)
    is_active: Mapped[bool] = mapped_column(default=True)
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", lazy="selectin")

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


def normalize_email(email: str) -> str:
    email = (email or "").strip()
    if not EMAIL_RE.match(email):
        raise ValidationError("That does not look like an email address.", code="invalid_email", field="email")
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


def check_password_strength(password: str) -> None:
    if not isinstance(password, str) or len(password) < 10:
        raise ValidationError("Choose a password of at least 10 characters.", code="weak_password",
                              field="password")
    if len(password) > 1024:
        raise ValidationError("That password is too long.", code="weak_password", field="password")


def check_roles(roles) -> list[str]:
    roles = list(dict.fromkeys(roles))
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValidationError(f"Unknown role(s): {', '.join(unknown)}", code="unknown_role", field="roles")
    return roles


def create_user(session: Session, *, email: str, password: str, display_name: str | None = None,
                roles=("listener",)) -> User:
    email = normalize_email(email)
    check_password_strength(password)
    roles = check_roles(roles)
    if session.scalar(select(User.id).where(func.lower(User.email) == email.lower())):
        raise Conflict("An account with that email already exists.", code="email_taken", field="email")
    display_name = (display_name or email.split("@")[0]).strip()[:120]
    user = User(email=email, display_name=display_name, password_hash=_hasher.hash(password), roles=roles)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The user whose email and password these are, or None. Takes the same time for unknown emails."""
    try:
        email = normalize_email(email)
    except ValidationError:
        email = ""
    user = session.scalar(select(User).where(func.lower(User.email) == email.lower())) if email else None
    stored = user.password_hash if user else _DUMMY_HASH
    try:
        _hasher.verify(stored, password or "")
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.is_active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


_DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.", code="user_not_found")
    return user


def end_sessions(session: Session, user: User) -> None:
    """End every cookie session of `user`: the version they carry no longer matches."""
    user.session_version = (user.session_version or 0) + 1
    session.flush()


def set_roles(session: Session, user: User, roles) -> User:
    """Give `user` exactly these roles; their sessions end, so no page keeps acting with the old ones."""
    user.roles = check_roles(roles)
    end_sessions(session, user)
    return user


def set_active(session: Session, user: User, active: bool) -> User:
    """Deactivate (no sign-in, no token use) or reactivate an account; deactivating ends its sessions."""
    user.is_active = bool(active)
    end_sessions(session, user)
    return user


def change_password(session: Session, user: User, *, current_password: str, new_password: str) -> User:
    """Set a new password after checking the current one; every session of the user ends."""
    try:
        _hasher.verify(user.password_hash, current_password or "")
    except (VerificationError, InvalidHashError):
        raise ValidationError("That is not your current password.", code="wrong_password",
                              field="current_password") from None
    check_password_strength(new_password)
    user.password_hash = _hasher.hash(new_password)
    end_sessions(session, user)
    return user


def check_scopes(scopes) -> list[str]:
    scopes = list(dict.fromkeys(scopes))
    unknown = [s for s in scopes if s not in TOKEN_SCOPES]
    if unknown:
        raise ValidationError(f"Unknown scope(s): {', '.join(map(str, unknown))}", code="unknown_scope",
                              field="scopes")
    return scopes


# How finely a token's last use is recorded: a request writes it only when the stored one is older.
TOKEN_USE_RESOLUTION = timedelta(minutes=1)


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def issue_token(session: Session, user: User, *, name: str, scopes=None,
                within: Collection[str] | None = None) -> tuple[ApiToken, str]:
    """Create an API token; the raw value is returned once and only its hash is stored.

    `within` is None when the user asks from a signed-in session; when a token asks, it is that token's
    effective scopes, and the new token may only carry scopes from it. Without `scopes` the new token gets
    the user's roles (from a session) or the asking token's roles (from a token), never `tokens`.
    """
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise ValidationError("Give the token a name of 1 to 120 characters.", code="invalid_name", field="name")
    if scopes is None:
        scopes = [r for r in user.roles if within is None or r in within]
    scopes = check_scopes(scopes)
    missing = [s for s in scopes if s in ROLES and s not in user.roles]
    if missing:
        raise ValidationError(f"You do not hold the role(s): {', '.join(missing)}", code="scope_not_held",
                              field="scopes")
    if within is not None:
        wider = [s for s in scopes if s not in within]
        if wider:
            raise Forbidden(f"A token can only create tokens within its own scopes; this one lacks "
                            f"{', '.join(wider)}.", code="scope_exceeds_token", scopes=wider)
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_hash=hash_token(raw), scopes=scopes)
    session.add(token)
    session.flush()
    return token, raw


def resolve_token(session: Session, raw: str, clock: Clock | None = None, *,
                  record_use: bool = True) -> tuple[User, list[str]] | None:
    """The user and effective scopes for a raw bearer token: its roles the user still holds, and `tokens`.

    With `record_use` (the caller's request may write: not a GET or HEAD, which do not write), the token's
    `last_used_at` is updated, at most once per `TOKEN_USE_RESOLUTION`, so a busy token is not a row
    written per request."""
    if not raw or not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(raw)))
    if token is None or not hmac.compare_digest(token.token_hash, hash_token(raw)) or not token.is_active:
        return None
    user = token.user
    if not user.is_active:
        return None
    if record_use:
        now = (clock or SystemClock()).now()
        if token.last_used_at is None or now - token.last_used_at >= TOKEN_USE_RESOLUTION:
            token.last_used_at = now
    return user, [s for s in token.scopes if s in user.roles or s == TOKENS_SCOPE]


def revoke_token(session: Session, user: User, token_id: int, clock: Clock | None = None) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound("No such token.", code="token_not_found")
    if token.revoked_at is None:
        token.revoked_at = (clock or SystemClock()).now()
    return token
