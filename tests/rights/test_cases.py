"""Deciding notices and moving cases: action (with identical copies), rejection, counter-notice, restore,
court action, acceptance, withdrawal; who may do what; the audit log both parties read."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from catalog.delivery import issue_grant
from catalog.errors import TrackUnavailable
from catalog.search import search_tracks
from catalog.uploads import upload_track
from core.errors import ValidationError
from core.jobs import pending_jobs
from rights import services
from rights.errors import CaseStateConflict, CounterNoticeIncomplete, NotAllowed, RightsNotFound
from rights.models import Case, Notice
from tests.rights.conftest import COUNTER, noise


def mails(session) -> list[dict]:
    return [args[0] for name, args, _ in pending_jobs(session) if name == "core.jobs.deliver_mail"]


def test_action_disables_the_tracks_and_identical_copies_at_once(world, holder, admin):
    audio = noise(seed=5)
    ada = world.artist("Ada", audio=[audio])
    copycat = world.artist("Copycat", audio=[audio])  # same bytes: the same content-addressed asset
    other = world.artist("Other")
    notice_id = world.file(holder, [ada["tracks"][0]])
    with world.sessions() as s:
        assert len(search_tracks(s, "Ada", now=world.clock.now()).items) == 1
    with world.unit() as s:
        services.action_notice(s, notice_id, s.merge(admin), reason="Matches the claimant's master.",
                               clock=world.clock, settings=world.settings)
        sent = mails(s)
    assert world.track_status(ada["tracks"][0]) == "taken_down"
    assert world.track_status(copycat["tracks"][0]) == "taken_down"
    assert world.track_status(other["tracks"][0]) == "published"
    with world.sessions() as s:
        notice = s.get(Notice, notice_id)
        assert (notice.status, notice.decided_by_user_id) == ("actioned", admin.id)
        assert [(c.track_id, c.via, c.state) for c in notice.cases] == [
            (ada["tracks"][0], "named", "disabled"), (copycat["tracks"][0], "same_audio", "disabled")]
        assert search_tracks(s, "Ada", now=world.clock.now()).items == []
        with pytest.raises(TrackUnavailable):
            issue_grant(s, track_id=copycat["tracks"][0], listener_id="l1", via="ad", secret="x" * 32,
                        clock=world.clock, ttl_s=60)
    # The statement of reasons goes to each artist's members (DSA Art. 17).
    statements = {m["to"]: m for m in sent}
    assert ada["user"].email in statements and copycat["user"].email in statements
    body = statements[ada["user"].email]["body"]
    assert "Statement of reasons" in body and "Matches the claimant's master." in body and "counter-notify" in body


def test_a_notice_is_decided_once_by_an_admin_with_reasons(world, holder, admin):
    ada = world.artist("Ada")
    notice_id = world.file(holder, ada["tracks"])
    with world.sessions() as s:
        with pytest.raises(NotAllowed):
            services.action_notice(s, notice_id, s.merge(holder), reason="x", clock=world.clock,
                                   settings=world.settings)
        with pytest.raises(ValidationError):
            services.reject_notice(s, notice_id, s.merge(admin), reason="  ", clock=world.clock,
                                   settings=world.settings)
    with world.unit() as s:
        services.reject_notice(s, notice_id, s.merge(admin), reason="The work is in the public domain.",
                               clock=world.clock, settings=world.settings)
    assert world.track_status(ada["tracks"][0]) == "published"
    with world.sessions() as s, pytest.raises(CaseStateConflict):
        services.action_notice(s, notice_id, s.merge(admin), reason="x", clock=world.clock, settings=world.settings)
    assert world.case(world.case_ids(notice_id)[0]).state == "rejected"


def test_counter_notice_then_restore_after_ten_business_days(world, holder, admin):
    ada = world.artist("Ada")
    notice_id, case_id = world.actioned(holder, admin, ada["tracks"])
    stranger = world.user("artist", name="stranger")
    with world.sessions() as s:
        with pytest.raises(RightsNotFound):  # someone else's case is not even visible
            services.file_counter_notice(s, case_id, s.merge(stranger), COUNTER, clock=world.clock,
                                         settings=world.settings)
        with pytest.raises(NotAllowed):  # the claimant sees the case but cannot counter-notify
            services.file_counter_notice(s, case_id, s.merge(holder), COUNTER, clock=world.clock,
                                         settings=world.settings)
        with pytest.raises(CounterNoticeIncomplete) as caught:
            services.file_counter_notice(s, case_id, s.merge(ada["user"]), {**COUNTER, "consent_jurisdiction": False,
                                                                            "phone": ""},
                                         clock=world.clock, settings=world.settings)
        assert [m["code"] for m in caught.value.details["missing"]] == ["missing_phone",
                                                                        "missing_jurisdiction_consent"]
    world.clock.advance(days=2)  # Wednesday 7 October 2026, 09:00
    with world.unit() as s:
        services.file_counter_notice(s, case_id, s.merge(ada["user"]), COUNTER, clock=world.clock,
                                     settings=world.settings)
        forwarded = mails(s)
    assert [m["to"] for m in forwarded] == ["rhea@label.test"]
    assert "Ada Artist" in forwarded[0]["body"] and "2 Studio Road" in forwarded[0]["body"]
    case = world.case(case_id)
    # Ten US business days after Wed 7 Oct: Columbus Day (Mon 12 Oct) is a federal holiday -> Thu 22 Oct.
    assert case.state == "countered" and case.restore_at.isoformat() == "2026-10-22T09:00:00+00:00"
    world.clock.set(case.restore_at - timedelta(minutes=1))
    assert world.tick().restored == []
    assert world.track_status(ada["tracks"][0]) == "taken_down"
    world.clock.advance(minutes=1)
    assert world.tick().restored == [case_id]
    assert world.track_status(ada["tracks"][0]) == "published"
    assert world.tick().restored == []  # idempotent
    with world.sessions() as s:
        actions = [e.action for e in services.case_events(s, case_id, s.merge(ada["user"]))]
        assert actions == ["received", "actioned", "disabled", "counter_noticed", "restored"]
        assert [e.action for e in services.case_events(s, case_id, s.merge(holder))] == actions
        assert len(search_tracks(s, "Ada", now=world.clock.now()).items) == 1


def test_counter_notice_after_the_window_is_refused(world, holder, admin):
    ada = world.artist("Ada")
    notice_id, case_id = world.actioned(holder, admin, ada["tracks"])
    world.clock.advance(days=world.settings.counter_window_days, seconds=1)
    with world.sessions() as s, pytest.raises(CaseStateConflict) as caught:
        services.file_counter_notice(s, case_id, s.merge(ada["user"]), COUNTER, clock=world.clock,
                                     settings=world.settings)
    assert caught.value.code == "counter_window_closed"
    assert world.tick().upheld == [case_id]
    case = world.case(case_id)
    assert (case.state, case.outcome_reason) == ("upheld", "not_countered")


def test_court_action_before_the_restore_date_keeps_the_track_down(world, holder, admin):
    ada = world.artist("Ada")
    notice_id, case_id = world.actioned(holder, admin, ada["tracks"])
    with world.unit() as s:
        with pytest.raises(CaseStateConflict):  # not countered yet
            services.report_court_action(s, case_id, s.merge(holder), clock=world.clock, settings=world.settings,
                                         reference="N.D. Cal. 3:26-cv-1")
    world.counter(case_id, ada["user"])
    world.clock.advance(days=5)
    with world.sessions() as s, pytest.raises(NotAllowed):
        services.report_court_action(s, case_id, s.merge(ada["user"]), clock=world.clock, settings=world.settings,
                                     reference="x")
    world.court(case_id, holder, "N.D. Cal. 3:26-cv-1")
    world.clock.advance(days=30)
    assert world.tick().restored == []
    assert world.track_status(ada["tracks"][0]) == "taken_down"
    assert (world.case(case_id).state, world.case(case_id).outcome_reason) == ("upheld", "court_action")


def test_withdrawal_restores_a_whole_release(world, holder, admin):
    ada = world.artist("Ada", tracks=2)
    notice_id = world.file(holder, [f"release:{ada['release_id']}"])
    world.action(admin, notice_id)
    assert {world.track_status(t) for t in ada["tracks"]} == {"taken_down"}
    other_holder = world.user("rights_holder", name="other")
    with world.sessions() as s, pytest.raises(RightsNotFound):
        services.withdraw_notice(s, notice_id, s.merge(other_holder), clock=world.clock, settings=world.settings)
    world.withdraw(notice_id, holder, reason="Licensed after all.")
    assert {world.track_status(t) for t in ada["tracks"]} == {"published"}
    with world.sessions() as s:
        assert s.get(Notice, notice_id).status == "withdrawn"
        assert {c.state for c in s.scalars(select(Case).where(Case.notice_id == notice_id))} == {"withdrawn"}


def test_the_artist_accepts(world, holder, admin):
    ada = world.artist("Ada")
    notice_id, case_id = world.actioned(holder, admin, ada["tracks"])
    world.accept(case_id, ada["user"])
    assert (world.case(case_id).state, world.case(case_id).outcome_reason) == ("upheld", "accepted")
    with world.sessions() as s, pytest.raises(CaseStateConflict):
        services.accept_notice(s, case_id, s.merge(ada["user"]), clock=world.clock, settings=world.settings)


def test_each_party_sees_only_their_own(world, holder, admin):
    ada = world.artist("Ada")
    bob = world.artist("Bob")
    other = world.user("rights_holder", name="other")
    mine = world.file(holder, ada["tracks"])
    theirs = world.file(other, bob["tracks"])
    world.action(admin, mine)
    world.action(admin, theirs)
    with world.sessions() as s:
        assert [n.id for n in services.notices_for_claimant(s, holder.id)] == [mine]
        with pytest.raises(RightsNotFound):
            services.get_notice(s, theirs, s.merge(holder))
        assert services.get_notice(s, theirs, s.merge(admin)).id == theirs
        assert [c.notice_id for c in services.cases_for_user(s, ada["user"].id)] == [mine]
        bob_case = world.case_ids(theirs)[0]
        with pytest.raises(RightsNotFound):
            services.get_case(s, bob_case, s.merge(ada["user"]))
        with pytest.raises(RightsNotFound):
            services.case_events(s, bob_case, s.merge(holder))
        assert services.get_case(s, bob_case, s.merge(bob["user"])).id == bob_case


def test_stay_down_refuses_the_same_bytes_and_a_re_encode(world, holder, admin, tmp_path):
    import subprocess

    from rights.errors import StayDown

    audio = noise(seed=11)
    ada = world.artist("Ada", audio=[audio])
    notice_id = world.file(holder, ada["tracks"])
    world.action(admin, notice_id)
    source = tmp_path / "a.wav"
    source.write_bytes(audio)
    encoded = tmp_path / "a.mp3"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), "-b:a", "128k", str(encoded)],
                   check=True)
    eve = world.artist("Eve")
    from catalog.models import Release

    for data, match in ((audio, "sha256"), (encoded.read_bytes(), "fingerprint")):
        with world.sessions() as s:
            release = s.get(Release, eve["release_id"])
            with pytest.raises(StayDown) as caught:
                upload_track(s, world.store, release, io.BytesIO(data), "again.wav", clock=world.clock,
                             max_bytes=None, screen=world.screen)
            assert caught.value.details["match"] == match
            assert caught.value.details["notice_id"] == notice_id
            assert f"notice {notice_id}" in caught.value.message
    with world.sessions() as s:  # unrelated audio still uploads
        release = s.get(Release, eve["release_id"])
        upload_track(s, world.store, release, io.BytesIO(noise(seed=12)), "new.wav", clock=world.clock,
                     max_bytes=None, screen=world.screen)
    # Once the notice is withdrawn the audio may come back.
    world.withdraw(notice_id, holder)
    with world.sessions() as s:
        release = s.get(Release, eve["release_id"])
        upload_track(s, world.store, release, io.BytesIO(encoded.read_bytes()), "again.mp3", clock=world.clock,
                     max_bytes=None, screen=world.screen)
