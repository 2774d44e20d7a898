"""/api/v1/notices: token auth, Idempotency-Key (same key, same notice: 201 then 200 with the same id), one
or many works (JSON, or multipart with a CSV), exactly which elements are missing, nothing half-written."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from core.clock import FrozenClock
from rights.models import Case, Notice
from tests.app.rights_world import START, RightsWorld, notice_payload


@pytest.fixture
def clock():
    return FrozenClock(START)


@pytest.fixture
def app(make_app, clock):
    return make_app(clock=clock)


@pytest.fixture
def world(app, clock):
    return RightsWorld(app, clock)


def _count(app, model) -> int:
    session = app.extensions["ninety"].sessions()
    try:
        return session.scalar(select(func.count()).select_from(model))
    finally:
        session.close()


def _api(app, token):
    client = app.test_client()

    def call(method, path, **kwargs):
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return client.open(path, method=method, headers=headers, **kwargs)

    return call


def test_same_idempotency_key_same_notice(app, world, token_for):
    nova = world.artist("Nova", tracks=2)
    api = _api(app, token_for(world.user("rights_holder")))
    payload = notice_payload(nova["tracks"][0], f"track:{nova['tracks'][1]}")
    first = api("POST", "/api/v1/notices", json=payload, headers={"Idempotency-Key": "batch-2026-10-14-001"})
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert body["status"] == "received" and len(body["cases"]) == 2 and body["events"][0]["action"] == "received"
    assert first.headers["Location"].endswith(f"/api/v1/notices/{body['id']}")
    again = api("POST", "/api/v1/notices", json=payload, headers={"Idempotency-Key": "batch-2026-10-14-001"})
    assert again.status_code == 200 and again.get_json()["id"] == body["id"]
    assert _count(app, Notice) == 1 and _count(app, Case) == 2
    other = notice_payload(nova["tracks"][0], title="Something else")
    clash = api("POST", "/api/v1/notices", json=other, headers={"Idempotency-Key": "batch-2026-10-14-001"})
    assert clash.status_code == 409 and clash.get_json()["code"] == "idempotency_conflict"
    bad_key = api("POST", "/api/v1/notices", json=payload, headers={"Idempotency-Key": "has spaces in it"})
    assert bad_key.status_code == 400 and bad_key.get_json()["code"] == "invalid_idempotency_key"
    assert _count(app, Notice) == 1


def test_an_incomplete_notice_lists_exactly_the_missing_elements(app, world, token_for):
    nova = world.artist("Nova")
    api = _api(app, token_for(world.user("rights_holder")))
    payload = notice_payload(nova["tracks"][0], signature="", statements={"good_faith": True, "accurate": False})
    payload["claimant"].pop("email")
    answer = api("POST", "/api/v1/notices", json=payload)
    assert answer.status_code == 422 and answer.mimetype == "application/problem+json"
    problem = answer.get_json()
    assert problem["code"] == "notice_incomplete"
    assert sorted(m["code"] for m in problem["missing"]) == [
        "missing_accuracy_statement", "missing_authority_statement", "missing_claimant_email", "missing_signature"]
    assert {m["field"] for m in problem["missing"]} == {"statements.accurate", "statements.authorized",
                                                        "claimant.email", "signature"}
    assert _count(app, Notice) == 0


def test_wrong_types_and_bodies_are_4xx(app, world, token_for):
    api = _api(app, token_for(world.user("rights_holder")))
    typed = api("POST", "/api/v1/notices", json={"works": [{"tracks": [True]}], "statements": "yes"})
    assert typed.status_code == 422 and typed.get_json()["code"] == "invalid_input"
    assert api("POST", "/api/v1/notices", data="{", content_type="application/json").status_code == 400
    assert api("POST", "/api/v1/notices", data="x", content_type="text/plain").status_code == 415
    assert api("POST", "/api/v1/notices", data={"csv": (io.BytesIO(b"a,b"), "w.csv")},
               content_type="multipart/form-data").get_json()["code"] == "missing_notice"
    assert _count(app, Notice) == 0


def test_unknown_disabled_and_own_tracks_are_named(app, world, token_for, make_user):
    nova = world.artist("Nova", tracks=2)
    api = _api(app, token_for(world.user("rights_holder")))
    answer = api("POST", "/api/v1/notices", json=notice_payload(nova["tracks"][0], 999_999, "release:999999"))
    problem = answer.get_json()
    assert answer.status_code == 422 and problem["code"] == "notice_invalid"
    assert sorted(p["code"] for p in problem["problems"]) == ["unknown_release", "unknown_track"]
    assert _count(app, Notice) == 0
    own = _api(app, token_for(nova["user"]))
    assert own("POST", "/api/v1/notices", json=notice_payload(nova["tracks"][0])).status_code == 403  # not a rights holder


def test_bulk_csv_over_multipart(app, world, token_for):
    nova = world.artist("Nova", tracks=3)
    api = _api(app, token_for(world.user("rights_holder")))
    csv = "title,description,tracks\n" + "".join(f"Work {i},copied,{t}\n" for i, t in enumerate(nova["tracks"]))
    envelope = notice_payload()
    del envelope["works"]
    import json

    answer = api("POST", "/api/v1/notices", data={"notice": json.dumps(envelope), "csv": (io.BytesIO(csv.encode()), "w.csv")},
                 content_type="multipart/form-data", headers={"Idempotency-Key": "csv-1"})
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert body["source"] == "csv" and [w["title"] for w in body["works"]] == ["Work 0", "Work 1", "Work 2"]
    assert sorted(c["track_id"] for c in body["cases"]) == sorted(nova["tracks"])


def test_a_rights_holder_reads_only_their_own_notices(app, world, token_for):
    nova = world.artist("Nova", tracks=2)
    rita, other = world.user("rights_holder"), world.user("rights_holder")
    admin = world.user("admin")
    mine = _api(app, token_for(rita))("POST", "/api/v1/notices", json=notice_payload(nova["tracks"][0])).get_json()
    theirs = _api(app, token_for(other))("POST", "/api/v1/notices", json=notice_payload(nova["tracks"][1])).get_json()
    api = _api(app, token_for(rita))
    assert [n["id"] for n in api("GET", "/api/v1/notices").get_json()["items"]] == [mine["id"]]
    assert api("GET", f"/api/v1/notices/{mine['id']}").status_code == 200
    refused = api("GET", f"/api/v1/notices/{theirs['id']}")
    assert refused.status_code == 404  # not 403: whether someone else's notice exists is not said
    assert api("POST", f"/api/v1/notices/{theirs['id']}/withdraw", json={}).status_code == 404
    assert _api(app, token_for(admin))("GET", f"/api/v1/notices/{theirs['id']}").status_code == 200
    withdrawn = api("POST", f"/api/v1/notices/{mine['id']}/withdraw", json={"reason": "licensed after all"})
    assert withdrawn.status_code == 200 and withdrawn.get_json()["status"] == "withdrawn"


def test_reference_files_over_the_api_too_large_or_unreadable(make_app, clock, token_for):
    import json

    from tests.app.rights_world import melody

    app = make_app(clock=clock, max_reference_bytes=400_000)
    world = RightsWorld(app, clock)
    nova = world.artist("Nova")
    api = _api(app, token_for(world.user("rights_holder")))
    envelope = notice_payload()
    envelope["works"][0].update(tracks=[], reference="master")
    big = api("POST", "/api/v1/notices", data={"notice": json.dumps(envelope), "master": (io.BytesIO(melody(1)), "m.wav")},
              content_type="multipart/form-data")
    assert big.status_code == 413 and big.get_json()["code"] == "reference_too_large"
    noise = api("POST", "/api/v1/notices", data={"notice": json.dumps(envelope), "master": (io.BytesIO(b"x" * 5000), "m.wav")},
                content_type="multipart/form-data")
    assert noise.status_code == 422
    assert [p["code"] for p in noise.get_json()["problems"]] == ["reference_unreadable"]
    found = api("POST", "/api/v1/notices", data={"notice": json.dumps(envelope),
                                                 "master": (io.BytesIO(melody(world.melodies[0], fmt="ogg")), "m.ogg")},
                content_type="multipart/form-data")
    assert found.status_code == 201, found.get_json()
    assert [c["track_id"] for c in found.get_json()["cases"]] == nova["tracks"]  # matched by its fingerprint
    assert _count(app, Notice) == 1
