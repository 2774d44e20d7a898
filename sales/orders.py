"""Orders and checkout: what is for sale at what price, the buyer's amount, the PaymentIntent, ownership.

Starting a checkout creates a pending order and a PaymentIntent that Stripe.js's card element confirms in
the page; nothing is owned until the signed `payment_intent.succeeded` webhook fulfils it
(sales.fulfilment). These functions flush and never commit: the caller owns the transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session, joinedload, lazyload

from catalog.models import Artist, ArtistMember, Release, Track
from catalog.services import effective_price, is_member, is_public, release_price
from core.clock import Clock
from core.money import Money, MoneyError, chargeable_minor_units, minor_unit_micros
from core.users import User
from payments.stripe_client import StripeClient
from sales.errors import InvalidAmount, NotForSale, SalesError, SalesForbidden, SalesNotFound
from sales.models import Order

# Stripe's largest charge is 99,999,999 minor units ($999,999.99, ¥99,999,999); a name-your-price amount may
# also be at most this many times the minimum, which catches a slipped finger long before that.
MAX_CHARGE_MINOR = 99_999_999
MAX_TIMES_MINIMUM = 10_000
REUSE_PENDING_FOR = timedelta(hours=1)


@dataclass(frozen=True)
class Checkout:
    order_id: int
    payment_intent_id: str
    client_secret: str | None
    status: str
    amount: Money
    kind: str = "sale"  # or "topup"


# A checkout needs the release and its artist, not the release's tracks nor the artist's members (which
# their relationships load eagerly by default): those are loaded only if something asks for them.
_RELEASE_ONLY = (lazyload(Release.tracks), joinedload(Release.artist).lazyload(Artist.members))
_TRACK_ONLY = (lazyload(Track.release), lazyload(Track.asset))
# Built once: a statement made per call is traversed for its cache key on every execution, which on the
# checkout page cost more CPU than the query itself (`Session.get` makes its SELECT anew each time too).
_RELEASE_BY_ID = select(Release).where(Release.id == bindparam("release_id")).options(*_RELEASE_ONLY)


def _release(session: Session, release_id: int, *, buyer_id: int | None = None,
             track_id: int | None = None) -> tuple[Release, bool, bool]:
    """The release with its artist and, for a buyer, their standing in the same statement: (release, a
    member of its artist, owns it, or the track, already)."""
    row = None
    if isinstance(release_id, int):
        if buyer_id is None:
            row = session.execute(_RELEASE_BY_ID, {"release_id": release_id}).unique().one_or_none()
        else:
            row = session.execute(_RELEASE_FOR_BUYER, {"release_id": release_id, "user_id": buyer_id,
                                                       "track_id": track_id}).unique().one_or_none()
    if row is None:
        raise SalesNotFound("There is no such release.", code="release_not_found")
    return (row[0], False, False) if buyer_id is None else (row[0], bool(row[1]), bool(row[2]))


def quote(session: Session, *, release_id: int, track_id: int | None = None, now=None,
          buyer_id: int | None = None) -> dict:
    """What the checkout shows and charges: the price (fixed, or NYP minimum and suggested), the title, and
    whether it can be bought now, with the release (its artist loaded) and track themselves; raises NotFound
    for an unknown release or a track not on it. With `buyer_id`, also that buyer's standing (`own`: a member
    of the artist; `owned`: owns it already, and not their own), read in the release's statement."""
    release, own, bought = _release(session, release_id, buyer_id=buyer_id, track_id=track_id)
    track = None
    if track_id is not None:
        track = session.get(Track, track_id, options=_TRACK_ONLY) if isinstance(track_id, int) else None
        if track is None or track.release_id != release.id:
            raise SalesNotFound("There is no such track on this release.", code="track_not_found")
    price = effective_price(track) if track is not None else release_price(release)
    reason = None
    if release.status == "taken_down" or (track is not None and track.status == "taken_down"):
        reason = ("release_unavailable", "This music has been taken down and cannot be bought.")
    elif now is not None and not is_public(release, now):
        reason = ("release_unavailable", "This release is not out yet, so it cannot be bought.")
    elif price["price_model"] not in ("fixed", "name_your_price"):
        reason = ("not_for_sale", "This is free with ads: download it from its page instead.")
    title = f"{track.title} ({release.title})" if track is not None else release.title
    return {"release_id": release.id, "track_id": track.id if track is not None else None, "title": title,
            "artist_id": release.artist_id, "artist_name": release.artist.name, "price_model": price["price_model"],
            "currency": release.currency, "price": price["price"], "minimum": price["minimum"],
            "suggested": price["suggested"], "for_sale": reason is None,
            "reason": reason[1] if reason else None, "reason_code": reason[0] if reason else None,
            "release": release, "track": track, "own": own, "owned": bought and not own}


def default_amount(price: dict) -> Money | None:
    """The amount pre-filled at checkout: the fixed price, or the suggested (else minimum) NYP price."""
    if price["price_model"] == "fixed":
        return price["price"]
    if price["price_model"] == "name_your_price":
        return price["suggested"] or price["minimum"]
    return None


