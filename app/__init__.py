"""The Flask application: the composition root. `create_app(config)` wires everything; nothing at import."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
import time
import uuid
from datetime import timedelta

from flask import Flask, g, jsonify, render_template, request

from app import context
from app.api import reject_nul
from app.auth import access, init_auth
from app.config import Config, ConfigError
from app.context import Runtime
from app.converters import CONVERTERS
from app.errors import register_error_handlers
from app.logs import configure_logging
from app.security import init_security
from app.sessions import SlidingSessionInterface
from app.supervisor import read_state as read_supervisor_state
from app.transactions import finish_request, watch_writes
from core.clock import Clock, SystemClock
from core.db import import_all_models, make_engine, make_session_factory
from core.jobs import connect as connect_jobs
from core.jobs import install_outbox
from core.redis import make_redis

log = logging.getLogger("ninety.request")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


def resolve_engines(config: Config) -> Config:
    """Fill in DATABASE_URL / REDIS_URL with project-local servers when they are not set."""
    if not config.database_url or not config.redis_url:
        if config.is_production:
            raise ConfigError("production needs DATABASE_URL and REDIS_URL")
        from core.embedded import ensure_postgres, ensure_redis

        if not config.database_url:
            config.database_url = ensure_postgres(config.var_dir)
        if not config.redis_url:
            config.redis_url = ensure_redis(config.var_dir)
    return config


def _discover(package: str) -> list:
    pkg = importlib.import_module(package)
    modules = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            modules.append(importlib.import_module(f"{package}.{info.name}"))
    return modules


def create_app(config: Config | None = None, *, clock: Clock | None = None, redis_client=None) -> Flask:
    config = resolve_engines(config or Config.from_env())
    configure_logging(config.log_level)
    import_all_models()

    app = Flask(__name__)
    app.session_interface = SlidingSessionInterface()
    app.url_map.converters.update(CONVERTERS)
    app.config.update(
        SECRET_KEY=config.secret_key,
        MAX_CONTENT_LENGTH=config.max_upload_bytes,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.is_production,
        PERMANENT_SESSION_LIFETIME=timedelta(days=14),
        TESTING=config.env == "test",
        JSON_SORT_KEYS=False,
    )
    engine = make_engine(config.database_url)
    watch_writes(engine)
    app.extensions["ninety"] = Runtime(
        config=config,
        engine=engine,
        sessions=make_session_factory(engine),
        redis=redis_client if redis_client is not None else make_redis(config.redis_url),
        clock=clock or SystemClock(),
        extras={},
    )
    # Jobs deferred by services (emails) are enqueued on RQ only once the transaction that made them commits.
    install_outbox(app.extensions["ninety"].sessions, lambda: connect_jobs(config.queue_redis_url))

    from app.templating import init_templating

    init_templating(app)
    init_auth(app)
    init_security(app, stripe_api_base=config.stripe_api_base)
    register_error_handlers(app)
    _register_request_hooks(app)
    _register_core_routes(app)
    for module in _discover("app.api") + _discover("app.web"):
        bp = getattr(module, "bp", None)
        if bp is not None:
            app.register_blueprint(bp)
        init = getattr(module, "init_app", None)
        if init is not None:
            init(app)
    _check_every_view_declares_access(app)
    return app


def _register_request_hooks(app: Flask) -> None:
    @app.before_request
    def _start():
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        g.started = time.perf_counter()
        # Multipart bodies are left to the views that stream them (uploads).
        if request.method in {"POST", "PUT", "PATCH"} and request.mimetype == "application/x-www-form-urlencoded":
            reject_nul(request.form.to_dict(flat=False))
        if request.args:
            reject_nul(request.args.to_dict(flat=False))

    @app.after_request
    def _finish(response):
        session = g.pop("db_session", None)
        if session is not None:
            try:  # the request owns the transaction; GET handlers do not write (app/transactions.py)
                finish_request(session, response.status_code, production=context.config().is_production,
                               strict=True)
            finally:
                session.close()
        response.headers["X-Request-Id"] = g.get("request_id", "")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype == "text/html":
            response.headers.setdefault("X-Frame-Options", "DENY")
        if not request.path.startswith("/static"):
            log.info("request", extra={
                "method": request.method, "path": request.path, "status": response.status_code,
                "ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2),
            })
        return response

    @app.teardown_request
    def _cleanup(exc):
        session = g.pop("db_session", None)
        if session is not None:
            session.rollback()
            session.close()


def _register_core_routes(app: Flask) -> None:
    @app.get("/healthz")
    @access(public=True)
    def healthz():
        checks = {}
        try:
            with context.runtime().engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            checks["postgresql"] = "up"
        except Exception as exc:  # noqa: BLE001 - a health check reports, it does not raise
            checks["postgresql"] = f"down: {type(exc).__name__}"
        try:
            context.redis().ping()
            checks["redis"] = "up"
        except Exception as exc:  # noqa: BLE001
            checks["redis"] = f"down: {type(exc).__name__}"
        ok = all(v == "up" for v in checks.values())
        body = {"status": "ok" if ok else "degraded", "checks": checks}
        # Under `ninety run`: each supervised process's state. A restarting worker degrades the status but
        # not the HTTP code: the site still serves, and a load balancer must not pull every instance.
        processes = read_supervisor_state(context.config().var_dir)
        if processes:
            body["processes"] = {name: {"state": p["state"], "restarts": p["restarts"]}
                                 for name, p in processes.items()}
            if any(p["state"] != "up" for p in processes.values()):
                body["status"] = "degraded"
        return jsonify(body), 200 if ok else 503

    @app.get("/")
    @access(public=True)
    def home():
        return render_template("home.html", sections=app.extensions["ninety"].extras.get("home_sections", []))


def _check_every_view_declares_access(app: Flask) -> None:
    missing = [name for name, view in app.view_functions.items()
               if name != "static" and not hasattr(view, "ninety_access")]
    if missing:
        raise RuntimeError(f"views without an access declaration: {', '.join(sorted(missing))}")
