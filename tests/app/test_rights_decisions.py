"""The admin queue (ordered by deadline, with the time left), action and rejection with reasons, the
release page saying a track is unavailable because of a notice, the artist's statement of reasons,
counter-notice and acceptance, and the transparency page."""

from __future__ import annotations

import pytest

from core.clock import FrozenClock
from tests.app.rights_world import START, RightsWorld, notice_payload
from tests.conftest import login

FORM = {"csrf_token": "test-csrf"}
COUNTER = {**FORM, "name": "Nova Artist", "address": "2 Studio Lane, Berlin", "phone": "+49 30 555 0100",
           "email": "nova@artists.test", "explanation": "This is my own recording; I composed and recorded it.",
           "statement_mistake": "yes", "consent_jurisdiction": "yes", "signature": "Nova Artist"}


@pytest.fixture
def clock():
    return FrozenClock(START)


@pytest.fixture
def app(make_app, clock):
    return make_app(clock=clock)


@pytest.fixture
def world(app, clock):
    return RightsWorld(app, clock)


def _as(app, user):
    client = app.test_client()
    login(client, user)
    return client


def _file(app, token_for, claimant, *tracks, **kw):
    answer = app.test_client().post("/api/v1/notices", json=notice_payload(*tracks, **kw),
                                    headers={"Authorization": f"Bearer {token_for(claimant)}"})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


def test_the_queue_is_ordered_by_deadline_and_shows_the_time_left(app, world, clock, token_for):
    nova = world.artist("Nova", tracks=2)
    rita = world.user("rights_holder")
    first = _file(app, token_for, rita, nova["tracks"][0])
    clock.advance(hours=5)
    second = _file(app, token_for, rita, nova["tracks"][1])
    clock.advance(hours=20)  # the first is 1 h overdue, the second has 4 h left
    admin = _as(app, world.user("admin"))
    page = admin.get("/admin/notices").text
    assert page.index(f'id="queue-{first}"') < page.index(f'id="queue-{second}"')
    assert "overdue by 1 h 00 min" in page and "4 h 00 min left" in page
    assert "1 past the 24-hour deadline" in admin.get("/admin").text


def test_an_admin_actions_a_notice_and_the_track_is_unavailable_because_of_it(app, world, token_for):
    nova = world.artist("Nova", tracks=2)
    notice_id = _file(app, token_for, world.user("rights_holder"), nova["tracks"][0])
    admin = _as(app, world.user("admin"))
    review = admin.get(f"/admin/notices/{notice_id}")
    assert review.status_code == 200 and "Action notice" in review.text and "Nova song 1" in review.text
    missing_reason = admin.post(f"/admin/notices/{notice_id}/action", data={**FORM, "reason": " "})
    assert missing_reason.status_code == 303
    assert "Give the reason" in admin.get(f"/admin/notices/{notice_id}").text
    done = admin.post(f"/admin/notices/{notice_id}/action",
                      data={**FORM, "reason": "The claimant identified the master recording."})
    assert done.status_code == 303
    assert f'id="queue-{notice_id}"' not in admin.get("/admin/notices").text

    listener = app.test_client()
    release = listener.get(nova["release_url"], headers={"Accept": "text/html"})
    assert release.status_code == 200
    assert f"Unavailable because of copyright notice {notice_id}" in release.text
    assert "Nova song 2" in release.text  # the other track is still there
    gate = listener.get(f"/tracks/{nova['tracks'][0]}/free", headers={"Accept": "application/json"})
    assert gate.status_code in (404, 410, 451), gate.status_code

    artist = _as(app, nova["user"])
    cases = artist.get("/dashboard/notices")
    assert cases.status_code == 200 and "Moonlight Sonata" in cases.text
    case_id = int(cases.text.split('id="case-')[1].split('"')[0])
    statement = artist.get(f"/dashboard/notices/{case_id}").text
    assert "Statement of reasons" in statement and "The claimant identified the master recording." in statement
    assert "Send counter-notice" in statement and "Accept notice" in statement


def test_a_rejection_needs_reasons_and_tells_the_claimant(app, world, token_for):
    nova = world.artist("Nova")
    rita = world.user("rights_holder")
    notice_id = _file(app, token_for, rita, nova["tracks"][0])
    admin = _as(app, world.user("admin"))
    admin.post(f"/admin/notices/{notice_id}/reject", data={**FORM, "reason": "The work named is in the public domain."})
    page = _as(app, rita).get(f"/rights/notices/{notice_id}").text
    assert 'id="notice-status">rejected' in page and "The work named is in the public domain." in page
    assert "Unavailable because of" not in app.test_client().get(nova["release_url"]).text


def test_the_artist_counter_notifies_with_every_element(app, world, token_for):
    nova = world.artist("Nova")
    rita = world.user("rights_holder")
    notice_id = _file(app, token_for, rita, nova["tracks"][0])
    _as(app, world.user("admin")).post(f"/admin/notices/{notice_id}/action", data={**FORM, "reason": "Identified."})
    artist = _as(app, nova["user"])
    case_id = int(artist.get("/dashboard/notices").text.split('id="case-')[1].split('"')[0])
    incomplete = {k: v for k, v in COUNTER.items() if k not in ("consent_jurisdiction", "signature")}
    refused = artist.post(f"/dashboard/notices/{case_id}/counter", data=incomplete)
    assert refused.status_code == 422
    assert 'data-code="missing_jurisdiction_consent"' in refused.text and 'data-code="missing_signature"' in refused.text
    assert 'id="signature" name="signature" aria-invalid="true"' in refused.text
    assert 'value="+49 30 555 0100"' in refused.text  # what was typed stays
    filed = artist.post(f"/dashboard/notices/{case_id}/counter", data=COUNTER)
    assert filed.status_code == 303
    page = artist.get(f"/dashboard/notices/{case_id}").text
    assert 'id="case-state">countered' in page and 'id="restore-at">2026-10-28' in page  # 10 business days
    claimant_view = _as(app, rita).get(f"/rights/notices/{notice_id}").text
    assert "Counter-notice from Nova Artist" in claimant_view and "Report court action" in claimant_view


