"""Scale-out (issue 14): keys a script touches together share a slot, the stream is sharded, REDIS_URL names
a cluster, and impression rows live in monthly partitions with decision ids unique across months."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from redis.crc import key_slot
from sqlalchemy import func, select, text

from adserver import keys, stream
from adserver.models import Impression
from adserver.stream import StreamImpression
from core.redis import cluster_nodes, is_cluster
from ledger.accounts import advertiser_prepaid
from ledger.services import balance
from royalties import worker
from royalties.flush import flush_impressions
from tests.adserver.conftest import context, visitor


def test_every_key_of_the_charge_script_is_in_the_advertisers_slot():
    aid, cid = 41, 7
    names = [keys.seen("ab" * 16, advertiser=aid), keys.campaign_spent(cid, advertiser=aid),
             keys.campaign_day(cid, "20261015", advertiser=aid), keys.advertiser_avail(aid),
             keys.advertiser_charged(aid), keys.frequency(cid, "20261015", "l1", advertiser=aid),
             keys.impression_stream(keys.shard_of(aid)), keys.invalid_stream(keys.shard_of(aid)),
             keys.advertiser_funded(aid, 3)]
    assert len({key_slot(name.encode()) for name in names}) == 1
    # the days of one campaign's uniques share a slot (a report's PFCOUNT spans them)
    assert key_slot(keys.uniques("c", cid, "20261014").encode()) == key_slot(keys.uniques("c", cid, "20261015").encode())
    # the shards spread over the slots (a 3-master cluster gets several each)
    assert len({key_slot(name.encode()) for name in keys.impression_streams()}) == keys.SHARDS


def test_redis_url_names_a_cluster_or_one_server():
    assert cluster_nodes("redis+cluster://10.0.0.1:7000,10.0.0.2:7001") == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]
    assert cluster_nodes("redis+cluster://:pw@node-a:7000") == [("node-a", 7000)]
    assert cluster_nodes("10.0.0.1:7000,10.0.0.2:7000") == [("10.0.0.1", 7000), ("10.0.0.2", 7000)]
    assert cluster_nodes("redis://127.0.0.1:6379/3") is None
    with pytest.raises(ValueError):
        cluster_nodes("redis+cluster://node-a")


def test_impressions_go_to_their_advertisers_shard(config, ad_redis, make_advertiser, make_campaign, decide, beacon):
    advertisers = [make_advertiser() for _ in range(3)]
    for i, adv in enumerate(advertisers):
        make_campaign(adv, bid_cpm_micros=2_500_000 + i * 1_000_000)
    placement = decide(ctx=context(listener="s1"))
    assert beacon(placement.token, visitor("s1")).counted
    shard = stream.stream_for(placement.decision.advertiser_id)
    assert ad_redis.xlen(shard) == 1 and stream.length(ad_redis) == 1
    assert is_cluster(ad_redis) == config.redis_url.startswith("redis+cluster")


def test_workers_divide_the_shards():
    owned = [worker.shards_of(i, 3) for i in range(3)]
    assert sorted(s for shards in owned for s in shards) == list(range(keys.SHARDS))
    assert all(shards for shards in owned)


def _imp(advertiser_id: int, at: datetime, decision: str | None = None) -> StreamImpression:
    return StreamImpression(decision_id=decision or uuid.uuid4().hex, campaign_id=1, advertiser_id=advertiser_id,
                            creative_id=1, slot="gate", track_id=None, listener_id="l1", mode="gate",
                            price_micros=1_000, currency="USD", at=at)


def test_impressions_are_stored_in_their_months_partition(ad_app, ad_session, ad_redis, make_advertiser):
    adv = make_advertiser(funded_micros=1_000_000)
    for at in (datetime(2026, 8, 31, 23, 59, tzinfo=UTC), datetime(2026, 9, 1, 0, 0, tzinfo=UTC)):
        stream.append(ad_redis, _imp(adv.id, at))
    runtime = ad_app.extensions["ninety"]
    stats = worker.run_worker(runtime.redis, runtime.sessions, consumer="p", batch_size=100, block_ms=10,
                              max_idle_loops=1)
    assert stats.stored == 2
    where = dict(ad_session.execute(text(
        "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM'), tableoid::regclass::text FROM ad_impressions")).all())
    assert where == {"2026-08": "ad_impressions_2026_08", "2026-09": "ad_impressions_2026_09"}
    # month close reads one partition
    plan = "\n".join(row[0] for row in ad_session.execute(text(
        "EXPLAIN SELECT count(*) FROM ad_impressions WHERE at >= '2026-09-01+00' AND at < '2026-10-01+00'")))
    assert "ad_impressions_2026_09" in plan and "ad_impressions_2026_08" not in plan


def test_a_decision_id_counts_once_across_months(ad_app, ad_session, make_advertiser):
    adv = make_advertiser(funded_micros=1_000_000)
    decision = uuid.uuid4().hex
    first = flush_impressions(ad_session, [_imp(adv.id, datetime(2026, 10, 3, tzinfo=UTC), decision)])
    ad_session.commit()
    # the same decision claiming another month (a forged or corrupt record) is already stored
    again = flush_impressions(ad_session, [_imp(adv.id, datetime(2026, 11, 3, tzinfo=UTC), decision)])
    ad_session.commit()
    assert (first.stored, again.stored, again.already_stored) == (1, 0, 1)
    assert ad_session.scalar(select(func.count()).select_from(Impression)) == 1
    assert balance(ad_session, advertiser_prepaid(adv.id), "USD") == 1_000_000 - 1_000
    with pytest.raises(Exception, match="pk_ad_impression_decisions"):
        ad_session.execute(text(
            "INSERT INTO ad_impressions (decision_id, campaign_id, advertiser_id, creative_id, slot, listener_id, "
            "mode, price_micros, currency, at) VALUES (CAST(:d AS uuid), 1, 1, 1, 'gate', 'l', 'gate', 5, 'USD', "
            "'2027-01-05+00')"), {"d": decision})
    ad_session.rollback()


def test_archive_month_detaches_a_closed_month_and_leaves_the_books(ad_app, ad_session, runner, make_advertiser):
    adv = make_advertiser(funded_micros=1_000_000)
    flush_impressions(ad_session, [_imp(adv.id, datetime(2026, 7, 10, tzinfo=UTC))])
    ad_session.commit()
    from core.partitions import ensure_months

    ensure_months(ad_app.extensions["ninety"].sessions, "ad_impressions", [datetime(2026, 7, 1, tzinfo=UTC)])
    refused = runner.invoke(["ads", "archive-month", "2026-07"])
    assert refused.exit_code != 0 and "not closed" in refused.output
    assert runner.invoke(["ads", "archive-month", "2026-13"]).exit_code != 0
    from ledger.services import close_period

    close_period(ad_session, "2026-07")
    ad_session.commit()
    before = balance(ad_session, advertiser_prepaid(adv.id), "USD")
    try:
        result = runner.invoke(["ads", "archive-month", "2026-07"])
        assert result.exit_code == 0, result.output
        assert "archive.ad_impressions_2026_07" in result.output
        ad_session.rollback()
        assert ad_session.scalar(select(func.count()).select_from(Impression)) == 0
        assert ad_session.scalar(text("SELECT count(*) FROM archive.ad_impressions_2026_07")) == 1
        assert balance(ad_session, advertiser_prepaid(adv.id), "USD") == before == 1_000_000 - 1_000
        assert "nothing left" in runner.invoke(["ads", "archive-month", "2026-07"]).output
    finally:
        ad_session.rollback()
        ad_session.execute(text("DROP TABLE IF EXISTS archive.ad_impressions_2026_07, "
                                "archive.ad_invalid_traffic_2026_07, archive.plays_2026_07, "
                                "archive.downloads_2026_07"))
        ad_session.commit()


def test_a_month_waits_for_its_partition_in_the_default_one_while_a_reader_holds_the_table(ad_app, ad_session,
                                                                                            make_advertiser):
    from core.partitions import ensure_months

    adv = make_advertiser(funded_micros=1_000_000)
    sessions = ad_app.extensions["ninety"].sessions
    year = 2031  # a month with no partition yet (partitions outlive the truncation between tests)
    while ad_session.scalar(text(f"SELECT to_regclass('ad_impressions_{year}_03')")) is not None:
        year += 1
    ad_session.rollback()
    reader = sessions()
    try:
        reader.execute(text("SELECT count(*) FROM ad_impressions"))  # a long report holding its read lock
        ensure_months(sessions, "ad_impressions", [datetime(year, 3, 1, tzinfo=UTC)])  # gives up, no hang
        flush_impressions(ad_session, [_imp(adv.id, datetime(year, 3, 9, tzinfo=UTC))])
        ad_session.commit()
        assert ad_session.scalar(text("SELECT tableoid::regclass::text FROM ad_impressions")) == \
            "ad_impressions_default"
    finally:
        reader.close()
    ad_session.rollback()
    ensure_months(sessions, "ad_impressions", [datetime(year, 3, 1, tzinfo=UTC)])  # now it is created
    assert ad_session.scalar(text("SELECT tableoid::regclass::text FROM ad_impressions")) == f"ad_impressions_{year}_03"
