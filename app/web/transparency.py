"""The public transparency page (/transparency): per month of receipt, the takedown notices received,
actioned and rejected, and the median and maximum time from receipt to decision (DSA Art. 15 / 24)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from app import context
from app.auth import access
from app.noticerequest import settings
from rights.services import transparency

bp = Blueprint("web_transparency", __name__)

MONTHS_DEFAULT = 12
MONTHS_MAX = 60


def init_app(app) -> None:
    app.jinja_env.filters["hours"] = hours_text


def hours_text(seconds) -> str:
    """A decision time as hours and minutes: `3 h 05 min`, `12 min`, or — when nothing was decided."""
    if seconds is None:
        return "—"
    minutes = int(round(float(seconds) / 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


@bp.get("/transparency")
@access(public=True)
def index():
    months = min(max(request.args.get("months", type=int) or MONTHS_DEFAULT, 1), MONTHS_MAX)
    stats = transparency(context.db(), months=months, now=context.clock().now())
    return render_template("rights/transparency.html", stats=stats, months=months,
                           decision_hours=settings().decision_hours)
