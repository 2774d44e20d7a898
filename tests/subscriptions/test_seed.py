"""The demo's premium is made through the real path (plans, customers, SetupIntents and subscriptions on an
embedded localstripe, premium turned on by localstripe's own signed invoice events) and the month the royalties
seeder closes shares the subscribers' pools over what each of them played; the receipt page shows it."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.conftest import login


def test_the_demo_subscribers_pools_are_shared_at_the_close_and_the_receipt_shows_it(app):
    from app.seed import accounts, ads, catalog, royalties
    from app.seed import subscriptions as seed_premium
    from core.embedded import localstripe_pid
    from core.users import User
    from ledger.checks import check_books
    from ledger.services import balance
    from royalties.subscriber_pool import next_period
    from sales.models import WebhookEvent
    from sales.subscription_models import Invoice, SubscriberPoolShare, Subscription
    from sales.subscriptions import is_subscriber, subscriber_pool

    runtime = app.extensions["ninety"]
    state: dict = {}
    for module in sorted((accounts, catalog, ads, seed_premium, royalties), key=lambda m: m.ORDER):
        module.seed(runtime, state)
    assert localstripe_pid(runtime.config.var_dir) is None  # the seed's embedded localstripe is stopped again
    period = state["subscription_period"]
    assert state["closed_period"] == period  # the royalties seeder closed the month the subscribers paid into

    with runtime.sessions() as s:
        subscribers = state["subscribers"]
        assert len(subscribers) == len(seed_premium.SUBSCRIBERS)
        subs = s.scalars(select(Subscription).where(Subscription.user_id.in_(subscribers))).all()
        assert all(sub.status == "active" and sub.stripe_subscription_id.startswith("sub_") for sub in subs)
        assert all(is_subscriber(s, user_id, runtime.clock.now()) for user_id in subscribers)
        invoices = s.scalars(select(Invoice).where(Invoice.subscription_id.in_([sub.id for sub in subs]))).all()
        assert len(invoices) == len(subs) and all(i.status == "paid" and i.pool_period == period for i in invoices)
        # premium was turned on by the events localstripe signed and sent, not by the seed
        events = s.scalars(select(WebhookEvent).where(WebhookEvent.type == "invoice.payment_succeeded")).all()
        assert {e.object_id for e in events} == {i.stripe_invoice_id for i in invoices}

        shares = s.scalars(select(SubscriberPoolShare).where(SubscriberPoolShare.period == period)).all()
        by_subscriber: dict[int, list] = {}
        for share in shares:
            by_subscriber.setdefault(share.subscriber_id, []).append(share)
        nora, omar, pia = subscribers
        for listener in (nora, omar):
            paid = [x for x in by_subscriber[listener] if x.kind == "track"]
            assert paid and all(x.listened_ms > 0 and x.payee_id for x in paid)
            pool = next(i.pool_micros for i in invoices if i.subscription_id in
                        {sub.id for sub in subs if sub.user_id == listener})
            assert sum(x.amount_micros for x in paid) == pool  # every micro of their 90% reached what they played
        carried = by_subscriber[pia]
        assert [x.kind for x in carried] == ["carried"]
        assert balance(s, subscriber_pool(period), runtime.config.currency) == 0
        assert balance(s, subscriber_pool(next_period(period)), runtime.config.currency) == carried[0].amount_micros
        assert check_books(s).ok
        assert s.scalar(select(func.count()).select_from(SubscriberPoolShare)
                        .where(SubscriberPoolShare.kind == "track", SubscriberPoolShare.period == period)) >= 2
        user = s.get(User, nora)
        s.expunge(user)

    client = app.test_client()
    login(client, user)
    page = client.get(f"/premium/receipt?period={period}")
    assert page.status_code == 200
    assert 'id="receipt"' in page.text and page.text.count("data-artist=") >= 1
