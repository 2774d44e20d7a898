"""The test harness: real PostgreSQL and Redis, each test isolated.

- DATABASE_URL / REDIS_URL (default 127.0.0.1:5432/test and 127.0.0.1:6379) name the servers; each xdist
  worker gets its own database (`ninety_test_<worker>`, migrated once per run with Alembic) and its own
  Redis db number. After every test all tables are truncated and the Redis db flushed.
- When the servers are unreachable the suite starts the embedded ones, except under CI=true, where a
  missing server is a failure.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis as redis_lib
from hypothesis import HealthCheck, settings

from app import create_app
from app.config import Config
from core.db import normalize_url

pytest_plugins = ("tests.cluster",)  # the Redis Cluster harness (redis_cluster)

settings.register_profile("ninety", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])
settings.load_profile("ninety")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() == "true"
TEST_SECRET = "test-secret-key-for-the-suite-only-0123456789"


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw")


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _reachable_pg(url: str) -> bool:
    try:
        with psycopg.connect(url.replace("+psycopg", ""), connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _reachable_redis(url: str) -> bool:
    try:
        return bool(redis_lib.Redis.from_url(url, socket_connect_timeout=3).ping())
    except redis_lib.RedisError:
        return False


@pytest.fixture(scope="session")
def server_urls(tmp_path_factory):
    pg = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test"
    rd = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    if not _reachable_pg(pg) or not _reachable_redis(rd):
        if IN_CI:
            pytest.fail(f"CI=true and PostgreSQL ({pg}) or Redis ({rd}) is not reachable", pytrace=False)
        from core.embedded import ensure_postgres, ensure_redis

        var = ROOT / "var" / "test-engines"
        if not _reachable_pg(pg):
            pg = ensure_postgres(var, database="postgres")
        if not _reachable_redis(rd):
            rd = ensure_redis(var)
    return pg, rd


def _run_id() -> str:
    """Unique per pytest run, so several runs on one machine never share a database."""
    uid = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"p{os.getpid()}"
    return uid[:12]


@pytest.fixture(scope="session")
def database_url(server_urls):
    base = server_urls[0].replace("+psycopg", "")
    name = f"ninety_test_{_run_id()}_{_worker()}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    if "?host=" in base:  # embedded server over a unix socket: the database goes before the query
        url = base.split("/postgres?")[0] + f"/{name}?" + base.split("?", 1)[1]
    else:
        url = _with_db(base, name)
    from app.cli.core import upgrade_database

    upgrade_database(url)
    yield normalize_url(url)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(scope="session")
def redis_url(server_urls):
    """A Redis db number of this run's own: claimed with SET NX in db 0, released at the end."""
    url = server_urls[1]
    if url.startswith("unix://"):
        yield url
        return
    parts = urlsplit(url)
    claims = redis_lib.Redis.from_url(urlunsplit((parts.scheme, parts.netloc, "/0", parts.query, "")))
    owner = f"{_run_id()}:{_worker()}:{os.getpid()}"
    for index in range(1, 16):
        if claims.set(f"ninety:test-db-claim:{index}", owner, nx=True, ex=3 * 3600):
            break
    else:
        pytest.fail("all Redis db numbers 1-15 are claimed by other test runs", pytrace=False)
    yield urlunsplit((parts.scheme, parts.netloc, f"/{index}", parts.query, parts.fragment))
    if claims.get(f"ninety:test-db-claim:{index}") == owner.encode():
        claims.delete(f"ninety:test-db-claim:{index}")
    claims.close()


@pytest.fixture(scope="session")
def _truncate_sql(database_url):
    with psycopg.connect(database_url.replace("+psycopg", "")) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'")]
    if not tables:
        return None
    return f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"


@pytest.fixture(autouse=True)
def _isolate(request, _truncate_sql, database_url, redis_url):
    """Each test starts with empty tables and an empty Redis db."""
    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    yield
    if _truncate_sql:
        with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("SET ninety.allow_truncate = 'on'")
            conn.execute(_truncate_sql)
    client.flushdb()
    client.close()


@pytest.fixture
def config(database_url, redis_url, tmp_path) -> Config:
    return Config(env="test", secret_key=TEST_SECRET, database_url=database_url, redis_url=redis_url,
                  var_dir=tmp_path / "var", media_root=tmp_path / "media", log_level="WARNING")


@pytest.fixture
def make_app(config):
    """Build an app with other settings or a clock: make_app(clock=FrozenClock(), ad_min_view_s=0)."""
    built = []

    def build(clock=None, **overrides):
        cfg = Config(**{**config.__dict__, **overrides})
        app = create_app(cfg, clock=clock)
        built.append(app)
        return app

    yield build
    for app in built:
        app.extensions["ninety"].engine.dispose()
        app.extensions["ninety"].redis.close()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


