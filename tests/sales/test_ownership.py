"""What the buyer owns: re-downloads with no ad through single-use grants, codes (never twice, even racing)."""

from __future__ import annotations

import threading

import pytest

from core.errors import NinetyError
from ledger.accounts import STRIPE


def _settings(app):
    from entitlements.services import GateSettings

    return GateSettings(secret=app.extensions["ninety"].config.secret_key, currency="USD", floor_cpm_micros=0)


def _grant(shop, user, track_id):
    from entitlements.services import Requester, grant_owned

    with shop.unit() as s:
        return grant_owned(s, shop.redis, Requester(listener_id=f"u{user.id}", ip="127.0.0.1"), track_id,
                           user_id=user.id, settings=_settings(shop.app), clock=shop.clock)


def test_an_owner_downloads_again_and_again_with_no_ad_and_others_cannot(shop):
    from catalog.models import DownloadGrant

    release = shop.release(price="5.00", tracks=2)
    buyer = shop.user()
    with pytest.raises(NinetyError) as before:
        _grant(shop, buyer, release["tracks"][0])
    assert before.value.code == "not_owned" and before.value.status == 403
    shop.buy(buyer, release)
    client = shop.app.test_client()
    tokens = [_grant(shop, buyer, release["tracks"][0]) for _ in range(3)]
    assert len(set(tokens)) == 3
    for token in tokens:
        assert client.get(f"/download/{token}").status_code == 303
        assert client.get(f"/download/{token}").status_code >= 400  # each grant is single-use
    with shop.sessions() as s:
        assert {g.via for g in s.query(DownloadGrant).all()} == {"purchase"}
    with pytest.raises(NinetyError):
        _grant(shop, shop.user(), release["tracks"][0])


def test_a_single_track_purchase_owns_only_that_track_and_a_full_refund_ends_ownership(shop):
    from sales.services import owned_tracks, owns_track

    release = shop.release(price="5.00", tracks=2)
    buyer = shop.user()
    from catalog import services as catalog

    with shop.unit() as s:
        catalog.set_track_price(s, catalog.get_track(s, release["tracks"][1]), "fixed", price="1.00")
    order_id = shop.buy(buyer, release, track_id=release["tracks"][1]).order_id
    with shop.sessions() as s:
        assert [t.id for t in owned_tracks(s, buyer.id)] == [release["tracks"][1]]
        assert not owns_track(s, buyer.id, release["tracks"][0])
    shop.refund(order_id, "0.50")
    with shop.sessions() as s:
        assert owns_track(s, buyer.id, release["tracks"][1])  # a partial refund keeps it
    shop.refund(order_id)
    with shop.sessions() as s:
        assert not owns_track(s, buyer.id, release["tracks"][1])


def test_a_redeemed_code_is_a_purchase_at_zero_and_never_works_twice(shop):
    from sales.services import generate_codes, owns_release, redeem_code

    release = shop.release(price="8.00", tracks=1)
    from core.users import get_user

    with shop.unit() as s:
        codes = [c.code for c in generate_codes(s, release_id=release["release_id"],
                                                user=get_user(s, release["artist_user"].id), count=2,
                                                clock=shop.clock)]
    with shop.unit() as s:
        with pytest.raises(NinetyError) as stranger:
            generate_codes(s, release_id=release["release_id"], user=get_user(s, shop.user(("artist",)).id),
                           count=1, clock=shop.clock)
        assert stranger.value.status == 403
    fan = shop.user()
    with shop.unit() as s:
        order = redeem_code(s, shop.redis, code=codes[0], user=get_user(s, fan.id), ip="10.0.0.1", clock=shop.clock)
        assert (order.kind, order.amount_micros, order.status) == ("code", 0, "paid")
    with shop.sessions() as s:
        assert owns_release(s, fan.id, release["release_id"])
        from sqlalchemy import text

        assert s.scalar(text("SELECT count(*) FROM ledger_entries")) == 0  # no money moves
    _grant(shop, fan, release["tracks"][0])
    with shop.unit() as s:
        with pytest.raises(NinetyError) as owned:
            redeem_code(s, shop.redis, code=codes[1], user=get_user(s, fan.id), ip="10.0.0.1", clock=shop.clock)
        assert owned.value.code == "already_owned"  # and the second code stays unused
    with shop.unit() as s:
        with pytest.raises(NinetyError) as own:
            redeem_code(s, shop.redis, code=codes[1], user=get_user(s, release["artist_user"].id), ip="10.0.0.2",
                        clock=shop.clock)
        assert own.value.code == "own_release"


