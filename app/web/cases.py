"""The artist's side of a takedown (/dashboard/notices): every case against the artist's tracks with its
statement of reasons (DSA Art. 17) and audit log, the counter-notice with the §512(g)(3) elements,
accepting the notice, strikes and their appeal (DSA Art. 20), and a suspension if there is one.

An artist sees only cases against tracks of artists they are a member of (`rights.services.get_case`
answers 404 for anyone else's). A refused counter-notice re-renders the form with each missing element
marked and writes nothing.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app import context
from app.auth import access, current_user
from app.forms import attempt
from app.noticerequest import problems_of, settings
from catalog.services import artists_for_user
from core.errors import NinetyError
from rights import services

bp = Blueprint("web_cases", __name__, url_prefix="/dashboard")

COUNTER_FIELDS = ("name", "address", "phone", "email", "explanation", "signature")
COUNTER_INPUTS = {"statement_mistake": "statement_mistake", "consent_jurisdiction": "consent_jurisdiction"}


def counter_payload(form) -> dict:
    payload = {key: form.get(key, "").strip()[:5000 if key == "explanation" else 500] for key in COUNTER_FIELDS}
    payload["statement_mistake"] = form.get("statement_mistake") == "yes"
    payload["consent_jurisdiction"] = form.get("consent_jurisdiction") == "yes"
    return payload


def _artists():
    return artists_for_user(context.db(), current_user().id)


@bp.get("/notices")
@access("artist", "admin")
def cases():
    session = context.db()
    now = context.clock().now()
    artists = _artists()
    strikes = {a.id: services.strikes_for_artist(session, a.id, now=now) for a in artists}
    active = {a.id: services.active_strike_count(session, a.id, now) for a in artists}
    suspended = {a.id: services.is_suspended(session, a.id) for a in artists}
    return render_template("rights/artist_cases.html", cases=services.cases_for_user(session, current_user().id),
                           artists=artists, strikes=strikes, active=active, suspended=suspended, now=now,
                           cfg=settings())


def _render_case(case_id: int, *, values: dict | None = None, problems: list[dict] | None = None, status=200):
    session = context.db()
    user = current_user()
    case = services.get_case(session, case_id, user)
    now = context.clock().now()
    problems = problems or []
    can_counter = case.state == "disabled" and case.counter_deadline_at is not None and now <= case.counter_deadline_at
    return render_template("rights/artist_case.html", case=case, notice=case.notice, now=now,
                           events=services.case_events(session, case_id, user),
                           money=services.case_money(session, case_id), can_counter=can_counter,
                           values=values or {"name": user.display_name, "email": user.email},
                           problems=problems, marked={p["input"]: p["message"] for p in problems if p.get("input")},
                           strikes=[s for s in services.strikes_for_artist(session, case.artist_id, now=now)
                                    if s.case_id == case.id]), status


@bp.get("/notices/<int:case_id>")
@access("artist", "admin")
def case(case_id: int):
    return _render_case(case_id)


@bp.post("/notices/<int:case_id>/counter")
@access("artist", "admin")
def counter(case_id: int):
    """The counter-notice (§512(g)(3)); forwarded to the claimant, the track returns in 10 business days unless
    they report a court action first."""
    session = context.db()
    form = request.form
    try:
        services.file_counter_notice(session, case_id, current_user(), counter_payload(form), clock=context.clock(),
                                     settings=settings())
    except NinetyError as exc:
        session.rollback()
        problems = [{**p, "input": (p.get("field") or "").removeprefix("counter.") or None}
                    for p in problems_of(exc)]
        return _render_case(case_id, values=dict(form.items()), problems=problems, status=exc.status)
    flash("Counter-notice filed and forwarded to the claimant. Unless they report a court action, the track "
          "comes back after 10 business days and its held earnings are released to you.", "success")
    return redirect(url_for("web_cases.case", case_id=case_id), code=303)


@bp.post("/notices/<int:case_id>/accept")
@access("artist", "admin")
def accept(case_id: int):
    services.get_case(context.db(), case_id, current_user())  # someone else's case is a 404, not a flash
    with attempt() as tried:
        services.accept_notice(context.db(), case_id, current_user(), clock=context.clock(), settings=settings(),
                               reason=request.form.get("reason", "").strip()[:2000])
    if not tried.failed:
        flash("You accepted the notice: the track stays down and its held earnings go to the claimant.", "success")
    return redirect(url_for("web_cases.case", case_id=case_id), code=303)


@bp.post("/strikes/<int:strike_id>/appeal")
@access("artist", "admin")
def appeal(strike_id: int):
    """An internal complaint against a strike (DSA Art. 20), decided by a person."""
    with attempt() as tried:
        services.file_appeal(context.db(), strike_id, current_user(),
                             grounds=request.form.get("grounds", "").strip()[:5000], clock=context.clock(),
                             settings=settings())
    if not tried.failed:
        flash("Appeal filed: a person will review the strike and tell you the outcome.", "success")
    return redirect(url_for("web_cases.cases"), code=303)
