"""The signed session cookie, re-signed when it changes and otherwise at most once an hour.

A signed-in session is permanent (14 days after the last visit, `PERMANENT_SESSION_LIFETIME`). Flask keeps
that window sliding by signing and sending the cookie again on every response (SESSION_REFRESH_EACH_REQUEST),
which is an HMAC, a JSON dump and a Set-Cookie header on every page and beacon. Here the cookie is sent again
only when the session changed or its signature is an hour old or more, so the window still slides with use
(to within the hour) at a fraction of the cost. The signature's own timestamp (itsdangerous) says how old it
is; nothing else is stored.
"""

from __future__ import annotations

import time

from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature

REFRESH_AFTER_S = 3600


class SlidingSession(SecureCookieSession):
    signed_at: int | None = None  # when the cookie it came from was signed (epoch seconds), if it came from one


class SlidingSessionInterface(SecureCookieSessionInterface):
    session_class = SlidingSession

    def __init__(self) -> None:
        self._serializers: dict[tuple, object] = {}

    def get_signing_serializer(self, app):
        """Flask's serializer, made once per set of keys rather than for every request."""
        keys = (app.secret_key, *(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        serializer = self._serializers.get(keys)
        if serializer is None:
            serializer = self._serializers[keys] = super().get_signing_serializer(app)
        return serializer

    def open_session(self, app, request) -> SlidingSession | None:
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data, signed_at = serializer.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        session = self.session_class(data)
        session.signed_at = int(signed_at.timestamp())
        return session

    def should_set_cookie(self, app, session) -> bool:
        if session.modified:
            return True
        if not (session.permanent and app.config["SESSION_REFRESH_EACH_REQUEST"]):
            return False
        signed_at = getattr(session, "signed_at", None)
        return signed_at is None or time.time() - signed_at >= REFRESH_AFTER_S
