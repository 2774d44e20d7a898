"""The form helper: a refused form action commits nothing it had flushed, and says why on the next page."""

from __future__ import annotations

from flask import flash, redirect
from sqlalchemy import select

from app import context
from app.auth import access
from app.forms import attempt
from core.errors import ValidationError
from core.users import User, create_user
from tests.conftest import csrf_headers, login


def _refusing_service(session, email: str) -> None:
    """Writes, flushes, then refuses: the shape of a service that checks something only it can see late."""
    create_user(session, email=email, password="correct horse battery", display_name="Half", roles=["listener"])
    session.flush()
    raise ValidationError("Refused after a flush.", code="refused_late")


def _routes(app):
    @app.post("/_test/form/attempt")
    @access(public=True)
    def with_attempt():
        with attempt() as tried:
            _refusing_service(context.db(), "attempt@example.com")
        assert tried.failed and tried.error.code == "refused_late"
        return redirect("/account", code=303)

    @app.post("/_test/form/bare")
    @access(public=True)
    def bare_idiom():  # the idiom the helper replaces: catch, flash, redirect (the request then commits)
        try:
            _refusing_service(context.db(), "bare@example.com")
        except ValidationError as exc:
            flash(exc.message, "error")
        return redirect("/account", code=303)

    @app.post("/_test/form/ok")
    @access(public=True)
    def succeeding():
        with attempt() as tried:
            create_user(context.db(), email="kept@example.com", password="correct horse battery",
                        display_name="Kept", roles=["listener"])
        assert not tried.failed
        return redirect("/account", code=303)


def _emails(app) -> set[str]:
    session = app.extensions["ninety"].sessions()
    try:
        return set(session.scalars(select(User.email)))
    finally:
        session.close()


def test_a_refused_form_action_commits_nothing_it_had_flushed(app, make_user):
    _routes(app)
    client = app.test_client()
    login(client, make_user())
    response = client.post("/_test/form/attempt", headers=csrf_headers())
    assert response.status_code == 303
    assert "attempt@example.com" not in _emails(app)
    with client.session_transaction() as sess:
        assert ("error", "Refused after a flush.") in sess.get("_flashes", [])

    # Without the savepoint, the redirect's commit keeps the half-written row: what the helper prevents.
    assert client.post("/_test/form/bare", headers=csrf_headers()).status_code == 303
    assert "bare@example.com" in _emails(app)

    assert client.post("/_test/form/ok", headers=csrf_headers()).status_code == 303
    assert "kept@example.com" in _emails(app)


def test_the_ads_console_refusal_flashes_and_redirects(app, make_user):
    client = app.test_client()
    login(client, make_user(roles=("advertiser",)))
    response = client.post("/advertise", data={"name": "", "currency": "USD"}, headers=csrf_headers())
    assert response.status_code == 303 and response.headers["Location"].endswith("/advertise")
    with client.session_transaction() as sess:
        assert any(category == "error" and "name" in message for category, message in sess.get("_flashes", []))
