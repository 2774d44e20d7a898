"""Filing notices: every missing element named at once, targets checked, CSV, idempotency, references."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from rights import services
from rights.errors import IdempotencyConflict, NotAllowed, NoticeIncomplete, NoticeInvalid, ReferenceTooLarge
from rights.models import Case, CaseEvent, Notice, NoticeWork
from tests.rights.conftest import noise, payload


def counts(world) -> tuple[int, int, int, int]:
    with world.sessions() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) for m in (Notice, NoticeWork, Case, CaseEvent))


def test_an_empty_notice_names_every_missing_element(world, holder):
    with world.sessions() as s, pytest.raises(NoticeIncomplete) as caught:
        services.file_notice(s, s.merge(holder), {}, clock=world.clock, settings=world.settings)
    codes = [m["code"] for m in caught.value.details["missing"]]
    assert codes == ["missing_claimant_name", "missing_claimant_email", "missing_claimant_contact",
                     "missing_good_faith_statement", "missing_accuracy_statement", "missing_authority_statement",
                     "missing_signature", "missing_works"]
    assert caught.value.status == 422
    assert counts(world) == (0, 0, 0, 0)


def test_missing_elements_of_each_work_are_named_with_their_field(world, holder):
    ada = world.artist("Ada")
    body = payload([ada["tracks"][0]], statements={"good_faith": True, "accurate": "false", "authorized": True})
    body["works"].append({"title": "", "description": "", "tracks": []})
    body["claimant"]["email"] = "not-an-address"
    with world.sessions() as s, pytest.raises(NoticeIncomplete) as caught:
        services.file_notice(s, s.merge(holder), body, clock=world.clock, settings=world.settings)
    missing = {(m["code"], m["field"]) for m in caught.value.details["missing"]}
    assert missing == {("invalid_claimant_email", "claimant.email"),
                       ("missing_accuracy_statement", "statements.accurate"),
                       ("missing_work_title", "works[1].title"),
                       ("missing_work_description", "works[1].description"),
                       ("missing_work_tracks", "works[1].tracks")}
    assert counts(world) == (0, 0, 0, 0)


def test_a_complete_notice_is_recorded_with_a_deadline_and_a_receipt(world, holder):
    ada = world.artist("Ada", tracks=2)
    with world.unit() as s:
        notice = services.file_notice(s, s.merge(holder), payload(ada["tracks"]), clock=world.clock,
                                      settings=world.settings)
        from core.jobs import pending_jobs

        mails = [args[0] for func_name, args, _ in pending_jobs(s) if func_name == "core.jobs.deliver_mail"]
        notice_id = notice.id
    assert [m["to"] for m in mails] == ["rhea@label.test"]
    assert f"notice {notice_id}" in mails[0]["subject"]
    with world.sessions() as s:
        notice = s.get(Notice, notice_id)
        assert (notice.deadline_at - notice.received_at).total_seconds() == 24 * 3600
        assert [c.track_id for c in notice.cases] == ada["tracks"]
        assert {c.state for c in notice.cases} == {"pending"}
        assert [e.action for e in s.scalars(select(CaseEvent))] == ["received"]


@pytest.mark.parametrize("form", ["id", "prefixed", "api_url", "release", "release_page"])
def test_tracks_are_named_by_id_or_url(world, holder, form):
    ada = world.artist("Ada", tracks=2)
    track = ada["tracks"][1]
    location = {"id": track, "prefixed": f"track:{track}",
                "api_url": f"http://127.0.0.1:8000/api/v1/tracks/{track}/split",
                "release": f"release:{ada['release_id']}",
                "release_page": f"https://ninety.test/artists/{ada['slug']}/{ada['release_slug']}"}[form]
    notice_id = world.file(holder, [location])
    with world.sessions() as s:
        cases = s.get(Notice, notice_id).cases
        expected = ada["tracks"] if form.startswith("release") else [track]
        assert [c.track_id for c in cases] == expected
        assert all(c.whole_release == form.startswith("release") for c in cases)


def test_bad_targets_are_all_listed_and_nothing_is_written(world, holder, admin):
    ada = world.artist("Ada", tracks=3)
    own = world.artist("Holder")  # the claimant's own artist profile
    with world.unit() as s:
        from catalog.models import ArtistMember

        s.add(ArtistMember(artist_id=own["artist_id"], user_id=holder.id))
    first = world.file(holder, [ada["tracks"][0]])
    world.action(admin, first)
    second = world.file(holder, [ada["tracks"][1]], idempotency_key="k2")
    before = counts(world)
    with world.sessions() as s, pytest.raises(NoticeInvalid) as caught:
        services.file_notice(s, s.merge(holder), payload([ada["tracks"][0], ada["tracks"][1], 999999, "nonsense!",
                                                          own["tracks"][0], ada["tracks"][2]]),
                             clock=world.clock, settings=world.settings)
    problems = {p["code"]: p["message"] for p in caught.value.details["problems"]}
    assert sorted(problems) == ["invalid_track_reference", "own_track", "track_unavailable", "track_under_notice",
                                "unknown_track"]
    assert f"notice {second}" in problems["track_under_notice"]
    assert counts(world) == before


def test_only_rights_holders_file(world):
    listener = world.user("listener")
    ada = world.artist("Ada")
    with world.sessions() as s, pytest.raises(NotAllowed):
        services.file_notice(s, s.merge(listener), payload(ada["tracks"]), clock=world.clock, settings=world.settings)


def test_the_same_idempotency_key_returns_the_same_notice(world, holder):
    ada = world.artist("Ada", tracks=2)
    first = world.file(holder, [ada["tracks"][0]], idempotency_key="abc")
    again = world.file(holder, [ada["tracks"][0]], idempotency_key="abc")
    assert again == first
    with world.sessions() as s, pytest.raises(IdempotencyConflict) as caught:
        services.file_notice(s, s.merge(holder), payload([ada["tracks"][1]], title="Another work"),
                             clock=world.clock, settings=world.settings, idempotency_key="abc")
    assert caught.value.status == 409
    assert counts(world)[0] == 1


def test_csv_rows_become_works(world, holder):
    ada = world.artist("Ada", tracks=3)
    t = ada["tracks"]
    works = services.parse_works_csv(f"title,description,tracks\nOne,copy of one,{t[0]}\n"
                                     f"\"Two, live\",copy of two,\"track:{t[1]} ; {t[2]}\"\n".encode())
    assert works == [{"title": "One", "description": "copy of one", "tracks": [str(t[0])]},
                     {"title": "Two, live", "description": "copy of two", "tracks": [f"track:{t[1]}", str(t[2])]}]
    body = payload([])
    body["works"] = works
    with world.unit() as s:
        notice = services.file_notice(s, s.merge(holder), body, clock=world.clock, settings=world.settings,
                                      source="csv")
        assert sorted(c.track_id for c in notice.cases) == t


@pytest.mark.parametrize("text,code_line", [
    ("", 1), ("name,tracks\nx,1\n", 1), ("title,description,tracks\nx,y\n", 2),
    ("title,description,tracks\n", 2), ("title,description,tracks\n\"unterminated,y,1\n", None),
])
def test_malformed_csv_is_refused_with_the_line(text, code_line):
    with pytest.raises(NoticeInvalid) as caught:
        services.parse_works_csv(text)
    assert caught.value.code == "malformed_csv"
    if code_line is not None:
        assert caught.value.details["problems"][0]["line"] == code_line


def test_a_reference_file_finds_the_same_recording(world, holder, tmp_path):
    audio = noise(seed=77)
    ada = world.artist("Ada", audio=[audio], collaborator=False)
    world.artist("Bob", tracks=2)  # other recordings
    reference = tmp_path / "ref.wav"
    reference.write_bytes(audio[:len(audio) // 2 * 2])
    body = payload([])
    body["works"][0]["reference"] = "ref.wav"
    with world.unit() as s:
        notice = services.file_notice(s, s.merge(holder), body, clock=world.clock, settings=world.settings,
                                      references={"ref.wav": reference})
        assert [(c.track_id, c.via) for c in notice.cases] == [(ada["tracks"][0], "fingerprint")]
        notice_id = notice.id
    with world.sessions() as s:  # stored as such (the CHECK constraint of migration 0015 allows it)
        assert s.scalar(text("SELECT via FROM rights_cases WHERE notice_id = :n"), {"n": notice_id}) == "fingerprint"
    world.action(world.user("admin", name="admin"), notice_id)
    assert world.track_status(ada["tracks"][0]) == "taken_down"


def test_a_track_both_named_and_matched_by_the_reference_is_named(world, holder, tmp_path):
    audio = noise(seed=78)
    ada = world.artist("Ada", audio=[audio], collaborator=False)
    reference = tmp_path / "ref.wav"
    reference.write_bytes(audio)
    body = payload([ada["tracks"][0]])
    body["works"][0]["reference"] = "ref.wav"
    with world.unit() as s:
        notice = services.file_notice(s, s.merge(holder), body, clock=world.clock, settings=world.settings,
                                      references={"ref.wav": reference})
        assert [(c.track_id, c.via) for c in notice.cases] == [(ada["tracks"][0], "named")]


def test_unreadable_unattached_and_oversized_references(world, holder, tmp_path):
    world.artist("Ada")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF not really audio" * 100)
    body = payload([])
    body["works"][0]["reference"] = "junk.wav"
    body["works"].append({"title": "B", "description": "d", "reference": "missing.wav"})
    with world.sessions() as s, pytest.raises(NoticeInvalid) as caught:
        services.file_notice(s, s.merge(holder), body, clock=world.clock, settings=world.settings,
                             references={"junk.wav": junk})
    assert sorted(p["code"] for p in caught.value.details["problems"]) == ["reference_unreadable", "unknown_reference"]
    small = world.settings.__class__(max_reference_bytes=100)
    with world.sessions() as s, pytest.raises(ReferenceTooLarge) as too_large:
        services.file_notice(s, s.merge(holder), payload([], works=[{"title": "A", "description": "d",
                                                                       "reference": "junk.wav"}]),
                             clock=world.clock, settings=small, references={"junk.wav": junk})
    assert too_large.value.status == 413
    assert counts(world) == (0, 0, 0, 0)
