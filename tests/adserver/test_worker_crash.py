"""kill -9 of a real `ninety worker` process mid-batch, then restart: nothing lost, nothing counted twice."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adserver import keys, services
from adserver.models import Impression
from adserver.stream import stream_for
from ledger.accounts import INCOME_ADS, INCOME_UNATTRIBUTED, advertiser_prepaid
from ledger.services import balance
from tests.adserver.conftest import context, visitor
from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]
FUNDED = 100_000_000


def _worker(config, *extra):
    env = dict(os.environ, DATABASE_URL=config.database_url, REDIS_URL=config.redis_url, SECRET_KEY=TEST_SECRET,
               JOBS_REDIS_URL=config.queue_redis_url, NINETY_ENV="test", LOG_LEVEL="WARNING")
    return subprocess.Popen([sys.executable, "-m", "app.cli", "worker", "--consumer", "crashy", "--batch-size", "25",
                             "--block-ms", "50", *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def _count(session):
    session.rollback()
    return session.scalar(select(func.count()).select_from(Impression))


@pytest.mark.slow
def test_kill_dash_nine_mid_batch_then_restart(config, ad_session, ad_redis, make_advertiser, make_campaign, decide,
                                               clock):
    adv = make_advertiser(funded_micros=FUNDED)
    campaign = make_campaign(adv)
    limits = {"total_budget_micros": campaign.total_budget_micros,
              "daily_budget_micros": campaign.daily_budget_micros}
    accepted = 0
    accepted_micros = 0
    for i in range(1500):
        placement = decide(ctx=context(listener=f"c{i}"))
        result = services.record_impression(ad_redis, placement.token, visitor(f"c{i}"), secret="s3cret", clock=clock,
                                            campaign_limits=limits,
                                            limits=services.Limits(per_ip_per_minute=10**6))
        accepted += result.counted
        accepted_micros += placement.decision.price_micros if result.counted else 0
    assert accepted == 1500

    killed_mid_batch = 0
    for _ in range(4):
        before = _count(ad_session)
        proc = _worker(config)
        deadline = time.monotonic() + 60
        while _count(ad_session) == before and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        assert proc.poll() is None, proc.communicate()[0].decode()  # died by itself, not by the kill below
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        pending = ad_redis.xpending(stream_for(adv.id), keys.CONSUMER_GROUP)["pending"]
        killed_mid_batch += pending > 0
        if _count(ad_session) == accepted:
            break
    assert killed_mid_batch >= 1, "no kill landed while a batch was read but not yet acknowledged"

    final = _worker(config, "--until-idle")
    output, _ = final.communicate(timeout=120)
    assert final.returncode == 0, output.decode()

    assert _count(ad_session) == accepted
    assert ad_session.scalar(select(func.count(func.distinct(Impression.decision_id)))) == accepted
    assert ad_session.scalar(select(func.sum(Impression.price_micros))) == accepted_micros
    assert balance(ad_session, advertiser_prepaid(adv.id), "USD") == FUNDED - accepted_micros
    assert (balance(ad_session, INCOME_ADS, "USD") + balance(ad_session, INCOME_UNATTRIBUTED, "USD")
            == accepted_micros)
    assert ad_redis.xpending(stream_for(adv.id), keys.CONSUMER_GROUP)["pending"] == 0
