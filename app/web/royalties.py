"""Statements (page, CSV, printable), the payout-method page, and the key-mode listener's receipt."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from app import context
from app.auth import access, current_listener_id, current_principal, current_user
from core.errors import Forbidden, NinetyError, NotFound
from core.fields import PG_INTEGER_MAX
from core.money import check_currency
from royalties.periods import bounds, period_of

bp = Blueprint("web_royalties", __name__, url_prefix="/royalties")


def init_app(app) -> None:
    app.jinja_env.globals["nav_links"].append(("Dashboard", "web_dashboard.index", ("artist",)))
    app.jinja_env.globals["nav_links"].append(("My ad receipt", "web_royalties.receipt", ("listener",)))


def viewable_payees():
    """The payees the signed-in user may see (their own and their artists')."""
    from royalties.services import payees_for_user

    return payees_for_user(context.db(), current_user().id)


def require_payee(payee_id: int):
    """The payee, if the caller may see it: its own people, finance or admin; anyone else gets a 404."""
    from catalog.models import Payee

    payee = context.db().get(Payee, payee_id) if 0 < payee_id <= PG_INTEGER_MAX else None
    if payee is None:
        raise NotFound("There is no such payee.", code="payee_not_found")
    if current_principal().has_role("finance", "admin"):
        return payee
    if payee.id not in {p.id for p in viewable_payees()}:
        raise NotFound("There is no such payee.", code="payee_not_found")
    return payee


def _currency(default: str) -> str:
    try:
        return check_currency(request.args.get("currency") or default)
    except NinetyError as exc:
        raise NotFound(exc.message, code="unsupported_currency") from None


@bp.get("/statements/<int:payee_id>/<period>")
@access()
def statement(payee_id: int, period: str):
    from royalties.services import statement as build
    from royalties.services import statement_csv

    require_payee(payee_id)
    bounds(period)
    stmt = build(context.db(), payee_id, period, _currency(context.config().currency))
    fmt = request.args.get("format", "html")
    if fmt == "csv":
        return Response(statement_csv(stmt), mimetype="text/csv", headers={
            "Content-Disposition": f'attachment; filename="ninety-statement-{payee_id}-{period}-{stmt.currency}.csv"'})
    template = "royalties/statement_print.html" if fmt == "print" else "royalties/statement.html"
    return render_template(template, stmt=stmt)


def _stripe():
    from payments.stripe_client import make_stripe_client

    cfg = context.config()
    return make_stripe_client(cfg.stripe_api_key, cfg.stripe_api_base)


def _render_methods(payee, *, error=None, form=None):
    from payments import services as payments
    from royalties.payout_methods import masked_account_email

    session = context.db()
    return render_template("royalties/payout_method.html", payee=payee, error=error, form=form or {},
                           active=payments.active_method(session, payee.id),
                           pending=payments.pending_method(session, payee.id),
                           confirm_to=masked_account_email(session, payee)), (422 if error else 200)


@bp.route("/payout-method/<int:payee_id>", methods=["GET", "POST"])
@access()
def payout_method(payee_id: int):
    """Saving a method never verifies it: the payee confirms it from the link emailed to their account."""
    from royalties.payout_methods import masked_account_email, propose_method

    payee = require_payee(payee_id)
    if request.method == "GET":
        return _render_methods(payee)
    session = context.db()
    form = {k: request.form.get(k, "")[:1000] for k in ("kind", "holder_name", "iban", "bic", "email", "country",
                                                         "instructions")}
    try:
        propose_method(session, payee, kind=form["kind"], holder_name=form["holder_name"], iban=form["iban"],
                       bic=form["bic"] or None, email=form["email"], country=form["country"],
                       instructions=form["instructions"], stripe=_stripe, clock=context.clock(),
                       secret=context.config().secret_key,
                       confirm_link=lambda token: url_for("web_royalties.confirm_method", token=token,
                                                          _external=True))
    except NinetyError as exc:
        session.rollback()
        return _render_methods(payee, error=exc.message, form=form)
    flash(f"Saved, not active yet: we emailed a confirmation link to {masked_account_email(session, payee)}. "
          "Until it is confirmed, payouts keep going to the current method.", "info")
    return redirect(url_for("web_royalties.payout_method", payee_id=payee.id), code=303)


@bp.route("/payout-method/confirm/<token>", methods=["GET", "POST"])
@access()
def confirm_method(token: str):
    """The emailed link. GET only shows what would change (mail scanners follow links); POST confirms."""
    from payments import services as payments
    from royalties.payout_methods import confirm_method_from_email

    session, clock, secret = context.db(), context.clock(), context.config().secret_key
    method = payments.method_for_confirmation(session, token, secret, clock=clock)
    payee = require_payee(method.payee_id)
    if request.method == "POST":
        method = confirm_method_from_email(session, token, clock=clock, secret=secret, stripe=_stripe)
        if method.status == "verified":
            flash(f"Confirmed: {payee.display_name} is paid by {method.describe()} from now on.", "success")
        else:
            flash("Confirmed. It takes over once its last check passes "
                  f"({'Stripe' if method.kind == 'stripe_connect' else 'a finance user'}).", "info")
        return redirect(url_for("web_royalties.payout_method", payee_id=payee.id), code=303)
    return render_template("royalties/payout_method_confirm.html", payee=payee, method=method, token=token,
                           active=payments.active_method(session, payee.id))


@bp.post("/payout-method/<int:payee_id>/verify")
@access()
def verify_method(payee_id: int):
    """Ask Stripe again about the pending Connect account (after the payee's onboarding there)."""
    from payments import services as payments
    from royalties.payout_methods import recheck_method

    payee = require_payee(payee_id)
    pending = payments.pending_method(context.db(), payee.id)
    if pending is None:
        raise NotFound("There is no payout method waiting for verification.", code="no_pending_method")
    if pending.kind != "stripe_connect":
        raise Forbidden("Only a Stripe Connect account is checked again from here.", code="not_rechecked_here")
    method = recheck_method(context.db(), payee, clock=context.clock(), stripe=_stripe())
    flash("Verified." if method.is_verified else "Stripe has not enabled payouts for this account yet.",
          "success" if method.is_verified else "info")
    return redirect(url_for("web_royalties.payout_method", payee_id=payee.id), code=303)


@bp.get("/receipt")
@access(public=True)
def receipt():
    """Which artists this listener's key-mode ad views paid this month (or a month asked for)."""
    from royalties.services import listener_receipt

    period = request.args.get("period") or period_of(context.clock().now())
    bounds(period)
    data = listener_receipt(context.db(), current_listener_id(), period, clock=context.clock())
    return render_template("royalties/receipt.html", receipt=data)
