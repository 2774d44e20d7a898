"""The demo's captured email, for admins: what `ninety mailbox` kept under var/mail/ (receipts, payout-method
confirmations, invitations), so a demo can follow a message's links without a real mail server."""

from __future__ import annotations

import email
import email.policy
import re
from email.utils import parsedate_to_datetime
from pathlib import Path

from flask import Blueprint, render_template

from app import context
from app.auth import access
from core.errors import NotFound

bp = Blueprint("web_mailbox", __name__, url_prefix="/admin/mail")

SHOWN = 200
# What MaildirHandler names a message: its arrival time, e.g. 20261202T074000.123456Z.eml (or -N for a twin).
NAME = re.compile(r"[0-9]{8}T[0-9]{6}(\.[0-9]{1,6})?Z(-[0-9]{1,4})?\.eml")


def init_app(app) -> None:
    links = app.jinja_env.globals["nav_links"]
    if not any(endpoint == "web_mailbox.index" for _, endpoint, _ in links):
        links.append(("Mail", "web_mailbox.index", ("admin",)))


def _folder() -> Path:
    return Path(context.config().var_dir) / "mail"


def _read(path: Path) -> email.message.EmailMessage:
    with path.open("rb") as handle:
        return email.message_from_binary_file(handle, policy=email.policy.default)


def _summary(path: Path) -> dict:
    message = _read(path)
    try:
        sent = parsedate_to_datetime(message["Date"]) if message["Date"] else None
    except (TypeError, ValueError):
        sent = None
    return {"name": path.name, "to": str(message["To"] or ""), "subject": str(message["Subject"] or "(no subject)"),
            "sent": sent}


@bp.get("")
@access("admin")
def index():
    folder = _folder()
    names = sorted((p for p in folder.glob("*.eml") if NAME.fullmatch(p.name)), reverse=True) if folder.is_dir() else []
    return render_template("sales/mailbox.html", messages=[_summary(p) for p in names[:SHOWN]], total=len(names),
                           folder=folder)


@bp.get("/<name>")
@access("admin")
def message(name: str):
    path = _folder() / name
    if not NAME.fullmatch(name) or not path.is_file():
        raise NotFound("There is no such message in the demo mailbox.", code="message_not_found")
    parsed = _read(path)
    part = parsed.get_body(preferencelist=("plain", "html"))
    text = part.get_content() if part is not None else ""
    return render_template("sales/mail_message.html", summary=_summary(path), headers=[
        (h, str(parsed[h])) for h in ("From", "To", "Subject", "Date") if parsed[h]], text=text,
        is_html=part is not None and part.get_content_subtype() == "html")
