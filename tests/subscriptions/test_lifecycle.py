"""Premium's lifecycle against localstripe: subscribing (ok, twice, declined, 3-D Secure), the books of a paid
invoice, renewals, failures and the grace period through the injectable clock, cancellation at period end,
finance's immediate cancellation with a pro-rata refund, resubscription, webhook idempotency and ordering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core.money import share_ceil
from ledger.accounts import STRIPE
from ledger.checks import check_books
from sales import subscriptions
from sales.subscription_models import Invoice, Subscription
from sales.subscriptions import INCOME_SUBSCRIPTIONS, subscriber_pool
from tests.subscriptions.conftest import CARD_3DS, CARD_DECLINED, CARD_DECLINED_ON_CHARGE

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)


def books_ok(world):
    with world.session() as s:
        report = check_books(s)
        assert report.ok, report.problems


def sub_row(world, sub_id) -> Subscription:
    with world.session() as s:
        row = s.get(Subscription, sub_id)
        s.expunge(row)
        return row


def is_sub(world, user, at) -> bool:
    with world.session() as s:
        return subscriptions.is_subscriber(s, user.id, at)


def test_a_paid_first_invoice_books_ninety_percent_of_net_to_the_subscribers_pool(pworld):
    user = pworld.listener("ana")
    sub_id, stripe_sub, status, _ = pworld.subscribe(user)
    assert status == "active"
    # Premium starts with Stripe's signed webhook, not with the page's answer.
    assert not is_sub(pworld, user, pworld.clock.now())
    paid = pworld.invoice_event("invoice.payment_succeeded", stripe_sub, amount_minor=499, start=pworld.clock.now(),
                                end=pworld.clock.now() + timedelta(days=31))
    assert pworld.apply(paid) == "invoice_paid"
    assert pworld.apply(paid) == "duplicate"  # the same invoice again (another event id too) books nothing
    assert is_sub(pworld, user, pworld.clock.now() + timedelta(days=30))
    pool = share_ceil(4_990_000, 9, 10)
    assert pworld.balance(subscriber_pool("2026-10")) == pool
    assert pworld.balance(INCOME_SUBSCRIPTIONS) == 4_990_000 - pool
    assert pworld.balance(STRIPE) == 4_990_000
    books_ok(pworld)


def test_a_fee_is_the_platforms_expense_and_the_pool_is_ninety_percent_of_net(pworld):
    class FeeOf:
        """localstripe's balance transactions carry no fee; this reports one on top of the real intent."""

        def __init__(self, stripe, fee_minor):
            self.stripe, self.fee_minor = stripe, fee_minor

        def retrieve_payment_intent(self, intent_id):
            from dataclasses import replace

            return replace(self.stripe.retrieve_payment_intent(intent_id), fee_minor=self.fee_minor)

    user = pworld.listener()
    _, stripe_sub, _, _ = pworld.subscribe(user)
    event = pworld.invoice_event("invoice.payment_succeeded", stripe_sub, amount_minor=499, start=OCT,
                                 end=OCT + timedelta(days=31))
    pworld.apply(event, stripe=FeeOf(pworld.stripe, 45))
    net = 4_990_000 - 450_000
    assert pworld.balance(subscriber_pool("2026-10")) == share_ceil(net, 9, 10)
    assert pworld.balance("expenses:processing-fees") == 450_000
    assert pworld.balance(STRIPE) == net
    books_ok(pworld)


def test_subscribing_twice_is_refused(pworld):
    user = pworld.listener()
    _, stripe_sub, _, _ = pworld.subscribe(user)
    pworld.apply(pworld.invoice_event("invoice.payment_succeeded", stripe_sub, amount_minor=499, start=OCT,
                                      end=OCT + timedelta(days=31)))
    with pytest.raises(subscriptions.AlreadySubscribed) as exc:
        pworld.subscribe(user)
    assert exc.value.status == 409


def test_a_card_declined_when_charged_keeps_nothing(pworld):
    user = pworld.listener()
    with pytest.raises(subscriptions.CardDeclined) as exc:
        pworld.subscribe(user, number=CARD_DECLINED_ON_CHARGE)
    assert exc.value.status == 402
    with pworld.session() as s:
        assert s.scalars(select(Subscription).where(Subscription.user_id == user.id)).all() == []


def test_a_card_declined_when_set_up_never_reaches_a_subscription(pworld):
    user = pworld.listener()
    with pworld.unit() as s:
        started = subscriptions.start_subscription(s, pworld.gateway, user, "USD", settings=pworld.settings,
                                                   clock=pworld.clock)
    seti = pworld.confirm_card(started["client_secret"], CARD_DECLINED)
    with pworld.unit() as s, pytest.raises(subscriptions.CardNotConfirmed):
        subscriptions.subscribe(s, pworld.gateway, user, "USD", seti, settings=pworld.settings, clock=pworld.clock)


