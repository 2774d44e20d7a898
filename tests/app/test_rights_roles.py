"""Who sees what of a takedown: a rights holder only their own notices, an artist only the cases against
their own tracks, an admin all of them (anyone else's is a 404, so its existence is not told); and the admin
pages for repeat infringers (suspension review, strike appeals) and abusive claimants (§512(f))."""

from __future__ import annotations

import pytest

from core.clock import FrozenClock
from tests.app.rights_world import START, RightsWorld
from tests.app.test_rights_decisions import FORM, _as, _file

ROLE_PAGES = ["/rights", "/rights/notices/new"]
ADMIN_PAGES = ["/admin", "/admin/notices", "/admin/suspensions", "/admin/appeals", "/admin/claimants", "/admin/users"]


@pytest.fixture
def clock():
    return FrozenClock(START)


@pytest.fixture
def app(make_app, clock):
    return make_app(clock=clock)


@pytest.fixture
def world(app, clock):
    return RightsWorld(app, clock)


def _case_ids(page: str) -> list[int]:
    return [int(part.split('"')[0]) for part in page.split('id="case-')[1:]]


def test_each_party_sees_only_their_own_cases(app, world, token_for):
    nova, vega = world.artist("Nova"), world.artist("Vega")
    rita, rex = world.user("rights_holder"), world.user("rights_holder")
    rita_notice = _file(app, token_for, rita, nova["tracks"][0])
    rex_notice = _file(app, token_for, rex, vega["tracks"][0])
    admin = _as(app, world.user("admin"))
    for notice_id in (rita_notice, rex_notice):
        admin.post(f"/admin/notices/{notice_id}/action", data={**FORM, "reason": "Identified."})
        assert admin.get(f"/rights/notices/{notice_id}").status_code == 200  # an admin sees every notice

    as_rita = _as(app, rita)
    listing = as_rita.get("/rights").text
    assert f"Notice {rita_notice}" in listing and f"Notice {rex_notice}" not in listing
    assert as_rita.get(f"/rights/notices/{rex_notice}").status_code == 404
    assert as_rita.post(f"/rights/notices/{rex_notice}/withdraw", data=FORM).status_code == 404

    as_nova, as_vega = _as(app, nova["user"]), _as(app, vega["user"])
    nova_cases, vega_cases = _case_ids(as_nova.get("/dashboard/notices").text), _case_ids(as_vega.get("/dashboard/notices").text)
    assert len(nova_cases) == len(vega_cases) == 1 and nova_cases != vega_cases
    assert as_nova.get(f"/dashboard/notices/{vega_cases[0]}").status_code == 404
    assert as_nova.post(f"/dashboard/notices/{vega_cases[0]}/accept", data=FORM).status_code == 404
    assert as_rita.post(f"/rights/cases/{vega_cases[0]}/court-action", data={**FORM, "reference": "x"}).status_code == 404
    assert admin.get(f"/dashboard/notices/{vega_cases[0]}").status_code == 200

    # Roles: the portal is for rights holders (and admins), the admin pages for admins only.
    for path in ROLE_PAGES:
        assert as_nova.get(path).status_code == 403, path
        assert admin.get(path).status_code == 200, path
    for path in ADMIN_PAGES:
        assert as_rita.get(path).status_code == 403, path
        assert admin.get(path).status_code == 200, path
    assert as_rita.get("/dashboard/notices").status_code == 403


