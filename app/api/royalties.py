"""Royalties API: balances, statements, the listener receipt; for finance, close, draft, approve, execute and
batch progress (the finance console polls it)."""

from __future__ import annotations

from datetime import UTC, timedelta

from flask import Blueprint, request
from marshmallow import Schema, fields, validate

from app import context
from app.api import API_PREFIX, load
from app.auth import access, current_listener_id, current_user
from catalog import plays
from core.errors import NotFound, ValidationError
from core.money import Money, check_currency
from royalties.periods import bounds, period_of

bp = Blueprint("api_royalties", __name__, url_prefix=API_PREFIX)

PERIOD = validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="Write the month as YYYY-MM.")


class DraftSchema(Schema):
    period = fields.String(required=True, validate=PERIOD)
    currency = fields.String(load_default=None, validate=validate.Length(equal=3))


class BatchSchema(Schema):
    id = fields.Integer()
    period = fields.String()
    currency = fields.String()
    status = fields.String()
    item_count = fields.Integer()
    total_micros = fields.Integer()
    drafted_by = fields.Integer()
    approved_by = fields.Integer(allow_none=True)


def _payee_id() -> int:
    from app.web.royalties import require_payee, viewable_payees

    payee_id = request.args.get("payee", type=int)
    if payee_id is None:
        payees = viewable_payees()
        if not payees:
            raise NotFound("You are not a payee.", code="payee_not_found")
        return payees[0].id
    return require_payee(payee_id).id


@bp.get("/royalties/balance")
@access()
def balance():
    """The live balances of one of the caller's payees (`?payee=`; default the first).
    ---
    get:
      parameters:
        - {name: payee, in: query, schema: {type: integer}}
      responses:
        200:
          description: payable and held balances per currency, in micros
    """
    from royalties.services import balances_for_payee

    payee_id = _payee_id()
    rows = balances_for_payee(context.db(), payee_id)
    for row in rows:
        row["payable_display"] = Money(row["payable_micros"], row["currency"]).format(full=True)
    return {"payee_id": payee_id, "balances": rows}


@bp.get("/royalties/tracks")
@access()
def tracks():
    """Per track, what one of the caller's payees earned (`?payee=`, `?currency=`): downloads, impressions,
    revenue, and the sales side (sales, what they credited, refunded, disputed, the card fees), in micros.
    ---
    get:
      parameters:
        - {name: payee, in: query, schema: {type: integer}}
        - {name: currency, in: query, schema: {type: string, example: USD}}
      responses:
        200:
          description: one row per track
    """
    from royalties.services import track_table

    payee_id = _payee_id()
    currency = check_currency(request.args.get("currency") or context.config().currency)
    rows = track_table(context.db(), payee_id, currency)
    counted = plays.plays_by_track(context.db(), [row["track_id"] for row in rows])
    for row in rows:
        row["plays"] = counted.get(row["track_id"], 0)
    return {"payee_id": payee_id, "currency": currency, "tracks": rows}


PLAYS_DAYS = 30
MAX_PLAYS_DAYS = 366


class PlaysQuery(Schema):
    payee = fields.Integer(load_default=None)
    first_day = fields.Date(data_key="from", load_default=None)
    last_day = fields.Date(data_key="to", load_default=None)


@bp.get("/royalties/plays")
@access()
def plays_by_day():
    """Counted plays (30 s heard) per track and UTC day of the tracks one of the caller's payees earns from
    (`?payee=`), from `from` to `to` (YYYY-MM-DD, both included; default the last 30 days, at most 366).
    ---
    get:
      parameters:
        - {name: payee, in: query, schema: {type: integer}}
        - {name: from, in: query, schema: {type: string, format: date}}
        - {name: to, in: query, schema: {type: string, format: date}}
      responses:
        200:
          description: per track, its total and one entry per day (zeros included)
    """
    query = load(PlaysQuery(), request.args.to_dict())
    payee_id = _payee_id()
    last_day = query["last_day"] or context.clock().now().astimezone(UTC).date()
    first_day = query["first_day"] or last_day - timedelta(days=PLAYS_DAYS - 1)
    if first_day > last_day or (last_day - first_day).days >= MAX_PLAYS_DAYS:
        raise ValidationError(f"Ask for 1 to {MAX_PLAYS_DAYS} days, `from` not after `to`.", code="invalid_days",
                              field="from")
    rows = plays.payee_daily_plays(context.db(), payee_id, first_day=first_day, last_day=last_day)
    return {"payee_id": payee_id, "from": first_day.isoformat(), "to": last_day.isoformat(),
            "plays": sum(row["total"] for row in rows),
            "tracks": [{**{k: row[k] for k in ("track_id", "title", "release_id", "release_title", "total")},
                        "days": [{"date": day.isoformat(), "plays": n} for day, n in row["days"]]} for row in rows]}


