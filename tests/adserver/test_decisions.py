import random

import pytest

from adserver import keys
from adserver.errors import AdError, ExpiredDecision, InvalidDecision
from adserver.signing import sign, verify
from tests.adserver.conftest import context


def test_no_campaign_is_no_fill(decide):
    assert decide() is None


def test_second_price_auction_with_floor(make_advertiser, make_campaign, decide):
    adv = make_advertiser()
    high = make_campaign(adv, bid_cpm_micros=4_000_000)
    make_campaign(adv, bid_cpm_micros=1_000_000)
    placement = decide()
    assert placement.decision.campaign_id == high.id
    assert placement.decision.price_micros == 1_000  # the runner-up's bid, per impression
    assert verify(placement.token, "s3cret") == placement.decision


def test_a_lone_bidder_pays_the_floor(make_advertiser, make_campaign, decide):
    make_campaign(make_advertiser(), bid_cpm_micros=3_000_000)
    assert decide().decision.price_micros == 500


def test_targeting_by_slot_genre_country_and_mode(make_advertiser, make_campaign, decide):
    adv = make_advertiser()
    make_campaign(adv, slots=("browse",), target_genres=("jazz",), target_countries=("DE",), target_modes=("key",))
    assert decide("gate", context(genre="jazz", country="DE", mode="key")) is None
    assert decide("browse", context(genre="rock", country="DE", mode="key")) is None
    assert decide("browse", context(genre="jazz", country="FR", mode="key")) is None
    assert decide("browse", context(genre="jazz", country="DE", mode="gate")) is None
    assert decide("browse", context(genre="Jazz", country="de", mode="key")) is not None


def test_unapproved_creatives_never_serve(make_advertiser, make_campaign, decide):
    make_campaign(make_advertiser(), approve=False)
    assert decide() is None


def test_audio_only_slots_need_audio_creatives(make_advertiser, make_campaign, decide):
    adv = make_advertiser()
    make_campaign(adv, slots=("player",), kinds=("display",))
    assert decide("player") is None
    make_campaign(adv, slots=("player",), kinds=("audio",))
    placement = decide("player")
    assert placement.creative.kind == "audio" and placement.decision.min_view_ms == 2000


def test_budget_left_and_prepaid_balance_bound_eligibility(make_advertiser, make_campaign, decide, ad_redis):
    poor = make_advertiser(funded_micros=2_000)
    campaign = make_campaign(poor, bid_cpm_micros=2_500_000)  # 2,500 micros an impression > 2,000 prepaid
    assert decide() is None
    rich = make_advertiser()
    spent = make_campaign(rich, total=3_000, daily=3_000)
    ad_redis.set(keys.campaign_spent(spent.id, advertiser=rich.id), 1_000)
    assert decide() is None
    assert campaign.id != spent.id


def test_frequency_cap_per_listener_per_day(make_advertiser, make_campaign, decide, beacon):
    make_campaign(make_advertiser(), frequency_cap_per_day=1)
    first = decide()
    assert beacon(first.token).counted
    assert decide() is None
    assert decide(ctx=context(listener="someone-else")) is not None


def test_even_pacing_throttles_a_campaign_ahead_of_the_day(make_advertiser, make_campaign, decide, ad_redis, clock):
    campaign = make_campaign(make_advertiser(), pacing="even", daily=5_000_000)
    assert decide() is not None  # at noon half the daily budget may be spent
    ad_redis.set(keys.campaign_day(campaign.id, keys.day(clock.now()), advertiser=campaign.advertiser_id), 2_600_000)
    assert decide() is None
    clock.advance(hours=2)
    ad_redis.set(keys.campaign_day(campaign.id, keys.day(clock.now()), advertiser=campaign.advertiser_id), 2_600_000)
    assert decide() is not None


def test_campaign_dates_bound_serving(make_advertiser, make_campaign, decide, clock):
    make_campaign(make_advertiser())
    clock.advance(days=-3)
    assert decide() is None


def test_forged_tampered_and_expired_decisions_are_refused(make_advertiser, make_campaign, decide, clock):
    make_campaign(make_advertiser())
    placement = decide()
    with pytest.raises(InvalidDecision) as forged:
        verify(placement.token, "another-secret")
    assert forged.value.code == "forged_decision"
    import dataclasses
    cheaper = dataclasses.replace(placement.decision, campaign_id=placement.decision.campaign_id + 1)
    tampered = sign(cheaper, "s3cret").split(".")[0] + "." + placement.token.split(".")[1]
    with pytest.raises(InvalidDecision):
        verify(tampered, "s3cret")
    for junk in ("", "x", "a.b.c", "!!!.???", "e30." + "A" * 43):
        with pytest.raises(InvalidDecision):
            verify(junk, "s3cret")
    with pytest.raises(ExpiredDecision):
        verify(placement.token, "s3cret", now_s=placement.decision.expires_at + 1)


def test_bad_requests_are_named(decide):
    with pytest.raises(AdError) as exc:
        decide("sidebar")
    assert exc.value.code == "unknown_slot"
    with pytest.raises(AdError):
        decide(ctx={"listener_id": "", "mode": "gate"})
    with pytest.raises(AdError):
        decide(ctx=context(mode="sometimes"))


def test_ties_share_the_traffic(make_advertiser, make_campaign, decide):
    adv = make_advertiser()
    a, b = make_campaign(adv), make_campaign(adv)
    rng = random.Random(7)
    winners = {decide(rng=rng).decision.campaign_id for _ in range(40)}
    assert winners == {a.id, b.id}