def validate_amount(price: dict, amount) -> Money:
    """The amount the buyer pays, exactly: the fixed price, or a name-your-price amount at or above the
    minimum, in the release's currency, chargeable to a card exactly, and not absurd."""
    currency = price["currency"]
    model = price["price_model"]
    if amount is None or amount == "":
        chosen = default_amount(price)
        if chosen is None:
            raise NotForSale("This is free with ads: download it from its page instead.", code="not_for_sale")
        return chosen
    if isinstance(amount, Money):
        money = amount
    elif isinstance(amount, str):
        if len(amount) > 40:
            raise InvalidAmount("That is not an amount; write it like 7.50.", code="invalid_amount", field="amount")
        try:
            money = Money.parse(amount, currency)
        except MoneyError as exc:
            code = "too_precise" if exc.code == "too_precise" else "invalid_amount"
            raise InvalidAmount(f"{exc.message}.", code=code, field="amount") from None
    elif isinstance(amount, int) and not isinstance(amount, bool):
        money = Money(amount, currency)
    else:
        raise InvalidAmount("Give the amount as text, like 7.50.", code="invalid_amount", field="amount")
    if money.currency != currency:
        raise InvalidAmount(f"This is priced in {currency}, not {money.currency}.", code="currency_mismatch",
                            field="amount")
    if money.micros <= 0:
        raise InvalidAmount("The amount must be more than zero.", code="non_positive_amount", field="amount")
    if money.micros % minor_unit_micros(currency):
        raise InvalidAmount(f"{money.amount_str(full=True)} is finer than the smallest unit of {currency}; "
                            f"round it to {money.exponent} decimal places.", code="too_precise", field="amount")
    if model == "fixed":
        if money != price["price"]:
            raise InvalidAmount(f"The price is fixed at {price['price'].format()}.", code="price_is_fixed",
                                field="amount")
    elif model == "name_your_price":
        minimum = price["minimum"]
        if money < minimum:
            raise InvalidAmount(f"Pay at least {minimum.format()} (the artist's minimum).", code="below_minimum",
                                field="amount", minimum_micros=minimum.micros)
        cap_micros = min(MAX_CHARGE_MINOR * minor_unit_micros(currency), minimum.micros * MAX_TIMES_MINIMUM)
        if money.micros > cap_micros:
            raise InvalidAmount(f"That is far more than this costs; the most one payment can be is "
                                f"{Money(cap_micros, currency).format()}.", code="amount_too_large", field="amount")
    else:
        raise NotForSale("This is free with ads: download it from its page instead.", code="not_for_sale")
    try:
        chargeable_minor_units(money)
    except MoneyError as exc:
        raise InvalidAmount(exc.message, code="not_chargeable", field="amount") from None
    return money


def start_checkout(session: Session, stripe: StripeClient, *, buyer: User, release_id: int,
                   track_id: int | None = None, amount=None, clock: Clock) -> Checkout:
    """A pending order and its PaymentIntent for the card element (reused for the same basket within an
    hour, so reloading the page does not make a second one)."""
    info = quote(session, release_id=release_id, track_id=track_id, now=clock.now())
    if not info["for_sale"]:
        raise NotForSale(info["reason"], code=info["reason_code"])
    if is_member(session, info["artist_id"], buyer.id):
        raise SalesForbidden("This is your own music; you cannot buy it.", code="own_release")
    if owns_release(session, buyer.id, info["release_id"]) or (
            track_id is not None and owns_track(session, buyer.id, track_id)):
        raise SalesError("You own this already: it is in your collection.", code="already_owned", status=409)
    money = validate_amount(info, amount)
    minor = chargeable_minor_units(money)
    since = clock.now() - REUSE_PENDING_FOR
    pending = session.scalar(select(Order).where(
        Order.buyer_user_id == buyer.id, Order.release_id == info["release_id"], Order.status == "pending",
        Order.track_id.is_(None) if track_id is None else Order.track_id == track_id,
        Order.amount_micros == money.micros, Order.created_at >= since).order_by(Order.id.desc()).limit(1))
    if pending is not None and pending.payment_intent_id:
        intent = stripe.retrieve_payment_intent(pending.payment_intent_id)
        if intent.status in ("requires_payment_method", "requires_confirmation", "requires_action"):
            return Checkout(pending.id, intent.id, intent.client_secret, intent.status, money)
    order = Order(kind="sale", buyer_user_id=buyer.id, artist_id=info["artist_id"], release_id=info["release_id"],
                  track_id=track_id, currency=money.currency, amount_micros=money.micros, status="pending",
                  created_at=clock.now())
    session.add(order)
    session.flush()
    intent = stripe.create_payment_intent(
        amount_minor=minor, currency=money.currency, idempotency_key=f"order:{order.id}:{uuid.uuid4().hex}",
        metadata={"kind": "sale", "order_id": str(order.id), "release_id": str(info["release_id"]),
                  **({"track_id": str(track_id)} if track_id is not None else {})})
    order.payment_intent_id = intent.id
    session.flush()
    return Checkout(order.id, intent.id, intent.client_secret, intent.status, money)


