"""Who is asking, and may they? One authorization helper, used by every view.

Every view function is decorated with `access(...)`: `access(public=True)`, `access()` (any signed-in
user) or `access("artist", "admin")` (any of those roles). `create_app` refuses to start if a view has no
declaration, so no endpoint can forget to check.

A caller is signed in by the session cookie (web) or by `Authorization: Bearer nt_…` (API tokens, whose
scopes limit the roles). State-changing requests signed in by cookie need the CSRF token. Every visitor
also gets a signed pseudonymous listener id cookie, used for frequency caps and key-mode attribution.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from dataclasses import dataclass, field

from flask import Flask, g, request, session
from itsdangerous import BadSignature, URLSafeSerializer

from app import context
from core.errors import Forbidden, Unauthorized
from core.users import User, get_user, resolve_token

LISTENER_COOKIE = "ninety_lid"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class Principal:
    user: User | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    via: str | None = None  # "session" or "token"

    @property
    def is_authenticated(self) -> bool:
        return self.user is not None

    def has_role(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)


def current_principal() -> Principal:
    if "principal" not in g:
        g.principal = _load_principal()
    return g.principal


def current_user() -> User | None:
    return current_principal().user


def _load_principal() -> Principal:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise Unauthorized("Send the API token as 'Authorization: Bearer <token>'.", code="bad_authorization")
        found = resolve_token(context.db(), raw.strip(), context.clock())
        if found is None:
            raise Unauthorized("That API token is unknown, revoked or malformed.", code="invalid_token")
        user, roles = found
        return Principal(user=user, roles=frozenset(roles), via="token")
    user_id = session.get("uid")
    if user_id is not None:
        try:
            user = get_user(context.db(), int(user_id))
        except Exception:
            session.clear()
            return Principal()
        if user.is_active and session.get("sv") == user.session_version:
            return Principal(user=user, roles=frozenset(user.roles), via="session")
        session.clear()
    return Principal()


def access(*roles: str, public: bool = False, csrf: bool = True):
    """Declare who may call a view; checked before the view runs."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            principal = current_principal()
            if not public:
                if not principal.is_authenticated:
                    raise Unauthorized("Sign in to do that.", code="sign_in_required")
                if roles and not principal.has_role(*roles):
                    raise Forbidden(f"This needs the role {' or '.join(roles)}.", code="role_required",
                                    required_roles=list(roles))
            if csrf:
                check_csrf(principal)
            return view(*args, **kwargs)

        wrapper.ninety_access = {"public": public, "roles": roles, "csrf": csrf}
        return wrapper

    return decorate


def require(*roles: str) -> Principal:
    """The same check as `access`, for a decision made inside a view (e.g. owner or admin)."""
    principal = current_principal()
    if not principal.is_authenticated:
        raise Unauthorized("Sign in to do that.", code="sign_in_required")
    if roles and not principal.has_role(*roles):
        raise Forbidden(f"This needs the role {' or '.join(roles)}.", code="role_required")
    return principal


# --- sessions ---------------------------------------------------------------------------------------
def sign_in(user: User) -> None:
    session.clear()
    session["uid"] = user.id
    session["sv"] = user.session_version
    session["_csrf"] = secrets.token_urlsafe(32)
    session.permanent = True
    g.principal = Principal(user=user, roles=frozenset(user.roles), via="session")


def sign_out() -> None:
    session.clear()
    g.principal = Principal()


# --- CSRF -------------------------------------------------------------------------------------------
def csrf_token() -> str:
    if "_csrf" not in session:
        session["_csrf"] = secrets.token_urlsafe(32)
    return session["_csrf"]


def check_csrf(principal: Principal) -> None:
    if request.method not in UNSAFE_METHODS or principal.via == "token":
        return
    expected = session.get("_csrf")
    given = request.headers.get("X-CSRF-Token") or (request.form.get("csrf_token") if request.form else None)
    if not expected or not given or not hmac.compare_digest(str(expected), str(given)):
        raise Forbidden("The form has expired or did not come from this site; reload the page and try again.",
                        code="csrf_failed")


# --- the pseudonymous listener id ---------------------------------------------------------------------
def _listener_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(context.config().secret_key, salt="ninety.listener")


def current_listener_id() -> str:
    """A stable pseudonymous id for this browser (or the signed-in user), never the user's email."""
    if "listener_id" in g:
        return g.listener_id
    user = current_user()
    if user is not None:
        g.listener_id = f"u{user.id}"
        return g.listener_id
    raw = request.cookies.get(LISTENER_COOKIE)
    lid = None
    if raw:
        try:
            lid = _listener_serializer().loads(raw)
        except BadSignature:
            lid = None
    if not lid:
        lid = "a" + secrets.token_hex(12)
        g.set_listener_cookie = True
    g.listener_id = lid
    return lid


def init_auth(app: Flask) -> None:
    @app.before_request
    def _listener():
        current_listener_id() if not request.path.startswith("/static") else None

    @app.after_request
    def _set_listener_cookie(response):
        if g.get("set_listener_cookie"):
            response.set_cookie(LISTENER_COOKIE, _listener_serializer().dumps(g.listener_id),
                                max_age=365 * 24 * 3600, httponly=True, samesite="Lax",
                                secure=context.config().is_production)
        return response

    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["current_principal"] = current_principal
