"""Statements (page, CSV, printable), the payout-method page, and the key-mode listener's receipt."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from app import context
from app.auth import access, current_listener_id, current_principal, current_user
from core.errors import Forbidden, NinetyError, NotFound
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

    payee = context.db().get(Payee, payee_id)
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


@bp.route("/payout-method/<int:payee_id>", methods=["GET", "POST"])
@access()
def payout_method(payee_id: int):
    from payments import services as payments
    from payments.stripe_client import make_stripe_client

    payee = require_payee(payee_id)
    session, clock, cfg = context.db(), context.clock(), context.config()
    error, form = None, {}
    if request.method == "POST":
        form = {k: request.form.get(k, "")[:1000] for k in ("kind", "holder_name", "iban", "bic", "email", "country",
                                                             "instructions")}
        try:
            if form["kind"] == "sepa":
                payments.add_sepa_method(session, payee.id, holder_name=form["holder_name"], iban=form["iban"],
                                         bic=form["bic"] or None, clock=clock)
            elif form["kind"] == "stripe_connect":
                payments.add_stripe_method(session, payee.id, holder_name=form["holder_name"],
                                           email=form["email"] or (payee.email or ""), country=form["country"],
                                           stripe=make_stripe_client(cfg.stripe_api_key, cfg.stripe_api_base),
                                           clock=clock)
            elif form["kind"] == "manual":
                payments.add_manual_method(session, payee.id, holder_name=form["holder_name"],
                                           instructions=form["instructions"], clock=clock)
            else:
                raise NotFound("Choose SEPA, Stripe Connect or a manual payout.", code="unknown_method_kind",
                               status=422)
            flash("Payout method saved.", "success")
            return redirect(url_for("web_royalties.payout_method", payee_id=payee.id))
        except NinetyError as exc:
            session.rollback()
            error = exc.message
    method = payments.current_method(session, payee.id)
    return render_template("royalties/payout_method.html", payee=payee, method=method, error=error, form=form), \
        (422 if error else 200)


@bp.post("/payout-method/<int:payee_id>/verify")
@access()
def verify_method(payee_id: int):
    from payments import services as payments
    from payments.stripe_client import make_stripe_client

    payee = require_payee(payee_id)
    cfg = context.config()
    method = payments.current_method(context.db(), payee.id)
    if method is None:
        raise NotFound("Add a payout method first.", code="no_payout_method")
    if method.kind == "manual":
        raise Forbidden("A finance user confirms manual payout methods.", code="finance_verification_required")
    method = payments.verify_method(context.db(), method.id, clock=context.clock(),
                                    stripe=make_stripe_client(cfg.stripe_api_key, cfg.stripe_api_base))
    flash("Verified." if method.is_verified else "Stripe has not enabled payouts for this account yet.",
          "success" if method.is_verified else "info")
    return redirect(url_for("web_royalties.payout_method", payee_id=payee.id))


@bp.get("/receipt")
@access(public=True)
def receipt():
    """Which artists this listener's key-mode ad views paid this month (or a month asked for)."""
    from royalties.services import listener_receipt

    period = request.args.get("period") or period_of(context.clock().now())
    bounds(period)
    data = listener_receipt(context.db(), current_listener_id(), period, clock=context.clock())
    return render_template("royalties/receipt.html", receipt=data)
