"""Finance's side of sales: recent sales, and refunds (all of what is left, or part) with what each order
has left; Ninety refuses a refund larger than that, whatever Stripe would accept."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app import context
from app.auth import access, current_user
from app.forms import attempt
from app.web._card import id_field, stripe_client
from catalog import services as catalog
from core.money import Money
from sales import services as sales

bp = Blueprint("web_sales_finance", __name__, url_prefix="/finance/sales")


def init_app(app) -> None:
    links = app.jinja_env.globals["nav_links"]
    if not any(endpoint == "web_sales_finance.index" for _, endpoint, _ in links):
        links.append(("Sales", "web_sales_finance.index", ("finance",)))


def _describe(session, order) -> dict:
    release = catalog.get_release(session, order.release_id)
    track = catalog.get_track(session, order.track_id) if order.track_id else None
    return {"order": order, "release": release, "track": track, "title": track.title if track else release.title,
            "refundable": Money(order.refundable_micros, order.currency)}


@bp.get("")
@access("finance")
def index():
    session = context.db()
    wanted = id_field(request.args, "order", required=False)
    if wanted is not None:
        return redirect(url_for("web_sales_finance.order", order_id=wanted), code=303)
    orders = sales.recent_orders(session, limit=100)
    return render_template("sales/finance_index.html", rows=[_describe(session, o) for o in orders])


@bp.get("/orders/<int:order_id>")
@access("finance")
def order(order_id: int):
    session = context.db()
    found = sales.get_order(session, order_id)
    return render_template("sales/finance_order.html", row=_describe(session, found),
                           refunds=sales.refunds_for_order(session, order_id))


@bp.post("/orders/<int:order_id>/refunds")
@access("finance")
def refund(order_id: int):
    amount = request.form.get("amount", "").strip()[:40] or None
    with attempt() as tried:
        made = sales.refund_order(context.db(), stripe_client(), order_id, amount=amount, by=current_user(),
                                  as_finance=True, window_days=context.config().sales_refund_window_days,
                                  clock=context.clock(), reason=request.form.get("reason", "")[:300])
    if not tried.failed:
        currency = sales.get_order(context.db(), order_id).currency
        flash(f"Refunded {Money(made.amount_micros, currency).format()}. The books and the artists' shares follow.",
              "success")
    return redirect(url_for("web_sales_finance.order", order_id=order_id), code=303)
