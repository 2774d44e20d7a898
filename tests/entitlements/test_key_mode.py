"""Key mode is earned: each key-mode download spends KEY_IMPRESSIONS_PER_DOWNLOAD counted browse impressions
of the last 30 days that no earlier download spent; without them the listener gets the per-download gate."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from adserver import stream as ad_stream
from catalog.models import DownloadGrant
from core import ratelimit
from core.errors import RateLimited
from entitlements import credit
from entitlements import keys as ent_keys
from entitlements import services as entitlements
from entitlements.errors import KeyCreditShort, NotEntitled
from tests.adserver.conftest import BOT_UA, FLOOR_CPM
from tests.entitlements.conftest import listener


@pytest.fixture
def free_track(make_advertiser, make_campaign, make_split_track):
    """A free-with-ads track, and one campaign that fills both the gate and browse pages."""
    track, *_ = make_split_track()
    make_campaign(make_advertiser(), slots=("gate", "browse"))
    return track


def _grants(session, via="key") -> int:
    return session.scalar(select(func.count()).select_from(DownloadGrant).where(DownloadGrant.via == via))


def _held(redis, who) -> int:
    return redis.zcard(ent_keys.key_credit(who.listener_id))


def _key_download(ad_session, ad_redis, who, track, settings, clock) -> str:
    return entitlements.grant_without_ad(ad_session, ad_redis, who, track.id, "key", settings=settings, clock=clock)


def test_key_mode_without_credit_gets_the_gate_and_no_grant(ad_session, ad_redis, clock, settings, free_track):
    who = listener()
    entitlements.set_key_mode(ad_redis, who.listener_id, True)
    offer = entitlements.open_gate(ad_session, ad_redis, who, free_track.id, settings=settings, clock=clock)
    assert offer.state == "ad" and offer.placement is not None
    assert (offer.credit.have, offer.credit.needed, offer.credit.enough) == (0, 3, False)
    with pytest.raises(KeyCreditShort) as refused:
        _key_download(ad_session, ad_redis, who, free_track, settings, clock)
    assert refused.value.details == {"have": 0, "needed": 3} and "needs 3" in refused.value.message
    assert _grants(ad_session) == 0


def test_three_counted_browse_impressions_pay_for_one_download(ad_session, ad_redis, clock, settings, free_track,
                                                               browse):
    who = listener()
    entitlements.set_key_mode(ad_redis, who.listener_id, True)
    assert [r.status for r in browse(who, 2)] == ["counted", "counted"]
    offer = entitlements.open_gate(ad_session, ad_redis, who, free_track.id, settings=settings, clock=clock)
    assert offer.state == "ad" and offer.credit.have == 2  # two are not enough
    browse(who, 1)
    offer = entitlements.open_gate(ad_session, ad_redis, who, free_track.id, settings=settings, clock=clock)
    assert offer.state == "key" and offer.placement is None and offer.credit.have == 3
    assert _key_download(ad_session, ad_redis, who, free_track, settings, clock)
    assert _grants(ad_session) == 1 and _held(ad_redis, who) == 0

    # the fourth download needs three more
    with pytest.raises(KeyCreditShort):
        _key_download(ad_session, ad_redis, who, free_track, settings, clock)
    browse(who, 2)
    with pytest.raises(KeyCreditShort) as refused:
        _key_download(ad_session, ad_redis, who, free_track, settings, clock)
    assert refused.value.details["have"] == 2
    browse(who, 1)
    assert _key_download(ad_session, ad_redis, who, free_track, settings, clock)
    assert _grants(ad_session) == 2


def test_the_price_of_a_download_is_a_setting(ad_session, ad_redis, clock, settings, free_track, browse):
    who = listener()
    entitlements.set_key_mode(ad_redis, who.listener_id, True)
    one = entitlements.GateSettings(secret=settings.secret, currency="USD", floor_cpm_micros=settings.floor_cpm_micros,
                                    key_impressions_per_download=1)
    browse(who, 1)
    assert _key_download(ad_session, ad_redis, who, free_track, one, clock)
    with pytest.raises(ValueError):
        entitlements.GateSettings(secret="s", currency="USD", floor_cpm_micros=1, key_impressions_per_download=0)


def test_credit_is_per_listener(ad_session, ad_redis, clock, settings, free_track, browse):
    earner, other = listener("a-earner"), listener("a-other", ip="10.0.0.2")
    for who in (earner, other):
        entitlements.set_key_mode(ad_redis, who.listener_id, True)
    browse(earner, 3)
    with pytest.raises(KeyCreditShort):
        _key_download(ad_session, ad_redis, other, free_track, settings, clock)
    assert _key_download(ad_session, ad_redis, earner, free_track, settings, clock)


def test_impressions_older_than_30_days_do_not_count(ad_session, ad_redis, clock, settings, free_track, browse):
    who = listener()
    entitlements.set_key_mode(ad_redis, who.listener_id, True)
    browse(who, 2)
    clock.advance(days=29)
    browse(who, 1)
    clock.advance(days=1, seconds=-1)  # the first two are 30 days old less a second: they still count
    assert entitlements.key_mode_status(ad_redis, who.listener_id, settings=settings, clock=clock).credit.have == 3
    clock.advance(seconds=2)  # now they are past the window
    status = entitlements.key_mode_status(ad_redis, who.listener_id, settings=settings, clock=clock)
    assert status.enabled and status.credit.have == 1
    offer = entitlements.open_gate(ad_session, ad_redis, who, free_track.id, settings=settings, clock=clock)
    assert offer.state == "ad" and offer.credit.have == 1
    with pytest.raises(KeyCreditShort):
        _key_download(ad_session, ad_redis, who, free_track, settings, clock)
    assert _held(ad_redis, who) == 1  # the spend attempt trimmed what had expired
    assert 0 < ad_redis.pttl(ent_keys.key_credit(who.listener_id)) <= 30 * 86400 * 1000


def test_duplicate_and_invalid_beacons_give_no_credit(ad_session, ad_redis, clock, settings, free_track):
    who = listener()
    entitlements.set_key_mode(ad_redis, who.listener_id, True)

    def browse_decision(for_who=who):
        return entitlements.place_ad(ad_session, ad_redis, for_who, "browse", mode="key", settings=settings,
                                     clock=clock)

    def beacon(token, sender=who):
        return entitlements.count_impression(ad_session, ad_redis, token, sender, settings=settings, clock=clock)

    shown = browse_decision()
    assert beacon(shown.token).status == "counted"
    assert beacon(shown.token).status == "duplicate"
    assert beacon(shown.token).status == "duplicate"
    assert _held(ad_redis, who) == 1

    bot = entitlements.Requester(listener_id=who.listener_id, ip=who.ip, user_agent=BOT_UA)
    assert beacon(browse_decision().token, bot).status == "invalid"
    assert beacon(browse_decision().token, listener("a-somebody-else")).status == "invalid"  # not who saw it
    assert beacon("forged.token") is None
    assert beacon(shown.token[:-4] + "AAAA") is None  # a tampered signature
    expired = browse_decision()
    clock.advance(seconds=settings.decision_ttl_s + 1)
    assert beacon(expired.token) is None
    # a gate impression pays for its own download, not for key mode
    gate = entitlements.place_ad(ad_session, ad_redis, who, "gate", track_id=free_track.id, settings=settings,
                                 clock=clock)
    assert beacon(gate.token).status == "counted"
    assert _held(ad_redis, who) == 1
    assert ad_stream.length(ad_redis) == 2


def test_an_impression_the_budget_cannot_pay_gives_no_credit(ad_session, ad_redis, clock, settings,
                                                            make_advertiser, make_campaign):
    make_campaign(make_advertiser(), slots=("browse",), total=700, daily=700,
                  bid_cpm_micros=FLOOR_CPM)  # the budget pays for one impression at the floor, not two
    who = listener()
    first, second = (entitlements.place_ad(ad_session, ad_redis, who, "browse", mode="key", settings=settings,
                                           clock=clock) for _ in range(2))
    statuses = [entitlements.count_impression(ad_session, ad_redis, p.token, who, settings=settings,
                                              clock=clock).status for p in (first, second)]
    assert statuses == ["counted", "budget_exhausted"]
    assert _held(ad_redis, who) == 1


def test_parallel_downloads_cannot_spend_the_same_credit(ad_app, ad_session, ad_redis, clock, settings,
                                                         free_track, browse):
    who = listener()
    entitlements.set_key_mode(ad_redis, who.listener_id, True)
    browse(who, 9)  # enough for exactly three downloads
    workers = 12
    barrier = threading.Barrier(workers)
    outcomes: list[str] = []
    lock = threading.Lock()
    sessions = ad_app.extensions["ninety"].sessions

    def download():
        session = sessions()
        try:
            barrier.wait()
            try:
                _key_download(session, ad_redis, who, free_track, settings, clock)
                session.commit()
                outcome = "granted"
            except KeyCreditShort:
                session.rollback()
                outcome = "short"
        finally:
            session.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=download) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["granted"] * 3 + ["short"] * 9
    ad_session.expire_all()
    assert _grants(ad_session) == 3 and _held(ad_redis, who) == 0


def test_the_spend_script_takes_each_impression_once(ad_redis, clock):
    """The script itself, raced without the rest of the gate: every impression is spent at most once."""
    for n in range(30):
        credit.earn(ad_redis, "a-racer", f"d{n:02d}", at=clock.now())
    spent: list[tuple[str, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def take():
        barrier.wait()
        while (got := credit.spend(ad_redis, "a-racer", needed=3, now=clock.now())) is not None:
            with lock:
                spent.extend(got.impressions)

    threads = [threading.Thread(target=take) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(d for d, _ in spent) == [f"d{n:02d}" for n in range(30)]


def test_a_refused_grant_gives_the_credit_back(ad_session, ad_redis, clock, settings, free_track, browse):
    who = listener()
    entitlements.set_key_mode(ad_redis, who.listener_id, True)
    browse(who, 3)
    for _ in range(entitlements.GRANTS_PER_LISTENER_PER_HOUR):
        ratelimit.hit(ad_redis, ent_keys.grants_by_listener(who.listener_id), limit=0, window_s=3600)
    with pytest.raises(RateLimited):
        _key_download(ad_session, ad_redis, who, free_track, settings, clock)
    assert _held(ad_redis, who) == 3 and _grants(ad_session) == 0


def test_key_mode_off_is_refused_even_with_credit(ad_session, ad_redis, clock, settings, free_track, browse):
    who = listener()
    browse(who, 3)
    offer = entitlements.open_gate(ad_session, ad_redis, who, free_track.id, settings=settings, clock=clock)
    assert offer.state == "ad" and offer.credit is None
    with pytest.raises(NotEntitled) as refused:
        _key_download(ad_session, ad_redis, who, free_track, settings, clock)
    assert refused.value.code == "key_mode_off"
    assert _held(ad_redis, who) == 3


def test_grant_now_spends_credit_or_falls_back_to_the_ad(ad_session, ad_redis, clock, settings, free_track,
                                                        browse):
    who = listener()
    entitlements.set_key_mode(ad_redis, who.listener_id, True)
    browse(who, 3)
    offer = entitlements.open_gate(ad_session, ad_redis, who, free_track.id, settings=settings, clock=clock,
                                   grant_now=True)
    assert offer.state == "key" and offer.grant and offer.credit.have == 0
    offer = entitlements.open_gate(ad_session, ad_redis, who, free_track.id, settings=settings, clock=clock,
                                   grant_now=True)
    assert offer.state == "ad" and offer.grant is None and offer.credit.have == 0
    assert _grants(ad_session) == 1
