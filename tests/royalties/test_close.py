"""Month close: refuses early or unflushed; distributes pools by downloads then split sheet; idempotent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adserver import keys
from core.money import allocate
from ledger.accounts import INCOME_UNATTRIBUTED, listener_pool, payee_payable
from royalties.errors import ImpressionsNotFlushed, PeriodNotOver
from royalties.models import PoolShare
from royalties.services import close_period, listener_receipt
from tests.cluster import REDIS_MODES, on_each_redis
from tests.royalties.conftest import OCT


@pytest.fixture(params=REDIS_MODES)
def config(request, config):
    """Month close holds on one Redis server and on a 3-master Redis Cluster (it waits on every shard)."""
    yield from on_each_redis(request, config)


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 10, day, hour, tzinfo=UTC)


def test_close_refuses_before_the_month_is_over(world):
    world.clock.set(at(31, 23))
    with world.session() as s, pytest.raises(PeriodNotOver) as exc:
        close_period(s, world.redis, "2026-10", clock=world.clock)
    assert "2026-11-01" in exc.value.message


def test_close_refuses_while_impressions_before_the_cutoff_wait_in_the_stream(world):
    world.clock.set(datetime(2026, 11, 1, 0, 5, tzinfo=UTC))
    cutoff_ms = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)
    world.redis.xadd(keys.impression_stream(3), {"at": "2026-10-31T23:59:59+00:00", "price_micros": "2500"},
                     id=f"{cutoff_ms - 1000}-0")
    world.redis.xgroup_create(keys.impression_stream(3), keys.CONSUMER_GROUP, id="0")
    with world.session() as s, pytest.raises(ImpressionsNotFlushed) as exc:
        close_period(s, world.redis, "2026-10", clock=world.clock)
    assert exc.value.code == "impressions_not_flushed" and exc.value.status == 409
    assert exc.value.message.startswith("1 impression(s)")
    # Read but not acknowledged: still not flushed.
    entries = world.redis.xreadgroup(keys.CONSUMER_GROUP, "w1", {keys.impression_stream(3): ">"}, count=10)
    with world.session() as s, pytest.raises(ImpressionsNotFlushed):
        close_period(s, world.redis, "2026-10", clock=world.clock)
    world.redis.xack(keys.impression_stream(3), keys.CONSUMER_GROUP, entries[0][1][0][0])
    # An impression after the cut-off does not hold the month up.
    world.redis.xadd(keys.impression_stream(3), {"at": "2026-11-01T00:01:00+00:00"}, id=f"{cutoff_ms + 60_000}-0")
    with world.session() as s:
        assert close_period(s, world.redis, "2026-10", clock=world.clock).period == "2026-10"


def test_pools_go_to_the_tracks_each_listener_downloaded(world):
    a = world.artist("Ana", tracks=2)
    b = world.artist("Bo")
    collab = world.collaborator("cy@example.com", b["artist_id"])
    world.split(b["tracks"][0], [(b["payee_id"], 7000), (collab, 3000)])
    # listener x: 2 downloads of Ana's first track, 1 of Bo's; listener y: none.
    world.download("ux", a["tracks"][0], at(3))
    world.download("ux", a["tracks"][0], at(4))
    world.download("ux", b["tracks"][0], at(5))
    world.download("ux", b["tracks"][0], datetime(2026, 9, 30, tzinfo=UTC))  # another month: ignored
    pooled_x = world.key_revenue("ux", 10_000_001, at(6))
    pooled_y = world.key_revenue("uy", 333_333, at(6))
    world.clock.set(datetime(2026, 11, 2, tzinfo=UTC))
    with world.session() as s:
        record = close_period(s, world.redis, "2026-10", clock=world.clock)
    usd = record.summary["USD"]
    assert usd["pool_micros"] == pooled_x + pooled_y
    assert usd["unattributed_micros"] == pooled_y and usd["unattributed_listeners"] == 1

    to_a, to_b_track = allocate(pooled_x, [2, 1])
    to_b, to_collab = allocate(to_b_track, [7000, 3000])
    assert world.balance(payee_payable(a["payee_id"])) == to_a
    assert world.balance(payee_payable(b["payee_id"])) == to_b
    assert world.balance(payee_payable(collab)) == to_collab
    assert world.balance(INCOME_UNATTRIBUTED) == pooled_y
    assert world.balance(listener_pool("2026-10")) == 0

    with world.session() as s:
        receipt = listener_receipt(s, "ux", "2026-10", clock=world.clock)
        assert receipt["closed"]
        assert {(r["name"], r["amount_micros"]) for r in receipt["artists"]} == {
            ("Ana", to_a), ("Bo", to_b), ("cy", to_collab)}
        assert listener_receipt(s, "uy", "2026-10", clock=world.clock)["unattributed"] == {"USD": pooled_y}


def test_closing_twice_changes_nothing_and_closes_the_ledger_period(world):
    from ledger.services import is_period_closed

    a = world.artist("Ana")
    world.download("ux", a["tracks"][0], at(3))
    world.key_revenue("ux", 5_000_000, at(3))
    world.clock.set(datetime(2026, 11, 2, tzinfo=UTC))
    with world.session() as s:
        first = close_period(s, world.redis, "2026-10", clock=world.clock)
    before = world.balance(payee_payable(a["payee_id"]))
    with world.session() as s:
        again = close_period(s, world.redis, "2026-10", clock=world.clock)
        assert again.summary == first.summary
        assert s.query(PoolShare).count() == 1
        assert is_period_closed(s, "2026-10")
    assert world.balance(payee_payable(a["payee_id"])) == before == 4_500_000


def test_provisional_receipt_for_the_open_month(world):
    a = world.artist("Ana")
    world.download("ux", a["tracks"][0], OCT.replace(day=2))
    pooled = world.key_revenue("ux", 2_000_000, OCT.replace(day=2))
    world.clock.set(OCT.replace(day=3))
    with world.session() as s:
        receipt = listener_receipt(s, "ux", "2026-10", clock=world.clock)
    assert not receipt["closed"]
    assert receipt["artists"] == [{"payee_id": a["payee_id"], "name": "Ana", "currency": "USD",
                                   "amount_micros": pooled}]


def test_an_earlier_month_with_pool_money_must_be_closed_first(world):
    from royalties.errors import EarlierPeriodOpen

    a = world.artist("Ana")
    world.download("ux", a["tracks"][0], at(3))
    world.key_revenue("ux", 1_000_000, at(3))
    world.clock.set(datetime(2026, 12, 2, tzinfo=UTC))
    with world.session() as s, pytest.raises(EarlierPeriodOpen) as exc:
        close_period(s, world.redis, "2026-11", clock=world.clock)
    assert "close 2026-10 first" in exc.value.message
    with world.session() as s:
        close_period(s, world.redis, "2026-10", clock=world.clock)
        close_period(s, world.redis, "2026-11", clock=world.clock)
    assert world.balance(payee_payable(a["payee_id"])) == 900_000


def test_close_waits_on_every_shard_of_the_stream(world):
    world.clock.set(datetime(2026, 11, 1, 0, 5, tzinfo=UTC))
    cutoff_ms = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)
    for shard in (0, keys.SHARDS - 1):
        world.redis.xadd(keys.impression_stream(shard), {"at": "2026-10-31T23:59:59+00:00"}, id=f"{cutoff_ms - 5}-0")
    with world.session() as s, pytest.raises(ImpressionsNotFlushed) as exc:
        close_period(s, world.redis, "2026-10", clock=world.clock)
    assert exc.value.message.startswith("2 impression(s)")
    for shard in (0, keys.SHARDS - 1):
        world.redis.delete(keys.impression_stream(shard))
    with world.session() as s:
        assert close_period(s, world.redis, "2026-10", clock=world.clock).period == "2026-10"
