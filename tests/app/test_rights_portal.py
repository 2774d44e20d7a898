"""The rights-holder portal (/rights): file a notice from the form (one work, several, a CSV, a reference
recording); bad input re-renders the form with each missing or wrong element marked and writes nothing."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from core.clock import FrozenClock
from rights.models import Notice
from tests.app.rights_world import START, RightsWorld, melody, portal_form
from tests.conftest import login


@pytest.fixture
def clock():
    return FrozenClock(START)


@pytest.fixture
def app(make_app, clock):
    return make_app(clock=clock)


@pytest.fixture
def world(app, clock):
    return RightsWorld(app, clock)


def _notices(app) -> int:
    session = app.extensions["ninety"].sessions()
    try:
        return session.scalar(select(func.count()).select_from(Notice))
    finally:
        session.close()


def _portal(app, user):
    client = app.test_client()
    login(client, user)
    return client


def test_a_rights_holder_files_a_notice_and_follows_it(app, world):
    nova = world.artist("Nova")
    rita = world.user("rights_holder", name="Rita")
    client = _portal(app, rita)
    form = client.get("/rights/notices/new")
    assert form.status_code == 200 and 'name="idempotency_key"' in form.text
    answer = client.post("/rights/notices", data=portal_form(nova["release_url"] + "#", nova["tracks"][0]))
    assert answer.status_code == 303, answer.text
    page = client.get(answer.headers["Location"])
    assert page.status_code == 200
    assert "Notice 1 received" in page.text and "2026-10-15 09:00" in page.text  # decided within 24 hours
    assert 'id="notice-status">received' in page.text and "Nova song 1" in page.text
    assert 'data-action="received"' in page.text  # the audit log
    listing = client.get("/rights")
    assert "Notice 1" in listing.text and "/rights/notices/1" in listing.text


def test_missing_elements_are_each_marked_and_nothing_is_written(app, world):
    nova = world.artist("Nova")
    client = _portal(app, world.user("rights_holder"))
    form = portal_form(nova["tracks"][0], signature="", claimant_address="", claimant_phone="",
                       **{"works-0-title": ""})
    del form["authorized"]
    answer = client.post("/rights/notices", data=form)
    assert answer.status_code == 422
    body = answer.text
    for code in ("missing_signature", "missing_claimant_contact", "missing_authority_statement",
                 "missing_work_title"):
        assert f'data-code="{code}"' in body, code
    for field in ("signature", "claimant_address", "authorized", "works-0-title"):
        assert f'id="{field}" name="{field}" aria-invalid="true"' in body, field
    assert 'id="claimant_name" name="claimant_name" aria-invalid' not in body  # a present element is not marked
    assert 'value="Rita Rights"' in body  # what was typed is kept
    assert _notices(app) == 0


@pytest.mark.parametrize("case", ["unknown", "own", "foreign_url"])
def test_tracks_that_cannot_be_named_are_refused(app, world, case):
    nova = world.artist("Nova")
    if case == "own":
        claimant = nova["user"]
        from core.db import transaction
        from core.users import get_user, set_roles

        with transaction(app.extensions["ninety"].sessions) as s:
            set_roles(s, get_user(s, claimant.id), ["artist", "rights_holder"])
            s.flush()
            claimant.session_version = get_user(s, claimant.id).session_version
        target, code = nova["tracks"][0], "own_track"
    elif case == "unknown":
        claimant, target, code = world.user("rights_holder"), 999_999, "unknown_track"
    else:
        claimant, target, code = world.user("rights_holder"), "https://elsewhere.test/whatever", "invalid_track_reference"
    answer = _portal(app, claimant).post("/rights/notices", data=portal_form(target))
    assert answer.status_code == 422
    assert f'data-code="{code}"' in answer.text
    assert 'id="works-0-tracks" name="works-0-tracks" aria-invalid="true"' in answer.text
    assert _notices(app) == 0


def test_a_csv_of_works_files_one_notice_and_a_malformed_one_says_where(app, world):
    nova = world.artist("Nova", tracks=2)
    client = _portal(app, world.user("rights_holder"))
    broken = b'title,description,tracks\n"Work A","copied",1\n"Work B","copied"\n'
    answer = client.post("/rights/notices", data={**portal_form(), "csv": (io.BytesIO(broken), "works.csv")},
                         content_type="multipart/form-data")
    assert answer.status_code == 422 and 'data-code="malformed_csv"' in answer.text and "line 3" in answer.text
    not_utf8 = "title,description,tracks\nÉtude,copied,1\n".encode("latin-1")
    answer = client.post("/rights/notices", data={**portal_form(), "csv": (io.BytesIO(not_utf8), "works.csv")},
                         content_type="multipart/form-data")
    assert answer.status_code == 422 and "not UTF-8" in answer.text
    assert _notices(app) == 0
    good = (f'title,description,tracks\n"Work A","copied",{nova["tracks"][0]}\n'
            f'"Work B","copied too","track:{nova["tracks"][1]}"\n').encode()
    answer = client.post("/rights/notices", data={**portal_form(), "csv": (io.BytesIO(good), "works.csv")},
                         content_type="multipart/form-data")
    assert answer.status_code == 303, answer.text
    page = client.get(answer.headers["Location"]).text
    assert "Work A" in page and "Work B" in page and "Nova song 2" in page
    assert _notices(app) == 1


def test_a_double_submit_files_one_notice(app, world):
    nova = world.artist("Nova")
    client = _portal(app, world.user("rights_holder"))
    form = portal_form(nova["tracks"][0], idempotency_key="k" * 24)
    first = client.post("/rights/notices", data=form)
    second = client.post("/rights/notices", data=form)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert _notices(app) == 1


def test_reference_recordings_too_large_or_unreadable_are_refused(make_app, clock):
    app = make_app(clock=clock, max_reference_bytes=50_000)
    world = RightsWorld(app, clock)
    nova = world.artist("Nova")
    client = _portal(app, world.user("rights_holder"))
    big = melody(1)  # about 1 MB
    answer = client.post("/rights/notices", data={**portal_form(nova["tracks"][0]),
                                                  "works-0-reference": (io.BytesIO(big), "master.wav")},
                         content_type="multipart/form-data")
    assert answer.status_code == 413 and 'data-code="reference_too_large"' in answer.text
    answer = client.post("/rights/notices", data={**portal_form(),
                                                  "works-0-reference": (io.BytesIO(b"not audio at all" * 50), "x.wav")},
                         content_type="multipart/form-data")
    assert answer.status_code == 422 and 'data-code="reference_unreadable"' in answer.text
    assert _notices(app) == 0


def test_a_reference_recording_finds_the_track(app, world):
    nova = world.artist("Nova")
    client = _portal(app, world.user("rights_holder"))
    same = melody(world.melodies[0], fmt="flac")  # the same recording, another encoding
    answer = client.post("/rights/notices", data={**portal_form(), "works-0-reference": (io.BytesIO(same), "m.flac")},
                         content_type="multipart/form-data")
    assert answer.status_code == 303, answer.text
    page = client.get(answer.headers["Location"]).text
    assert 'id="case-1"' in page and "Nova song 1" in page.split('id="case-1"')[1].split("</tr>")[0]
    other = melody(99, fmt="ogg")
    answer = client.post("/rights/notices", data={**portal_form(), "works-0-reference": (io.BytesIO(other), "o.ogg")},
                         content_type="multipart/form-data")
    assert answer.status_code == 422 and 'data-code="reference_no_match"' in answer.text
    assert nova["tracks"]