def test_someone_elses_card_is_refused(pworld):
    ana, bo = pworld.listener("ana"), pworld.listener("bo")
    with pworld.unit() as s:
        started = subscriptions.start_subscription(s, pworld.gateway, ana, "USD", settings=pworld.settings,
                                                   clock=pworld.clock)
    seti = pworld.confirm_card(started["client_secret"])
    with pworld.unit() as s, pytest.raises(subscriptions.CardNotConfirmed) as exc:
        subscriptions.subscribe(s, pworld.gateway, bo, "USD", seti, settings=pworld.settings, clock=pworld.clock)
    assert exc.value.status == 403


def test_three_d_secure_abandoned_leaves_no_premium_and_a_new_try_works(pworld):
    user = pworld.listener()
    sub_id, stripe_sub, status, secret = pworld.subscribe(user, number=CARD_3DS)
    assert status == "requires_action" and secret.startswith("pi_")
    failed = pworld.invoice_event("invoice.payment_failed", stripe_sub, amount_minor=499, start=OCT,
                                  end=OCT + timedelta(days=31))
    assert pworld.apply(failed) == "invoice_failed"
    assert pworld.apply(pworld.deleted_event(stripe_sub)) == "subscription_deleted"
    assert sub_row(pworld, sub_id).status == "incomplete_expired"
    assert not is_sub(pworld, user, pworld.clock.now())
    assert pworld.balance(subscriber_pool("2026-10")) == 0
    new_id, _, status, _ = pworld.subscribe(user)
    assert status == "active" and new_id != sub_id


def test_a_failed_renewal_keeps_premium_for_the_grace_period_then_back_to_ads(pworld):
    user = pworld.listener()
    _, stripe_sub, _, _ = pworld.subscribe(user)
    end = OCT + timedelta(days=31)
    pworld.apply(pworld.invoice_event("invoice.payment_succeeded", stripe_sub, amount_minor=499, start=OCT, end=end))
    pworld.clock.set(end + timedelta(minutes=5))
    pworld.apply(pworld.invoice_event("invoice.payment_failed", stripe_sub, amount_minor=499, start=end,
                                      end=end + timedelta(days=30)))
    assert is_sub(pworld, user, end + timedelta(days=6))
    assert not is_sub(pworld, user, end + timedelta(days=7, minutes=6))
    # A retry that succeeds inside the grace restores the subscription and extends the paid period.
    pworld.clock.set(end + timedelta(days=3))
    pworld.apply(pworld.invoice_event("invoice.payment_succeeded", stripe_sub, amount_minor=499, start=end,
                                      end=end + timedelta(days=30)))
    assert is_sub(pworld, user, end + timedelta(days=29))
    books_ok(pworld)


def test_out_of_order_and_replayed_events_move_no_money_twice(pworld):
    user = pworld.listener()
    sub_id, stripe_sub, _, _ = pworld.subscribe(user)
    paid = pworld.invoice_event("invoice.payment_succeeded", stripe_sub, amount_minor=499, start=OCT,
                                end=OCT + timedelta(days=31), invoice_id="in_ordering")
    failed_late = pworld.invoice_event("invoice.payment_failed", stripe_sub, amount_minor=499, start=OCT,
                                       end=OCT + timedelta(days=31), invoice_id="in_ordering")
    assert pworld.apply(paid) == "invoice_paid"
    assert pworld.apply(failed_late) == "stale"  # a failure of an invoice already paid changes nothing
    assert sub_row(pworld, sub_id).status == "active"
    for _ in range(3):
        pworld.apply(paid)
    with pworld.session() as s:
        assert s.scalars(select(Invoice).where(Invoice.stripe_invoice_id == "in_ordering")).one().status == "paid"
    assert pworld.balance(subscriber_pool("2026-10")) == share_ceil(4_990_000, 9, 10)
    # Deleted, then a late payment for a period already paid: booked once, the subscription stays over.
    pworld.apply(pworld.deleted_event(stripe_sub))
    pworld.apply(pworld.deleted_event(stripe_sub))
    assert sub_row(pworld, sub_id).status == "canceled"
    assert pworld.apply(paid) == "duplicate"
    # An event for a subscription Ninety does not know is recorded as ignored.
    assert pworld.apply(pworld.deleted_event("sub_unknown")) == "ignored"
    books_ok(pworld)


