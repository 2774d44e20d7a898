"""The rights-holder portal (/rights): file a notice (one work, several, or a CSV of them, with reference
audio files matched by fingerprint), follow each notice and its cases with their audit log, report a
court action, withdraw.

A rights holder sees only the notices they filed (`rights.services.get_notice` answers 404 for anyone
else's, an admin sees all). An incomplete or invalid notice re-renders the form with each missing or
wrong element marked, and nothing is written: the whole request rolls back on a 4xx. The form carries
an idempotency key minted when it is shown, so a double submit files one notice.
"""

from __future__ import annotations

import re
import secrets

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app import context
from app.auth import access, current_user
from app.forms import attempt
from app.noticerequest import problems_of, read_csv_upload, saved_references, settings
from app.request_body import file_parts
from core.errors import NinetyError
from rights import services

bp = Blueprint("web_rights", __name__, url_prefix="/rights")

FORM_WORKS_DEFAULT = 1
FORM_WORKS_MAX = 20
_KEY = re.compile(r"[A-Za-z0-9_-]{16,80}")


def init_app(app) -> None:
    app.jinja_env.globals["nav_links"].append(("Notices", "web_rights.index", ("rights_holder",)))


# --- the payload from the form ---------------------------------------------------------------------------------
def split_tracks(text: str) -> list[str | int]:
    """The track and release references typed in a box: ids, `track:12`, `release:5` or page URLs,
    separated by whitespace, commas or semicolons."""
    items: list[str | int] = []
    for part in re.split(r"[\s,;]+", text or ""):
        part = part.strip()
        if part:
            items.append(int(part) if part.isdigit() and len(part) < 10 else part[:2000])
    return items


def form_payload(form) -> dict:
    """The notice payload (rights-contract "Payload of a notice") from the portal form's fields."""
    count = min(max(form.get("works_count", type=int) or FORM_WORKS_DEFAULT, 1), FORM_WORKS_MAX)
    works = []
    for i in range(count):
        work = {"title": form.get(f"works-{i}-title", "").strip()[:500],
                "description": form.get(f"works-{i}-description", "").strip()[:5000],
                "tracks": split_tracks(form.get(f"works-{i}-tracks", "")[:20000])}
        works.append(work)
    return {
        "claimant": {key: form.get(f"claimant_{key}", "").strip()[:500]
                     for key in ("name", "email", "address", "phone", "acting_for")},
        "works": works,
        "statements": {key: form.get(key) == "yes" for key in ("good_faith", "accurate", "authorized")},
        "signature": form.get("signature", "").strip()[:200],
    }


def _form_defaults() -> dict:
    user = current_user()
    return {"claimant_name": user.display_name, "claimant_email": user.email}


def _render_form(*, values: dict, problems: list[dict] | None = None, status: int = 200, works_count: int = 1,
                 key: str | None = None):
    problems = problems or []
    marked = {p["input"]: p["message"] for p in problems if p.get("input")}
    return render_template("rights/new_notice.html", values=values, problems=problems, marked=marked,
                           works_count=works_count, key=key or secrets.token_urlsafe(24),
                           max_reference_mib=settings().max_reference_bytes // (1024 * 1024)), status


# --- pages -----------------------------------------------------------------------------------------------------
@bp.get("")
@access("rights_holder", "admin")
def index():
    notices = services.notices_for_claimant(context.db(), current_user().id, limit=200)
    return render_template("rights/index.html", notices=notices, now=context.clock().now())


@bp.get("/notices/new")
@access("rights_holder", "admin")
def new_notice():
    count = min(max(request.args.get("works", type=int) or FORM_WORKS_DEFAULT, 1), FORM_WORKS_MAX)
    return _render_form(values=_form_defaults(), works_count=count)


@bp.post("/notices")
@access("rights_holder", "admin")
def file_notice():
    """File the notice from the form; refused elements are marked on the form again (nothing is written)."""
    form = request.form
    works_count = min(max(form.get("works_count", type=int) or FORM_WORKS_DEFAULT, 1), FORM_WORKS_MAX)
    values = {k: v for k, v in form.items() if k not in {"csrf_token"}}
    key = form.get("idempotency_key", "")
    key = key if _KEY.fullmatch(key) else None
    try:
        payload = form_payload(form)
        source = "portal"
        csv_files = file_parts("csv")
        if csv_files:
            payload["works"] = services.parse_works_csv(read_csv_upload(csv_files[0][1]))
            source = "csv"
            files = {}
        else:
            files = {}
            for name, file in file_parts(*(f"works-{i}-reference" for i in range(works_count))):
                files.setdefault(name, file)
            for name in files:
                payload["works"][int(name.split("-")[1])]["reference"] = name
        cfg = settings()
        with saved_references(files, max_bytes=cfg.max_reference_bytes) as references:
            notice = services.file_notice(context.db(), current_user(), payload, clock=context.clock(),
                                          settings=cfg, idempotency_key=key, references=references or None,
                                          source=source)
    except NinetyError as exc:
        context.db().rollback()
        return _render_form(values=values, problems=problems_of(exc), status=exc.status, works_count=works_count,
                            key=key)
    flash(f"Notice {notice.id} received. It will be decided by "
          f"{notice.deadline_at.strftime('%Y-%m-%d %H:%M')} UTC; a confirmation is on its way to "
          f"{notice.claimant_email}.", "success")
    return redirect(url_for("web_rights.notice", notice_id=notice.id), code=303)


@bp.get("/notices/<int:notice_id>")
@access("rights_holder", "admin")
def notice(notice_id: int):
    session = context.db()
    found = services.get_notice(session, notice_id, current_user())
    return render_template("rights/notice.html", notice=found, now=context.clock().now(),
                           events=services.notice_events(session, notice_id, current_user()),
                           money={c.id: services.case_money(session, c.id) for c in found.cases})


@bp.post("/notices/<int:notice_id>/withdraw")
@access("rights_holder", "admin")
def withdraw(notice_id: int):
    services.get_notice(context.db(), notice_id, current_user())  # someone else's notice is a 404, not a flash
    with attempt() as tried:
        services.withdraw_notice(context.db(), notice_id, current_user(), clock=context.clock(),
                                 settings=settings(), reason=request.form.get("reason", "").strip()[:2000])
    if not tried.failed:
        flash(f"Notice {notice_id} withdrawn: its tracks are restored and held earnings go to the artists.",
              "success")
    return redirect(url_for("web_rights.notice", notice_id=notice_id), code=303)


@bp.post("/cases/<int:case_id>/court-action")
@access("rights_holder", "admin")
def court_action(case_id: int):
    """The claimant reports that they filed a court action: the track stays down and the case is upheld."""
    session = context.db()
    case = services.get_case(session, case_id, current_user())
    with attempt() as tried:
        services.report_court_action(session, case_id, current_user(), clock=context.clock(), settings=settings(),
                                     reference=request.form.get("reference", "").strip()[:500])
    if not tried.failed:
        flash("Court action recorded: the track stays unavailable and its held earnings go to you.", "success")
    return redirect(url_for("web_rights.notice", notice_id=case.notice_id), code=303)
