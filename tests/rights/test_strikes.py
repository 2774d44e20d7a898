"""Repeat infringers: three upheld notices in twelve months suspend uploads and releases until reviewed;
strikes expire; appeals are decided by a person; repeatedly rejected claimants are flagged."""

from __future__ import annotations

import io

import pytest

from catalog.errors import CatalogConflict
from catalog.models import Release, Track
from catalog.uploads import upload_track
from core.users import get_user
from rights import services
from rights.errors import AppealRefused, NotAllowed, RightsNotFound
from tests.rights.conftest import noise


def uphold(world, holder, admin, track_id):
    notice_id, case_id = world.actioned(holder, admin, [track_id])
    with world.unit() as s:
        member = s.get(Track, track_id).release.artist.members[0].user_id
        services.accept_notice(s, case_id, get_user(s, member), clock=world.clock, settings=world.settings)
    return notice_id


def test_three_strikes_suspend_then_an_appeal_lifts(world, holder, admin):
    ada = world.artist("Ada", tracks=3)
    for track in ada["tracks"][:2]:
        uphold(world, holder, admin, track)
        world.clock.advance(days=30)
    with world.sessions() as s:
        assert services.active_strike_count(s, ada["artist_id"], world.clock.now()) == 2
        assert not services.is_suspended(s, ada["artist_id"])
    uphold(world, holder, admin, ada["tracks"][2])
    with world.sessions() as s:
        assert services.is_suspended(s, ada["artist_id"])
        [suspension] = services.pending_suspensions(s)
        assert suspension.artist_id == ada["artist_id"] and len(suspension.strike_ids) == 3
        release = s.get(Release, ada["release_id"])
        with pytest.raises(CatalogConflict) as caught:
            upload_track(s, world.store, release, io.BytesIO(noise(seed=99)), "new.wav", clock=world.clock,
                         max_bytes=None)
        assert (caught.value.code, caught.value.status) == ("artist_suspended", 403)
        strike = services.strikes_for_artist(s, ada["artist_id"])[0]
    with world.sessions() as s, pytest.raises(RightsNotFound):  # only the artist's members may appeal
        services.file_appeal(s, strike.id, s.merge(holder), grounds="x", clock=world.clock, settings=world.settings)
    with world.unit() as s:
        appeal = services.file_appeal(s, strike.id, s.merge(ada["user"]), grounds="It was my own recording.",
                                      clock=world.clock, settings=world.settings)
        appeal_id = appeal.id
    with world.sessions() as s:
        with pytest.raises(AppealRefused):
            services.file_appeal(s, strike.id, s.merge(ada["user"]), grounds="again", clock=world.clock,
                                 settings=world.settings)
        with pytest.raises(NotAllowed):  # decided by a person with the admin role, not the artist
            services.decide_appeal(s, appeal_id, s.merge(ada["user"]), granted=True, reason="x", clock=world.clock,
                                   settings=world.settings)
    with world.unit() as s:
        services.decide_appeal(s, appeal_id, s.merge(admin), granted=True, reason="The artist proved authorship.",
                               clock=world.clock, settings=world.settings)
    with world.sessions() as s:
        assert not services.is_suspended(s, ada["artist_id"])
        assert services.active_strike_count(s, ada["artist_id"], world.clock.now()) == 2
        assert services.pending_suspensions(s) == []


def test_strikes_expire_and_appeals_close_after_six_months(world, holder, admin):
    ada = world.artist("Ada", tracks=1)
    uphold(world, holder, admin, ada["tracks"][0])
    with world.sessions() as s:
        strike = services.strikes_for_artist(s, ada["artist_id"])[0]
    world.clock.advance(days=world.settings.appeal_window_days + 1)
    with world.sessions() as s, pytest.raises(AppealRefused) as caught:
        services.file_appeal(s, strike.id, s.merge(ada["user"]), grounds="late", clock=world.clock,
                             settings=world.settings)
    assert caught.value.code == "appeal_window_closed"
    world.clock.advance(days=world.settings.strike_window_days)
    with world.sessions() as s:
        assert services.active_strike_count(s, ada["artist_id"], world.clock.now()) == 0


def test_a_suspension_is_reviewed_by_an_admin(world, holder, admin):
    ada = world.artist("Ada", tracks=3)
    for track in ada["tracks"]:
        uphold(world, holder, admin, track)
    with world.sessions() as s:
        [suspension] = services.pending_suspensions(s)
    with world.unit() as s:
        services.review_suspension(s, suspension.id, s.merge(admin), lift=True, reason="Reviewed; licences shown.",
                                   clock=world.clock)
    with world.sessions() as s:
        assert not services.is_suspended(s, ada["artist_id"])
        release = s.get(Release, ada["release_id"])
        upload_track(s, world.store, release, io.BytesIO(noise(seed=98)), "ok.wav", clock=world.clock,
                     max_bytes=None)


def test_repeatedly_rejected_claimants_are_flagged(world, holder, admin):
    ada = world.artist("Ada", tracks=3)
    for track in ada["tracks"]:
        notice_id = world.file(holder, [track])
        with world.sessions() as s:
            assert not services.is_flagged(s, holder.id)
        with world.unit() as s:
            services.reject_notice(s, notice_id, s.merge(admin), reason="Not the claimant's work.",
                                   clock=world.clock, settings=world.settings)
        world.clock.advance(hours=1)
    with world.sessions() as s:
        [flag] = services.flagged_claimants(s)
        assert (flag.user_id, flag.rejected_count) == (holder.id, 3)
    with world.unit() as s:
        services.clear_claimant_flag(s, flag.id, s.merge(admin), reason="Spoke to them.", clock=world.clock)
    with world.sessions() as s:
        assert services.flagged_claimants(s) == []
