import threading
from datetime import timedelta

from sqlalchemy import func, select

from adserver import keys, stream
from adserver.models import DeadLetter, Impression, InvalidTraffic
from core.money import allocate, share_ceil
from core.redis import make_redis
from ledger.accounts import INCOME_ADS, advertiser_prepaid, listener_pool, payee_payable
from ledger.services import balance
from royalties import worker
from royalties.flush import flush_impressions
from tests.adserver.conftest import BOT_UA, context, visitor


def flush(app):
    runtime = app.extensions["ninety"]
    return worker.run_worker(runtime.redis, runtime.sessions, consumer="test", batch_size=100, block_ms=10,
                             max_idle_loops=1)


def test_a_counted_impression_pays_the_split_sheet(ad_app, ad_session, make_advertiser, make_campaign,
                                                   make_split_track, decide, beacon):
    track, artist, collaborator = make_split_track()
    adv = make_advertiser(funded_micros=1_000_000)
    make_campaign(adv, bid_cpm_micros=5_000_000)
    make_campaign(make_advertiser(), bid_cpm_micros=1_237_000)  # the runner-up sets an awkward price
    placement = decide(ctx=context(track_id=track.id))
    price = placement.decision.price_micros
    assert price == 1_237 and placement.decision.advertiser_id == adv.id
    assert beacon(placement.token).counted
    stats = flush(ad_app)
    assert stats.stored == 1
    artist_side = share_ceil(price, 9, 10)
    expected = allocate(artist_side, [7000, 3000])
    assert expected == [780, 334]
    assert balance(ad_session, advertiser_prepaid(adv.id), "USD") == 1_000_000 - price
    assert balance(ad_session, payee_payable(artist), "USD") == 780
    assert balance(ad_session, payee_payable(collaborator), "USD") == 334
    assert balance(ad_session, INCOME_ADS, "USD") == price - artist_side == 123
    row = ad_session.scalar(select(Impression))
    assert row.decision_id.hex == placement.id and row.track_id == track.id and row.entry_id is not None
    assert ad_redis_stream_len(ad_app) == 0


def ad_redis_stream_len(app):
    return stream.length(app.extensions["ninety"].redis)


def test_the_same_impressions_flushed_twice_are_stored_and_paid_once(ad_app, ad_session, make_advertiser,
                                                                      make_campaign, make_split_track, decide, beacon):
    track, artist, _ = make_split_track()
    adv = make_advertiser()
    make_campaign(adv)
    for i in range(5):
        assert beacon(decide(ctx=context(listener=f"l{i}", track_id=track.id)).token,
                      visitor(f"l{i}")).counted
    redis = ad_app.extensions["ninety"].redis
    messages = stream.entries(redis)
    impressions = [stream.decode(fields) for _, fields in messages]
    first = flush_impressions(ad_session, impressions)
    ad_session.commit()
    again = flush_impressions(ad_session, impressions + impressions[:2])
    ad_session.commit()
    assert first.stored == 5 and again.stored == 0 and again.already_stored == 5
    assert ad_session.scalar(select(func.count()).select_from(Impression)) == 5
    assert balance(ad_session, advertiser_prepaid(adv.id), "USD") == 100_000_000 - 5 * 500


def test_key_mode_impressions_fund_the_listener_pool(ad_app, ad_session, make_advertiser, make_campaign, decide,
                                                     beacon, clock):
    adv = make_advertiser()
    make_campaign(adv, slots=("browse",))
    for listener in ("k1", "k1", "k2"):
        assert beacon(decide("browse", context(listener=listener, mode="key")).token, visitor(listener)).counted
    flush(ad_app)
    period = clock.now().strftime("%Y-%m")
    assert balance(ad_session, listener_pool(period), "USD") == share_ceil(1500, 9, 10)
    assert balance(ad_session, INCOME_ADS, "USD") == 1500 - share_ceil(1500, 9, 10)
    assert ad_session.scalar(select(func.count()).select_from(Impression).where(Impression.mode == "key")) == 3


