"""One error shape for the whole site: application/problem+json (RFC 9457).

Browsers asking for HTML on a page (not the API) get the same problem rendered as a page instead, and
an anonymous browser that hits a protected page is sent to sign in.
"""

from __future__ import annotations

import logging

import marshmallow
import redis
from flask import Flask, current_app, g, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from core.errors import NinetyError, Unauthorized

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://ninety.example/problems/"


def wants_html() -> bool:
    if request.path.startswith("/api/") or request.path.startswith("/ads/"):
        return False
    best = request.accept_mimetypes.best_match(["application/json", "application/problem+json", "text/html"])
    return best == "text/html"


# Statuses whose client is told when to try again (RFC 9110 §10.2.3; 425 per RFC 8470).
_RETRY_STATUSES = {425, 429, 503}
# A Redis that cannot be reached (refused, timed out, still loading) is a bad day, not a bug.
REDIS_UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError)
REDIS_RETRY_AFTER_S = 5


def problem(status: int, code: str, title: str, detail: str | None = None, *, headers=None, **extra):
    body = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "code": code,
        "detail": detail or title,
        "instance": request.path,
    }
    if "request_id" in g:
        body["request_id"] = g.request_id
    body.update({k: v for k, v in extra.items() if v is not None})
    if status in _RETRY_STATUSES:
        body["retry_after"] = max(1, int(body.get("retry_after") or 1))
    if wants_html():
        response = current_app.make_response((render_template("errors/problem.html", problem=body), status))
    else:
        response = jsonify(body)
        response.status_code = status
        response.mimetype = "application/problem+json"
    for name, value in headers or ():
        if name.lower() != "content-type":
            response.headers[name] = value
    if status in _RETRY_STATUSES:
        response.headers["Retry-After"] = str(body["retry_after"])
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(NinetyError)
    def domain_error(exc: NinetyError):
        if isinstance(exc, Unauthorized) and wants_html() and request.method == "GET":
            return redirect(url_for("web_accounts.signin", next=request.full_path.rstrip("?")))
        return problem(exc.status, exc.code, exc.title, exc.message, **_safe(exc.details))

    @app.errorhandler(marshmallow.ValidationError)
    def schema_error(exc: marshmallow.ValidationError):
        return problem(422, "invalid_input", "The input is not valid",
                       "Some fields are missing or wrong; see errors.", errors=exc.normalized_messages())

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc):
        return problem(413, "payload_too_large", "Request body too large",
                       "The request body is larger than this endpoint accepts.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_").replace("'", "")
        # The exception's own headers carry what its status promises: `Allow` on a 405, for instance.
        return problem(exc.code or 500, code, exc.name, exc.description, headers=exc.get_headers())

    def redis_unavailable(exc):
        log.warning("redis unavailable: %s", exc)
        return problem(503, "service_unavailable", "Temporarily unavailable",
                       "Part of the service is down for a moment; try again shortly.",
                       retry_after=REDIS_RETRY_AFTER_S)

    for kind in REDIS_UNAVAILABLE:
        app.register_error_handler(kind, redis_unavailable)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return problem(500, "internal_error", "Internal server error",
                       "Something went wrong on our side; it has been logged.")


def _safe(details: dict) -> dict:
    return {k: v for k, v in details.items() if isinstance(v, (str, int, float, bool, list, dict, type(None)))}
