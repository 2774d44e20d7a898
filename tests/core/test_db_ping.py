"""Pooled connections are pinged only after sitting idle (core.db.make_engine): a busy server hands its
connections out again without a round trip each, and a connection the server closed meanwhile is replaced."""

from __future__ import annotations

import time

from sqlalchemy import text

from core import db


def _pid(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT pg_backend_pid()")).scalar()


def test_a_connection_in_use_again_at_once_is_not_pinged(database_url, monkeypatch):
    engine = db.make_engine(database_url, ping_after_idle_s=60)
    pings = []
    real = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda connection: pings.append(1) or real(connection))
    first = _pid(engine)
    for _ in range(5):
        assert _pid(engine) == first
    assert pings == []
    engine.dispose()


def test_a_connection_the_server_closed_while_idle_is_replaced(database_url):
    engine = db.make_engine(database_url, ping_after_idle_s=0.05)
    admin = db.make_engine(database_url)
    first = _pid(engine)
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first})
        connection.commit()
    time.sleep(0.1)
    second = _pid(engine)  # no error: the ping found it closed and the pool made a new one
    assert second != first
    engine.dispose()
    admin.dispose()
