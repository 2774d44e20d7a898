"""Counted plays in the earnings API and on the dashboard: per track and day, for the artist's own payee
only."""

from __future__ import annotations

from tests.conftest import login
from tests.listening.conftest import beacon, start_play


def _count_a_play(client, clock, track_id: int) -> None:
    token = start_play(client, track_id).get_json()["play_token"]
    clock.advance(seconds=31)
    beacon(client, token, 31_000)


def _payee_of(app, track_id: int) -> int:
    from catalog import services as catalog
    from catalog.models import Track

    with app.extensions["ninety"].sessions() as session:
        return catalog.artist_payee(session, session.get(Track, track_id).release.artist_id).id


def test_the_artist_reads_plays_per_track_and_day_and_no_one_else_does(app, client, clock, make_track, make_user):
    played = make_track(title="Played")
    quiet = make_track(title="Quiet")
    first_day = clock.now().date()
    _count_a_play(client, clock, played)
    clock.advance(days=1)
    _count_a_play(client, clock, played)
    _count_a_play(app.test_client(), clock, played)  # another listener, the same day
    start_play(client, quiet)  # started, never heard 30 s: not a play

    artist = app.test_client()
    login(artist, make_track.users["Listening Testers:user"])
    body = artist.get("/api/v1/royalties/plays").get_json()
    assert body["to"] == clock.now().date().isoformat() and body["plays"] == 3
    rows = {row["track_id"]: row for row in body["tracks"]}
    assert set(rows) == {played, quiet}
    assert rows[played]["total"] == 3 and rows[quiet]["total"] == 0
    days = {d["date"]: d["plays"] for d in rows[played]["days"]}
    assert len(days) == 30 and days[first_day.isoformat()] == 1 and days[body["to"]] == 2
    assert sum(days.values()) == 3
    one_day = artist.get(f"/api/v1/royalties/plays?from={first_day}&to={first_day}").get_json()
    assert [d["plays"] for d in one_day["tracks"][0]["days"]] == [1] and one_day["plays"] == 1
    assert artist.get("/api/v1/royalties/plays?from=2026-13-01").status_code == 422
    assert artist.get(f"/api/v1/royalties/plays?from={body['to']}&to={first_day}").status_code == 422
    assert artist.get("/api/v1/royalties/plays?from=2020-01-01&to=2026-01-01").status_code == 422
    table = artist.get("/api/v1/royalties/tracks").get_json()["tracks"]
    assert {row["track_id"]: row["plays"] for row in table} == {played: 3, quiet: 0}

    page = artist.get("/dashboard").get_data(as_text=True)
    assert 'id="plays-chart"' in page
    assert f'data-day="{body["to"]}" data-plays="2"' in page  # the chart's bar for today: 2 plays
    row = page[page.index(f'id="plays-track-{played}"'):]
    assert '<td class="num">3</td>' in row[:row.index("</tr>")]

    payee_id = _payee_of(app, played)
    other = app.test_client()
    login(other, make_user(roles=("artist",)))
    refused = other.get(f"/api/v1/royalties/plays?payee={payee_id}")
    assert refused.status_code == 404 and refused.get_json()["code"] == "payee_not_found"
    assert other.get(f"/api/v1/royalties/tracks?payee={payee_id}").status_code == 404
    assert other.get("/api/v1/royalties/plays").status_code == 404  # no payee of their own
    rival = app.test_client()
    rival_track = make_track(title="Rival", artist_name="Another Band")
    login(rival, make_track.users["Another Band:user"])
    own = rival.get("/api/v1/royalties/plays").get_json()
    assert [row["track_id"] for row in own["tracks"]] == [rival_track] and own["plays"] == 0
    assert app.test_client().get("/api/v1/royalties/plays").status_code == 401
