"""Who hears what, and play counting: 30 s heard (by the wall clock too), duplicates, bots, forgeries."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.conftest import login
from tests.listening.conftest import BOT_UA, beacon, start_play


def plays_of(app, track_id: int) -> int:
    from catalog.play_models import Play

    with app.extensions["ninety"].sessions() as session:
        return session.scalar(select(func.count()).select_from(Play).where(Play.track_id == track_id))


def test_a_free_track_plays_in_full_after_an_ad_once_per_session(client, make_track):
    track_id = make_track()
    first = start_play(client, track_id)
    assert first.status_code == 200
    ticket = first.get_json()
    assert ticket["access"] == "full" and ticket["reason"] == "free"
    assert ticket["ad_first"] is True and ticket["vast_url"] == f"/ads/vast?slot=player&track={track_id}"
    again = start_play(client, track_id, session_id=ticket["session_id"]).get_json()
    assert again["ad_first"] is False and again["session_id"] == ticket["session_id"]
    assert again["play_token"] != ticket["play_token"]


def test_a_play_counts_after_30_seconds_heard(app, client, clock, make_track):
    from catalog.play_models import ListeningSession, Play

    track_id = make_track()
    token = start_play(client, track_id).get_json()["play_token"]
    clock.advance(seconds=29)
    assert beacon(client, token, 29_000).status_code == 204
    assert plays_of(app, track_id) == 0  # 29 s is not a play
    clock.advance(seconds=2)
    beacon(client, token, 31_000)
    assert plays_of(app, track_id) == 1
    for _ in range(3):  # the same report again, replayed: still one play
        beacon(client, token, 31_000)
    clock.advance(seconds=30)
    beacon(client, token, 61_000)  # listening on: the play's time grows, the count does not
    assert plays_of(app, track_id) == 1
    with app.extensions["ninety"].sessions() as session:
        play = session.scalar(select(Play))
        assert play.heard_ms == 61_000 and play.kind == "full"
        assert session.scalar(select(ListeningSession.heard_ms)) == 61_000


def test_the_wall_clock_bounds_what_was_heard(app, client, clock, make_track):
    track_id = make_track()
    token = start_play(client, track_id).get_json()["play_token"]
    clock.advance(seconds=5)
    beacon(client, token, 60_000)  # claims a minute after five seconds
    assert plays_of(app, track_id) == 0
    clock.advance(seconds=26)
    beacon(client, token, 31_000)
    assert plays_of(app, track_id) == 1


def test_bots_forgeries_and_other_listeners_are_not_counted(app, client, clock, make_track):
    track_id = make_track()
    token = start_play(client, track_id).get_json()["play_token"]
    clock.advance(seconds=40)
    beacon(client, token, 40_000, ua=BOT_UA)
    beacon(client, token, 40_000, ua="")
    assert plays_of(app, track_id) == 0
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    beacon(client, forged, 40_000)
    beacon(client, token.replace(".f.", ".p.", 1), 40_000)  # the kind is signed
    beacon(client, "garbage", 40_000)
    assert beacon(client, token, -5).status_code == 204
    assert plays_of(app, track_id) == 0
    stranger = app.test_client()  # another browser (another listener id) replaying the token
    beacon(stranger, token, 40_000)
    assert plays_of(app, track_id) == 0
    beacon(client, token, 40_000)  # the listener it was issued to
    assert plays_of(app, track_id) == 1


def test_a_priced_track_plays_in_full_three_times_then_as_a_preview(app, client, make_track):
    track_id = make_track("fixed")
    left = []
    session_id = None
    for _ in range(3):
        ticket = start_play(client, track_id).get_json()  # a new listening session each time
        assert ticket["access"] == "full" and ticket["ad_first"] is False
        left.append(ticket["full_plays_left"])
        session_id = ticket["session_id"]
        again = start_play(client, track_id, session_id=session_id).get_json()  # same session: nothing spent
        assert again["access"] == "full" and again["full_plays_left"] == ticket["full_plays_left"]
    assert left == [2, 1, 0]
    fourth = start_play(client, track_id).get_json()
    assert fourth["access"] == "preview" and fourth["reason"] == "full_plays_used"
    assert all("preview" not in s["url"] for s in fourth["sources"])  # URLs name content hashes only
    page = client.get(f"/tracks/{track_id}")
    assert page.status_code == 200 and b"30-second preview" in page.data


def test_previews_only_is_the_artists_choice(app, client, make_track, make_user):
    track_id = make_track("fixed")
    artist_user = make_track.users["Listening Testers:user"]
    artist = app.test_client()
    login(artist, artist_user)
    with artist.session_transaction() as sess:
        sess["_csrf"] = "test-csrf"
    response = artist.post(f"/studio/tracks/{track_id}/previews-only",
                           data={"previews_only": "on", "csrf_token": "test-csrf"})
    assert response.status_code == 303
    ticket = start_play(client, track_id).get_json()
    assert ticket["access"] == "preview" and ticket["reason"] == "previews_only"
    assert start_play(artist, track_id).get_json()["access"] == "full"  # the artist hears it all
    stranger = app.test_client()
    login(stranger, make_user(roles=("artist",)))
    with stranger.session_transaction() as sess:
        sess["_csrf"] = "test-csrf"
    refused = stranger.post(f"/studio/tracks/{track_id}/previews-only", data={"csrf_token": "test-csrf"})
    assert refused.status_code == 403


def test_unknown_unplayable_and_taken_down_tracks(app, client, make_track):
    from catalog import services as catalog

    assert start_play(client, 999_999).status_code == 404
    assert start_play(client, 2**31 + 5).status_code == 404
    track_id = make_track()
    with app.extensions["ninety"].sessions() as session:
        catalog.take_down_track(session, catalog.get_track(session, track_id))
        session.commit()
    response = start_play(client, track_id)
    assert response.status_code == 410 and response.get_json()["code"] == "track_taken_down"


@pytest.mark.parametrize("heard", ["abc", "", "99999999999999"])
def test_bad_beacon_bodies_are_quietly_refused(client, make_track, heard):
    track_id = make_track()
    token = start_play(client, track_id).get_json()["play_token"]
    response = client.post("/listen/beacon", data={"token": token, "heard_ms": heard})
    assert response.status_code == 204
    assert client.post("/listen/beacon", json=["not", "an", "object"]).status_code == 204


def test_the_artist_sees_the_count_on_the_dashboard(app, client, clock, make_track):
    track_id = make_track()
    token = start_play(client, track_id).get_json()["play_token"]
    clock.advance(seconds=31)
    beacon(client, token, 31_000)
    artist = app.test_client()
    login(artist, make_track.users["Listening Testers:user"])
    page = artist.get("/dashboard")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    row = html[html.index(f'id="plays-track-{track_id}"'):]
    row = row[:row.index("</tr>")]
    assert '<td class="num">1</td>' in row and clock.now().date().isoformat() + ": 1" in row
