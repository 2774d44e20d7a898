"""Issue 9, "Money and accounts": token scope escalation, sessions outliving sign-out, login lockout."""

from __future__ import annotations

from tests.conftest import PASSWORD, csrf_headers, login

VICTIM_IP = "198.51.100.7"
ATTACKER_IP = "203.0.113.9"


def _browser(app, ip: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def _bearer(raw: str) -> dict:
    return {"Authorization": f"Bearer {raw}", "Accept": "application/json"}


def _assert_problem(response, status: int, code: str):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == code


# --- 1. token scope escalation ------------------------------------------------------------------------
def test_a_listener_token_cannot_mint_a_finance_token_nor_manage_tokens(app, make_user, token_for):
    user = make_user(roles=("listener", "finance"))
    other_raw = token_for(user, scopes=["finance"])
    raw = token_for(user, scopes=["listener"])
    client = app.test_client()

    for body in ({"name": "escalate", "scopes": ["finance"]}, {"name": "escalate"},
                 {"name": "escalate", "scopes": ["listener", "tokens"]}):
        _assert_problem(client.post("/api/v1/tokens", json=body, headers=_bearer(raw)), 403,
                        "token_scope_required")
    _assert_problem(client.get("/api/v1/tokens", headers=_bearer(raw)), 403, "token_scope_required")
    listed = _session_client(app, user).get("/api/v1/tokens").get_json()["items"]
    other_id = next(t["id"] for t in listed if t["scopes"] == ["finance"])
    _assert_problem(client.delete(f"/api/v1/tokens/{other_id}", headers=_bearer(raw)), 403, "token_scope_required")
    # The web forms accept a bearer token too; they are held to the same rule.
    assert client.post("/account/tokens", data={"name": "escalate", "scopes": ["finance"]},
                       headers=_bearer(raw)).status_code == 403
    assert client.post(f"/account/tokens/{other_id}/revoke", headers=_bearer(raw)).status_code == 403

    assert client.get("/api/v1/me", headers=_bearer(other_raw)).status_code == 200  # not revoked
    names = [t["name"] for t in _session_client(app, user).get("/api/v1/tokens").get_json()["items"]]
    assert "escalate" not in names


def test_a_session_mints_any_held_scope_and_revokes(app, make_user):
    user = make_user(roles=("listener", "finance"))
    client = _session_client(app, user)
    created = client.post("/api/v1/tokens", json={"name": "books", "scopes": ["finance", "tokens"]},
                          headers=csrf_headers())
    assert created.status_code == 201
    assert sorted(created.get_json()["scopes"]) == ["finance", "tokens"]
    raw = created.get_json()["token"]
    assert app.test_client().get("/api/v1/me", headers=_bearer(raw)).get_json()["effective_roles"] == ["finance"]
    _assert_problem(client.post("/api/v1/tokens", json={"name": "x", "scopes": ["admin"]}, headers=csrf_headers()),
                    422, "scope_not_held")
    assert client.delete(f"/api/v1/tokens/{created.get_json()['id']}", headers=csrf_headers()).status_code == 200
    assert app.test_client().get("/api/v1/me", headers=_bearer(raw)).status_code == 401


def test_a_token_with_the_tokens_scope_mints_only_within_its_scopes(app, make_user, token_for):
    user = make_user(roles=("listener", "artist", "finance"))
    raw = token_for(user, scopes=["listener", "artist", "tokens"])
    client = app.test_client()

    wider = client.post("/api/v1/tokens", json={"name": "books", "scopes": ["listener", "finance"]},
                        headers=_bearer(raw))
    _assert_problem(wider, 403, "scope_exceeds_token")
    assert wider.get_json()["scopes"] == ["finance"]

    narrower = client.post("/api/v1/tokens", json={"name": "ci", "scopes": ["artist"]}, headers=_bearer(raw))
    assert narrower.status_code == 201 and narrower.get_json()["scopes"] == ["artist"]
    child = narrower.get_json()["token"]
    assert client.get("/api/v1/me", headers=_bearer(child)).get_json()["effective_roles"] == ["artist"]

    default = client.post("/api/v1/tokens", json={"name": "default"}, headers=_bearer(raw))
    assert default.status_code == 201
    assert sorted(default.get_json()["scopes"]) == ["artist", "listener"]  # its roles, not `tokens`
    # The child has no `tokens` scope, so it cannot mint further.
    _assert_problem(client.post("/api/v1/tokens", json={"name": "grandchild"}, headers=_bearer(child)), 403,
                    "token_scope_required")
    # The managing token may list and revoke.
    assert {t["name"] for t in client.get("/api/v1/tokens", headers=_bearer(raw)).get_json()["items"]} >= {"ci"}
    assert client.delete(f"/api/v1/tokens/{narrower.get_json()['id']}", headers=_bearer(raw)).status_code == 200
    assert client.get("/api/v1/me", headers=_bearer(child)).status_code == 401


def test_token_management_is_documented_in_openapi(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    create = paths["/api/v1/tokens"]["post"]
    assert {"bearer": ["tokens"]} in create["security"] and {"session": []} in create["security"]
    assert "tokens" in str(create["description"])
    for path, method in (("/api/v1/tokens", "get"), ("/api/v1/tokens/{token_id}", "delete")):
        assert {"bearer": ["tokens"]} in paths[path][method]["security"]


# --- 2. sessions end server-side --------------------------------------------------------------------------
def _session_client(app, user):
    client = app.test_client()
    login(client, user)
    return client


def _signed_in_through_the_form(app, email, password=PASSWORD):
    client = _browser(app, VICTIM_IP)
    client.get("/signin")
    response = client.post("/signin", data={"email": email, "password": password, "csrf_token": _csrf(client)})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def _csrf(client) -> str:
    with client.session_transaction() as sess:
        return sess["_csrf"]


def _copy_of(app, client):
    """A second browser carrying a copy of `client`'s session cookie (a stolen or leftover cookie)."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    assert thief.get("/api/v1/me").status_code == 200
    return thief


def test_a_copied_cookie_stops_working_after_sign_out(app, make_user):
    user = make_user()
    client = _signed_in_through_the_form(app, user.email)
    thief = _copy_of(app, client)
    assert client.post("/signout", data={"csrf_token": _csrf(client)}).status_code == 302
    assert client.get("/api/v1/me").status_code == 401
    _assert_problem(thief.get("/api/v1/me"), 401, "sign_in_required")
    _signed_in_through_the_form(app, user.email)  # signing in again works


def test_a_password_change_ends_other_sessions_keeps_this_one(app, make_user):
    user = make_user()
    client = _signed_in_through_the_form(app, user.email)
    thief = _copy_of(app, client)

    wrong = client.post("/account/password", data={"current_password": "not my password",
                                                   "new_password": "a brand new secret", "csrf_token": _csrf(client)})
    assert wrong.status_code == 302
    assert "not your current password" in client.get("/account").get_data(as_text=True)
    assert thief.get("/api/v1/me").status_code == 200  # nothing changed

    weak = client.post("/account/password", data={"current_password": PASSWORD, "new_password": "short",
                                                  "csrf_token": _csrf(client)})
    assert weak.status_code == 302 and thief.get("/api/v1/me").status_code == 200

    changed = client.post("/account/password", data={"current_password": PASSWORD,
                                                     "new_password": "a brand new secret",
                                                     "csrf_token": _csrf(client)})
    assert changed.status_code == 302
    assert client.get("/api/v1/me").status_code == 200
    _assert_problem(thief.get("/api/v1/me"), 401, "sign_in_required")

    old = _browser(app, VICTIM_IP)
    old.get("/signin")
    assert old.post("/signin", data={"email": user.email, "password": PASSWORD,
                                     "csrf_token": _csrf(old)}).status_code == 401
    _signed_in_through_the_form(app, user.email, "a brand new secret")


def test_a_token_cannot_change_the_password(app, make_user, token_for):
    user = make_user()
    raw = token_for(user, scopes=["listener", "tokens"])
    response = app.test_client().post("/account/password", headers=_bearer(raw),
                                      data={"current_password": PASSWORD, "new_password": "a brand new secret"})
    _assert_problem(response, 403, "session_required")


def test_a_role_change_ends_every_session(app, make_user, runner):
    user = make_user(roles=("listener", "finance"))
    client = _signed_in_through_the_form(app, user.email)
    thief = _copy_of(app, client)
    result = runner.invoke(["users", "roles", user.email, "listener"])
    assert result.exit_code == 0, result.output
    _assert_problem(thief.get("/api/v1/me"), 401, "sign_in_required")
    assert client.get("/api/v1/me").status_code == 401
    again = _signed_in_through_the_form(app, user.email)
    assert again.get("/api/v1/me").get_json()["roles"] == ["listener"]


# --- 3. login throttling that cannot be turned into a lockout ---------------------------------------------
def _attempt(client, email, password):
    client.get("/signin")
    return client.post("/signin", data={"email": email, "password": password, "csrf_token": _csrf(client)})


def test_an_attacker_failing_50_times_does_not_lock_the_victim_out(app, make_user):
    victim = make_user()
    attacker = _browser(app, ATTACKER_IP)
    statuses = [_attempt(attacker, victim.email, f"guess number {n}").status_code for n in range(50)]
    assert set(statuses) == {401, 429} and statuses[-1] == 429
    # Even the right password from the attacker's address has to wait now ...
    assert _attempt(attacker, victim.email, PASSWORD).status_code == 429
    # ... but the victim, from their own address, signs in at once.
    victim_browser = _browser(app, VICTIM_IP)
    assert _attempt(victim_browser, victim.email, PASSWORD).status_code == 302
    assert victim_browser.get("/api/v1/me").get_json()["email"] == victim.email


def test_a_429_says_when_to_retry_and_the_wait_grows(app, make_user, redis):
    from core.ratelimit import LoginThrottle, backoff_keys

    user = make_user()
    client = _browser(app, VICTIM_IP)
    limit = app.extensions["ninety"].config.login_attempts_per_15min
    for _ in range(limit):
        assert _attempt(client, user.email, "wrong password!").status_code == 401
    waits = []
    for _ in range(3):
        refused = _attempt(client, user.email, PASSWORD)
        assert refused.status_code == 429
        waits.append(int(refused.headers["Retry-After"]))
        assert f"try again in {waits[-1]} second" in refused.get_data(as_text=True)
        redis.delete(backoff_keys(LoginThrottle.pair_key(user.email, VICTIM_IP))[1])  # the wait passes
        assert _attempt(client, user.email, "wrong password!").status_code == 401
    # 5 s, 10 s, 20 s, less whatever time the request took after the wait began (the machine may be busy).
    assert 1 <= waits[0] <= 5 and 5 < waits[1] <= 10 and 10 < waits[2] <= 20


def test_a_spraying_address_meets_the_ip_ceiling_but_its_regular_users_still_sign_in(make_app, make_user):
    app = make_app(login_ip_failures_per_15min=10)
    regular = make_user()
    office = _browser(app, ATTACKER_IP)
    assert _attempt(office, regular.email, PASSWORD).status_code == 302
    sprayer = _browser(app, ATTACKER_IP)
    for n in range(10):
        assert _attempt(sprayer, f"target{n}@example.com", "Summer2024!!").status_code == 401
    refused = _attempt(sprayer, "target99@example.com", "Summer2024!!")
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 900
    colleague = _browser(app, ATTACKER_IP)
    assert _attempt(colleague, regular.email, PASSWORD).status_code == 302
