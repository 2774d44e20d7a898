"""Buying music: the checkout for a release or a track (fixed price or name-your-price, Stripe.js's card
element, 3-D Secure), the order's page while Stripe's signed webhook fulfils it, the collection with
re-downloads through single-use grants, and redeeming download codes.

Nothing here grants ownership: the webhook does (sales.services.handle_webhook). The order's page only
reads what the webhook wrote. The basket is the checkout's own address (`/checkout/releases/7?amount=8.00`):
a listener who signs up or signs in on the way is sent back to it (`next=`), so nothing is lost when the
sign-in starts a fresh session.
"""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from app import context
from app.adrequest import gate_settings, requester
from app.auth import access, current_user
from app.security import allow_stripe_js
from app.web._card import body, confirm_with_card, id_field, stripe_client, stripe_js_settings, text_field
from catalog import renditions
from catalog import services as catalog
from core.errors import NinetyError
from core.users import ROLES
from sales import services as sales

bp = Blueprint("web_sales", __name__)

def init_app(app) -> None:
    extras = app.extensions["ninety"].extras
    extras["release_buy_endpoint"] = "web_sales.checkout_release"
    extras["track_buy_endpoint"] = "web_sales.checkout_track"
    links = app.jinja_env.globals["nav_links"]
    if not any(endpoint == "web_sales.collection" for _, endpoint, _ in links):
        links.append(("Collection", "web_sales.collection", tuple(ROLES)))
    app.jinja_env.globals["stripe_js"] = stripe_js_settings


# --- the checkout -----------------------------------------------------------------------------------------
@bp.get("/checkout/releases/<int:release_id>")
@access(public=True)
def checkout_release(release_id: int):
    return _checkout(release_id, None)


@bp.get("/checkout/tracks/<int:track_id>")
@access(public=True)
def checkout_track(track_id: int):
    track = catalog.get_track(context.db(), track_id)
    return _checkout(track.release_id, track.id)


def _checkout(release_id: int, track_id: int | None):
    user = current_user()
    quote = sales.quote(context.db(), release_id=release_id, track_id=track_id, now=context.clock().now(),
                        buyer_id=user.id if user is not None else None)
    release, track, own, owned = quote["release"], quote["track"], quote["own"], quote["owned"]
    amount_text = text_field(request.args, "amount", max_len=40)
    if not amount_text:
        default = quote.get("suggested") or quote.get("minimum") or quote.get("price")
        amount_text = default.amount_str() if default is not None else ""
    payable = quote["for_sale"] and not own and not owned
    if payable and user is not None:
        allow_stripe_js()
    here = url_for(request.endpoint, **request.view_args)
    return render_template("sales/checkout.html", quote=quote, release=release, track=track, own=own,
                           owned=owned, amount_text=amount_text, payable=payable, signed_in=user is not None,
                           here=here), 200 if quote["for_sale"] else 409


@bp.get("/checkout/continue")
@access(public=True)
def continue_checkout():
    """A signed-out listener's way on: to sign-up (or sign-in) and back to the same checkout, amount kept."""
    release_id = id_field(request.args, "release_id")
    track_id = id_field(request.args, "track_id", required=False)
    amount = text_field(request.args, "amount", max_len=40)
    params = {"amount": amount} if amount else {}
    back = (url_for("web_sales.checkout_track", track_id=track_id, **params) if track_id is not None
            else url_for("web_sales.checkout_release", release_id=release_id, **params))
    to = "web_accounts.signin" if request.args.get("to") == "signin" else "web_accounts.signup"
    return redirect(url_for(to, next=back), code=303)


