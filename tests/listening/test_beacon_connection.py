"""The play beacon runs on its own autocommit pool without a pre-ping: a connection the database closed
(a restart, an idle timeout) costs one retry on a new connection, never a 500 or a lost play."""

from __future__ import annotations

from sqlalchemy import text

from tests.listening.conftest import beacon, start_play
from tests.listening.test_plays import plays_of


def test_a_beacon_on_a_connection_the_server_closed_is_retried(app, client, clock, make_track):
    from app.web.listening import beacon_engine

    track_id = make_track()
    first = start_play(client, track_id).get_json()["play_token"]
    clock.advance(seconds=31)
    assert beacon(client, first, 31_000).status_code == 204  # the pool now holds an idle connection
    runtime = app.extensions["ninety"]
    engine = beacon_engine(runtime)
    with engine.connect() as connection:
        pids = [connection.execute(text("SELECT pg_backend_pid()")).scalar()]
    with runtime.engine.connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(pid) FROM unnest(CAST(:p AS int[])) AS pid"), {"p": pids})
        admin.commit()
    second = start_play(client, track_id).get_json()["play_token"]
    clock.advance(seconds=31)
    assert beacon(client, second, 31_000).status_code == 204
    assert plays_of(app, track_id) == 2
