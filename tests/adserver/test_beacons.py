import threading

import pytest

from adserver import keys, services
from adserver import stream as ad_stream
from adserver.errors import ExpiredDecision, InvalidDecision
from tests.adserver.conftest import BOT_UA, context, visitor


def _spent(redis, campaign):
    return int(redis.get(keys.campaign_spent(campaign.id, advertiser=campaign.advertiser_id)) or 0)


def test_an_impression_is_charged_and_streamed_once(make_advertiser, make_campaign, decide, beacon, ad_redis):
    adv = make_advertiser(funded_micros=1_000_000)
    campaign = make_campaign(adv)
    placement = decide()
    assert beacon(placement.token).status == "counted"
    assert beacon(placement.token).status == "duplicate"
    assert _spent(ad_redis, campaign) == placement.decision.price_micros
    assert int(ad_redis.get(keys.advertiser_avail(adv.id))) == 1_000_000 - placement.decision.price_micros
    entries = ad_stream.entries(ad_redis)
    assert len(entries) == 1
    fields = {k.decode(): v.decode() for k, v in entries[0][1].items()}
    assert fields["decision_id"] == placement.id and fields["price_micros"] == str(placement.decision.price_micros)
    assert set(fields) == {"decision_id", "campaign_id", "advertiser_id", "creative_id", "slot", "track_id",
                           "listener_id", "mode", "price_micros", "currency", "at"}


def test_fifty_concurrent_copies_of_a_beacon_charge_once(make_advertiser, make_campaign, decide, ad_app, clock):
    campaign = make_campaign(make_advertiser())
    placement = decide()
    runtime = ad_app.extensions["ninety"]
    limits = {"total_budget_micros": campaign.total_budget_micros,
              "daily_budget_micros": campaign.daily_budget_micros}
    results, barrier = [], threading.Barrier(50)

    def fire():
        barrier.wait()
        results.append(services.record_impression(runtime.redis, placement.token, visitor(), secret="s3cret",
                                                  clock=clock, campaign_limits=limits).status)

    threads = [threading.Thread(target=fire) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(set(results)) == ["counted", "duplicate"] and results.count("counted") == 1
    assert _spent(runtime.redis, campaign) == placement.decision.price_micros
    assert ad_stream.length(runtime.redis) == 1


def test_a_bot_is_recorded_and_never_charged(make_advertiser, make_campaign, decide, beacon, ad_redis, clock):
    campaign = make_campaign(make_advertiser())
    placement = decide()
    result = beacon(placement.token, visitor(ua=BOT_UA))
    assert result.status == "invalid" and result.reason == "bot"
    assert _spent(ad_redis, campaign) == 0
    assert ad_stream.length(ad_redis) == 0
    flagged = ad_stream.entries(ad_redis, invalid=True)
    assert flagged[0][1][b"reason"] == b"bot"
    assert ad_redis.hget(keys.stats("c", campaign.id, keys.hour(clock.now())), "invalid") == b"1"


@pytest.mark.parametrize("ua,reason", [("", "missing_headers"), ("python-requests/2.31", "bot"),
                                       ("curl/8.5.0", "bot")])
def test_header_and_library_checks(make_advertiser, make_campaign, decide, beacon, ua, reason):
    make_campaign(make_advertiser())
    assert beacon(decide().token, visitor(ua=ua)).reason == reason


def test_real_players_are_allowed_even_if_they_look_like_libraries(make_advertiser, make_campaign, decide, beacon):
    make_campaign(make_advertiser(), slots=("player",), kinds=("audio",))
    placement = decide("player")
    assert beacon(placement.token, visitor(ua="VLC/3.0.20 LibVLC/3.0.20", listener="")).counted


def test_cross_site_and_foreign_listener_beacons_are_invalid(make_advertiser, make_campaign, decide, beacon):
    make_campaign(make_advertiser())
    assert beacon(decide().token, visitor(listener="thief")).reason == "listener_mismatch"
    assert beacon(decide().token, visitor(**{"Sec-Fetch-Site": "cross-site"})).reason == "cross_site"


def test_too_many_beacons_from_one_listener_are_invalid(make_advertiser, make_campaign, decide, beacon, ad_redis):
    campaign = make_campaign(make_advertiser())
    statuses = [beacon(decide().token, limits=services.Limits(per_ip_per_minute=100, per_listener_per_minute=3)).status
                for _ in range(5)]
    assert statuses == ["counted"] * 3 + ["invalid"] * 2
    assert ad_stream.length(ad_redis) == 3 and len(ad_stream.entries(ad_redis, invalid=True)) == 2
    assert _spent(ad_redis, campaign) == 3 * 500


def test_budget_never_overspent_however_beacons_race(make_advertiser, make_campaign, decide, ad_app, clock):
    # three impressions' worth at the floor; twenty decisions made while budget remained race their beacons
    campaign = make_campaign(make_advertiser(), bid_cpm_micros=500_000, total=3 * 500, daily=3 * 500)
    tokens = [decide(ctx=context(listener=f"l{i}")).token for i in range(20)]
    runtime = ad_app.extensions["ninety"]
    limits = {"total_budget_micros": campaign.total_budget_micros,
              "daily_budget_micros": campaign.daily_budget_micros}
    results, barrier = [], threading.Barrier(len(tokens))

    def fire(token, listener):
        barrier.wait()
        results.append(services.record_impression(runtime.redis, token, visitor(listener), secret="s3cret",
                                                  clock=clock, campaign_limits=limits).status)

    threads = [threading.Thread(target=fire, args=(t, f"l{i}")) for i, t in enumerate(tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("counted") == 3
    assert results.count("budget_exhausted") == len(tokens) - 3
    assert _spent(runtime.redis, campaign) == 1500


def test_forged_and_expired_beacons_are_refused_and_recorded(make_advertiser, make_campaign, decide, beacon, ad_redis,
                                                             clock):
    make_campaign(make_advertiser())
    placement = decide()
    with pytest.raises(InvalidDecision):
        services.record_impression(ad_redis, placement.token[:-2] + "AA", visitor(), secret="s3cret", clock=clock,
                                   campaign_limits={})
    clock.advance(hours=1)
    with pytest.raises(ExpiredDecision):
        beacon(placement.token)
    reasons = [f[b"reason"] for _, f in ad_stream.entries(ad_redis, invalid=True)]
    assert reasons == [b"forged_decision", b"expired"]
    assert ad_stream.length(ad_redis) == 0


def test_click_goes_only_to_the_creatives_url_and_counts_once(make_advertiser, make_campaign, decide, beacon,
                                                             ad_session, ad_redis, clock):
    campaign = make_campaign(make_advertiser())
    placement = decide()
    for _ in range(3):
        url = services.record_click(ad_redis, ad_session, placement.token, visitor(), secret="s3cret", clock=clock)
        ad_session.commit()
        assert url == "https://example.com/buy"
    assert ad_redis.hget(keys.stats("c", campaign.id, keys.hour(clock.now())), "clicks") == b"1"
    from adserver.models import Click
    assert ad_session.query(Click).count() == 1
