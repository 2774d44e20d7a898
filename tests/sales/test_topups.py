"""Advertiser top-up by card: Dr assets:stripe (net), Dr fees, Cr prepaid; Redis spendable rises once per entry."""

from __future__ import annotations

import pytest

from adserver import keys
from core.errors import NinetyError
from ledger.accounts import PROCESSING_FEES, STRIPE, advertiser_prepaid


def _advertiser(shop, user):
    from adserver.services import create_advertiser

    with shop.unit() as s:
        return create_advertiser(s, name="Lamp Co", currency="USD", member_user_ids=[user.id]).id


def _start(shop, user, advertiser_id, amount):
    from core.users import get_user
    from sales.services import start_topup

    with shop.unit() as s:
        return start_topup(s, shop.stripe, advertiser_id=advertiser_id, user=get_user(s, user.id), amount=amount,
                           clock=shop.clock)


def test_a_card_top_up_credits_the_prepaid_balance_once(shop):
    user = shop.user(roles=("advertiser",))
    advertiser_id = _advertiser(shop, user)
    checkout = _start(shop, user, advertiser_id, "250.00")
    assert checkout.kind == "topup" and checkout.client_secret
    assert shop.balance(advertiser_prepaid(advertiser_id)) == 0
    event = shop.pay(checkout)
    assert shop.deliver(event) == "topped_up"
    fee = shop.standin.fee_for(25_000) * 10_000
    assert shop.balance(advertiser_prepaid(advertiser_id)) == 250_000_000
    assert shop.balance(STRIPE) == 250_000_000 - fee
    assert shop.balance(PROCESSING_FEES) == fee
    assert int(shop.redis.get(keys.advertiser_avail(advertiser_id))) == 250_000_000
    assert shop.deliver(event) == "duplicate"
    again = shop.standin.event("payment_intent.succeeded", shop.standin.payment_intents[checkout.payment_intent_id])
    assert shop.deliver(again) == "already_paid"
    assert int(shop.redis.get(keys.advertiser_avail(advertiser_id))) == 250_000_000
    second = _start(shop, user, advertiser_id, "50.00")
    assert shop.deliver(shop.pay(second)) == "topped_up"
    assert int(shop.redis.get(keys.advertiser_avail(advertiser_id))) == 300_000_000
    shop.books_ok()


def test_top_up_refusals(shop):
    user = shop.user(roles=("advertiser",))
    advertiser_id = _advertiser(shop, user)
    for amount, code in {"4.99": "below_minimum", "-5": "non_positive_amount", "0": "non_positive_amount", "abc": "invalid_amount",
                         "10.001": "too_precise", "1000000000": "amount_too_large"}.items():
        with pytest.raises(NinetyError) as refused:
            _start(shop, user, advertiser_id, amount)
        assert refused.value.code == code, amount
    with pytest.raises(NinetyError) as stranger:
        _start(shop, shop.user(roles=("advertiser",)), advertiser_id, "20.00")
    assert stranger.value.status == 403
    declined = _start(shop, user, advertiser_id, "20.00")
    assert shop.deliver(shop.pay(declined, "pm_card_chargeDeclined")) == "failed"
    assert shop.balance(advertiser_prepaid(advertiser_id)) == 0
    assert shop.standin.payment_intents and not shop.redis.get(keys.advertiser_avail(advertiser_id))
