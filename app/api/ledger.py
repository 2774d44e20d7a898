"""The books over JSON (finance only): trial balance, an account's statement, one entry, the check."""

from __future__ import annotations

from flask import Blueprint
from marshmallow import Schema, fields

from app import context
from app.api import API_PREFIX
from app.auth import access
from app.web.ledger import STATEMENT_LIMIT, parse_currency, parse_day
from ledger.checks import check_books
from ledger.services import find_account, get_entry, statement, trial_balance

bp = Blueprint("api_ledger", __name__, url_prefix=f"{API_PREFIX}/ledger")


class TrialBalanceRowSchema(Schema):
    account = fields.String()
    currency = fields.String()
    type = fields.String()
    debits_micros = fields.Integer()
    credits_micros = fields.Integer()
    balance_micros = fields.Integer(metadata={"description": "on the account's normal side"})


class StatementLineSchema(Schema):
    entry_id = fields.Integer()
    effective_at = fields.DateTime()
    description = fields.String()
    event = fields.String(allow_none=True)
    side = fields.String()
    amount_micros = fields.Integer()
    ref = fields.String(allow_none=True)
    balance_micros = fields.Integer(metadata={"description": "running balance after this line"})


class PostingSchema(Schema):
    account = fields.String()
    side = fields.String()
    amount_micros = fields.Integer()
    currency = fields.String()
    ref = fields.String(allow_none=True)


class EntrySchema(Schema):
    id = fields.Integer()
    idempotency_key = fields.String()
    effective_at = fields.DateTime()
    recorded_at = fields.DateTime()
    description = fields.String()
    metadata = fields.Dict()
    reverses_id = fields.Integer(allow_none=True)
    reversed_by_id = fields.Integer(allow_none=True)
    postings = fields.List(fields.Nested(PostingSchema))


@bp.get("/trial-balance")
@access("finance")
def trial_balance_view():
    """Every account's debits, credits and balance, with totals per currency (query: as_of=YYYY-MM-DD).
    ---
    get:
      parameters:
        - {name: as_of, in: query, schema: {type: string, format: date}}
      responses:
        200:
          content:
            application/json:
              schema:
                type: object
                properties:
                  accounts:
                    type: array
                    items: TrialBalanceRowSchema
                  totals:
                    type: object
    """
    rows = trial_balance(context.db(), as_of=parse_day("as_of", end_of_day=True))
    totals: dict[str, dict] = {}
    for row in rows:
        total = totals.setdefault(row.currency, {"debits_micros": 0, "credits_micros": 0})
        total["debits_micros"] += row.debits_micros
        total["credits_micros"] += row.credits_micros
    return {"accounts": TrialBalanceRowSchema(many=True).dump(rows), "totals": totals}


@bp.get("/accounts/<code>/statement")
@access("finance")
def statement_view(code: str):
    """An account's postings with running balance (query: currency, start, end as YYYY-MM-DD).
    ---
    get:
      parameters:
        - {name: currency, in: query, schema: {type: string, example: USD}}
        - {name: start, in: query, schema: {type: string, format: date}}
        - {name: end, in: query, schema: {type: string, format: date}}
      responses:
        200:
          content:
            application/json:
              schema:
                type: object
                properties:
                  account:
                    type: string
                  currency:
                    type: string
                  type:
                    type: string
                  balance_micros:
                    type: integer
                  version:
                    type: integer
                  lines:
                    type: array
                    items: StatementLineSchema
    """
    currency = parse_currency()
    found = find_account(context.db(), code, currency)
    lines = statement(context.db(), code, currency, start=parse_day("start"),
                      end=parse_day("end", end_of_day=True), limit=STATEMENT_LIMIT)
    return {"account": found.code, "currency": found.currency, "type": found.type,
            "balance_micros": found.balance_micros, "version": found.version,
            "lines": StatementLineSchema(many=True).dump(lines)}


@bp.get("/entries/<bigint:entry_id>")
@access("finance")
def entry_view(entry_id: int):
    """One journal entry with its postings.
    ---
    get:
      responses:
        200:
          content:
            application/json:
              schema: EntrySchema
    """
    return EntrySchema().dump(get_entry(context.db(), entry_id))


@bp.get("/check")
@access("finance")
def check_view():
    """Verify the books (as `ninety ledger check`): ok, counts, and every problem found.
    ---
    get:
      responses:
        200:
          content:
            application/json:
              schema:
                type: object
    """
    report = check_books(context.db())
    return {"ok": report.ok, "entries": report.entries, "postings": report.postings, "accounts": report.accounts,
            "closed_periods": report.closed_periods,
            "problems": [{"kind": p.kind, "message": p.message, "entry_id": p.entry_id, "account": p.account,
                          "period": p.period} for p in report.problems]}
