"""The finance console: close a month, draft / approve / execute / resume payout batches with live progress,
failed items with their reasons, holds, manual-method checks, and links to the books (trial balance, export).

Execution runs the first items inside the request; a larger batch goes on in a background thread of this
process while the page shows progress (polled by JS, or a meta refresh without it). A second run of the same
batch is safe: items are locked one by one and each step is idempotent.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for

from app import context
from app.auth import access, current_user
from core.errors import NinetyError
from core.money import check_currency
from royalties.periods import period_of, previous

bp = Blueprint("web_finance", __name__, url_prefix="/finance")
log = logging.getLogger(__name__)
INLINE_ITEMS = 200


def init_app(app) -> None:
    app.jinja_env.globals["nav_links"].append(("Finance", "web_finance.index", ("finance",)))


def _rails():
    from payments.stripe_client import make_stripe_client
    from royalties.rails import default_rails

    cfg = context.config()
    return default_rails(make_stripe_client(cfg.stripe_api_key, cfg.stripe_api_base))


def _books_links() -> list[tuple[str, str]]:
    """The ledger's pages, when the ledger area provides them (found by endpoint name, no hard import)."""
    links = []
    for endpoint in sorted(current_app.view_functions):
        if "ledger" not in endpoint or endpoint.startswith("api_"):
            continue
        label = None
        if "trial" in endpoint:
            label = "Trial balance"
        elif "beancount" in endpoint or "export" in endpoint:
            label = "Beancount export"
        if label:
            try:
                links.append((label, url_for(endpoint)))
            except Exception:  # noqa: BLE001,S112 - an endpoint needing arguments is not a console link
                continue
    return links


@bp.get("")
@access("finance")
def index():
    from sqlalchemy import select

    from payments.models import PayoutMethod
    from royalties.models import PayeeHold, RoyaltyPeriod
    from royalties.services import batches
    from royalties.suspense import parked_entries

    session = context.db()
    periods = list(session.scalars(select(RoyaltyPeriod).order_by(RoyaltyPeriod.period.desc()).limit(24)))
    suggested = previous(period_of(context.clock().now()))
    holds = list(session.scalars(select(PayeeHold).where(PayeeHold.released_at.is_(None)).order_by(PayeeHold.id)))
    pending = list(session.scalars(select(PayoutMethod).where(PayoutMethod.kind == "manual",
                                                              PayoutMethod.status == "pending")
                                   .order_by(PayoutMethod.id).limit(100)))
    return render_template("finance/index.html", periods=periods, batches=batches(session), suggested=suggested,
                           currency=context.config().currency, books=_books_links(), holds=holds,
                           pending_methods=pending, parked=parked_entries(session))


def _refuse(exc: NinetyError, target: str, **values):
    context.db().rollback()
    flash(exc.message, "error")
    return redirect(url_for(target, **values))


@bp.post("/close")
@access("finance")
def close():
    from royalties.services import close_period

    period = request.form.get("period", "").strip()
    try:
        record = close_period(context.db(), context.redis(), period, clock=context.clock(),
                              closed_by=current_user().id)
    except NinetyError as exc:
        return _refuse(exc, "web_finance.index")
    flash(f"{record.period} is closed.", "success")
    return redirect(url_for("web_finance.index"))


@bp.post("/parked/<int:parked_id>/<any('retry', 'write-off'):how>")
@access("finance")
def settle_parked(parked_id: int, how: str):
    """Settle a parked flush entry: retry it (after the advertiser topped up) or write it off."""
    from royalties import suspense

    settle = suspense.retry if how == "retry" else suspense.write_off
    try:
        parked = settle(context.db(), parked_id, settled_by=current_user().id, clock=context.clock())
    except NinetyError as exc:
        return _refuse(exc, "web_finance.index")
    flash(f"Parked entry {parked.id} {'posted' if how == 'retry' else 'written off'} "
          f"(journal entry {parked.settled_entry_id}).", "success")
    return redirect(url_for("web_finance.index"))


@bp.post("/batches")
@access("finance")
def draft():
    from royalties.services import draft_batch

    try:
        currency = check_currency(request.form.get("currency") or context.config().currency)
        batch = draft_batch(context.db(), request.form.get("period", "").strip(), currency=currency,
                            drafted_by=current_user().id, clock=context.clock(),
                            threshold_micros=context.config().threshold_micros(currency))
    except NinetyError as exc:
        return _refuse(exc, "web_finance.index")
    flash(f"Batch {batch.id} drafted: a second finance user must approve it.", "success")
    return redirect(url_for("web_finance.batch", batch_id=batch.id))


@bp.get("/batches/<int:batch_id>")
@access("finance")
def batch(batch_id: int):
    from royalties.services import exclusions, get_batch, items, progress

    session = context.db()
    found = get_batch(session, batch_id)
    state = progress(session, batch_id)
    return render_template("finance/batch.html", batch=found, progress=state,
                           failed=items(session, batch_id, status="reversed"),
                           items=items(session, batch_id, limit=200), excluded=exclusions(session, batch_id, limit=200),
                           running=found.status == "executing" and _is_running(batch_id))


@bp.post("/batches/<int:batch_id>/approve")
@access("finance")
def approve(batch_id: int):
    from royalties.services import approve_batch

    try:
        approve_batch(context.db(), batch_id, approved_by=current_user().id, clock=context.clock())
    except NinetyError as exc:
        return _refuse(exc, "web_finance.batch", batch_id=batch_id)
    flash(f"Batch {batch_id} approved.", "success")
    return redirect(url_for("web_finance.batch", batch_id=batch_id))


