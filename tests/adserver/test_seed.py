"""The demo's ads: a funded advertiser whose campaigns fill every slot."""

from adserver import services
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
