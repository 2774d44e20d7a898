"""The demo's ads: a funded advertiser whose campaigns fill every slot."""

from adserver import services
from adserver import stream as ad_stream
from adserver.models import Creative
from app.seed import ads as seed_ads
from ledger.accounts import advertiser_prepaid
from ledger.services import balance
from tests.adserver.conftest import context


def test_demo_seed_funds_campaigns_for_every_slot(ad_app, ad_session, ad_redis, clock):
    state = {}
    seed_ads.seed(ad_app.extensions["ninety"], state)
    assert balance(ad_session, advertiser_prepaid(state["advertiser_id"]), "USD") == 500_000_000
    kinds = {c.kind for c in ad_session.query(Creative).filter(Creative.status == "approved")}
    assert kinds == {"display", "audio"}
    for slot, mode in (("gate", "gate"), ("browse", "key"), ("player", "gate")):
        placement = services.decide(ad_redis, ad_session, slot, context(mode=mode), secret="s", clock=clock,
                                    floor_cpm_micros=500_000)
        assert placement is not None, slot
    assert seed_ads.banner_png().startswith(b"\x89PNG")


def test_the_demo_history_goes_through_the_ad_path_and_reconciles(app):
    """The seeded month is decisions, beacons and the flush: Redis budgets and the books agree right after it."""
    from sqlalchemy import func, select

    from adserver import keys
    from adserver.models import Impression, InvalidTraffic
    from app.seed import seeders
    from tests.conftest import CliRunner

    runtime = app.extensions["ninety"]
    state: dict = {}
    for module in seeders():
        module.seed(runtime, state)
    advertiser_id = state["advertiser_id"]
    redis = runtime.redis
    with runtime.sessions() as s:
        ledger_micros = balance(s, advertiser_prepaid(advertiser_id), "USD")
        flushed = s.scalar(select(func.sum(Impression.price_micros)).where(Impression.advertiser_id == advertiser_id))
        rows = s.scalar(select(func.count()).select_from(Impression))
        crawlers = s.scalar(select(func.count()).select_from(InvalidTraffic).where(InvalidTraffic.reason == "bot"))
    assert rows > 1000 and crawlers > 20
    assert ledger_micros == 500_000_000 - flushed < 500_000_000
    assert int(redis.get(keys.advertiser_avail(advertiser_id))) == ledger_micros  # no more spendable than paid
    assert int(redis.get(keys.advertiser_charged(advertiser_id))) == flushed
    assert ad_stream.length(redis) == 0
    result = CliRunner(app).invoke(["ads", "reconcile"])
    assert result.exit_code == 0, result.output
    assert "0 with impossible states" in result.output
