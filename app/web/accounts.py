"""Sign-up, sign-in, sign-out, the account page and password change.

Sign-in is throttled per (email, IP) with backoff and per IP against spraying (`core.ratelimit.LoginThrottle`);
sign-out and a password change end every session of the user, not only this browser's.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app import context
from app.auth import access, current_principal, current_user, renew_session, sign_in, sign_out
from app.forms import attempt
from core import ratelimit
from core.errors import NinetyError, RateLimited
from core.users import (
    SELF_SERVICE_ROLES,
    TOKENS_SCOPE,
    authenticate,
    change_password,
    create_user,
    issue_token,
    revoke_token,
)

bp = Blueprint("web_accounts", __name__)

ROLE_LABELS = {
    "listener": "Listener — download and buy music",
    "artist": "Artist — publish releases and get paid",
    "advertiser": "Advertiser — run campaigns",
    "rights_holder": "Rights holder — file takedown notices",
}


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect a person off the site after signing in."""
    if not target:
        return url_for("web_accounts.account")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("web_accounts.account")
    return target


@bp.route("/signup", methods=["GET", "POST"])
@access(public=True)
def signup():
    form = {"email": "", "display_name": "", "roles": ["listener"]}
    error = None
    next_url = request.values.get("next", "")  # e.g. the checkout a new listener signs up on the way to
    if request.method == "POST":
        form = {
            "email": request.form.get("email", "")[:320],
            "display_name": request.form.get("display_name", "")[:120],
            "roles": [r for r in request.form.getlist("roles") if r in SELF_SERVICE_ROLES] or ["listener"],
        }
        try:
            ratelimit.enforce(context.redis(), f"signup:{request.remote_addr}", limit=20, window_s=3600,
                              message="Too many sign-ups from this address; try again later.")
            user = create_user(context.db(), email=form["email"], password=request.form.get("password", ""),
                               display_name=form["display_name"] or None, roles=form["roles"])
            sign_in(user)  # the request commits the new account after the view returns
            flash("Welcome to Ninety. Your account is ready.", "success")
            return redirect(_safe_next(next_url))
        except NinetyError as exc:
            error = exc.message
    return render_template("accounts/signup.html", form=form, error=error, role_labels=ROLE_LABELS,
                           next=next_url), \
        (422 if error else 200)


@bp.route("/signin", methods=["GET", "POST"])
@access(public=True)
def signin():
    error = None
    email = ""
    next_url = request.values.get("next", "")
    if request.method == "POST":
        email = request.form.get("email", "")[:320]
        ip = request.remote_addr or "unknown"
        throttle = _login_throttle()
        try:
            throttle.begin(email, ip)
        except RateLimited as exc:
            wait_s = int(exc.details.get("retry_after") or 1)
            message = f"{exc.message} You can try again in {_duration(wait_s)}."
            return render_template("accounts/signin.html", error=message, email=email, next=next_url), 429, \
                {"Retry-After": str(wait_s)}
        user = authenticate(context.db(), email, request.form.get("password", ""))
        if user is None:
            throttle.failed(email, ip)
            error = "That email and password do not match an account."
        else:
            throttle.succeeded(email, ip)
            sign_in(user)
            return redirect(_safe_next(next_url))
    return render_template("accounts/signin.html", error=error, email=email, next=next_url), (401 if error else 200)


def _login_throttle() -> ratelimit.LoginThrottle:
    cfg = context.config()
    return ratelimit.LoginThrottle(context.redis(), per_pair=cfg.login_attempts_per_15min,
                                   per_ip=cfg.login_ip_failures_per_15min)


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{-(-seconds // 60)} minutes"


@bp.post("/signout")
@access(public=True)
def signout():
    """Sign out everywhere: every session of this user ends, copied cookies included."""
    sign_out()
    flash("You are signed out.", "info")
    return redirect(url_for("home"))


@bp.get("/account")
@access()
def account():
    return render_template("accounts/account.html", user=current_user(), principal=current_principal(),
                           new_token=None)


@bp.post("/account/password")
@access(session_only=True)
def password():
    """Change the password (the current one is required); other sessions end, this one stays signed in."""
    user = current_user()
    with attempt() as tried:
        ratelimit.enforce(context.redis(), f"password:{user.id}", limit=10, window_s=900,
                          message="Too many password changes; wait 15 minutes and try again.")
        change_password(context.db(), user, current_password=request.form.get("current_password", ""),
                        new_password=request.form.get("new_password", ""))
    if tried.failed:
        return redirect(url_for("web_accounts.account"))
    renew_session(user)
    flash("Your password is changed. Every other session has been signed out.", "success")
    return redirect(url_for("web_accounts.account"))


@bp.post("/account/tokens")
@access(token_scope=TOKENS_SCOPE)
def create_token():
    scopes = request.form.getlist("scopes") or None
    with attempt() as tried:
        token, raw = issue_token(context.db(), current_user(), name=request.form.get("name", ""), scopes=scopes,
                                 within=current_principal().scopes)
    if tried.failed:
        return redirect(url_for("web_accounts.account"))
    return render_template("accounts/account.html", user=current_user(), principal=current_principal(),
                           new_token=raw)


@bp.post("/account/tokens/<int:token_id>/revoke")
@access(token_scope=TOKENS_SCOPE)
def revoke(token_id: int):
    revoke_token(context.db(), current_user(), token_id, context.clock())
    flash("Token revoked.", "info")
    return redirect(url_for("web_accounts.account"))