def test_cancel_at_period_end_keeps_premium_to_the_end_then_stops(pworld):
    user, other = pworld.listener("ana"), pworld.listener("bo")
    sub_id, stripe_sub, _, _ = pworld.subscribe(user)
    end = OCT + timedelta(days=31)
    pworld.apply(pworld.invoice_event("invoice.payment_succeeded", stripe_sub, amount_minor=499, start=OCT, end=end))
    with pworld.unit() as s, pytest.raises(subscriptions.SubscriptionNotFound):  # someone else's
        subscriptions.cancel_at_period_end(s, pworld.gateway, other, sub_id, clock=pworld.clock)
    with pworld.unit() as s:
        subscriptions.cancel_at_period_end(s, pworld.gateway, user, sub_id, clock=pworld.clock)
    assert sub_row(pworld, sub_id).cancel_at_period_end
    assert is_sub(pworld, user, end - timedelta(hours=1))
    pworld.clock.set(end)
    pworld.apply(pworld.deleted_event(stripe_sub, end))
    assert not is_sub(pworld, user, end + timedelta(seconds=1))
    # Resubscription after the end.
    new_id, _, status, _ = pworld.subscribe(user)
    assert status == "active" and new_id != sub_id


def test_finance_cancels_at_once_with_a_pro_rata_refund_while_the_month_is_open(pworld):
    user = pworld.listener()
    finance = pworld.finance("fin")
    sub_id, stripe_sub, _, _ = pworld.subscribe(user)
    start = OCT
    end = OCT + timedelta(days=30)
    pworld.apply(pworld.invoice_event("invoice.payment_succeeded", stripe_sub, amount_minor=499, start=start, end=end))
    pworld.clock.set(start + timedelta(days=10))
    with pworld.unit() as s:
        refund = subscriptions.cancel_now_with_refund(s, pworld.gateway, sub_id, by=finance, clock=pworld.clock)
        refund_micros, pool_part = refund.amount_micros, refund.pool_micros
    assert refund_micros == 499 * 20 // 30 * 10_000  # 20 of 30 days unused, whole cents
    pool = share_ceil(4_990_000, 9, 10)
    assert pworld.balance(subscriber_pool("2026-10")) == pool - pool_part
    assert pworld.balance(STRIPE) == 4_990_000 - refund_micros
    assert not is_sub(pworld, user, pworld.clock.now() + timedelta(seconds=1))
    assert sub_row(pworld, sub_id).status == "canceled"
    # Stripe's deleted webhook afterwards changes nothing; a second cancellation is refused.
    assert pworld.apply(pworld.deleted_event(stripe_sub)) == "duplicate"
    with pworld.unit() as s, pytest.raises(subscriptions.NotCancellable):
        subscriptions.cancel_now_with_refund(s, pworld.gateway, sub_id, by=finance, clock=pworld.clock)
    books_ok(pworld)


def test_refunding_an_unpaid_invoice_or_too_much_is_refused(pworld):
    user = pworld.listener()
    finance = pworld.finance("fin")
    _, stripe_sub, _, _ = pworld.subscribe(user)
    pworld.apply(pworld.invoice_event("invoice.payment_failed", stripe_sub, amount_minor=499, start=OCT,
                                      end=OCT + timedelta(days=31), invoice_id="in_unpaid"))
    with pworld.session() as s:
        unpaid = s.scalars(select(Invoice).where(Invoice.stripe_invoice_id == "in_unpaid")).one().id
    with pworld.unit() as s, pytest.raises(subscriptions.InvoiceNotRefundable) as exc:
        subscriptions.refund_invoice(s, pworld.gateway, unpaid, None, by=finance, clock=pworld.clock)
    assert exc.value.status == 409
    pworld.apply(pworld.invoice_event("invoice.payment_succeeded", stripe_sub, amount_minor=499, start=OCT,
                                      end=OCT + timedelta(days=31), invoice_id="in_paid"))
    with pworld.session() as s:
        paid = s.scalars(select(Invoice).where(Invoice.stripe_invoice_id == "in_paid")).one().id
    with pworld.unit() as s, pytest.raises(subscriptions.RefundTooLarge):
        subscriptions.refund_invoice(s, pworld.gateway, paid, 5_000_000, by=finance, clock=pworld.clock)
    with pworld.unit() as s:
        subscriptions.refund_invoice(s, pworld.gateway, paid, None, by=finance, clock=pworld.clock)
    assert pworld.balance(subscriber_pool("2026-10")) == 0
    assert pworld.balance(INCOME_SUBSCRIPTIONS) == 0
    with pworld.unit() as s, pytest.raises(subscriptions.RefundTooLarge):
        subscriptions.refund_invoice(s, pworld.gateway, paid, 10_000, by=finance, clock=pworld.clock)
    books_ok(pworld)