def test_two_redemptions_racing_for_one_code_one_wins(shop):
    from core.users import get_user
    from sales.models import DownloadCode, Order
    from sales.services import generate_codes, redeem_code

    release = shop.release(price="8.00", tracks=1)
    with shop.unit() as s:
        [code] = [c.code for c in generate_codes(s, release_id=release["release_id"],
                                                 user=get_user(s, release["artist_user"].id), count=1,
                                                 clock=shop.clock)]
    fans = [shop.user() for _ in range(6)]
    results: list = []
    barrier = threading.Barrier(len(fans))

    def redeem(fan):
        barrier.wait()
        try:
            with shop.unit() as s:
                redeem_code(s, shop.redis, code=code, user=get_user(s, fan.id), ip=f"10.0.0.{fan.id}", clock=shop.clock)
            results.append("ok")
        except NinetyError as exc:
            results.append(exc.code)

    threads = [threading.Thread(target=redeem, args=(fan,)) for fan in fans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == ["code_used"] * 5 + ["ok"]
    with shop.sessions() as s:
        assert s.query(Order).filter_by(kind="code").count() == 1
        assert s.query(DownloadCode).one().order_id is not None
    assert shop.balance(STRIPE) == 0


def test_the_checkout_quote_reads_the_buyers_standing_with_the_release(shop):
    """quote(buyer_id=…) answers own/owned in the release's own statement, as owns_release and owns_track
    and membership do: per track and per release, after a full refund, and never 'owned' for the artist."""
    from catalog import services as catalog
    from sales.services import owns_release, owns_track, quote

    release = shop.release(price="5.00", tracks=2)
    first, second = release["tracks"]
    with shop.unit() as s:
        catalog.set_track_price(s, catalog.get_track(s, second), "fixed", price="1.00")
    track_buyer, release_buyer, stranger = shop.user(), shop.user(), shop.user()
    track_order = shop.buy(track_buyer, release, track_id=second).order_id
    shop.buy(release_buyer, release)
    artist = release["artist_user"]

    def standing(user_id, track_id=None):
        with shop.sessions() as s:
            q = quote(s, release_id=release["release_id"], track_id=track_id, buyer_id=user_id)
            return q["own"], q["owned"]

    def reference(user_id, track_id=None):
        with shop.sessions() as s:
            owned = owns_track(s, user_id, track_id) if track_id else owns_release(s, user_id, release["release_id"])
            return catalog.is_member(s, release["artist_id"], user_id), owned

    cases = [(user.id, track) for user in (track_buyer, release_buyer, stranger) for track in (None, first, second)]
    assert [standing(*case) for case in cases] == [reference(*case) for case in cases]
    assert standing(track_buyer.id, second) == (False, True) and standing(track_buyer.id) == (False, False)
    assert standing(release_buyer.id) == standing(release_buyer.id, first) == (False, True)
    assert standing(artist.id) == (True, False)
    with shop.sessions() as s:
        unsigned = quote(s, release_id=release["release_id"])
    assert (unsigned["own"], unsigned["owned"]) == (False, False)
    shop.refund(track_order)
    assert standing(track_buyer.id, second) == (False, False) == reference(track_buyer.id, second)
