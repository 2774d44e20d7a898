"""The books for finance: trial balance, an account's statement, an entry with its postings, exports."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, time, timedelta

from flask import Blueprint, Response, render_template, request

from app import context
from app.auth import access
from core.errors import ValidationError
from ledger import accounts
from ledger.exports import write_beancount, write_csv
from ledger.services import find_account, get_entry, statement, trial_balance

bp = Blueprint("web_ledger", __name__, url_prefix="/finance/books")
STATEMENT_LIMIT = 2000
TRIAL_BALANCE_ROWS = 1000  # per currency on the page; the totals always cover every account


def init_app(app) -> None:
    app.jinja_env.globals["nav_links"].append(("Books", "web_ledger.trial_balance_page", ("finance",)))


def parse_day(name: str, *, end_of_day: bool = False) -> datetime | None:
    """A YYYY-MM-DD query parameter as a UTC time (the end of that day with `end_of_day`)."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        day = datetime.strptime(raw, "%Y-%m-%d").date()
    except ValueError:
        raise ValidationError(f"{name} must be a date written YYYY-MM-DD, like 2026-10-31.",
                              code="invalid_date") from None
    start = datetime.combine(day, time(0), tzinfo=UTC)
    if not end_of_day:
        return start
    if day == date.max:  # its end is the last moment a datetime holds
        return datetime.max.replace(tzinfo=UTC)
    return start + timedelta(days=1) - timedelta(microseconds=1)


def parse_currency() -> str:
    currency = request.args.get("currency", "USD").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ValidationError("currency must be a three-letter code such as USD.", code="unsupported_currency")
    return currency


def group_by_currency(rows, prefix: str = "") -> list[dict]:
    """Rows per currency (those whose code starts with `prefix`, at most TRIAL_BALANCE_ROWS shown) and the
    totals over every account of the currency."""
    groups: dict[str, dict] = {}
    for row in rows:
        group = groups.setdefault(row.currency, {"currency": row.currency, "rows": [], "hidden": 0,
                                                 "debits": 0, "credits": 0})
        if row.account.startswith(prefix):
            if len(group["rows"]) < TRIAL_BALANCE_ROWS:
                group["rows"].append(row)
            else:
                group["hidden"] += 1
        group["debits"] += row.debits_micros
        group["credits"] += row.credits_micros
    return list(groups.values())


@bp.get("")
@access("finance")
def trial_balance_page():
    as_of = parse_day("as_of", end_of_day=True)
    prefix = request.args.get("prefix", "").strip()[:200]
    groups = group_by_currency(trial_balance(context.db(), as_of=as_of), prefix)
    return render_template("ledger/trial_balance.html", groups=groups, as_of=request.args.get("as_of", ""),
                           prefix=prefix)


@bp.get("/accounts/<code>")
@access("finance")
def account(code: str):
    currency = parse_currency()
    start = parse_day("start")
    end = parse_day("end", end_of_day=True)
    found = find_account(context.db(), code, currency)
    lines = statement(context.db(), code, currency, start=start, end=end, limit=STATEMENT_LIMIT + 1)
    return render_template("ledger/account.html", account=found, lines=lines[:STATEMENT_LIMIT],
                           truncated=len(lines) > STATEMENT_LIMIT, start=request.args.get("start", ""),
                           end=request.args.get("end", ""), beancount_name=accounts.beancount_name(code))


@bp.get("/entries/<bigint:entry_id>")
@access("finance")
def entry(entry_id: int):
    found = get_entry(context.db(), entry_id)
    return render_template("ledger/entry.html", entry=found)


@bp.get("/export.beancount")
@access("finance")
def export_beancount():
    out = io.StringIO()
    write_beancount(context.db(), out)
    return Response(out.getvalue(), mimetype="text/plain",
                    headers={"Content-Disposition": 'attachment; filename="ninety-books.beancount"'})


@bp.get("/journal.csv")
@access("finance")
def journal_csv():
    out = io.StringIO()
    write_csv(context.db(), out)
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="ninety-journal.csv"'})
