"""Premium pages: the plans, subscribing with the card element, the account page (plan, next renewal,
invoices, cancel at period end), the receipt (where the subscriber's money went, month by month, and the
open month as if it closed now), the terms, and finance's console (cancel at once with a pro-rata refund,
refund an invoice).

Nothing here turns premium on: Stripe's signed webhooks do (sales.subscriptions, through /webhooks/stripe).
"""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select, text

from app import context
from app.auth import access, current_user
from app.forms import attempt
from app.security import allow_stripe_js
from app.web._card import body, text_field
from core.errors import ValidationError
from core.money import Money
from payments.subscriptions import make_subscription_gateway
from royalties.periods import bounds, period_of
from royalties.subscriber_pool import subscriber_receipt
from sales import subscriptions
from sales.subscription_models import Invoice, Plan, Subscription

bp = Blueprint("web_subscriptions", __name__)


def init_app(app) -> None:
    links = app.jinja_env.globals["nav_links"]
    if not any(endpoint == "web_subscriptions.plans" for _, endpoint, _ in links):
        links.append(("Premium", "web_subscriptions.plans", ("listener",)))


def _settings() -> subscriptions.SubscriptionSettings:
    cfg = context.config()
    return subscriptions.SubscriptionSettings.parse(cfg.subscription_prices, cfg.subscription_grace_days)


def _gateway():
    cfg = context.config()
    return make_subscription_gateway(cfg.stripe_api_key, cfg.stripe_api_base)


def _currency(value) -> str:
    currency = (value or "").strip().upper() if isinstance(value, str) else ""
    prices = _settings().prices
    if currency not in prices:
        raise ValidationError(f"Premium is offered in {', '.join(sorted(prices))}; choose one of them.",
                              code="no_plan", field="currency")
    return currency


# --- plans and terms ----------------------------------------------------------------------------------------
@bp.get("/premium")
@access(public=True)
def plans():
    """The monthly plans, one per currency, and what premium gives."""
    user = current_user()
    premium = user is not None and subscriptions.is_subscriber(context.db(), user.id, context.clock().now())
    return render_template("subscriptions/plans.html", prices=subscriptions.offered_plans(_settings()),
                           premium=premium, signed_in=user is not None, grace_days=_settings().grace_days)


@bp.get("/premium/terms")
@access(public=True)
def terms():
    """What a subscription pays for, and what happens to money the subscriber does not listen with."""
    return render_template("subscriptions/terms.html", grace_days=_settings().grace_days)


# --- subscribing ----------------------------------------------------------------------------------------------
@bp.get("/premium/subscribe")
@access()
def subscribe_page():
    """The card form (Stripe.js's card element); the page's script sets the card up, then subscribes."""
    if not request.args.get("currency"):  # the plans page is where a currency is chosen
        return redirect(url_for("web_subscriptions.plans"), code=303)
    currency = _currency(request.args.get("currency"))
    user = current_user()
    if subscriptions.is_subscriber(context.db(), user.id, context.clock().now()):
        return redirect(url_for("web_subscriptions.account"), code=303)
    allow_stripe_js()
    price = Money(_settings().prices[currency], currency)
    return render_template("subscriptions/subscribe.html", currency=currency, price=price,
                           prices=subscriptions.offered_plans(_settings()))


@bp.post("/premium/setup")
@access()
def setup():
    """Step 1 (the page's script): the plan and a SetupIntent's client secret for the card element."""
    currency = _currency(body().get("currency"))
    started = subscriptions.start_subscription(context.db(), _gateway(), current_user(), currency,
                                               settings=_settings(), clock=context.clock())
    return jsonify({"client_secret": started["client_secret"], "setup_intent": started["setup_intent"],
                    "price": started["price"].to_json(),
                    "subscribe_url": url_for("web_subscriptions.subscribe")}), 201


@bp.post("/premium/subscribe")
@access()
def subscribe():
    """Step 2: subscribe with the confirmed card; `requires_action` asks the page to complete 3-D Secure."""
    data = body()
    currency = _currency(data.get("currency"))
    setup_intent = text_field(data, "setup_intent", max_len=64)
    result = subscriptions.subscribe(context.db(), _gateway(), current_user(), currency, setup_intent,
                                     settings=_settings(), clock=context.clock())
    return jsonify({"subscription_id": result.subscription.id, "status": result.status,
                    "client_secret": result.client_secret,
                    "next_url": url_for("web_subscriptions.account")}), 201


@bp.post("/premium/abandon")
@access()
def abandon():
    """Give up a subscription still waiting for its first payment (3-D Secure not completed)."""
    with attempt():
        subscriptions.abandon(context.db(), _gateway(), current_user(), clock=context.clock())
    return redirect(url_for("web_subscriptions.account"), code=303)