def test_the_claimant_withdraws_and_reports_a_court_action_from_the_portal(app, world, token_for):
    nova = world.artist("Nova", tracks=2)
    rita = world.user("rights_holder")
    withdrawn = _file(app, token_for, rita, nova["tracks"][0])
    contested = _file(app, token_for, rita, nova["tracks"][1])
    admin = _as(app, world.user("admin"))
    for notice_id in (withdrawn, contested):
        admin.post(f"/admin/notices/{notice_id}/action", data={**FORM, "reason": "Identified."})
    portal = _as(app, rita)
    assert portal.post(f"/rights/notices/{withdrawn}/withdraw", data={**FORM, "reason": "We licensed it."}).status_code == 303
    page = portal.get(f"/rights/notices/{withdrawn}").text
    assert 'id="notice-status">withdrawn' in page and "Withdraw notice" not in page
    assert f"Unavailable because of copyright notice {withdrawn}" not in app.test_client().get(nova["release_url"]).text

    artist = _as(app, nova["user"])
    case_id = max(_case_ids(artist.get("/dashboard/notices").text))
    from tests.app.test_rights_decisions import COUNTER

    artist.post(f"/dashboard/notices/{case_id}/counter", data=COUNTER)
    portal.post(f"/rights/cases/{case_id}/court-action", data={**FORM, "reference": "M.D. Tenn. 3:26-cv-01234"})
    page = portal.get(f"/rights/notices/{contested}").text
    assert 'data-state="upheld"' in page and "court action" in page
    assert f"Unavailable because of copyright notice {contested}" in app.test_client().get(nova["release_url"]).text


def test_three_strikes_suspend_and_a_person_reviews_the_suspension_and_the_appeal(app, world, token_for):
    nova = world.artist("Nova", tracks=3)
    rita = world.user("rights_holder")
    admin = _as(app, world.user("admin"))
    artist = _as(app, nova["user"])
    for track_id in nova["tracks"]:
        notice_id = _file(app, token_for, rita, track_id)
        admin.post(f"/admin/notices/{notice_id}/action", data={**FORM, "reason": "Identified."})
    for case_id in _case_ids(artist.get("/dashboard/notices").text):
        assert artist.post(f"/dashboard/notices/{case_id}/accept", data=FORM).status_code == 303
    mine = artist.get("/dashboard/notices").text
    assert f'id="suspended-{nova["artist_id"]}"' in mine and mine.count("Appeal strike") == 3

    queue = admin.get("/admin/suspensions").text
    assert "Nova" in queue and "Lift suspension" in queue
    suspension_id = int(queue.split('id="suspension-')[1].split('"')[0])
    strike_id = int(mine.split('id="strike-')[1].split('"')[0])
    assert artist.post(f"/dashboard/strikes/{strike_id}/appeal", data={**FORM, "grounds": "My own piece."}).status_code == 303
    appeals = admin.get("/admin/appeals").text
    appeal_id = int(appeals.split('id="appeal-')[1].split('"')[0])
    admin.post(f"/admin/appeals/{appeal_id}/grant", data={**FORM, "reason": "The artist showed the session files."})
    assert f'id="appeal-{appeal_id}"' not in admin.get("/admin/appeals").text
    assert "void" in artist.get("/dashboard/notices").text
    admin.post(f"/admin/suspensions/{suspension_id}/lift", data={**FORM, "reason": "Two strikes remain."})
    assert f'id="suspended-{nova["artist_id"]}"' not in artist.get("/dashboard/notices").text


def test_a_claimant_whose_notices_keep_being_rejected_is_flagged(app, world, token_for):
    nova = world.artist("Nova", tracks=3)
    rita = world.user("rights_holder")
    admin = _as(app, world.user("admin"))
    for track_id in nova["tracks"]:
        notice_id = _file(app, token_for, rita, track_id)
        admin.post(f"/admin/notices/{notice_id}/reject", data={**FORM, "reason": "Not a copy."})
    flags = admin.get("/admin/claimants").text
    assert rita.email in flags
    assert "Flagged" in admin.get(f"/admin/notices/{notice_id}").text
    flag_id = int(flags.split('id="flag-')[1].split('"')[0])
    admin.post(f"/admin/claimants/{flag_id}/clear", data={**FORM, "reason": "Honest mistakes; spoke to them."})
    assert rita.email not in admin.get("/admin/claimants").text
