"""The ad server's services never commit; what they put in Redis follows the caller's commit, never a rollback."""

from __future__ import annotations

from adserver import keys, services
from ledger.accounts import advertiser_prepaid
from ledger.services import balance


def _advertiser(ad_session, make_user):
    user = make_user(roles=("advertiser",))
    advertiser = services.create_advertiser(ad_session, name="Txn Ads", currency="USD", member_user_ids=[user.id])
    ad_session.commit()
    return advertiser


def _fund(ad_session, ad_redis, clock, advertiser, micros, key):
    return services.fund(ad_session, ad_redis, advertiser_id=advertiser.id, amount_micros=micros, currency="USD",
                         clock=clock, idempotency_key=key)


def test_a_rolled_back_funding_credits_nothing_in_redis(ad_session, ad_redis, clock, make_user):
    advertiser = _advertiser(ad_session, make_user)
    _fund(ad_session, ad_redis, clock, advertiser, 5_000_000, "seed")
    ad_session.commit()
    assert int(ad_redis.get(keys.advertiser_avail(advertiser.id))) == 5_000_000

    _fund(ad_session, ad_redis, clock, advertiser, 7_000_000, "refused-later")
    assert int(ad_redis.get(keys.advertiser_avail(advertiser.id))) == 5_000_000  # not before the commit
    ad_session.rollback()
    ad_session.commit()  # a later commit of the same session does not replay the rolled-back credit
    assert int(ad_redis.get(keys.advertiser_avail(advertiser.id))) == 5_000_000
    assert balance(ad_session, advertiser_prepaid(advertiser.id), "USD") == 5_000_000


def test_a_funding_in_a_rolled_back_savepoint_credits_nothing(ad_session, ad_redis, clock, make_user):
    advertiser = _advertiser(ad_session, make_user)
    _fund(ad_session, ad_redis, clock, advertiser, 1_000_000, "kept")
    savepoint = ad_session.begin_nested()
    _fund(ad_session, ad_redis, clock, advertiser, 2_000_000, "undone")
    savepoint.rollback()
    ad_session.commit()
    assert int(ad_redis.get(keys.advertiser_avail(advertiser.id))) == 1_000_000
    assert balance(ad_session, advertiser_prepaid(advertiser.id), "USD") == 1_000_000


def test_fundings_seed_and_credit_once_each_after_one_commit(ad_session, ad_redis, clock, make_user):
    advertiser = _advertiser(ad_session, make_user)
    _fund(ad_session, ad_redis, clock, advertiser, 1_000_000, "one")
    _fund(ad_session, ad_redis, clock, advertiser, 2_000_000, "two")
    assert ad_redis.get(keys.advertiser_avail(advertiser.id)) is None
    ad_session.commit()
    assert int(ad_redis.get(keys.advertiser_avail(advertiser.id))) == 3_000_000
    _fund(ad_session, ad_redis, clock, advertiser, 2_000_000, "two")  # replayed: the same entry, no credit
    ad_session.commit()
    assert int(ad_redis.get(keys.advertiser_avail(advertiser.id))) == 3_000_000


def test_campaign_changes_bump_the_book_only_after_the_commit(ad_session, ad_redis, make_advertiser, make_campaign):
    campaign = make_campaign(make_advertiser())
    version = ad_redis.get(keys.BOOK_VERSION)
    services.set_campaign_status(ad_session, ad_redis, campaign.id, "paused")
    assert ad_redis.get(keys.BOOK_VERSION) == version
    ad_session.rollback()
    assert ad_redis.get(keys.BOOK_VERSION) == version
    services.set_campaign_status(ad_session, ad_redis, campaign.id, "paused")
    ad_session.commit()
    assert ad_redis.get(keys.BOOK_VERSION) != version