def test_unparseable_entries_become_dead_letters(ad_app, ad_session):
    redis = ad_app.extensions["ninety"].redis
    redis.xadd(keys.impression_stream(0), {"decision_id": "nonsense", "price_micros": "12"})
    redis.xadd(keys.impression_stream(0), {"garbage": "\x00"})
    stats = flush(ad_app)
    assert stats.dead_letters == 2
    letters = ad_session.scalars(select(DeadLetter).order_by(DeadLetter.id)).all()
    assert [d.fields.get("decision_id") for d in letters] == ["nonsense", None]
    assert all("unparseable" in d.reason for d in letters)
    assert stream.length(redis) == 0


def test_invalid_traffic_is_stored_for_review(ad_app, ad_session, make_advertiser, make_campaign, decide, beacon):
    campaign = make_campaign(make_advertiser())
    beacon(decide().token, visitor(ua=BOT_UA))
    flush(ad_app)
    row = ad_session.scalar(select(InvalidTraffic))
    assert row.reason == "bot" and row.campaign_id == campaign.id and "Googlebot" in row.user_agent
    assert ad_session.scalar(select(func.count()).select_from(Impression)) == 0


def test_a_batch_left_pending_by_a_crash_is_finished_on_restart(ad_app, ad_session, make_advertiser, make_campaign,
                                                                decide, beacon):
    adv = make_advertiser()
    make_campaign(adv)
    for i in range(3):
        beacon(decide(ctx=context(listener=f"p{i}")).token, visitor(f"p{i}"))
    redis = ad_app.extensions["ninety"].redis
    worker.ensure_groups(redis)
    shard = stream.stream_for(adv.id)
    read = redis.xreadgroup(keys.CONSUMER_GROUP, "test", {shard: ">"}, count=10)
    assert len(read[0][1]) == 3  # read, then the worker "died" before acknowledging
    assert redis.xpending(shard, keys.CONSUMER_GROUP)["pending"] == 3
    flush(ad_app)
    assert ad_session.scalar(select(func.count()).select_from(Impression)) == 3
    assert redis.xpending(shard, keys.CONSUMER_GROUP)["pending"] == 0


def test_entries_fall_in_the_month_the_impressions_happened(ad_app, ad_session, make_advertiser, make_campaign,
                                                            make_split_track, decide, beacon, clock):
    track, artist, _ = make_split_track()
    make_campaign(make_advertiser(), daily=10_000_000)
    clock.set(clock.now().replace(day=31, hour=23, minute=59))
    beacon(decide(ctx=context(listener="m1", track_id=track.id)).token, visitor("m1"))
    clock.advance(minutes=2)
    beacon(decide(ctx=context(listener="m2", track_id=track.id)).token, visitor("m2"))
    flush(ad_app)
    rows = ad_session.scalars(select(Impression).order_by(Impression.at)).all()
    assert len(rows) == 2 and rows[0].entry_id != rows[1].entry_id
    assert rows[1].at - rows[0].at == timedelta(minutes=2)