@bp.post("/checkout/orders")
@access()
def create_order():
    """Create the pending order and its PaymentIntent (the page's script calls this, then confirms)."""
    data = body()
    release_id = id_field(data, "release_id")
    track_id = id_field(data, "track_id", required=False)
    amount = text_field(data, "amount", max_len=40) or None
    checkout = sales.start_checkout(context.db(), stripe_client(), buyer=current_user(), release_id=release_id,
                                    track_id=track_id, amount=amount, clock=context.clock())
    order_id = checkout.order_id
    return jsonify({
        "order_id": order_id, "client_secret": checkout.client_secret, "status": checkout.status,
        "amount": checkout.amount.to_json(),
        "confirm_url": url_for("web_sales.confirm_order", order_id=order_id),
        "next_url": url_for("web_sales.order_page", order_id=order_id),
    }), 201


@bp.post("/checkout/orders/<int:order_id>/card")
@access()
def confirm_order(order_id: int):
    """Confirm the order's PaymentIntent with the card the page tokenised (see static/sales/card.js)."""
    return confirm_with_card("order_id", order_id, lambda payment_method: sales.confirm_checkout(
        context.db(), stripe_client(), order_id, user=current_user(), payment_method=payment_method))


@bp.get("/checkout/orders/<int:order_id>")
@access()
def order_page(order_id: int):
    session = context.db()
    order = sales.get_order(session, order_id, user_id=current_user().id)
    release = catalog.get_release(session, order.release_id)
    track = catalog.get_track(session, order.track_id) if order.track_id else None
    return render_template("sales/order.html", order=order, release=release, track=track)


@bp.get("/checkout/orders/<int:order_id>/status")
@access()
def order_status(order_id: int):
    order = sales.get_order(context.db(), order_id, user_id=current_user().id)
    return jsonify({"order_id": order.id, "status": order.status, "owned": order.owned})


# --- what the buyer owns ------------------------------------------------------------------------------------
@bp.get("/collection")
@access()
def collection():
    session = context.db()
    orders = sales.orders_for_buyer(session, current_user().id)
    items = []
    for order in orders:
        release = catalog.get_release(session, order.release_id)
        tracks = ([catalog.get_track(session, order.track_id)] if order.track_id
                  else [t for t in release.tracks if t.asset is not None])
        items.append({"order": order, "release": release, "tracks": tracks,
                      "formats": {t.id: renditions.format_choices(session, t.id) for t in tracks}})
    return render_template("sales/collection.html", items=items)


@bp.post("/collection/tracks/<int:track_id>/download")
@access()
def download_owned(track_id: int):
    """A single-use download grant for a track the listener owns (no ad), in the format chosen beside it
    (none: the file as uploaded), then the usual download link. A format the track cannot give is refused
    (422) before the grant is made."""
    from entitlements import services as entitlements

    session = context.db()
    chosen = renditions.chosen_format(session, track_id, request.form.get("format") or None)
    grant = entitlements.grant_owned(session, context.redis(), requester(), track_id,
                                     user_id=current_user().id, settings=gate_settings(), clock=context.clock())
    return redirect(url_for("web_catalog.download", token=grant, format=chosen), code=303)


# --- download codes -----------------------------------------------------------------------------------------
@bp.route("/redeem", methods=["GET", "POST"])
@access(public=True)
def redeem():
    """Redeem a download code: the release joins the collection (an order at 0). A refused code re-shows the
    form with the reason and its status (404 unknown, 409 used or already owned, 429 too many tries)."""
    user = current_user()
    code = text_field(request.values, "code", max_len=64)
    if request.method == "GET" or user is None:
        return render_template("sales/redeem.html", code=code, signed_in=user is not None, error=None)
    try:
        order = sales.redeem_code(context.db(), context.redis(), code=code, user=user,
                                  ip=request.remote_addr or "", clock=context.clock())
    except NinetyError as exc:  # the request rolls back (a 4xx); the attempt still counts against the limit
        headers = {"Retry-After": str(exc.details["retry_after"])} if exc.details.get("retry_after") else {}
        return render_template("sales/redeem.html", code=code, signed_in=True, error=exc), exc.status, headers
    release = catalog.get_release(context.db(), order.release_id)
    flash(f"{release.title} is in your collection now.", "success")
    return redirect(url_for("web_sales.collection", _anchor=f"order-{order.id}"), code=303)
