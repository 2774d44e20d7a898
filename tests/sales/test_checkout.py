"""Checkout and fulfilment through the service layer against the Stripe-wire stand-in (non-zero fees)."""

from __future__ import annotations

import pytest

from catalog.errors import InvalidPrice
from core.errors import NinetyError
from core.jobs import pending_jobs
from ledger.accounts import INCOME_SALES, PROCESSING_FEES, STRIPE, payee_held, payee_payable
from tests.conftest import CliRunner


def test_a_sale_posts_one_entry_with_the_fee_from_the_balance_transaction(shop, smtp):
    release = shop.release(price="7.00", tracks=2, shares=(7000, 3000))
    buyer = shop.user()
    checkout = shop.checkout(buyer, release)
    assert checkout.status == "requires_payment_method" and checkout.client_secret
    assert shop.order(checkout.order_id).status == "pending"
    assert shop.deliver(shop.pay(checkout)) == "fulfilled"

    order = shop.order(checkout.order_id)
    assert (order.status, order.amount_micros, order.fee_micros) == ("paid", 7_000_000, 500_000)  # 2.9% + 30c
    assert shop.balance(STRIPE) == 6_500_000
    assert shop.balance(PROCESSING_FEES) == 500_000
    # 90% of the net, rounded up, split evenly over the two tracks, then 70/30 by each track's sheet
    assert shop.balance(payee_payable(release["payee_id"])) == 2 * 2_047_500
    assert shop.balance(payee_payable(release["collaborator_id"])) == 2 * 877_500
    assert shop.balance(INCOME_SALES) == 7_000_000 - 5_850_000  # the rest of the gross; the fee is an expense
    assert shop.balance(INCOME_SALES) - shop.balance(PROCESSING_FEES) == 650_000  # the platform's 10% of the net
    shop.books_ok()
    with shop.sessions() as s:
        from ledger.services import get_entry

        entry = get_entry(s, order.sale_entry_id)
    assert entry.metadata["event"] == "sale"
    assert {p.ref for p in entry.postings if p.account.startswith("liabilities:payee")} == {
        f"track:{t}" for t in release["tracks"]}
    assert {p.ref for p in entry.postings if p.account == PROCESSING_FEES} == {f"track:{t}" for t in release["tracks"]}

    from sales.services import owns_release, owns_track

    with shop.sessions() as s:
        assert owns_release(s, buyer.id, release["release_id"])
        assert all(owns_track(s, buyer.id, t) for t in release["tracks"])
    result = CliRunner(shop.app).invoke(["jobs", "work", "--burst"])
    assert result.exit_code == 0, result.output
    [receipt] = smtp.to(buyer.email)
    assert "receipt" in receipt["subject"].lower() and "$7.00" in receipt["body"]


def test_the_same_event_twice_and_a_new_event_for_a_paid_order_change_nothing(shop):
    release = shop.release(price="5.00", tracks=1)
    checkout = shop.checkout(shop.user(), release)
    event = shop.pay(checkout)
    assert shop.deliver(event) == "fulfilled"
    assert shop.deliver(event) == "duplicate"
    again = shop.standin.event("payment_intent.succeeded", shop.standin.payment_intents[checkout.payment_intent_id])
    assert shop.deliver(again) == "already_paid"
    assert shop.balance(STRIPE) == 5_000_000 - 450_000


def test_the_browser_cannot_fulfil_an_order_and_a_failed_payment_owns_nothing(shop):
    release = shop.release(price="5.00", tracks=1)
    buyer = shop.user()
    checkout = shop.checkout(buyer, release)
    declined = shop.pay(checkout, "pm_card_chargeDeclined")
    assert declined["type"] == "payment_intent.payment_failed"
    assert shop.deliver(declined) == "failed"
    order = shop.order(checkout.order_id)
    assert order.status == "failed" and "declined" in order.failure_reason
    # A forged "succeeded" event for an intent Stripe says failed posts nothing either.
    forged = dict(shop.standin.payment_intents[checkout.payment_intent_id], status="succeeded")
    assert shop.deliver(shop.standin.event("payment_intent.succeeded", forged)) == "failed"
    assert shop.balance(STRIPE) == 0
    shop.standin.payment_intents[checkout.payment_intent_id]["status"] = "requires_payment_method"
    assert shop.deliver(shop.pay(checkout)) == "fulfilled"  # the buyer tries another card