@bp.post("/batches/<int:batch_id>/cancel")
@access("finance")
def cancel(batch_id: int):
    from royalties.services import cancel_batch

    try:
        cancel_batch(context.db(), batch_id, cancelled_by=current_user().id, clock=context.clock())
    except NinetyError as exc:
        return _refuse(exc, "web_finance.batch", batch_id=batch_id)
    flash(f"Batch {batch_id} cancelled.", "info")
    return redirect(url_for("web_finance.batch", batch_id=batch_id))


_running: dict[int, threading.Thread] = {}


def _is_running(batch_id: int) -> bool:
    thread = _running.get(batch_id)
    return thread is not None and thread.is_alive()


@bp.post("/batches/<int:batch_id>/execute")
@access("finance")
def execute(batch_id: int):
    """Execute or resume: the first items now, the rest in the background with progress on the batch page."""
    from royalties.services import execute_batch

    if _is_running(batch_id):
        flash(f"Batch {batch_id} is already running.", "info")
        return redirect(url_for("web_finance.batch", batch_id=batch_id))
    try:
        result = execute_batch(context.db(), batch_id, rails=_rails(), clock=context.clock(), limit=INLINE_ITEMS)
    except NinetyError as exc:
        return _refuse(exc, "web_finance.batch", batch_id=batch_id)
    if result.stopped_reason:
        flash(f"Stopped: {result.stopped_reason} Resume when the rail is back; nobody will be paid twice.", "error")
    elif result.status == "executing":
        app = current_app._get_current_object()
        thread = threading.Thread(target=_finish_in_background, args=(app, batch_id), daemon=True,
                                  name=f"payout-batch-{batch_id}")
        _running[batch_id] = thread
        thread.start()
        flash(f"Batch {batch_id} is running; progress below.", "info")
    else:
        flash(f"Batch {batch_id}: {result.counts['settled']} settled, {result.counts['reversed']} reversed.",
              "success")
    return redirect(url_for("web_finance.batch", batch_id=batch_id))


def _finish_in_background(app, batch_id: int) -> None:
    from royalties.services import execute_batch

    with app.app_context():
        runtime = context.runtime()
        session = runtime.sessions()
        try:
            execute_batch(session, batch_id, rails=_rails(), clock=runtime.clock)
        except Exception:  # a resume from the page picks up where this stopped
            log.exception("payout batch %s stopped", batch_id)
        finally:
            session.close()


@bp.get("/batches/<int:batch_id>/sepa.xml")
@access("finance")
def sepa(batch_id: int):
    from royalties.services import sepa_file

    cfg = context.config()
    try:
        xml = sepa_file(context.db(), batch_id, debtor_name=cfg.sepa_debtor_name, debtor_iban=cfg.sepa_debtor_iban,
                        debtor_bic=cfg.sepa_debtor_bic,
                        execution_date=(context.clock().now() + timedelta(days=1)).date())
    except NinetyError as exc:
        return _refuse(exc, "web_finance.batch", batch_id=batch_id)
    return Response(xml, mimetype="application/xml", headers={
        "Content-Disposition": f'attachment; filename="ninety-batch-{batch_id}-pain.001.001.03.xml"'})


@bp.get("/batches/<int:batch_id>/manual.csv")
@access("finance")
def manual(batch_id: int):
    from royalties.services import manual_csv

    return Response(manual_csv(context.db(), batch_id), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="ninety-batch-{batch_id}-manual.csv"'})


@bp.post("/holds")
@access("finance")
def hold():
    from royalties.services import place_hold

    try:
        payee_id = int(request.form.get("payee_id", ""))
    except ValueError:
        flash("Give the payee's number.", "error")
        return redirect(url_for("web_finance.index"))
    try:
        place_hold(context.db(), payee_id, reason=request.form.get("reason", ""), placed_by=current_user().id,
                   clock=context.clock())
    except NinetyError as exc:
        return _refuse(exc, "web_finance.index")
    except Exception:  # noqa: BLE001 - an unknown payee id breaks the foreign key
        context.db().rollback()
        flash(f"There is no payee {payee_id}.", "error")
        return redirect(url_for("web_finance.index"))
    flash(f"Payee {payee_id} is on hold.", "success")
    return redirect(url_for("web_finance.index"))


@bp.post("/holds/<int:payee_id>/release")
@access("finance")
def release(payee_id: int):
    from royalties.services import release_hold

    try:
        release_hold(context.db(), payee_id, released_by=current_user().id, clock=context.clock())
    except NinetyError as exc:
        return _refuse(exc, "web_finance.index")
    flash(f"Payee {payee_id} is no longer on hold.", "success")
    return redirect(url_for("web_finance.index"))


@bp.post("/methods/<int:method_id>/verify")
@access("finance")
def verify_manual(method_id: int):
    from royalties.payout_methods import verify_method  # payments' check, and the payee is told by email

    try:
        verify_method(context.db(), method_id, clock=context.clock(), verifier_id=current_user().id)
    except NinetyError as exc:
        return _refuse(exc, "web_finance.index")
    flash("Payout method confirmed.", "success")
    return redirect(url_for("web_finance.index"))
