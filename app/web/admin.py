"""Admin: the front page of the admin pages (accounts and roles, the notice queue, strikes, appeals,
flagged claimants, ad review)."""

from __future__ import annotations

from flask import Blueprint, render_template, url_for

from app.auth import access

bp = Blueprint("web_admin", __name__, url_prefix="/admin")


def init_app(app) -> None:
    app.jinja_env.globals["nav_links"].append(("Admin", "web_admin.index", ("admin",)))


@bp.get("")
@access("admin")
def index():
    sections = [("Accounts and roles", url_for("web_admin_users.users"),
                 "Find an account, change its roles.")]
    return render_template("admin/index.html", sections=sections)
