"""Admin: the notice queue (every complete notice decided within 24 hours: ordered by deadline, with the
time left), a notice's review page (action it, or reject it with reasons), suspensions pending review,
strike appeals (DSA Art. 20: decided by a person), and claimants flagged for repeatedly rejected
notices (§512(f)). Accounts and roles are in app/web/admin_users.py.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from app import context
from app.auth import access, current_user
from app.forms import attempt
from app.noticerequest import settings
from catalog.models import Artist
from catalog.storage import MediaStore
from core.errors import ValidationError
from core.users import User
from rights import services

bp = Blueprint("web_admin", __name__, url_prefix="/admin")


def init_app(app) -> None:
    app.jinja_env.globals["nav_links"].append(("Admin", "web_admin.index", ("admin",)))
    app.jinja_env.filters["time_left"] = time_left_text


def time_left_text(left: timedelta) -> str:
    """`5 h 12 min left`, or `overdue by 2 h 3 min`."""
    seconds = int(left.total_seconds())
    hours, minutes = divmod(abs(seconds) // 60, 60)
    text = f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
    return f"{text} left" if seconds >= 0 else f"overdue by {text}"


def _reason() -> str:
    reason = request.form.get("reason", "").strip()[:5000]
    if not reason:
        raise ValidationError("Give the reason: it is sent to both parties and kept in the audit log.",
                              code="reason_required", field="reason")
    return reason


@bp.get("")
@access("admin")
def index():
    session = context.db()
    now = context.clock().now()
    queue = services.decision_queue(session, now=now, limit=1000)
    overdue = [n for n in queue if services.time_left(n, now) < timedelta(0)]
    sections = [
        ("Notice queue", url_for("web_admin.notices"),
         f"{len(queue)} undecided, {len(overdue)} past the 24-hour deadline."),
        ("Suspensions", url_for("web_admin.suspensions"),
         f"{len(services.pending_suspensions(session))} artists waiting for review."),
        ("Strike appeals", url_for("web_admin.appeals"), f"{len(services.pending_appeals(session))} to decide."),
        ("Flagged claimants", url_for("web_admin.claimants"),
         f"{len(services.flagged_claimants(session))} with repeatedly rejected notices."),
        ("Accounts and roles", url_for("web_admin_users.users"), "Find an account, change its roles."),
        ("Transparency", url_for("web_transparency.index"), "What the public sees: notices per month."),
    ]
    return render_template("admin/index.html", sections=sections)


# --- notices ---------------------------------------------------------------------------------------------------
@bp.get("/notices")
@access("admin")
def notices():
    now = context.clock().now()
    queue = services.decision_queue(context.db(), now=now, limit=500)
    rows = [(n, services.time_left(n, now)) for n in queue]
    return render_template("admin/notices.html", rows=rows, now=now)


@bp.get("/notices/<int:notice_id>")
@access("admin")
def notice(notice_id: int):
    session = context.db()
    admin = current_user()
    found = services.get_notice(session, notice_id, admin)
    now = context.clock().now()
    return render_template("admin/notice.html", notice=found, now=now,
                           left=services.time_left(found, now) if found.decided_at is None else None,
                           events=services.notice_events(session, notice_id, admin),
                           flagged={f.user_id for f in services.flagged_claimants(session)})


@bp.post("/notices/<int:notice_id>/<any('action', 'reject'):decision>")
@access("admin")
def decide(notice_id: int, decision: str):
    with attempt() as tried:
        if decision == "action":
            store = MediaStore(context.config().media_path)  # to fingerprint audio not fingerprinted yet (stay-down)
            found = services.action_notice(context.db(), notice_id, current_user(), reason=_reason(),
                                           clock=context.clock(), settings=settings(),
                                           audio_path=lambda sha256: store.path_for("audio", sha256))
        else:
            found = services.reject_notice(context.db(), notice_id, current_user(), reason=_reason(),
                                           clock=context.clock(), settings=settings())
    if tried.failed:
        return redirect(url_for("web_admin.notice", notice_id=notice_id), code=303)
    if decision == "action":
        flash(f"Notice {notice_id} actioned: {len(found.cases)} track(s) disabled, their earnings held from now "
              "on, and each artist sent the statement of reasons.", "success")
    else:
        flash(f"Notice {notice_id} rejected; the claimant is told why.", "success")
    return redirect(url_for("web_admin.notices"), code=303)


# --- repeat infringers and abuse --------------------------------------------------------------------------------
@bp.get("/suspensions")
@access("admin")
def suspensions():
    session = context.db()
    now = context.clock().now()
    pending = services.pending_suspensions(session)
    strikes = {s.artist_id: services.strikes_for_artist(session, s.artist_id, now=now) for s in pending}
    return render_template("admin/suspensions.html", suspensions=pending, strikes=strikes,
                           artists=_artists({s.artist_id for s in pending}), now=now)


def _artists(ids: set[int]) -> dict:
    return {a.id: a for a in context.db().scalars(select(Artist).where(Artist.id.in_(ids)))} if ids else {}


@bp.post("/suspensions/<int:suspension_id>/<any('lift', 'keep'):outcome>")
@access("admin")
def review_suspension(suspension_id: int, outcome: str):
    with attempt() as tried:
        services.review_suspension(context.db(), suspension_id, current_user(), lift=outcome == "lift",
                                   reason=_reason(), clock=context.clock())
    if not tried.failed:
        flash("Suspension lifted: the artist can upload and release again." if outcome == "lift"
              else "Suspension kept after review.", "success")
    return redirect(url_for("web_admin.suspensions"), code=303)


@bp.get("/appeals")
@access("admin")
def appeals():
    pending = services.pending_appeals(context.db())
    return render_template("admin/appeals.html", appeals=pending, artists=_artists({a.artist_id for a in pending}))


@bp.post("/appeals/<int:appeal_id>/<any('grant', 'deny'):outcome>")
@access("admin")
def decide_appeal(appeal_id: int, outcome: str):
    with attempt() as tried:
        services.decide_appeal(context.db(), appeal_id, current_user(), granted=outcome == "grant",
                               reason=_reason(), clock=context.clock(), settings=settings())
    if not tried.failed:
        flash("Appeal granted: the strike is void." if outcome == "grant" else "Appeal denied; the artist is told why.",
              "success")
    return redirect(url_for("web_admin.appeals"), code=303)


@bp.get("/claimants")
@access("admin")
def claimants():
    session = context.db()
    flags = services.flagged_claimants(session)
    ids = {f.user_id for f in flags}
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    return render_template("admin/claimants.html", flags=flags, users=users)


@bp.post("/claimants/<int:flag_id>/clear")
@access("admin")
def clear_claimant(flag_id: int):
    with attempt() as tried:
        services.clear_claimant_flag(context.db(), flag_id, current_user(), reason=_reason(), clock=context.clock())
    if not tried.failed:
        flash("Flag cleared after review.", "success")
    return redirect(url_for("web_admin.claimants"), code=303)
