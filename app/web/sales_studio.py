"""The artist's side of sales, in the studio: download codes for a release (generate, list, CSV export)
and the artist's own sales, which an artist may refund within the refund window."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from app import context
from app.auth import access, current_user
from app.forms import attempt
from app.web._card import stripe_client
from catalog import services as catalog
from catalog.delivery import safe_filename
from core.errors import ValidationError
from core.money import Money
from sales import services as sales

bp = Blueprint("web_sales_studio", __name__, url_prefix="/studio")

MAX_CODES = 1000


def _count(text: str) -> int:
    try:
        count = int(text.strip())
    except ValueError:
        raise ValidationError("Say how many codes to make, as a whole number.", code="invalid_count") from None
    if not 1 <= count <= MAX_CODES:
        raise ValidationError(f"Make between 1 and {MAX_CODES} codes at a time.", code="invalid_count")
    return count


@bp.get("/releases/<int:release_id>/codes")
@access("artist", "admin")
def codes(release_id: int):
    session = context.db()
    release = catalog.get_release(session, release_id)
    catalog.require_member(session, release.artist_id, current_user())
    found = sales.codes_for_release(session, release_id, user=current_user())
    return render_template("sales/codes.html", release=release, codes=found, max_codes=MAX_CODES,
                           unused=sum(1 for c in found if c.redeemed_at is None))


@bp.post("/releases/<int:release_id>/codes")
@access("artist", "admin")
def generate_codes(release_id: int):
    with attempt() as tried:
        made = sales.generate_codes(context.db(), release_id=release_id, user=current_user(),
                                    count=_count(request.form.get("count", "")), clock=context.clock())
    if not tried.failed:
        flash(f"{len(made)} new download code{'s' if len(made) != 1 else ''} made. Each works once.", "success")
    return redirect(url_for("web_sales_studio.codes", release_id=release_id), code=303)


@bp.get("/releases/<int:release_id>/codes.csv")
@access("artist", "admin")
def codes_csv(release_id: int):
    session = context.db()
    release = catalog.get_release(session, release_id)
    found = sales.codes_for_release(session, release_id, user=current_user())
    name = safe_filename(f"{release.title} download codes", "csv")
    return Response(sales.codes_csv(found), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "private, no-store"})


@bp.get("/sales")
@access("artist", "admin")
def artist_sales():
    session = context.db()
    artists = catalog.artists_for_user(session, current_user().id)
    window_days = context.config().sales_refund_window_days
    now = context.clock().now()
    rows = []
    for artist in artists:
        for order in sales.sales_for_artist(session, artist.id, limit=200):
            release = catalog.get_release(session, order.release_id)
            track = catalog.get_track(session, order.track_id) if order.track_id else None
            in_window = order.paid_at is not None and (now - order.paid_at).days < window_days
            rows.append({"order": order, "artist": artist, "release": release, "track": track,
                         "refundable": Money(order.refundable_micros, order.currency),
                         "can_refund": in_window and order.refundable_micros > 0})
    return render_template("sales/artist_sales.html", rows=rows, window_days=window_days)


@bp.post("/sales/<int:order_id>/refund")
@access("artist", "admin")
def artist_refund(order_id: int):
    """The artist refunds one of their own sales (all of what is left, or part), within the window."""
    amount = request.form.get("amount", "").strip()[:40] or None
    with attempt() as tried:
        refund = sales.refund_order(context.db(), stripe_client(), order_id, amount=amount, by=current_user(),
                                    as_finance=False, window_days=context.config().sales_refund_window_days,
                                    clock=context.clock(), reason=request.form.get("reason", "")[:300])
    if not tried.failed:
        flash(f"Refunded {Money(refund.amount_micros, _currency(order_id)).format()} on order {order_id}.", "success")
    return redirect(url_for("web_sales_studio.artist_sales", _anchor=f"order-{order_id}"), code=303)


def _currency(order_id: int) -> str:
    return sales.get_order(context.db(), order_id).currency