def test_someone_elses_case_and_a_closed_window_are_refused(app, world, clock, token_for):
    nova, other = world.artist("Nova"), world.artist("Other")
    notice_id = _file(app, token_for, world.user("rights_holder"), nova["tracks"][0])
    _as(app, world.user("admin")).post(f"/admin/notices/{notice_id}/action", data={**FORM, "reason": "Identified."})
    artist = _as(app, nova["user"])
    case_id = int(artist.get("/dashboard/notices").text.split('id="case-')[1].split('"')[0])
    stranger = _as(app, other["user"])
    assert "Moonlight Sonata" not in stranger.get("/dashboard/notices").text
    assert stranger.get(f"/dashboard/notices/{case_id}").status_code == 404
    assert stranger.post(f"/dashboard/notices/{case_id}/counter", data=COUNTER).status_code == 404
    clock.advance(days=15)
    late = artist.post(f"/dashboard/notices/{case_id}/counter", data=COUNTER)
    assert late.status_code == 409
    assert "Send counter-notice" not in artist.get(f"/dashboard/notices/{case_id}").text


def test_the_artist_accepts_and_the_case_is_upheld(app, world, token_for):
    nova = world.artist("Nova")
    notice_id = _file(app, token_for, world.user("rights_holder"), nova["tracks"][0])
    _as(app, world.user("admin")).post(f"/admin/notices/{notice_id}/action", data={**FORM, "reason": "Identified."})
    artist = _as(app, nova["user"])
    case_id = int(artist.get("/dashboard/notices").text.split('id="case-')[1].split('"')[0])
    assert artist.post(f"/dashboard/notices/{case_id}/accept", data=FORM).status_code == 303
    page = artist.get(f"/dashboard/notices/{case_id}").text
    assert 'id="case-state">upheld (accepted)' in page and "Send counter-notice" not in page
    strikes = artist.get("/dashboard/notices").text
    assert "Appeal strike" in strikes


def test_transparency_counts_per_month(app, world, clock, token_for):
    nova = world.artist("Nova", tracks=3)
    rita = world.user("rights_holder")
    admin = _as(app, world.user("admin"))
    actioned = _file(app, token_for, rita, nova["tracks"][0])
    rejected = _file(app, token_for, rita, nova["tracks"][1])
    _file(app, token_for, rita, nova["tracks"][2])  # undecided
    clock.advance(hours=2)
    admin.post(f"/admin/notices/{actioned}/action", data={**FORM, "reason": "Identified."})
    clock.advance(hours=4)
    admin.post(f"/admin/notices/{rejected}/reject", data={**FORM, "reason": "Not a copy."})
    page = app.test_client().get("/transparency")
    assert page.status_code == 200
    row = page.text.split('id="month-2026-10"')[1].split("</tr>")[0]
    cells = [c.split(">", 1)[1].split("<")[0] for c in row.split("<td")[1:]]
    assert cells == ["2026-10", "3", "1", "1", "4 h 00 min", "6 h 00 min"]


def test_actioning_from_the_queue_keeps_a_reencoded_copy_down(app, world, token_for):
    """The admin page hands the stored audio to the action, so a track uploaded before fingerprints were kept
    is fingerprinted then, and its re-encoded re-upload is refused naming the notice."""
    import io

    from catalog import services as catalog
    from catalog.storage import MediaStore
    from catalog.uploads import upload_track
    from core.db import transaction
    from tests.app.rights_world import melody

    nova = world.artist("Nova")
    with transaction(world.runtime.sessions) as s:  # an upload from before stay-down: no fingerprint kept
        release = catalog.create_release(s, nova["artist_id"], title="Old Single", kind="single")
        track_id = upload_track(s, MediaStore(world.runtime.config.media_path), release, io.BytesIO(melody(42)),
                                "01 Old.wav", clock=world.clock, max_bytes=None, title="Old").track.id
        catalog.publish_release(s, release, clock=world.clock)
    notice_id = _file(app, token_for, world.user("rights_holder"), track_id)
    _as(app, world.user("admin")).post(f"/admin/notices/{notice_id}/action", data={**FORM, "reason": "Identified."})
    again = app.test_client().post(f"/api/v1/releases/{nova['release_id']}/tracks",
                                   data={"files": (io.BytesIO(melody(42, fmt="flac")), "01 Old again.flac")},
                                   content_type="multipart/form-data",
                                   headers={"Authorization": f"Bearer {token_for(nova['user'])}"})
    assert again.status_code == 409, again.get_json()
    assert again.get_json()["code"] == "stay_down" and again.get_json()["notice_id"] == notice_id


def test_the_track_page_and_a_whole_release_say_why_with_451(app, world, token_for):
    nova = world.artist("Nova", tracks=2)
    notice_id = _file(app, token_for, world.user("rights_holder"), f"release:{nova['release_id']}")
    _as(app, world.user("admin")).post(f"/admin/notices/{notice_id}/action", data={**FORM, "reason": "Identified."})
    listener = app.test_client()
    for path in (nova["release_url"], f"/tracks/{nova['tracks'][1]}"):
        page = listener.get(path, headers={"Accept": "text/html"})
        assert page.status_code == 451, path
        assert f"unavailable because of copyright notice {notice_id}" in page.text
    assert listener.get("/tracks/999999", headers={"Accept": "text/html"}).status_code == 404
