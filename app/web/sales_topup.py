"""Advertisers top up their prepaid balance by card, on the advertiser console: the same card element and
PaymentIntent flow as a checkout; Stripe's signed webhook credits the balance (once per ledger entry)."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request, url_for

from adserver import services as ads
from app import context
from app.auth import access, current_principal, current_user
from app.security import allow_stripe_js
from app.web._card import body, confirm_with_card, id_field, stripe_client, text_field
from core.errors import ValidationError
from sales import services as sales

bp = Blueprint("web_sales_topup", __name__, url_prefix="/advertise")

SUGGESTED_AMOUNTS = ("50.00", "100.00", "250.00")


def _advertiser(advertiser_id: int):
    return ads.get_advertiser(context.db(), advertiser_id, user_id=current_user().id,
                              is_admin=current_principal().has_role("admin"))


@bp.get("/<int:advertiser_id>/topup")
@access("advertiser", "admin")
def topup_page(advertiser_id: int):
    advertiser = _advertiser(advertiser_id)
    allow_stripe_js()
    amount = text_field(request.args, "amount", max_len=40) or SUGGESTED_AMOUNTS[1]
    return render_template("sales/topup.html", advertiser=advertiser, amount_text=amount,
                           suggested=SUGGESTED_AMOUNTS)


@bp.post("/topups")
@access("advertiser", "admin")
def create_topup():
    data = body()
    advertiser_id = id_field(data, "advertiser_id")
    amount = text_field(data, "amount", max_len=40)
    if not amount:
        raise ValidationError("Say how much to add.", code="invalid_amount", field="amount")
    checkout = sales.start_topup(context.db(), stripe_client(), advertiser_id=advertiser_id, user=current_user(),
                                 amount=amount, clock=context.clock())
    topup_id = checkout.order_id
    return jsonify({
        "topup_id": topup_id, "client_secret": checkout.client_secret, "status": checkout.status,
        "amount": checkout.amount.to_json(),
        "confirm_url": url_for("web_sales_topup.confirm_topup", topup_id=topup_id),
        "next_url": url_for("web_sales_topup.topup_status_page", topup_id=topup_id),
    }), 201


@bp.post("/topups/<int:topup_id>/card")
@access("advertiser", "admin")
def confirm_topup(topup_id: int):
    return confirm_with_card("topup_id", topup_id, lambda payment_method: sales.confirm_topup(
        context.db(), stripe_client(), topup_id, user=current_user(), payment_method=payment_method))


@bp.get("/topups/<int:topup_id>")
@access("advertiser", "admin")
def topup_status_page(topup_id: int):
    topup = sales.get_topup(context.db(), topup_id, user=current_user())
    return render_template("sales/topup_status.html", topup=topup, advertiser=_advertiser(topup.advertiser_id))


@bp.get("/topups/<int:topup_id>/status")
@access("advertiser", "admin")
def topup_status(topup_id: int):
    topup = sales.get_topup(context.db(), topup_id, user=current_user())
    return jsonify({"topup_id": topup.id, "status": topup.status})
