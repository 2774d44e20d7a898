"""Payee takeover (issue 9): each step of the attack reproduced on the demo, refused.

Artist A "invited" artist B's pending collaborator by email and was handed B's payee; put it on A's own
track at 0.01 %; A's studio then showed that payee's signed invitation link; A accepted it with A's own
account. The payout-method half of the attack is in tests/royalties/test_payout_method.py.
"""

from __future__ import annotations

import re

import pytest

from catalog import services
from catalog.errors import CatalogError, InvalidSplitSheet
from catalog.models import Payee, SplitShare, SplitSheet
from catalog.payees import invitations_for_artist
from core.users import get_user
from tests.conftest import CliRunner, login

HTML = {"Accept": "text/html"}


@pytest.fixture
def app(make_app, smtp):
    return make_app(smtp_url=smtp.url)


@pytest.fixture
def two_artists(make_user, make_artist, db_session):
    user_a = make_user(roles=("artist",), email="alice@artists.example.com")
    user_b = make_user(roles=("artist",), email="bob@artists.example.com")
    artist_a = make_artist(user_a, name="Alice")
    artist_b = make_artist(user_b, name="Bob")
    pat_of_b = services.invite_payee(db_session, artist_b.id, email="pat@example.com", display_name="Pat")
    db_session.commit()  # services never commit; the fixture owns this unit of work
    return {"user_a": user_a, "user_b": user_b, "a": artist_a, "b": artist_b, "pat_of_b": pat_of_b}


def _form(client, url, data):
    return client.post(url, data={"csrf_token": "test-csrf", **data}, headers=HTML)


def _secret(app) -> str:
    return app.extensions["ninety"].config.secret_key


def test_inviting_an_address_another_artist_invited_creates_a_new_payee(two_artists, db_session):
    a, b, pat_of_b = two_artists["a"], two_artists["b"], two_artists["pat_of_b"]
    mine = services.invite_payee(db_session, a.id, email="PAT@example.com", display_name="Pat")
    assert mine.id != pat_of_b.id and mine.invited_by_artist_id == a.id
    # Nor is another artist's own payee handed over by inviting its account's email.
    bobs = services.invite_payee(db_session, a.id, email="bob@artists.example.com")
    assert bobs.id != services.artist_payee(db_session, b.id).id and bobs.artist_id is None
    # The same artist inviting the same address again gets its own pending invitation back, not a third payee.
    assert services.invite_payee(db_session, a.id, email="pat@EXAMPLE.com").id == mine.id
    assert db_session.query(Payee).filter(Payee.email.ilike("pat@example.com")).count() == 2
    assert [p.id for p in invitations_for_artist(db_session, a.id)] == [mine.id, bobs.id]


def test_a_split_sheet_cannot_name_another_artists_payee(two_artists, db_session, make_published_track, clock):
    a, pat_of_b = two_artists["a"], two_artists["pat_of_b"]
    track = make_published_track(a)
    own = services.artist_payee(db_session, a.id)
    with pytest.raises(InvalidSplitSheet) as refused:
        services.set_split_sheet(db_session, track, [(own.id, 9_999), (pat_of_b.id, 1)], clock=clock)
    assert refused.value.code == "unknown_payee"
    db_session.rollback()
    bobs_own = services.artist_payee(db_session, two_artists["b"].id)
    with pytest.raises(InvalidSplitSheet):
        services.set_split_sheet(db_session, track, [(own.id, 9_999), (bobs_own.id, 1)], clock=clock)
    db_session.rollback()
    mine = services.invite_payee(db_session, a.id, email="pat@example.com")
    sheet = services.set_split_sheet(db_session, track, [(own.id, 9_000), (mine.id, 1_000)], clock=clock)
    assert [s.payee_id for s in sheet.shares] == [own.id, mine.id]


def test_the_studio_shows_only_links_of_invitations_the_artist_sent(app, two_artists, db_session,
                                                                     make_published_track, clock):
    a, pat_of_b = two_artists["a"], two_artists["pat_of_b"]
    track = make_published_track(a)
    own = services.artist_payee(db_session, a.id)
    mine = services.invite_payee(db_session, a.id, email="sam@example.com", display_name="Sam")
    # A sheet written before the split check existed still names B's invitation on A's track.
    db_session.add(SplitSheet(track_id=track.id, version=2, effective_at=clock.now(), shares=[
        SplitShare(payee_id=own.id, share_bp=8_999, position=0), SplitShare(payee_id=mine.id, share_bp=1_000,
                                                                           position=1),
        SplitShare(payee_id=pat_of_b.id, share_bp=1, position=2)]))
    db_session.commit()
    studio = app.test_client()
    login(studio, two_artists["user_a"])
    page = studio.get(f"/studio/releases/{track.release_id}", headers=HTML)
    assert page.status_code == 200 and "Pat" in page.text  # listed, as a share on the sheet
    assert services.invitation_token(mine, _secret(app)) in page.text
    assert services.invitation_token(pat_of_b, _secret(app)) not in page.text
    assert f"/invitations/{pat_of_b.id}." not in page.text


def test_accepting_with_another_account_is_refused_and_binds_nothing(app, two_artists, db_session):
    pat_of_b = two_artists["pat_of_b"]
    token = services.invitation_token(pat_of_b, _secret(app))
    intruder = app.test_client()
    login(intruder, two_artists["user_a"])
    refused = _form(intruder, f"/invitations/{token}", {})
    assert refused.status_code == 403
    assert "only the account with that email address can accept it" in refused.text and "p…@example.com" in refused.text
    db_session.refresh(pat_of_b)
    assert pat_of_b.user_id is None and pat_of_b.accepted_at is None
    with pytest.raises(CatalogError) as caught:
        services.accept_invitation(db_session, token, get_user(db_session, two_artists["user_a"].id),
                                   secret=_secret(app), clock=app.extensions["ninety"].clock)
    assert caught.value.code == "invitation_wrong_account"


def test_the_invitation_is_emailed_and_only_the_invited_address_accepts_it(app, two_artists, db_session, smtp,
                                                                           make_published_track, make_user):
    a = two_artists["a"]
    track = make_published_track(a)
    own = services.artist_payee(db_session, a.id)
    studio = app.test_client()
    login(studio, two_artists["user_a"])
    saved = _form(studio, f"/studio/releases/{track.release_id}/split",
                  {f"share_{own.id}": "70", "new_email_0": "Quinn@Example.com", "new_name_0": "Quinn",
                   "new_share_0": "30"})
    assert saved.status_code == 303, saved.text
    result = CliRunner(app).invoke(["jobs", "work", "--burst"])
    assert result.exit_code == 0 and "0 failed jobs" in result.output, result.output
    [mail] = smtp.to("Quinn@Example.com")
    assert "Alice" in mail["subject"]
    link = re.search(r"http://\S+/invitations/(\S+)", mail["body"])
    quinn_payee = db_session.query(Payee).filter_by(display_name="Quinn").one()
    assert link and link[1] == services.invitation_token(quinn_payee, _secret(app))
    quinn = app.test_client()
    login(quinn, make_user(roles=("listener",), email="quinn@example.com"))
    assert _form(quinn, f"/invitations/{link[1]}", {}).status_code == 303
    db_session.refresh(quinn_payee)
    assert quinn_payee.user_id is not None and quinn_payee.accepted_at is not None
