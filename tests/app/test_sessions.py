"""The session cookie is re-signed when the session changes, and otherwise at most once an hour."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime


def _signed_in(app, user):
    client = app.test_client()
    with client.session_transaction() as sess:  # as the real sign-in leaves it (app/auth.py)
        sess["uid"] = user.id
        sess["sv"] = user.session_version
        sess["_csrf"] = "test-csrf"
        sess.permanent = True
    return client


def _session_cookie(response):
    found = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]
    return found[0] if found else None


def test_an_unchanged_session_is_not_re_sent_on_every_response(app, make_user):
    client = _signed_in(app, make_user())
    for _ in range(3):
        response = client.get("/collection")
        assert response.status_code == 200
        assert _session_cookie(response) is None
    # A change is sent at once.
    with client.session_transaction() as sess:
        sess["note"] = "changed"
    response = client.get("/collection")
    assert _session_cookie(response) is None  # the change above was saved by session_transaction itself
    assert client.get_cookie("session") is not None


def test_an_hour_old_signature_is_renewed_and_the_fourteen_days_slide(app, make_user, monkeypatch):
    client = _signed_in(app, make_user())
    real = time.time
    later = real() + 3601
    monkeypatch.setattr(time, "time", lambda: later)
    response = client.get("/collection")
    assert response.status_code == 200
    cookie = _session_cookie(response)
    assert cookie is not None
    expires = parsedate_to_datetime(cookie.split("Expires=")[1].split(";")[0]).timestamp()
    assert abs(expires - (real() + 14 * 86400)) < 5  # Flask dates it by the wall clock, not time.time
    # Renewed, it is fresh again: the next responses leave it alone.
    assert _session_cookie(client.get("/collection")) is None
    # And it still signs the listener in (the page is theirs, not the sign-in page).
    assert b"Collection" in client.get("/collection").data


def test_a_session_past_its_fourteen_days_is_signed_out(app, make_user, monkeypatch):
    client = _signed_in(app, make_user())
    later = time.time() + 15 * 86400
    monkeypatch.setattr(time, "time", lambda: later)
    assert client.get("/collection").status_code == 401  # the stale cookie no longer signs anyone in


def test_a_rotated_secret_key_signs_with_the_new_key_and_still_reads_the_old(app, make_user):
    """The serializer is made once per set of keys: a key rotated in (the old one kept as a fallback) is used at
    once, not the serializer made for the old key."""
    client = _signed_in(app, make_user())
    assert client.get("/collection").status_code == 200
    interface = app.session_interface
    old_key = app.secret_key
    first = interface.get_signing_serializer(app)
    assert interface.get_signing_serializer(app) is first
    app.secret_key = old_key + "-rotated"
    app.config["SECRET_KEY_FALLBACKS"] = [old_key]
    try:
        rotated = interface.get_signing_serializer(app)
        assert rotated is not first
        assert client.get("/collection").status_code == 200  # the old cookie still reads (the fallback)
        signed = rotated.dumps({"uid": 1})
        assert rotated.loads(signed) == {"uid": 1}
        assert first.loads(first.dumps({"uid": 1})) == {"uid": 1}
        import pytest
        from itsdangerous import BadSignature

        with pytest.raises(BadSignature):
            first.loads(signed)  # signed with the new key, which the old serializer does not know
    finally:
        app.secret_key = old_key
        app.config["SECRET_KEY_FALLBACKS"] = []
