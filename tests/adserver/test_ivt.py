"""Fake listeners: fresh listener ids are counted per IP and per network, a flood of them is invalid traffic,
and an id younger than the decision's minimum view is held back instead of counted."""

from __future__ import annotations

from datetime import timedelta

from adserver import keys, services
from adserver import stream as ad_stream
from adserver.ivt import listener_age_s, listener_created_at, network_of, new_listener_id
from tests.adserver.conftest import BROWSER_UA, context, visitor

SCRIPT_IP = "203.0.113.9"


def _spent(redis, campaign):
    return int(redis.get(keys.campaign_spent(campaign.id, advertiser=campaign.advertiser_id)) or 0)


def _fresh_decisions(decide, clock, n, ip=SCRIPT_IP):
    """What a script gets by asking for an ad with a fresh cookie each time: (listener id, token) pairs."""
    out = []
    for _ in range(n):
        lid = new_listener_id(clock.now())
        out.append((lid, decide(ctx=context(listener=lid, ip=ip)).token))
    return out


def test_560_fresh_cookie_beacons_from_one_ip_are_invalid_and_none_charged(make_advertiser, make_campaign, decide,
                                                                         beacon, ad_redis, clock):
    adv = make_advertiser(funded_micros=10_000_000)
    campaign = make_campaign(adv)
    avail = int(ad_redis.get(keys.advertiser_avail(adv.id)))
    statuses = [beacon(token, visitor(lid, ip=SCRIPT_IP)).status for lid, token in _fresh_decisions(decide, clock, 560)]
    assert statuses.count("counted") == 0
    assert statuses.count("invalid") >= 530
    assert set(statuses) == {"held", "invalid"}
    assert _spent(ad_redis, campaign) == 0
    assert int(ad_redis.get(keys.advertiser_avail(adv.id))) == avail
    assert ad_stream.length(ad_redis) == 0
    reasons = {f[b"reason"] for _, f in ad_stream.entries(ad_redis, invalid=True)}
    assert reasons == {b"listener_flood"}


def test_a_patient_script_gets_at_most_the_per_ip_allowance(make_advertiser, make_campaign, decide, beacon,
                                                           ad_redis, clock):
    campaign = make_campaign(make_advertiser(funded_micros=10_000_000))
    decisions = _fresh_decisions(decide, clock, 560)
    clock.advance(seconds=6)  # every id is now older than the minimum view: only the flood check is left
    statuses = [beacon(token, visitor(lid, ip=SCRIPT_IP)).status for lid, token in decisions]
    allowance = services.Limits().new_ids_per_ip_per_hour
    assert statuses.count("counted") == allowance
    assert statuses.count("invalid") == 560 - allowance
    assert _spent(ad_redis, campaign) == allowance * 500


def test_two_real_listeners_behind_one_nat_are_counted(make_advertiser, make_campaign, decide, beacon, ad_redis,
                                                       clock):
    campaign = make_campaign(make_advertiser())
    nat = "198.51.100.20"
    first, second = new_listener_id(clock.now()), new_listener_id(clock.now())
    tokens = [decide(ctx=context(listener=lid, ip=nat)).token for lid in (first, second)]
    clock.advance(seconds=6)
    assert [beacon(t, visitor(lid, ip=nat)).status for t, lid in zip(tokens, (first, second), strict=True)] \
        == ["counted", "counted"]
    assert _spent(ad_redis, campaign) == 2 * 500


def test_established_listeners_still_count_from_a_flooded_address(make_advertiser, make_campaign, decide, beacon,
                                                                  clock):
    make_campaign(make_advertiser(funded_micros=10_000_000))
    for lid, token in _fresh_decisions(decide, clock, 100):
        beacon(token, visitor(lid, ip=SCRIPT_IP))
    regular = new_listener_id(clock.now() - timedelta(days=3))  # a cookie from three days ago
    legacy = "a" + "5" * 24  # an id minted before ids carried their age
    for lid in (regular, legacy):
        assert beacon(decide(ctx=context(listener=lid, ip=SCRIPT_IP)).token, visitor(lid, ip=SCRIPT_IP)).counted


def test_a_flood_spread_over_one_network_is_invalid(make_advertiser, make_campaign, decide, beacon, clock):
    make_campaign(make_advertiser(funded_micros=10_000_000))
    limits = services.Limits(new_ids_per_ip_per_hour=5, new_ids_per_network_per_hour=20)
    decisions = [(lid, token, f"192.0.2.{i + 1}") for i, (lid, token) in
                 enumerate(_fresh_decisions(decide, clock, 40))]
    clock.advance(seconds=6)
    statuses = [beacon(token, visitor(lid, ip=ip), limits=limits).status for lid, token, ip in decisions]
    assert statuses == ["counted"] * 20 + ["invalid"] * 20


def test_an_id_younger_than_the_minimum_view_is_held_not_counted(make_advertiser, make_campaign, decide, beacon,
                                                                  ad_session, ad_redis, clock):
    campaign = make_campaign(make_advertiser())
    lid = new_listener_id(clock.now())
    placement = decide(ctx=context(listener=lid))
    shown_at = clock.advance(seconds=1)
    result = beacon(placement.token, visitor(lid))
    assert (result.status, result.reason, result.counted) == ("held", "listener_too_new", False)
    assert _spent(ad_redis, campaign) == 0 and ad_stream.length(ad_redis) == 0
    assert services.impression_seen_at(ad_redis, placement.decision) is None
    clock.advance(seconds=2)
    assert beacon(placement.token, visitor(lid)).status == "held"  # still too new: still held
    clock.advance(seconds=3)  # the download after the ad: the id is old enough, the impression counts as shown
    settled = services.settle_held_impression(ad_session, ad_redis, placement.token, visitor(lid), secret="s3cret",
                                              clock=clock)
    assert settled.status == "counted"
    assert services.impression_seen_at(ad_redis, placement.decision) == shown_at
    assert _spent(ad_redis, campaign) == placement.decision.price_micros
    [(_, fields)] = ad_stream.entries(ad_redis)
    assert fields[b"at"].decode() == shown_at.isoformat()
    assert beacon(placement.token, visitor(lid)).status == "duplicate"