# --- the subscriber's account and receipt ------------------------------------------------------------------
@bp.get("/account/premium")
@access()
def account():
    """The plan, whether premium is on, the next renewal (or the end), the invoices, and cancellation."""
    data = subscriptions.account(context.db(), current_user().id, clock=context.clock())
    return render_template("subscriptions/account.html", **data, now=context.clock().now())


@bp.get("/account/premium/status")
@access()
def status():
    """For the page waiting on Stripe's webhook after subscribing: is premium on yet?"""
    sub = subscriptions.current_subscription(context.db(), current_user().id)
    return jsonify({"premium": subscriptions.is_subscriber(context.db(), current_user().id, context.clock().now()),
                    "status": sub.status if sub is not None else None})


@bp.post("/account/premium/<int:subscription_id>/cancel")
@access()
def cancel(subscription_id: int):
    """Stop the renewal; premium lasts to the end of the paid period. Someone else's subscription is a 404."""
    resume = request.form.get("resume") == "1"
    subscriptions.get_subscription(context.db(), subscription_id, user_id=current_user().id)
    with attempt() as outcome:
        subscriptions.cancel_at_period_end(context.db(), _gateway(), current_user(), subscription_id,
                                           clock=context.clock(), cancel=not resume)
    if not outcome.failed:
        flash("Renewal switched back on." if resume else "Cancelled: premium lasts to the end of the paid period.",
              "success")
    return redirect(url_for("web_subscriptions.account"), code=303)


@bp.get("/premium/receipt")
@access()
def receipt():
    """Where this subscriber's money went: each artist, how much, from how many minutes of listening."""
    user = current_user()
    now = context.clock().now()
    period = request.args.get("period") or period_of(now)
    bounds(period)
    session = context.db()
    months = [row[0] for row in session.execute(text(
        "SELECT DISTINCT period FROM subscriber_pool_receipts WHERE subscriber_id = :u ORDER BY period DESC"),
        {"u": user.id})]
    if period_of(now) not in months:
        months.insert(0, period_of(now))
    data = subscriber_receipt(session, user.id, period, clock=context.clock())
    return render_template("subscriptions/receipt.html", receipt=data, months=months, period=period)


# --- finance ------------------------------------------------------------------------------------------------
@bp.get("/finance/premium")
@access("finance")
def finance_index():
    """Subscriptions and their invoices: cancel one at once (pro-rata refund) or refund an invoice."""
    session = context.db()
    rows = session.execute(select(Subscription, Plan).join(Plan, Plan.id == Subscription.plan_id)
                           .order_by(Subscription.id.desc()).limit(200)).all()
    invoices: dict[int, list[Invoice]] = {}
    if rows:
        for invoice in session.scalars(select(Invoice).where(Invoice.subscription_id.in_([r[0].id for r in rows]))
                                       .order_by(Invoice.created_at.desc())):
            invoices.setdefault(invoice.subscription_id, []).append(invoice)
    return render_template("subscriptions/finance.html", rows=rows, invoices=invoices)


@bp.post("/finance/premium/<int:subscription_id>/cancel-now")
@access("finance")
def finance_cancel_now(subscription_id: int):
    reason = text_field(request.form, "reason", max_len=300)
    with attempt() as outcome:
        refund = subscriptions.cancel_now_with_refund(context.db(), _gateway(), subscription_id, by=current_user(),
                                                      clock=context.clock(), reason=reason)
    if not outcome.failed:
        flash(f"Cancelled; refunded {Money(refund.amount_micros, _refund_currency(refund))}."
              if refund is not None else "Cancelled; nothing was left to refund.", "success")
    return redirect(url_for("web_subscriptions.finance_index"), code=303)


@bp.post("/finance/premium/invoices/<int:invoice_id>/refund")
@access("finance")
def finance_refund(invoice_id: int):
    amount_text = text_field(request.form, "amount", max_len=40)
    reason = text_field(request.form, "reason", max_len=300)
    session = context.db()
    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        raise subscriptions.SubscriptionNotFound("There is no such invoice.", code="invoice_not_found")
    with attempt() as outcome:
        amount = Money.parse(amount_text, invoice.currency, whole_minor_units=True).micros if amount_text else None
        subscriptions.refund_invoice(session, _gateway(), invoice_id, amount, by=current_user(),
                                     clock=context.clock(), reason=reason)
    if not outcome.failed:
        flash("Refunded.", "success")
    return redirect(url_for("web_subscriptions.finance_index"), code=303)


def _refund_currency(refund) -> str:
    invoice = context.db().get(Invoice, refund.invoice_id)
    return invoice.currency