def test_two_consumers_share_the_stream_without_double_counting(ad_app, ad_session, make_advertiser, clock):
    import threading
    import uuid

    adv = make_advertiser(funded_micros=10_000_000)
    redis = ad_app.extensions["ninety"].redis
    listeners = [f"l{i}" for i in range(400)]
    for i, listener in enumerate(listeners):
        redis.xadd(stream.stream_for(adv.id), {
            "decision_id": uuid.uuid4().hex, "campaign_id": 1, "advertiser_id": adv.id, "creative_id": 1,
            "slot": "browse" if i % 3 == 0 else "gate", "track_id": "", "listener_id": listener,
            "mode": "key" if i % 3 == 0 else "gate", "price_micros": 1_000, "currency": "USD",
            "at": clock.now().isoformat()})
    runtime = ad_app.extensions["ninety"]
    worker.ensure_groups(redis)
    results = []

    def consume(name):
        results.append(worker.run_worker(runtime.redis, runtime.sessions, consumer=name, batch_size=25,
                                         block_ms=10, max_idle_loops=1))

    threads = [threading.Thread(target=consume, args=(f"c{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.stored for r in results) == 400
    assert ad_session.scalar(select(func.count()).select_from(Impression)) == 400
    assert balance(ad_session, advertiser_prepaid(adv.id), "USD") == 10_000_000 - 400_000


def test_the_stream_record_has_one_owner_that_encodes_and_decodes_it(clock):
    from adserver import beacons
    from adserver.signing import Decision

    decision = Decision(id="ab" * 16, campaign_id=3, advertiser_id=4, creative_id=5, slot="gate", track_id=None,
                        listener_id="l-9", mode="gate", price_micros=1_237, currency="USD", issued_at=0,
                        expires_at=10, min_view_ms=0)
    record = stream.encode(decision, clock.now())
    fields = {record[i].encode(): record[i + 1].encode() for i in range(0, len(record), 2)}
    imp = stream.decode(fields)
    assert (imp.decision_id, imp.campaign_id, imp.advertiser_id, imp.track_id, imp.listener_id, imp.price_micros,
            imp.at) == ("ab" * 16, 3, 4, None, "l-9", 1_237, clock.now())
    assert stream.decode(stream.encode_impression(imp)) == imp
    # The charge script appends the record as encoded, to the advertiser's shard.
    assert "unpack(ARGV, 10)" in beacons.CHARGE_LUA
    assert stream.stream_for(decision.advertiser_id) == "ads:{ad4}:impressions"


def test_the_worker_survives_redis_losing_its_streams_and_groups(ad_app, ad_session, make_advertiser, make_campaign,
                                                                 decide, beacon):
    """A Redis restarted without persistence (here FLUSHDB) takes the consumer groups with it: the worker
    creates them again and flushes what arrives next, instead of dying on NOGROUP (CI saw `ninety run`'s
    worker die this way, when a test's isolation flushed the db under it)."""
    redis = ad_app.extensions["ninety"].redis
    worker.ensure_groups(redis)
    redis.flushdb()
    adv = make_advertiser()
    make_campaign(adv)
    beacon(decide(ctx=context(listener="after-the-flush")).token, visitor("after-the-flush"))
    stats = worker.WorkerStats()
    handled = worker.run_once(redis, ad_app.extensions["ninety"].sessions, "test", batch_size=100, block_ms=10,
                              stats=stats)
    assert handled == 1 and stats.stored == 1
    assert ad_session.scalar(select(func.count()).select_from(Impression)) == 1


def test_a_read_blocked_when_the_streams_vanish_is_recovered(ad_app):
    """On one server the read blocks; a FLUSHDB meanwhile answers it with UNBLOCKED, and the worker goes on
    with its groups made again (on a cluster the reads do not block, and the next read sees NOGROUP)."""
    runtime = ad_app.extensions["ninety"]
    worker.ensure_groups(runtime.redis)
    other = make_redis(runtime.config.redis_url)
    flusher = threading.Timer(0.3, other.flushdb)
    flusher.start()
    try:  # on one server this read is blocked when the flush comes
        assert worker.run_once(runtime.redis, runtime.sessions, "test", batch_size=100, block_ms=1500,
                               stats=worker.WorkerStats()) == 0
    finally:
        flusher.join()
        other.close()
    assert worker.run_once(runtime.redis, runtime.sessions, "test", batch_size=100, block_ms=10,
                           stats=worker.WorkerStats()) == 0
    groups = runtime.redis.xinfo_groups(keys.impression_stream(0))
    assert [g["name"] for g in groups] in ([keys.CONSUMER_GROUP], [keys.CONSUMER_GROUP.encode()])
