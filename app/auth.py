"""Who is asking, and may they? One authorization helper, used by every view.

Every view function is decorated with `access(...)`: `access(public=True)`, `access()` (any signed-in
user) or `access("artist", "admin")` (any of those roles). `create_app` refuses to start if a view has no
declaration, so no endpoint can forget to check.

A caller is signed in by the session cookie (web) or by `Authorization: Bearer nt_…` (API tokens, whose
scopes limit the roles). A view may also name a capability scope a token must carry
(`access(token_scope="tokens")`): a session passes, a token without that scope gets 403. A session carries
the user's `session_version` and ends when it changes (sign-out, password change, role change).
State-changing requests signed in by cookie need the CSRF token. Every visitor
also gets a signed pseudonymous listener id cookie, used for frequency caps and key-mode attribution.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from dataclasses import dataclass, field

from flask import Flask, g, request, session
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import bindparam, select
from sqlalchemy.orm import lazyload

from adserver.ivt import new_listener_id
from app import context
from app.transactions import SAFE_METHODS
from core.errors import Forbidden, Unauthorized
from core.users import ROLES, User, end_sessions, resolve_token

LISTENER_COOKIE = "ninety_lid"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class Principal:
    user: User | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    via: str | None = None  # "session" or "token"
    scopes: frozenset[str] | None = None  # a token's effective scopes; None for a session (no narrowing)

    @property
    def is_authenticated(self) -> bool:
        return self.user is not None

    def has_role(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)

    def has_scope(self, scope: str) -> bool:
        """A session holds every capability scope; a token only those it was given."""
        return self.via == "session" or (self.scopes is not None and scope in self.scopes)


def current_principal() -> Principal:
    if "principal" not in g:
        g.principal = _load_principal()
    return g.principal


def current_user() -> User | None:
    return current_principal().user


_PRINCIPAL_ONLY = (lazyload(User.tokens),)
# Built once, not per request (`Session.get` makes its SELECT anew each time, and traverses it for the cache).
_USER_BY_ID = select(User).where(User.id == bindparam("user_id")).options(*_PRINCIPAL_ONLY)


def _load_principal() -> Principal:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise Unauthorized("Send the API token as 'Authorization: Bearer <token>'.", code="bad_authorization")
        # A GET or HEAD does not write: its use of the token is not recorded (see docs/decisions.md).
        found = resolve_token(context.db(), raw.strip(), context.clock(),
                              record_use=request.method not in SAFE_METHODS)
        if found is None:
            raise Unauthorized("That API token is unknown, revoked or malformed.", code="invalid_token")
        user, scopes = found
        return Principal(user=user, roles=frozenset(s for s in scopes if s in ROLES), via="token",
                         scopes=frozenset(scopes))
    user_id = session.get("uid")
    if user_id is not None:
        try:  # the user's API tokens are not loaded with it (as User.tokens is by default): every request asks
            user = context.db().execute(_USER_BY_ID, {"user_id": int(user_id)}).scalar_one_or_none()
            if user is None:
                raise LookupError(user_id)
        except Exception:
            session.clear()
            return Principal()
        if user.is_active and session.get("sv") == user.session_version:
            return Principal(user=user, roles=frozenset(user.roles), via="session")
        session.clear()
    return Principal()


def access(*roles: str, public: bool = False, csrf: bool = True, token_scope: str | None = None,
           session_only: bool = False):
    """Declare who may call a view; checked before the view runs.

    `token_scope` names a capability a token caller must carry on top of the roles (sessions have it);
    `session_only` refuses tokens altogether (e.g. changing the password).
    """

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
                if session_only and principal.via != "session":
                    raise Forbidden("Sign in with your password to do that; API tokens cannot.",
                                    code="session_required")
                if token_scope and not principal.has_scope(token_scope):
                    raise Forbidden(f"Sign in, or use a token with the '{token_scope}' scope, to do that.",
                                    code="token_scope_required", required_scope=token_scope)
            if csrf:
                check_csrf(principal)
            return view(*args, **kwargs)

        wrapper.ninety_access = {"public": public, "roles": roles, "csrf": csrf, "token_scope": token_scope,
                                 "session_only": session_only}
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
    """End this session and, by bumping the user's session version, every other copy of it."""
    principal = current_principal()
    if principal.via == "session" and principal.user is not None:
        end_sessions(context.db(), principal.user)
    session.clear()
    g.principal = Principal()


def renew_session(user: User) -> None:
    """Keep this browser signed in after `user`'s other sessions were ended (e.g. a password change)."""
    csrf = session.get("_csrf")
    sign_in(user)
    if csrf:
        session["_csrf"] = csrf


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
        lid = new_listener_id(context.clock().now())  # carries its creation time (invalid-traffic checks)
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