@bp.get("/royalties/statements/<int:payee_id>/<period>")
@access()
def statement(payee_id: int, period: str):
    """One payee's statement for a month (`?currency=`), every figure in micros.
    ---
    get:
      parameters:
        - {name: currency, in: query, schema: {type: string, example: USD}}
      responses:
        200:
          description: opening, earnings by track and source, adjustments, payouts, closing, the month's payout
    """
    from app.web.royalties import require_payee
    from royalties.services import statement as build

    bounds(period)  # a month no calendar holds is refused before anything is looked up
    require_payee(payee_id)
    stmt = build(context.db(), payee_id, period, check_currency(request.args.get("currency")
                                                                or context.config().currency))
    return {"payee_id": payee_id, "period": period, "currency": stmt.currency, "opening_micros": stmt.opening_micros,
            "earnings": [line.__dict__ for line in stmt.earnings], "by_source": stmt.by_source(),
            "adjustments": stmt.adjustments, "payouts": stmt.payouts, "closing_micros": stmt.closing_micros,
            "held_micros": stmt.held_micros, "payout": stmt.batch_payout, "carried_micros": stmt.carried_micros,
            "not_paid_because": stmt.exclusion, "closed": stmt.is_closed}


@bp.get("/royalties/receipt")
@access(public=True)
def receipt():
    """Which artists this listener's key-mode ad views paid in a month (`?period=`, default this month).
    ---
    get:
      parameters:
        - {name: period, in: query, schema: {type: string, pattern: "^[0-9]{4}-(0[1-9]|1[0-2])$"}}
      responses:
        200:
          description: artists and amounts (micros), and what no download claimed
    """
    from royalties.services import listener_receipt

    period = request.args.get("period") or period_of(context.clock().now())
    bounds(period)
    return listener_receipt(context.db(), current_listener_id(), period, clock=context.clock())


@bp.post("/royalties/periods/<period>/close")
@access("finance")
def close(period: str):
    """Close a month (finance). Idempotent; refused until the month is over and flushed.
    ---
    post:
      responses:
        200:
          description: the closed month and its pool summary
    """
    from royalties.services import close_period

    bounds(period)
    record = close_period(context.db(), context.redis(), period, clock=context.clock(), closed_by=current_user().id)
    return {"period": record.period, "cutoff": record.cutoff.isoformat(), "summary": record.summary}


@bp.post("/payouts/batches")
@access("finance")
def draft():
    """Draft the payout batch of a closed month (finance).
    ---
    post:
      requestBody:
        content:
          application/json:
            schema: DraftSchema
      responses:
        201:
          content:
            application/json:
              schema: BatchSchema
    """
    from royalties.services import draft_batch

    data = load(DraftSchema())
    bounds(data["period"])
    currency = check_currency(data.get("currency") or context.config().currency)
    batch = draft_batch(context.db(), data["period"], currency=currency, drafted_by=current_user().id,
                        clock=context.clock(), threshold_micros=context.config().threshold_micros(currency))
    return BatchSchema().dump(batch), 201


@bp.post("/payouts/batches/<int:batch_id>/approve")
@access("finance")
def approve(batch_id: int):
    """Approve a draft (finance, not its drafter).
    ---
    post:
      responses:
        200:
          content:
            application/json:
              schema: BatchSchema
    """
    from royalties.services import approve_batch

    return BatchSchema().dump(approve_batch(context.db(), batch_id, approved_by=current_user().id,
                                            clock=context.clock()))


@bp.post("/payouts/batches/<int:batch_id>/execute")
@access("finance")
def execute(batch_id: int):
    """Execute or resume an approved batch (finance); returns its progress.
    ---
    post:
      responses:
        200:
          description: progress counts by item status
    """
    from app.web.finance import _rails
    from royalties.services import execute_batch

    return execute_batch(context.db(), batch_id, rails=_rails(), clock=context.clock()).to_json()


@bp.get("/payouts/batches/<int:batch_id>/progress")
@access("finance")
def batch_progress(batch_id: int):
    """A batch's live progress (finance).
    ---
    get:
      responses:
        200:
          description: progress counts by item status
    """
    from royalties.services import progress

    return progress(context.db(), batch_id).to_json()
