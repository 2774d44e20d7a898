"""Hypothesis: random purchases (name-your-price), partial refunds, disputes won and lost, and redelivered
events. After every step the books pass `ninety ledger check`'s checks; each order's payees hold exactly 90%
of its net, rounded up, less the same share of what was refunded or lost to a dispute (rounded in the
artists' favour); and what Stripe holds plus the fees equals what the platform and the payees were credited."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.money import share_ceil
from ledger.accounts import INCOME_SALES, PROCESSING_FEES, STRIPE, payee_held, payee_payable
from sales.errors import RefundRefused


def _order_payees(shop, order_id: int) -> int:
    from sales.books import payee_holdings
    from sales.fulfilment import _order_entries
    from sales.models import Order

    with shop.sessions() as s:
        return sum(payee_holdings(_order_entries(s, s.get(Order, order_id))).values())


STEP = st.one_of(
    st.tuples(st.just("buy"), st.integers(min_value=100, max_value=50_000)),  # cents, NYP >= 1.00
    st.tuples(st.just("refund"), st.integers(0, 20), st.integers(1, 100)),  # order index, percent of what is left
    st.tuples(st.just("dispute"), st.integers(0, 20), st.integers(1, 100), st.sampled_from([0, 1500])),
    st.tuples(st.just("close"), st.integers(0, 20), st.booleans(), st.booleans()),
    st.tuples(st.just("redeliver"), st.integers(0, 50)),
)


@settings(max_examples=8, deadline=None)
@given(steps=st.lists(STEP, min_size=1, max_size=7), shares=st.sampled_from([(7000, 3000), (9999, 1), (5000, 5000)]),
       tracks=st.integers(1, 3))
def test_payees_hold_exactly_ninety_percent_of_net_through_any_sequence(shop, steps, shares, tracks):
    release = shop.release(model="name_your_price", price=None, minimum="1.00", tracks=tracks, shares=shares)
    payees = [payee_payable(release["payee_id"]), payee_payable(release["collaborator_id"]),
              payee_held(release["payee_id"]), payee_held(release["collaborator_id"])]
    start = {code: shop.balance(code) for code in (STRIPE, PROCESSING_FEES, INCOME_SALES)}
    orders: list[dict] = []  # the model: gross, fee, refunded, disputes
    events: list[dict] = []
    stripe_model = fees_model = 0
    for step in steps:
        kind = step[0]
        if kind == "buy":
            cents = step[1]
            checkout = shop.checkout(shop.user(), release, amount=f"{cents // 100}.{cents % 100:02d}")
            event = shop.pay(checkout)
            assert shop.deliver(event) == "fulfilled"
            events.append(event)
            fee = shop.standin.fee_for(cents) * 10_000
            orders.append({"id": checkout.order_id, "pi": checkout.payment_intent_id, "gross": cents * 10_000,
                           "fee": fee, "refunded": 0, "disputed": 0, "dispute": None, "status": None})
            stripe_model += cents * 10_000 - fee
            fees_model += fee
        elif not orders or kind == "redeliver" and not events:
            continue
        elif kind == "refund":
            o = orders[step[1] % len(orders)]
            left_cents = (o["gross"] - o["refunded"] - o["disputed"]) // 10_000
            cents = left_cents * step[2] // 100
            if cents == 0:
                continue
            if o["status"] is not None:  # disputed, open or closed: refused (Stripe refunds no charged-back payment)
                with pytest.raises(RefundRefused):
                    shop.refund(o["id"], f"{cents // 100}.{cents % 100:02d}")
                continue
            shop.refund(o["id"], f"{cents // 100}.{cents % 100:02d}")
            o["refunded"] += cents * 10_000
            stripe_model -= cents * 10_000
        elif kind == "dispute":
            o = orders[step[1] % len(orders)]
            left_cents = (o["gross"] - o["refunded"]) // 10_000
            cents = left_cents * step[2] // 100
            if o["dispute"] is not None or cents == 0:
                continue
            dispute = shop.standin.dispute(o["pi"], amount=cents, fee=step[3])
            event = shop.standin.event("charge.dispute.created", dispute)
            assert shop.deliver(event) == "dispute_opened"
            events.append(event)
            o.update(dispute=dispute["id"], status="open", disputed=cents * 10_000, dispute_fee=step[3] * 10_000)
            stripe_model -= cents * 10_000 + step[3] * 10_000
            fees_model += step[3] * 10_000
        elif kind == "close":
            o = orders[step[1] % len(orders)]
            if o["status"] != "open":
                continue
            won, fee_back = step[2], step[3]
            closed = shop.standin.close_dispute(o["dispute"], won=won, fee_returned=fee_back)
            event = shop.standin.event("charge.dispute.closed", closed)
            assert shop.deliver(event) == ("dispute_won" if won else "dispute_lost")
            events.append(event)
            o["status"] = "won" if won else "lost"
            if won:
                stripe_model += o["disputed"]
                if fee_back:
                    stripe_model += o["dispute_fee"]
                    fees_model -= o["dispute_fee"]
                o["disputed"] = 0
        elif kind == "redeliver":
            assert shop.deliver(events[step[1] % len(events)]) == "duplicate"

        shop.books_ok()
        total_expected = 0
        for o in orders:
            artists = share_ceil(o["gross"] - o["fee"], 9, 10)
            expected = artists - artists * (o["refunded"] + o["disputed"]) // o["gross"]
            assert _order_payees(shop, o["id"]) == expected
            assert expected * 10 >= 9 * (o["gross"] - o["fee"]) * (o["gross"] - o["refunded"] - o["disputed"]) \
                // o["gross"]  # at least 90% of what is left of the net
            total_expected += expected
        assert sum(shop.balance(code) for code in payees) == total_expected
        stripe = shop.balance(STRIPE) - start[STRIPE]
        fees = shop.balance(PROCESSING_FEES) - start[PROCESSING_FEES]
        income = shop.balance(INCOME_SALES) - start[INCOME_SALES]
        assert (stripe, fees) == (stripe_model, fees_model)
        assert stripe + fees == income + total_expected  # platform + payees = what came in (fees included)
