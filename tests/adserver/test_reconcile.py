"""`ninety ads reconcile`: budgets in Redis against the ledger, the impression rows and the unflushed stream.
Every impossible state is named and exits 1; a sound state (the flush behind or caught up) passes."""

from __future__ import annotations

import uuid

import pytest

from adserver import keys
from adserver.stream import StreamImpression, stream_for
from ledger.accounts import advertiser_prepaid
from ledger.services import balance
from royalties.flush import flush_impressions
from royalties.worker import run_worker
from tests.conftest import CliRunner


@pytest.fixture
def runner(ad_app):
    return CliRunner(ad_app)


@pytest.fixture
def flush(ad_app, ad_redis):
    def run():
        run_worker(ad_redis, ad_app.extensions["ninety"].sessions, consumer="test", block_ms=1, max_idle_loops=1)

    return run


@pytest.fixture
def served(make_advertiser, make_campaign, decide, beacon):
    """An advertiser with three counted impressions (not flushed yet)."""
    adv = make_advertiser(funded_micros=1_000_000)
    campaign = make_campaign(adv)
    for i in range(3):
        assert beacon(decide(ctx={"listener_id": f"l{i}", "mode": "gate", "user_agent": "x"}).token).counted
    return adv, campaign


def _reconcile(runner, *args):
    result = runner.invoke(["ads", "reconcile", *args])
    return result.exit_code, result.output


def test_sound_states_pass_with_the_flush_behind_and_caught_up(served, runner, flush):
    code, output = _reconcile(runner)
    assert code == 0, output  # charged, in the stream, not flushed yet: pending 1500 = 1500 unflushed
    assert "unflushed 1500" in output and "0 with impossible states" in output
    flush()
    code, output = _reconcile(runner)
    assert code == 0, output
    assert "pending 0" in output


def test_spend_written_to_the_books_without_charging_redis_is_flagged(make_advertiser, make_campaign, decide,
                                                                     ad_session, ad_redis, runner, clock):
    """What the old demo seed did: history flushed straight into the ledger, Redis never charged."""
    adv = make_advertiser(funded_micros=1_000_000)
    campaign = make_campaign(adv)
    assert decide() is not None  # the ad server has loaded the campaign: its budget keys are in Redis
    creative_id = campaign.creatives[0].id
    flush_impressions(ad_session, [StreamImpression(uuid.uuid4().hex, campaign.id, adv.id, creative_id, "gate", None,
                                                    f"l{i}", "gate", 4_000, "USD", clock.now()) for i in range(10)])
    ad_session.commit()
    assert balance(ad_session, advertiser_prepaid(adv.id), "USD") == 960_000
    assert int(ad_redis.get(keys.advertiser_avail(adv.id))) == 1_000_000  # Redis would let it spend 1.00
    code, output = _reconcile(runner)
    assert code == 1
    assert "pending -40000 < 0" in output
    assert "spendable 1000000 above the ledger balance 960000" in output
    assert f"campaign {campaign.id}: Redis spent 0 below its flushed spend 40000" in output
    code, output = _reconcile(runner, "--fix")
    assert code == 0 and "fixed" in output
    assert int(ad_redis.get(keys.advertiser_avail(adv.id))) == 960_000
    assert _reconcile(runner)[0] == 0


def test_spendable_above_the_ledger_is_flagged(served, ad_redis, runner, flush):
    adv, _ = served
    flush()
    ad_redis.incrby(keys.advertiser_avail(adv.id), 1_000)
    code, output = _reconcile(runner)
    assert code == 1
    assert f"advertiser {adv.id}: spendable 999500 above the ledger balance 998500" in output


def test_charged_but_unflushed_must_match_the_stream(served, ad_redis, runner):
    adv, _ = served
    ad_redis.incrby(keys.advertiser_charged(adv.id), 500)  # a charge the stream does not hold
    code, output = _reconcile(runner)
    assert code == 1
    assert "charged but unflushed 2000 != 1500 in the stream" in output


def test_a_lost_stream_entry_is_flagged(served, ad_redis, runner):
    adv, campaign = served
    first = ad_redis.xrange(stream_for(adv.id), count=1)[0][0]
    ad_redis.xdel(stream_for(adv.id), first)  # charged, and now nothing will ever flush it
    code, output = _reconcile(runner)
    assert code == 1
    assert "charged but unflushed 1500 != 1000" in output
    assert f"campaign {campaign.id}: Redis spent 1500 != flushed 0 + unflushed 1000" in output


def test_negative_spendable_and_half_seeded_keys_are_flagged(served, ad_redis, runner):
    adv, _ = served
    ad_redis.set(keys.advertiser_avail(adv.id), -5)
    code, output = _reconcile(runner)
    assert code == 1 and "spendable -5 < 0" in output
    ad_redis.delete(keys.advertiser_charged(adv.id))
    code, output = _reconcile(runner)
    assert code == 1 and "Redis has a spendable balance but no charged total" in output


def test_an_advertiser_not_in_redis_yet_is_not_an_error(make_advertiser, ad_redis, runner):
    adv = make_advertiser(funded_micros=1_000_000)
    ad_redis.delete(keys.advertiser_avail(adv.id), keys.advertiser_charged(adv.id))
    code, output = _reconcile(runner)
    assert code == 0, output
    assert "not in Redis yet" in output


def test_a_parked_entry_is_owed_not_lost_and_reconciles_once_retried(served, ad_session, ad_redis, runner, flush,
                                                                     clock):
    """A refund leaves less in the ledger than the stream's impressions cost: the flush parks their entry.
    Reconcile accounts the parked debt (no charged/unflushed mismatch) and still names the debt; a top-up
    and a retry make it sound."""
    from adserver import services
    from ledger.accounts import BANK
    from ledger.services import Entry, Posting, post
    from royalties.models import ParkedEntry
    from royalties.suspense import retry

    adv, _ = served
    post(ad_session, Entry("refund-1", clock.now(), "Refund to the advertiser", [
        Posting(advertiser_prepaid(adv.id), "debit", 999_000, "USD", ref=f"advertiser:{adv.id}"),
        Posting(BANK, "credit", 999_000, "USD")]))
    ad_session.commit()
    ad_redis.decrby(keys.advertiser_avail(adv.id), 999_000)  # the refund as Redis sees it
    flush()
    parked = ad_session.query(ParkedEntry).one()
    assert parked.status == "parked" and parked.amount_micros == 1500
    code, output = _reconcile(runner)
    assert code == 1
    assert "parked 1500" in output and "spendable -500 < 0" in output
    assert "charged but unflushed" not in output and "!= ledger" not in output
    services.fund(ad_session, ad_redis, advertiser_id=adv.id, amount_micros=1_000_000, currency="USD", clock=clock,
                  idempotency_key="top-up-1")
    retry(ad_session, parked.id, settled_by=None, clock=clock)
    ad_session.commit()
    code, output = _reconcile(runner)
    assert code == 0, output