def test_three_d_secure_waits_for_the_challenge(shop):
    release = shop.release(price="5.00", tracks=1)
    checkout = shop.checkout(shop.user(), release)
    intent = shop.standin.confirm(checkout.payment_intent_id, "pm_card_threeDSecure2Required")
    assert intent["status"] == "requires_action"
    assert shop.deliver(shop.standin.event("payment_intent.requires_action", intent)) == "pending"
    shop.standin.complete_action(checkout.payment_intent_id)
    event = shop.standin.event("payment_intent.succeeded", shop.standin.payment_intents[checkout.payment_intent_id])
    assert shop.deliver(event) == "fulfilled"


def test_a_single_track_at_its_own_price_pays_only_that_tracks_sheet(shop):
    from catalog import services as catalog

    release = shop.release(price="9.00", tracks=2, shares=(5000, 5000))
    track_id = release["tracks"][1]
    with shop.unit() as s:
        catalog.set_track_price(s, catalog.get_track(s, track_id), "fixed", price="1.50")
    checkout = shop.buy(shop.user(), release, track_id=track_id)
    order = shop.order(checkout.order_id)
    assert (order.amount_micros, order.fee_micros) == (1_500_000, 340_000)
    net = 1_160_000
    artists = -(-net * 9 // 10)
    assert shop.balance(payee_payable(release["payee_id"])) + shop.balance(
        payee_payable(release["collaborator_id"])) == artists
    assert shop.balance(INCOME_SALES) - shop.balance(PROCESSING_FEES) == net - artists


def test_a_taken_down_tracks_share_is_held(shop):
    from rights.settings import RightsSettings
    from tests.rights.conftest import RightsWorld

    release = shop.release(price="4.00", tracks=2)
    notices = RightsWorld(shop.app, shop.clock, RightsSettings(public_url="http://127.0.0.1:8000"))
    notices.take_down([release["tracks"][0]])  # held for the takedown case (rights.escrow.routes_for)
    shop.buy(shop.user(), release)
    # The shop's tracks share one recording (content-addressed), so the notice covers both: all of it is held.
    assert shop.balance(payee_held(release["payee_id"])) > 0
    assert shop.balance(payee_payable(release["payee_id"])) == 0


def test_name_your_price_amounts(shop):
    from sales.services import quote, validate_amount

    release = shop.release(model="name_your_price", price=None, minimum="3.00", suggested="5.00", tracks=1)
    with shop.sessions() as s:
        price = quote(s, release_id=release["release_id"])
    assert validate_amount(price, None).micros == 5_000_000  # the suggested price pre-filled
    assert validate_amount(price, "3").micros == 3_000_000
    assert validate_amount(price, "12.34").micros == 12_340_000
    bad = {"2.99": "below_minimum", "0": "non_positive_amount", "-5": "non_positive_amount",
           "abc": "invalid_amount", "5,5,5": "invalid_amount", "1e3": "invalid_amount",
           "99999999999": "amount_too_large", "30001": "amount_too_large", "5.001": "too_precise",
           "5.0000001": "too_precise", "": None, "NaN": "invalid_amount", "x" * 100: "invalid_amount"}
    for text, code in bad.items():
        if code is None:
            continue
        with pytest.raises(NinetyError) as refused:
            validate_amount(price, text)
        assert refused.value.code == code, text
        assert 400 <= refused.value.status < 500
    with pytest.raises(NinetyError) as wrong_type:
        validate_amount(price, 5.5)
    assert wrong_type.value.code == "invalid_amount"
    buyer = shop.user()
    checkout = shop.buy(buyer, release, amount="8.25")
    assert shop.order(checkout.order_id).amount_micros == 8_250_000


def test_what_cannot_be_bought(shop):
    from catalog import services as catalog

    draft = shop.release(price="5.00", publish=False)
    free = shop.release(model="free_with_ads", price=None)
    gone = shop.release(price="5.00")
    with shop.unit() as s:
        catalog.take_down_release(s, catalog.get_release(s, gone["release_id"]))
    mine = shop.release(price="5.00")
    buyer = shop.user()
    cases = [(buyer, draft, "release_unavailable", 409), (buyer, free, "not_for_sale", 409),
             (buyer, gone, "release_unavailable", 409), (mine["artist_user"], mine, "own_release", 403),
             (buyer, {"release_id": 999_999}, "release_not_found", 404)]
    for who, release, code, status in cases:
        with pytest.raises(NinetyError) as refused:
            shop.checkout(who, release)
        assert (refused.value.code, refused.value.status) == (code, status)
    with pytest.raises(NinetyError) as wrong_track:
        shop.checkout(buyer, mine, track_id=draft["tracks"][0])
    assert wrong_track.value.code == "track_not_found"
    shop.buy(buyer, mine)
    with pytest.raises(NinetyError) as owned:
        shop.checkout(buyer, mine)
    assert owned.value.code == "already_owned"
    assert shop.balance(STRIPE) == 4_550_000  # only the one sale moved money


def test_reloading_the_checkout_reuses_the_pending_intent(shop):
    release = shop.release(price="5.00", tracks=1)
    buyer = shop.user()
    first = shop.checkout(buyer, release)
    second = shop.checkout(buyer, release)
    assert (first.order_id, first.payment_intent_id) == (second.order_id, second.payment_intent_id)
    assert len(shop.standin.payment_intents) == 1


def test_prices_a_card_cannot_charge_exactly_are_refused_when_set(shop):
    from catalog import services as catalog

    kwd = shop.release(price="5.120", currency="KWD", tracks=1, publish=False)
    jpy = shop.release(price="700", currency="JPY", tracks=1, publish=False)
    with shop.unit() as s:
        release = catalog.get_release(s, kwd["release_id"])
        with pytest.raises(InvalidPrice) as refused:
            catalog.set_release_price(s, release, "fixed", price="5.125")
        assert refused.value.code == "not_chargeable"
        with pytest.raises(InvalidPrice) as yen:
            catalog.set_release_price(s, catalog.get_release(s, jpy["release_id"]), "fixed", price="700.5")
        assert yen.value.code == "fractional_minor_unit"


def test_minor_units_follow_the_iso_exponent(shop):
    release = shop.release(price="700", currency="JPY", tracks=1)
    checkout = shop.buy(shop.user(), release)
    intent = shop.standin.payment_intents[checkout.payment_intent_id]
    assert (intent["amount"], intent["currency"]) == (700, "jpy")
    order = shop.order(checkout.order_id)
    assert order.amount_micros == 700_000_000 and order.fee_micros == shop.standin.fee_for(700) * 1_000_000
    kwd = shop.release(price="5.120", currency="KWD", tracks=1)
    checkout = shop.buy(shop.user(), kwd)
    assert shop.standin.payment_intents[checkout.payment_intent_id]["amount"] == 5120
    assert shop.order(checkout.order_id).amount_micros == 5_120_000
    shop.books_ok()


def test_nothing_is_deferred_for_a_refused_checkout(shop):
    release = shop.release(price="5.00", tracks=1)
    with shop.sessions() as s:
        from core.users import get_user
        from sales.services import start_checkout

        with pytest.raises(NinetyError):
            start_checkout(s, shop.stripe, buyer=get_user(s, release["artist_user"].id),
                           release_id=release["release_id"], clock=shop.clock)
        assert pending_jobs(s) == []
