"""GET handlers do not write: the request hook asks PostgreSQL whether a GET's transaction wrote."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from sqlalchemy import text

from app.transactions import GetWrote, finish_request, writes_on_get


@pytest.fixture
def bare(app):
    """A request context of a throwaway Flask app whose view functions the test chooses."""
    flask_app = Flask("bare")

    def plain():
        return ""

    @writes_on_get("a single-use link")
    def marked():
        return ""

    flask_app.add_url_rule("/plain", "plain", plain)
    flask_app.add_url_rule("/marked", "marked", marked)
    return flask_app


def _written(app):
    session = app.extensions["ninety"].sessions()
    session.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS get_probe (x int)"))
    session.execute(text("INSERT INTO get_probe VALUES (1)"))  # assigns the transaction an id: it wrote
    return session


def test_an_unmarked_get_that_writes_is_refused_in_strict_mode_and_logged_otherwise(app, bare, caplog):
    with bare.test_request_context("/plain", method="GET"):
        session = _written(app)
        with pytest.raises(GetWrote):
            finish_request(session, 200, production=False, strict=True)
        assert not session.in_transaction()  # rolled back
        session.close()
    with bare.test_request_context("/plain", method="GET"), caplog.at_level(logging.ERROR, "ninety.transactions"):
        session = _written(app)
        finish_request(session, 200, production=False, strict=False)
        session.close()
    assert any("wrote to the database" in r.getMessage() for r in caplog.records)


def test_marked_gets_reads_and_posts_pass(app, bare, caplog):
    with caplog.at_level(logging.ERROR, "ninety.transactions"):
        for path, method, write in (("/marked", "GET", True), ("/plain", "GET", False), ("/plain", "POST", True)):
            with bare.test_request_context(path, method=method):
                session = _written(app) if write else app.extensions["ninety"].sessions()
                if not write:
                    session.execute(text("SELECT 1"))
                finish_request(session, 200, production=False, strict=True)
                session.close()
    assert caplog.records == []


def test_the_real_gate_and_download_views_are_the_marked_exceptions(app):
    views = app.view_functions
    marked = sorted(name for name, view in views.items() if getattr(view, "writes_on_get", None))
    assert {"web_ads.gate_download", "web_catalog.download", "web_ads.click"} <= set(marked)


def test_the_app_runs_strict_a_get_that_writes_is_refused_and_rolled_back(app, make_user, db_session):
    from app import context
    from app.auth import access
    from core.users import User

    user = make_user()

    @access(public=True)
    def sneaky():
        context.db().execute(text("UPDATE users SET display_name = 'changed by a GET'"))
        return "ok"

    app.add_url_rule("/sneaky-get", "sneaky_get", sneaky)
    with pytest.raises(GetWrote):
        app.test_client().get("/sneaky-get")
    db_session.expire_all()
    assert db_session.get(User, user.id).display_name != "changed by a GET"


def test_token_auth_gets_do_not_write_and_writes_record_use_once_a_minute(make_app, make_user):
    from datetime import timedelta

    from core.clock import FrozenClock
    from core.users import ApiToken, issue_token

    clock = FrozenClock()
    app = make_app(clock=clock)
    user = make_user(roles=("listener",))
    session = app.extensions["ninety"].sessions()
    token, raw = issue_token(session, session.merge(user), name="cli", scopes=["listener", "tokens"])
    session.commit()
    bearer = {"Authorization": f"Bearer {raw}"}
    client = app.test_client()

    def last_used():
        session.expire_all()
        return session.get(ApiToken, token.id).last_used_at

    for path in ("/api/v1/me", "/api/v1/tokens"):  # strict: a write here would raise GetWrote
        assert client.get(path, headers=bearer).status_code == 200
        assert client.head(path, headers=bearer).status_code == 200
    assert last_used() is None
    assert client.post("/api/v1/tokens", json={"name": "one", "scopes": ["listener"]},
                       headers=bearer).status_code == 201
    first = last_used()
    assert first == clock.now()
    clock.advance(seconds=30)
    client.post("/api/v1/tokens", json={"name": "two", "scopes": ["listener"]}, headers=bearer)
    assert last_used() == first  # at most once a minute per token
    clock.advance(seconds=31)
    client.post("/api/v1/tokens", json={"name": "three", "scopes": ["listener"]}, headers=bearer)
    assert last_used() == first + timedelta(seconds=61)
    session.close()


def _asked(engine):
    """The statements that ask the server whether the transaction wrote, as they are sent."""
    from sqlalchemy import event

    asked = []

    def note(connection, cursor, statement, *args):
        if "pg_current_xact_id_if_assigned" in statement:
            asked.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    return asked, lambda: event.remove(engine, "before_cursor_execute", note)


@pytest.mark.parametrize(("statement", "asks", "wrote"), [
    ("SELECT 1", False, False),                              # a plain read: nothing to ask
    ("  select count(*) FROM users", False, False),
    ("SELECT id FROM users FOR UPDATE", True, True),         # a row lock assigns a transaction id
    ("SELECT id FROM users FOR NO KEY UPDATE", True, True),
    ("WITH x AS (UPDATE users SET display_name = display_name RETURNING 1) SELECT count(*) FROM x", True, True),
    ("SET LOCAL work_mem = '8MB'", True, False),             # not a read, so the server is asked: it did not write
    ("UPDATE users SET display_name = display_name", True, True),
])
def test_the_server_is_asked_only_when_a_statement_could_have_written(app, bare, make_user, statement, asks, wrote):
    make_user()
    engine = app.extensions["ninety"].engine
    asked, stop = _asked(engine)
    try:
        with bare.test_request_context("/plain", method="GET"):
            session = app.extensions["ninety"].sessions()
            session.execute(text(statement))
            if wrote:
                with pytest.raises(GetWrote):
                    finish_request(session, 200, production=False, strict=True)
            else:
                finish_request(session, 200, production=False, strict=True)
            session.close()
        assert bool(asked) is asks
        # The next transaction on the same pooled connection starts with a clean slate.
        asked.clear()
        with bare.test_request_context("/plain", method="GET"):
            session = app.extensions["ninety"].sessions()
            session.execute(text("SELECT 1"))
            finish_request(session, 200, production=False, strict=True)
            session.close()
        assert asked == []
    finally:
        stop()


def test_an_engine_not_watched_is_always_asked(app, bare):
    from core.db import make_engine, make_session_factory

    engine = make_engine(app.extensions["ninety"].engine.url.render_as_string(hide_password=False))
    asked, stop = _asked(engine)
    try:
        with bare.test_request_context("/plain", method="GET"):
            session = make_session_factory(engine)()
            session.execute(text("SELECT 1"))
            finish_request(session, 200, production=False, strict=True)
            session.close()
        assert len(asked) == 1
    finally:
        stop()
        engine.dispose()