def test_asking_for_the_download_does_not_count_a_beacon_that_never_fired(make_advertiser, make_campaign, decide,
                                                                          ad_session, ad_redis, clock):
    make_campaign(make_advertiser())
    lid = new_listener_id(clock.now())
    placement = decide(ctx=context(listener=lid))
    clock.advance(seconds=10)
    assert services.settle_held_impression(ad_session, ad_redis, placement.token, visitor(lid), secret="s3cret",
                                           clock=clock) is None
    assert ad_stream.length(ad_redis) == 0


def test_listener_ids_carry_their_creation_time(clock):
    lid = new_listener_id(clock.now())
    assert listener_created_at(lid) == clock.now().replace(microsecond=0)
    assert listener_age_s(lid, clock.now() + timedelta(seconds=7)) == 7
    assert listener_created_at("u42") is None and listener_created_at("a" + "0" * 24) is None
    assert len(lid) <= 64 and lid != new_listener_id(clock.now())


def test_networks_are_a_slash_24_or_a_slash_48():
    assert network_of("203.0.113.77") == "203.0.113.0/24"
    assert network_of("::ffff:203.0.113.77") == "203.0.113.0/24"
    assert network_of("2001:db8:1234:5678::1") == "2001:db8:1234::/48"
    assert network_of("not an address") == "not an address"


def test_thresholds_are_configurable():
    limits = services.Limits.parse("ip=100,listener=10,new_per_ip=4,new_per_net=9")
    assert (limits.per_ip_per_minute, limits.per_listener_per_minute, limits.new_ids_per_ip_per_hour,
            limits.new_ids_per_network_per_hour) == (100, 10, 4, 9)
    assert services.Limits.parse("ip=600,listener=60") == services.Limits()


def test_the_web_listener_cookie_carries_its_creation_time(ad_app, clock):
    from itsdangerous import URLSafeSerializer

    from app.auth import LISTENER_COOKIE

    client = ad_app.test_client()
    assert client.get("/", headers={"User-Agent": BROWSER_UA}).status_code == 200
    raw = client.get_cookie(LISTENER_COOKIE).value
    secret = ad_app.extensions["ninety"].config.secret_key
    lid = URLSafeSerializer(secret, salt="ninety.listener").loads(raw)
    assert listener_created_at(lid) == clock.now().replace(microsecond=0)


def test_a_script_with_a_fresh_cookie_per_decision_over_http_is_never_charged(ad_app, make_advertiser,
                                                                               make_campaign, ad_redis, clock):
    """The issue's reproduction: 560 decisions and beacons, each from a new cookie, one address."""
    adv = make_advertiser(funded_micros=10_000_000)
    campaign = make_campaign(adv)
    avail = int(ad_redis.get(keys.advertiser_avail(adv.id)))
    headers = {"User-Agent": BROWSER_UA}
    for _ in range(560):
        script = ad_app.test_client()  # no cookie: the site mints a fresh listener id
        script.environ_base["REMOTE_ADDR"] = SCRIPT_IP
        body = script.post("/api/v1/ads/decisions", json={"slot": "gate"}, headers=headers).get_json()
        assert body["fill"]
        assert script.get(body["impression_url"], headers=headers).status_code == 200
    assert _spent(ad_redis, campaign) == 0
    assert int(ad_redis.get(keys.advertiser_avail(adv.id))) == avail
    assert ad_stream.length(ad_redis) == 0
    flooded = [f for _, f in ad_stream.entries(ad_redis, invalid=True) if f[b"reason"] == b"listener_flood"]
    assert len(flooded) >= 530 and {f[b"ip"] for f in flooded} == {SCRIPT_IP.encode()}


def test_a_cookieless_players_impression_counts_once_the_spot_has_played(ad_app, make_advertiser, make_campaign,
                                                                        ad_redis, clock):
    """A player without cookies gets a new listener id with each VAST request, so its impression (fired as the
    spot starts) is held; the spot's `complete` event settles it."""
    from lxml import etree

    campaign = make_campaign(make_advertiser(), slots=("player",), kinds=("audio",))
    player = {"User-Agent": "VLC/3.0.20 LibVLC/3.0.20"}
    doc = etree.fromstring(ad_app.test_client().get("/ads/vast?slot=player", headers=player).data)
    ns = {"v": "http://www.iab.com/VAST"}
    impression = doc.findtext(".//v:Impression", namespaces=ns).strip().split("localhost", 1)[-1]
    complete = next(t for t in doc.iterfind(".//v:Tracking", ns) if t.get("event") == "complete")
    complete = complete.text.strip().split("localhost", 1)[-1]
    assert ad_app.test_client().get(impression, headers=player).status_code == 200
    assert ad_stream.length(ad_redis) == 0  # held: the id is seconds old
    clock.advance(seconds=2)  # the two-second spot played through
    assert ad_app.test_client().get(complete, headers=player).status_code == 200
    assert ad_stream.length(ad_redis) == 1
    assert _spent(ad_redis, campaign) == 500
