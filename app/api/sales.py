"""Sales API: checkout (an order and its PaymentIntent), the buyer's orders and purchases, refunds (finance,
or the artist within the window), download codes (generate, list, CSV, redeem) and advertiser top-ups.

Nothing here grants ownership or moves money in the books except a refund: payments are fulfilled by Stripe's
signed webhook (app/api/webhooks.py).
"""

from __future__ import annotations

from flask import Blueprint, Response, request
from marshmallow import Schema, fields, validate

from app import context
from app.api import API_PREFIX, load
from app.auth import access, current_principal, current_user
from core.fields import Id
from core.money import Money
from payments.stripe_client import shared_stripe_client
from sales import services as sales

bp = Blueprint("api_sales", __name__, url_prefix=API_PREFIX)


def _stripe():
    cfg = context.config()
    return shared_stripe_client(cfg.stripe_api_key, cfg.stripe_api_base)


class CheckoutSchema(Schema):
    release_id = Id(required=True)
    track_id = Id(load_default=None, allow_none=True)
    amount = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40),
                           metadata={"description": "what the buyer pays, like \"7.50\" (name-your-price); "
                                                    "omitted: the fixed price, or the suggested price"})


class RefundSchema(Schema):
    amount = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40),
                           metadata={"description": "omitted: everything left"})
    reason = fields.String(load_default="", validate=validate.Length(max=300))


class CodesSchema(Schema):
    count = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=1000))


class RedeemSchema(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=40))


class TopUpSchema(Schema):
    advertiser_id = Id(required=True)
    amount = fields.String(required=True, validate=validate.Length(min=1, max=40))


def _money(micros: int, currency: str) -> dict:
    return Money(micros, currency).to_json()


def order_json(order) -> dict:
    return {"id": order.id, "kind": order.kind, "status": order.status, "release_id": order.release_id,
            "track_id": order.track_id, "currency": order.currency,
            "amount": _money(order.amount_micros, order.currency), "fee": _money(order.fee_micros, order.currency),
            "refunded": _money(order.refunded_micros, order.currency),
            "refundable": _money(order.refundable_micros, order.currency), "owned": order.owned,
            "paid_at": order.paid_at.isoformat() if order.paid_at else None}


def checkout_json(checkout) -> dict:
    key = "topup_id" if checkout.kind == "topup" else "order_id"
    return {key: checkout.order_id, "payment_intent_id": checkout.payment_intent_id,
            "client_secret": checkout.client_secret, "status": checkout.status, "amount": checkout.amount.to_json(),
            "publishable_key": context.config().stripe_publishable_key}


@bp.post("/sales/checkout")
@access()
def checkout():
    """Start buying a release or one of its tracks: a pending order and its PaymentIntent's client secret,
    for Stripe.js to confirm; the order is fulfilled by Stripe's signed webhook, not by this answer.
    ---
    post:
      requestBody:
        content:
          application/json:
            schema: CheckoutSchema
      responses:
        201:
          description: the order id, the PaymentIntent and its client secret, the amount
    """
    data = load(CheckoutSchema())
    made = sales.start_checkout(context.db(), _stripe(), buyer=current_user(), release_id=data["release_id"],
                                track_id=data.get("track_id"), amount=data.get("amount"), clock=context.clock())
    return checkout_json(made), 201


@bp.get("/sales/orders/<int:order_id>")
@access()
def order(order_id: int):
    """One of the caller's orders (poll it after paying: `status` becomes "paid" when the webhook arrives).
    ---
    get:
      responses:
        200:
          description: the order
    """
    return order_json(sales.get_order(context.db(), order_id, user_id=current_user().id))


@bp.get("/sales/purchases")
@access()
def purchases():
    """The caller's collection: every paid order and redeemed code, newest first.
    ---
    get:
      responses:
        200:
          description: the orders, each with `owned`
    """
    return {"orders": [order_json(o) for o in sales.orders_for_buyer(context.db(), current_user().id)]}


@bp.post("/sales/orders/<int:order_id>/refunds")
@access("finance", "artist")
def refund(order_id: int):
    """Refund part or all of a sale: finance at any time, the artist for their own sales within
    SALES_REFUND_WINDOW_DAYS. Refused beyond what is left, and while a dispute is open.
    ---
    post:
      requestBody:
        content:
          application/json:
            schema: RefundSchema
      responses:
        201:
          description: the refund and the order after it
    """
    data = load(RefundSchema())
    session = context.db()
    made = sales.refund_order(session, _stripe(), order_id, amount=data.get("amount"), by=current_user(),
                              as_finance=current_principal().has_role("finance"),
                              window_days=context.config().sales_refund_window_days, clock=context.clock(),
                              reason=data.get("reason") or "")
    found = sales.get_order(session, order_id)
    return {"refund": {"id": made.id, "stripe_refund_id": made.stripe_refund_id, "status": made.status,
                       "amount": _money(made.amount_micros, found.currency)}, "order": order_json(found)}, 201


def _code_json(code) -> dict:
    return {"code": code.code, "batch": code.batch, "created_at": code.created_at.isoformat(),
            "redeemed": code.redeemed_at is not None}


@bp.post("/sales/releases/<int:release_id>/codes")
@access("artist")
def generate_codes(release_id: int):
    """Generate `count` (1 to 1000) single-use download codes for one of your releases.
    ---
    post:
      requestBody:
        content:
          application/json:
            schema: CodesSchema
      responses:
        201:
          description: the new codes
    """
    data = load(CodesSchema())
    codes = sales.generate_codes(context.db(), release_id=release_id, user=current_user(), count=data["count"],
                                 clock=context.clock())
    return {"codes": [_code_json(c) for c in codes]}, 201


@bp.get("/sales/releases/<int:release_id>/codes")
@access("artist", "admin")
def list_codes(release_id: int):
    """Every download code of one of your releases, and whether it was redeemed (`?format=csv` for CSV).
    ---
    get:
      parameters:
        - {name: format, in: query, schema: {type: string, enum: [json, csv]}}
      responses:
        200:
          description: the codes (JSON, or CSV with `format=csv`)
    """
    codes = sales.codes_for_release(context.db(), release_id, user=current_user())
    if request.args.get("format") == "csv":
        return Response(sales.codes_csv(codes), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="release-{release_id}-codes.csv"'})
    return {"codes": [_code_json(c) for c in codes]}


@bp.post("/sales/redeem")
@access()
def redeem():
    """Redeem a download code: the release joins your collection (no money moves). Rate limited.
    ---
    post:
      requestBody:
        content:
          application/json:
            schema: RedeemSchema
      responses:
        201:
          description: the order at 0 for the release
    """
    data = load(RedeemSchema())
    made = sales.redeem_code(context.db(), context.redis(), code=data["code"], user=current_user(),
                             ip=request.remote_addr or "", clock=context.clock())
    return order_json(made), 201


@bp.post("/sales/topups")
@access("advertiser", "admin")
def topup():
    """Top up an advertiser's prepaid balance by card: the PaymentIntent's client secret for Stripe.js; the
    balance rises when Stripe's signed webhook confirms the payment.
    ---
    post:
      requestBody:
        content:
          application/json:
            schema: TopUpSchema
      responses:
        201:
          description: the top-up id, the PaymentIntent and its client secret
    """
    data = load(TopUpSchema())
    made = sales.start_topup(context.db(), _stripe(), advertiser_id=data["advertiser_id"], user=current_user(),
                             amount=data["amount"], clock=context.clock())
    return checkout_json(made), 201