class CliRunner:
    """Runs `ninety …` against the test app, as the console script would."""

    def __init__(self, app):
        from click.testing import CliRunner as ClickRunner
        from flask.cli import ScriptInfo

        self.app = app
        self._runner = ClickRunner()
        self._info = ScriptInfo(create_app=lambda: app, set_debug_flag=False, load_dotenv_defaults=False)

    def invoke(self, args, **kwargs):
        from app.cli import main

        return self._runner.invoke(main, args, obj=self._info, catch_exceptions=False, **kwargs)


@pytest.fixture
def runner(app):
    return CliRunner(app)


@pytest.fixture
def db_session(app):
    session = app.extensions["ninety"].sessions()
    yield session
    session.rollback()
    session.close()


@pytest.fixture
def redis(app):
    return app.extensions["ninety"].redis


PASSWORD = "correct horse battery"


@pytest.fixture
def make_user(app):
    """make_user(roles=("artist",)) -> a committed User whose password is tests.conftest.PASSWORD."""
    from core.users import create_user

    counter = iter(range(1, 10_000))

    def make(roles=("listener",), email=None, display_name=None):
        session = app.extensions["ninety"].sessions()
        try:
            user = create_user(session, email=email or f"user{next(counter)}-{'-'.join(roles) or 'none'}@example.com",
                               password=PASSWORD, display_name=display_name, roles=roles)
            session.commit()
            session.expunge(user)
            return user
        finally:
            session.close()

    return make


def login(client, user) -> None:
    """Sign the test client in as `user` (through the real session cookie)."""
    with client.session_transaction() as sess:
        sess["uid"] = user.id
        sess["sv"] = user.session_version
        sess["_csrf"] = "test-csrf"


def csrf_headers() -> dict:
    return {"X-CSRF-Token": "test-csrf"}


@pytest.fixture
def token_for(app):
    """token_for(user, scopes=None) -> a raw API token."""
    from core.users import get_user, issue_token

    def make(user, scopes=None):
        session = app.extensions["ninety"].sessions()
        try:
            _, raw = issue_token(session, get_user(session, user.id), name="test", scopes=scopes)
            session.commit()
            return raw
        finally:
            session.close()

    return make


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(app):
    """The app served over real HTTP on a free loopback port, in a thread."""
    from werkzeug.serving import make_server

    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{port}"
    yield server
    server.shutdown()
    thread.join(timeout=5)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="session")
def _playwright_browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(_playwright_browser):
    context = _playwright_browser.new_context(accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    yield pg
    context.close()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the repository; tests using it skip cleanly on a user's fresh clone without it."""
    if not SHARED.exists():
        pytest.skip("../shared is absent (a fresh clone outside the workplace)")
    return SHARED


class SmtpSink:
    """A real SMTP server (aiosmtpd) on a loopback port that keeps every message it receives."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages: list = []
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.url = f"smtp://127.0.0.1:{self.port}"

    async def handle_DATA(self, server, session, envelope):
        from email import message_from_bytes
        from email.policy import default

        message = message_from_bytes(envelope.content, policy=default)
        self.messages.append({"to": list(envelope.rcpt_tos), "subject": str(message["Subject"]),
                              "body": message.get_content(), "message": message})
        return "250 OK"

    def to(self, address: str) -> list:
        return [m for m in self.messages if address.lower() in (r.lower() for r in m["to"])]


@pytest.fixture
def smtp():
    """smtp.url for SMTP_URL (make_app(smtp_url=smtp.url)); smtp.messages, smtp.to(address) to read them."""
    sink = SmtpSink()
    sink._controller.start()
    yield sink
    sink._controller.stop()


class LocalStripe:
    """A localstripe server (the Stripe stand-in from PyPI) on a free loopback port, its store in memory."""

    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}"
        self.js_url = f"{self.url}/js.stripe.com/v3/"
        self.api_key = "sk_test_ninety_local"
        self.publishable_key = "pk_test_ninety_local"

    def send_webhooks_to(self, url: str, secret: str, name: str = "ninety") -> None:
        """Have localstripe POST every event it emits to `url`, signed with `secret` as Stripe signs."""
        from core.embedded import configure_localstripe_webhook

        configure_localstripe_webhook(self.url, url, secret, name=name)


@pytest.fixture
def localstripe():
    """localstripe for one test: `.url` is STRIPE_API_BASE (make_app(stripe_api_base=localstripe.url)),
    `.send_webhooks_to(live_server.url + "/webhooks/stripe", secret)` delivers its events for real."""
    from core.embedded import spawn_localstripe, stop_process

    process, port = spawn_localstripe()
    try:
        yield LocalStripe(port)
    finally:
        stop_process(process)
