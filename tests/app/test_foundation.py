import pytest
from openapi_spec_validator import validate

from app.config import Config, ConfigError
from tests.conftest import PASSWORD, csrf_headers, login


def test_healthz_reports_both_engines(client):
    body = client.get("/healthz").get_json()
    assert body == {"status": "ok", "checks": {"postgresql": "up", "redis": "up"}}


def test_production_refuses_default_secret():
    with pytest.raises(ConfigError):
        Config.from_env({"NINETY_ENV": "production", "DATABASE_URL": "postgresql://x/y", "REDIS_URL": "redis://x"})
    cfg = Config.from_env({"NINETY_ENV": "production", "SECRET_KEY": "x" * 40,
                           "DATABASE_URL": "postgresql://x/y", "REDIS_URL": "redis://x"})
    assert cfg.is_production


def test_openapi_document_is_valid(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    validate(spec)
    assert "/api/v1/users" in spec["paths"]
    assert client.get("/api/v1/docs", headers={"Accept": "text/html"}).status_code == 200


@pytest.mark.parametrize("path,method,status", [
    ("/nowhere", "get", 404), ("/api/v1/nowhere", "get", 404), ("/healthz", "post", 405),
])
def test_errors_are_problem_json(client, path, method, status):
    response = getattr(client, method)(path)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["type"] and body["title"] and body["code"]


def test_500_is_a_problem_too(app):
    @app.get("/boom")
    def boom():
        raise RuntimeError("kaput")

    boom.ninety_access = {"public": True}
    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert "kaput" not in response.get_data(as_text=True)


def test_413_for_oversized_bodies(make_app):
    app = make_app(max_upload_bytes=1000, max_json_bytes=100)
    client = app.test_client()
    response = client.post("/api/v1/users", data="x" * 5000, content_type="application/json")
    assert response.status_code == 413 and response.mimetype == "application/problem+json"
    response = client.post("/api/v1/users", json={"email": "a" * 200 + "@example.com", "password": "p" * 20})
    assert response.status_code == 413


def test_sign_up_sign_in_and_tokens_via_api(client, app):
    response = client.post("/api/v1/users", json={"email": "ada@example.com", "password": PASSWORD,
                                                   "roles": ["artist", "listener"]})
    assert response.status_code == 201, response.get_json()
    assert "password" not in response.get_json()
    assert client.post("/api/v1/users", json={"email": "ADA@example.com", "password": PASSWORD}).status_code == 409
    assert client.get("/api/v1/me").status_code == 401

    response = client.post("/signin", data={"email": "ada@example.com", "password": PASSWORD,
                                            "csrf_token": _csrf(client)})
    assert response.status_code == 302
    me = client.get("/api/v1/me").get_json()
    assert me["email"] == "ada@example.com" and set(me["roles"]) == {"artist", "listener"}

    created = client.post("/api/v1/tokens", json={"name": "ci", "scopes": ["listener"]},
                          headers={"X-CSRF-Token": _csrf(client)})
    assert created.status_code == 201
    raw = created.get_json()["token"]
    other = app.test_client()
    me = other.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).get_json()
    assert me["effective_roles"] == ["listener"]
    listed = client.get("/api/v1/tokens").get_json()["items"]
    assert "token" not in listed[0]
    revoked = client.delete(f"/api/v1/tokens/{created.get_json()['id']}", headers={"X-CSRF-Token": _csrf(client)})
    assert revoked.status_code == 200
    assert other.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401


def _csrf(client):
    with client.session_transaction() as sess:
        if "_csrf" not in sess:
            sess["_csrf"] = "fixed-csrf"
        return sess["_csrf"]


def test_csrf_is_required_for_cookie_sessions(client, make_user):
    user = make_user(roles=("listener",))
    login(client, user)
    assert client.post("/api/v1/tokens", json={"name": "x"}).status_code == 403
    assert client.post("/api/v1/tokens", json={"name": "x"}, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.post("/api/v1/tokens", json={"name": "x"}, headers=csrf_headers()).status_code == 201


def test_forged_and_malformed_tokens_are_refused(client):
    for header in ("Bearer nt_forged", "Bearer", "Basic abc", "Bearer " + "x" * 500):
        response = client.get("/api/v1/me", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.mimetype == "application/problem+json"


def test_login_is_rate_limited(client, make_user, app):
    user = make_user()
    limit = app.extensions["ninety"].config.login_attempts_per_15min
    for _ in range(limit):
        assert client.post("/signin", data={"email": user.email, "password": "wrong-password!",
                                            "csrf_token": _csrf(client)}).status_code == 401
    response = client.post("/signin", data={"email": user.email, "password": PASSWORD, "csrf_token": _csrf(client)})
    assert response.status_code == 429


def test_anonymous_listener_gets_a_signed_pseudonymous_id(client):
    response = client.get("/")
    cookie = response.headers.get("Set-Cookie", "")
    assert "ninety_lid=" in cookie and "HttpOnly" in cookie
    again = client.get("/")
    assert "ninety_lid=" not in again.headers.get("Set-Cookie", "")


def test_signup_page_rejects_bad_input_without_writing(client):
    response = client.post("/signup", data={"email": "<script>@x", "password": "short", "csrf_token": _csrf(client)})
    assert response.status_code == 422
    assert b"<script>@x" not in response.data


def test_cli_help_lists_commands(runner):
    result = runner.invoke(["--help"])
    assert result.exit_code == 0
    for name in ("db", "users", "run", "config"):
        assert name in result.output
    for sub in (["users", "create", "--help"], ["db", "upgrade", "--help"], ["run", "--help"]):
        assert runner.invoke(sub).exit_code == 0


def test_cli_creates_the_first_admin(runner, db_session):
    from core.users import User

    result = runner.invoke(["users", "create", "root@example.com", "--role", "admin", "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    user = db_session.query(User).one()
    assert user.roles == ["admin"]
    again = runner.invoke(["users", "create", "root@example.com", "--role", "admin", "--password", PASSWORD])
    assert again.exit_code != 0 and "already exists" in again.output


def test_storage_paths_are_absolute_whatever_the_environment_says(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = Config.from_env({"NINETY_VAR_DIR": "var"})
    assert cfg.media_path == tmp_path / "var" / "media"
    assert Config.from_env({"MEDIA_ROOT": "m"}).media_path == tmp_path / "m"
