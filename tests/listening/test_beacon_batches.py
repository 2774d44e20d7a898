"""Play beacons are written in batches (app/web/listening.py, core.batching): one Redis round trip and one
statement for many reports, reports of the same play among them, and nothing lost when the database refuses."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.listening.conftest import BROWSER_UA, drain_beacons, start_play
from tests.listening.test_plays import plays_of


def _checked(app, client, track_id, clock, *, heard_ms: int, token: str | None = None):
    from app.web.listening import settings
    from entitlements import listening

    token = token or start_play(client, track_id).get_json()["play_token"]
    listener_id = client.get_cookie("ninety_lid")
    with app.test_request_context(headers={"User-Agent": BROWSER_UA, "Cookie": f"ninety_lid={listener_id.value}"}):
        from app.web.listening import listener

        who = listener()
        with app.app_context():
            checked = listening.play_report(token, heard_ms, who, settings=settings(), clock=clock)
    assert isinstance(checked, listening.HeardReport), checked
    return token, checked

def test_many_reports_in_one_batch_each_play_counted_once_with_its_most_heard(app, client, clock, make_track):
    from catalog.play_models import ListeningSession, Play
    from entitlements import listening

    track_id = make_track()
    runtime = app.extensions["ninety"]
    token_a = start_play(client, track_id).get_json()["play_token"]
    token_b = start_play(client, track_id).get_json()["play_token"]
    clock.advance(seconds=45)
    _, a1 = _checked(app, client, track_id, clock, heard_ms=20_000, token=token_a)
    _, a2 = _checked(app, client, track_id, clock, heard_ms=31_000, token=token_a)
    _, a3 = _checked(app, client, track_id, clock, heard_ms=40_000, token=token_a)
    _, b1 = _checked(app, client, track_id, clock, heard_ms=35_000, token=token_b)
    _, stale = _checked(app, client, track_id, clock, heard_ms=30_000, token=token_a)  # less than before
    with runtime.engine.connect() as connection:
        outcomes = listening.count_plays(connection, runtime.redis, [a1, a2, a3, b1, stale])
        connection.commit()
    assert outcomes == ["listening", "counted", "updated", "counted", "stale"]
    assert plays_of(app, track_id) == 2
    with runtime.sessions() as session:
        heard = dict(session.execute(select(Play.play_id, Play.heard_ms)).all())
        assert heard == {a1.report.play_id: 40_000, b1.report.play_id: 35_000}
        sessions = session.scalars(select(ListeningSession.heard_ms)).all()
        assert sorted(sessions) == [35_000, 40_000]  # each session's time: what was new, added once

def test_reports_refused_by_the_database_are_counted_by_the_next_batch(app, client, clock, make_track):
    from entitlements import listening

    track_id = make_track()
    runtime = app.extensions["ninety"]
    token = start_play(client, track_id).get_json()["play_token"]
    clock.advance(seconds=40)
    _, checked = _checked(app, client, track_id, clock, heard_ms=35_000, token=token)

    class Refusing:
        def cursor(self):
            raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        listening.count_plays(Refusing(), runtime.redis, [checked])
    assert plays_of(app, track_id) == 0
    with runtime.engine.connect() as connection:  # the mark was put back: the same report counts now
        assert listening.count_plays(connection, runtime.redis, [checked]) == ["counted"]
        connection.commit()
    assert plays_of(app, track_id) == 1

def test_the_beacon_is_answered_before_the_write_and_drain_waits_for_it(app, client, clock, make_track):
    from tests.listening.conftest import beacon

    track_id = make_track()
    token = start_play(client, track_id).get_json()["play_token"]
    clock.advance(seconds=31)
    response = client.post("/listen/beacon", data={"token": token, "heard_ms": "31000"},
                           headers={"User-Agent": BROWSER_UA})
    assert response.status_code == 204
    drain_beacons(app)
    assert plays_of(app, track_id) == 1
    beacon(client, token, 31_000)  # replayed: still one
    assert plays_of(app, track_id) == 1