def confirm_checkout(session: Session, stripe: StripeClient, order_id: int, *, user: User,
                     payment_method: str) -> Checkout:
    """Confirm the buyer's pending order with a card tokenised in the page (when Stripe.js cannot confirm it
    itself, as with localstripe). The answer may be `requires_action` (3-D Secure) or a decline; ownership
    still comes only from the webhook."""
    order = get_order(session, order_id, user_id=user.id)
    if order.status == "paid":
        raise SalesError("This order is paid already.", code="order_paid", status=409)
    if not order.payment_intent_id:
        raise SalesError("This order has nothing to pay.", code="order_not_payable", status=409)
    if not isinstance(payment_method, str) or not payment_method.startswith(("pm_", "tok_", "card_", "src_")):
        raise InvalidAmount("The card is missing; enter it again.", code="invalid_payment_method",
                            field="payment_method")
    intent = stripe.confirm_payment_intent(order.payment_intent_id, payment_method=payment_method)
    return Checkout(order.id, intent.id, intent.client_secret, intent.status,
                    Money(order.amount_micros, order.currency))


# --- reading ------------------------------------------------------------------------------------------------
def get_order(session: Session, order_id: int, *, user_id: int | None = None) -> Order:
    """The order; with `user_id`, only the buyer's own (anyone else's is "not found", not "forbidden")."""
    order = session.get(Order, order_id) if isinstance(order_id, int) else None
    if order is None or (user_id is not None and order.buyer_user_id != user_id):
        raise SalesNotFound("There is no such order.", code="order_not_found")
    return order


def _owned_clause():
    return (Order.status == "paid") & (
        (Order.kind == "code") | (Order.refunded_micros + Order.disputed_micros < Order.amount_micros))


# The release and the buyer's standing in one statement, for the checkout page (one round trip fewer, and
# with it one wait for the GIL fewer): the two EXISTS correlate to the release's row.
_RELEASE_FOR_BUYER = select(
    Release,
    select(ArtistMember.user_id).where(ArtistMember.artist_id == Release.artist_id,
                                       ArtistMember.user_id == bindparam("user_id")).exists().label("own"),
    select(Order.id).where(
        Order.buyer_user_id == bindparam("user_id"), _owned_clause(),
        or_((Order.track_id.is_(None)) & (Order.release_id == Release.id),
            Order.track_id == bindparam("track_id", type_=Order.track_id.type))).exists().label("bought"),
).where(Release.id == bindparam("release_id")).options(*_RELEASE_ONLY)


def orders_for_buyer(session: Session, user_id: int, *, include_reversed: bool = True) -> list[Order]:
    """The buyer's collection: paid orders and redeemed codes, newest first (wholly refunded ones marked)."""
    query = select(Order).where(Order.buyer_user_id == user_id, Order.status == "paid")
    if not include_reversed:
        query = query.where(_owned_clause())
    return list(session.scalars(query.order_by(Order.paid_at.desc(), Order.id.desc())))


def recent_orders(session: Session, *, limit: int = 100) -> list[Order]:
    """Paid sales, newest first (finance's list)."""
    return list(session.scalars(select(Order).where(Order.status == "paid", Order.kind == "sale")
                                .order_by(Order.paid_at.desc(), Order.id.desc()).limit(limit)))


def refunds_for_order(session: Session, order_id: int) -> list:
    from sales.models import OrderRefund

    return list(session.scalars(select(OrderRefund).where(OrderRefund.order_id == order_id).order_by(OrderRefund.id)))


def sales_for_artist(session: Session, artist_id: int, *, limit: int = 100) -> list[Order]:
    return list(session.scalars(select(Order).where(Order.artist_id == artist_id, Order.status == "paid")
                                .order_by(Order.paid_at.desc(), Order.id.desc()).limit(limit)))


def owns_release(session: Session, user_id: int | None, release_id: int) -> bool:
    """Bought (or redeemed) as a whole release, not wholly refunded or lost to a dispute."""
    if user_id is None:
        return False
    return session.scalar(select(Order.id).where(Order.buyer_user_id == user_id, Order.release_id == release_id,
                                                 Order.track_id.is_(None), _owned_clause()).limit(1)) is not None


def owns_track(session: Session, user_id: int | None, track_id: int) -> bool:
    """The listener owns the track: bought it, or bought or redeemed a code for its release."""
    if user_id is None:
        return False
    release_id = select(Track.release_id).where(Track.id == track_id).scalar_subquery()
    found = session.scalar(select(Order.id).where(
        Order.buyer_user_id == user_id, _owned_clause(),
        or_(Order.track_id == track_id, (Order.track_id.is_(None)) & (Order.release_id == release_id))).limit(1))
    return found is not None


def owned_tracks(session: Session, user_id: int) -> list[Track]:
    """Every track the listener owns, by release and position."""
    orders = select(Order.release_id, Order.track_id).where(Order.buyer_user_id == user_id, _owned_clause()).subquery()
    tracks = select(Track).join(orders, or_(Track.id == orders.c.track_id,
                                            (orders.c.track_id.is_(None)) & (Track.release_id == orders.c.release_id)))
    return list(session.scalars(tracks.distinct().order_by(Track.release_id, Track.position, Track.id)))

