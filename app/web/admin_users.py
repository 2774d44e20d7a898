"""Admin: accounts and roles (until now `ninety users …` only): find a user, set their roles, deactivate or
reactivate the account.

Setting roles goes through `core.users.set_roles`, which ends every session of that user, so no page
keeps acting with the old roles; deactivating ends them too (and stops the account's API tokens). An admin
cannot take the admin role from themselves, nor deactivate themselves, here: the last
person able to hand it back would be locked out (the CLI, which needs shell access, still can).
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import any_, func, literal, or_, select

from app import context
from app.auth import access, current_user, renew_session
from app.forms import attempt
from core.errors import ValidationError
from core.users import ROLES, User, get_user, set_active, set_roles

bp = Blueprint("web_admin_users", __name__, url_prefix="/admin/users")

PAGE_SIZE = 50
ROLE_LABELS = {
    "listener": "Listener",
    "artist": "Artist",
    "advertiser": "Advertiser",
    "finance": "Finance",
    "rights_holder": "Rights holder",
    "admin": "Admin",
}


def _like(text: str) -> str:
    """A LIKE pattern matching `text` literally anywhere (its % and _ are not wildcards)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@bp.get("")
@access("admin")
def users():
    session = context.db()
    query = request.args.get("q", "").strip()[:200]
    role = request.args.get("role", "")
    role = role if role in ROLES else ""
    after = request.args.get("after", type=int) or 0
    stmt = select(User).where(User.id > after).order_by(User.id).limit(PAGE_SIZE + 1)
    if query:
        pattern = _like(query.lower())
        stmt = stmt.where(or_(func.lower(User.email).like(pattern, escape="\\"),
                              func.lower(User.display_name).like(pattern, escape="\\")))
    if role:
        stmt = stmt.where(literal(role) == any_(User.roles))
    found = list(session.scalars(stmt))
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    return render_template("admin/users.html", users=found, query=query, role=role, roles=ROLES,
                           role_labels=ROLE_LABELS, next_after=found[-1].id if more else None)


@bp.get("/<int:user_id>")
@access("admin")
def user(user_id: int):
    found = get_user(context.db(), user_id)
    return render_template("admin/user.html", user=found, roles=ROLES, role_labels=ROLE_LABELS,
                           is_self=found.id == current_user().id)


@bp.post("/<int:user_id>/roles")
@access("admin")
def roles(user_id: int):
    session = context.db()
    with attempt() as tried:
        found = get_user(session, user_id)
        chosen = request.form.getlist("roles")
        if found.id == current_user().id and "admin" not in chosen:
            raise ValidationError("You cannot take the admin role from yourself; ask another admin.",
                                  code="own_admin_role")
        set_roles(session, found, chosen)
        if found.id == current_user().id:
            renew_session(found)  # this browser stays signed in; the admin's other sessions end
    if not tried.failed:
        flash(f"{found.email} now has the roles: {', '.join(found.roles) or 'none'}. "
              "Their sessions were signed out.", "success")
    return redirect(url_for("web_admin_users.user", user_id=user_id), code=303)


@bp.post("/<int:user_id>/<any('deactivate', 'reactivate'):change>")
@access("admin")
def activation(user_id: int, change: str):
    session = context.db()
    with attempt() as tried:
        found = get_user(session, user_id)
        if found.id == current_user().id:
            raise ValidationError("You cannot deactivate your own account; ask another admin.", code="own_account")
        set_active(session, found, change == "reactivate")
    if not tried.failed:
        flash(f"{found.email} is {'active again' if found.is_active else 'deactivated and signed out everywhere'}.",
              "success")
    return redirect(url_for("web_admin_users.user", user_id=user_id), code=303)
