"""Entitlement factories: the ad-server ones (funded advertisers, campaigns, a free 70/30 track), gate
settings matching the test app, and a way to show a listener browse ads until they have key-mode credit."""

from __future__ import annotations

import pytest

from entitlements import services as entitlements
from tests.adserver import conftest as ad_fixtures
from tests.adserver.conftest import BROWSER_UA, FLOOR_CPM
from tests.conftest import TEST_SECRET

# The ad server's fixtures, shared (a conftest's fixtures reach only its own directory).
clock = ad_fixtures.clock
ad_app = ad_fixtures.ad_app
ad_session = ad_fixtures.ad_session
ad_redis = ad_fixtures.ad_redis
make_advertiser = ad_fixtures.make_advertiser
make_campaign = ad_fixtures.make_campaign
make_split_track = ad_fixtures.make_split_track


@pytest.fixture
def settings():
    return entitlements.GateSettings(secret=TEST_SECRET, currency="USD", floor_cpm_micros=FLOOR_CPM)


def listener(listener_id: str = "a-listener-1", ip: str = "10.0.0.1") -> entitlements.Requester:
    return entitlements.Requester(listener_id=listener_id, ip=ip, user_agent=BROWSER_UA)


@pytest.fixture
def browse(ad_session, ad_redis, clock, settings):
    """browse(who, n) shows `who` n browse ads and beacons each: n counted key-mode impressions."""

    def run(who, n: int = 1):
        results = []
        for _ in range(n):
            placement = entitlements.place_ad(ad_session, ad_redis, who, "browse", mode="key", settings=settings,
                                              clock=clock)
            assert placement is not None, "no browse campaign filled"
            results.append(entitlements.count_impression(ad_session, ad_redis, placement.token, who,
                                                         settings=settings, clock=clock))
        return results

    return run
