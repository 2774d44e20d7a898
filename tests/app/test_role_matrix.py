"""Every protected endpoint refuses anonymous callers and callers without the right role.

The matrix is read off the app itself: each view's `access` declaration says who may call it, so an
endpoint added later is covered without touching this file.
"""

import re

import pytest

from core.users import ROLES
from tests.conftest import login


def _protected_routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        access = app.view_functions[rule.endpoint].ninety_access
        if access["public"]:
            continue
        url = re.sub(r"<(?:int:)?[a-z_]+>", "1", rule.rule)
        # An `any(...)` part takes its first choice: any other value is a 404 before access is checked.
        url = re.sub(r"<any\('([^']*)'[^>]*>", r"\1", url)
        url = re.sub(r"<[a-z]+(?:\([^)]*\))?:[a-z_]+>", "1", url)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, url, tuple(access["roles"])


def test_every_view_declares_who_may_call_it(app):
    for name, view in app.view_functions.items():
        if name != "static":
            assert hasattr(view, "ninety_access"), name


def test_anonymous_callers_are_refused_everywhere(app):
    client = app.test_client()
    checked = 0
    for endpoint, method, url, _ in _protected_routes(app):
        response = client.open(url, method=method, headers={"Accept": "application/json"})
        assert response.status_code == 401, (endpoint, method, url, response.status_code)
        assert response.mimetype == "application/problem+json"
        checked += 1
    assert checked >= 4


def test_browsers_are_sent_to_sign_in(client):
    response = client.get("/account", headers={"Accept": "text/html"})
    assert response.status_code == 302 and "/signin?next=" in response.headers["Location"]


@pytest.mark.parametrize("via", ["session", "token"])
def test_wrong_role_callers_are_refused_everywhere(app, make_user, token_for, via):
    routes = [r for r in _protected_routes(app) if r[3]]
    users = {}
    for endpoint, method, url, roles in routes:
        wrong = tuple(r for r in ROLES if r not in roles)
        if not wrong:
            continue
        if wrong not in users:
            users[wrong] = make_user(roles=wrong)
        client = app.test_client()
        headers = {"Accept": "application/json"}
        if via == "session":
            login(client, users[wrong])
            headers["X-CSRF-Token"] = "test-csrf"
        else:
            headers["Authorization"] = f"Bearer {token_for(users[wrong])}"
        response = client.open(url, method=method, headers=headers)
        assert response.status_code == 403, (endpoint, method, url, response.status_code)
        assert response.get_json()["code"] == "role_required"


def test_token_scopes_limit_roles(app, make_user, token_for):
    """A token scoped to 'listener' cannot act as the user's other roles."""
    routes = [r for r in _protected_routes(app) if r[3] and "listener" not in r[3]]
    user = make_user(roles=ROLES)
    raw = token_for(user, scopes=["listener"])
    client = app.test_client()
    for endpoint, method, url, _ in routes:
        response = client.open(url, method=method, headers={"Authorization": f"Bearer {raw}"})
        assert response.status_code == 403, (endpoint, method, url)
