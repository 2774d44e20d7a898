"""A sweep of the whole JSON API with malformed and hostile input: always a 4xx problem, never a 500.

The endpoints and their body fields are read from the OpenAPI document, so every area's API is covered.
The caller holds every role (through a token), so the requests reach the views' parsing and rules.
"""

import re

import pytest

from core.users import ROLES

HOSTILE_STRINGS = ["'; DROP TABLE users; --", "<script>alert(1)</script>", "\" OR 1=1 --", "../../etc/passwd",
                   "\x00", "é" * 5000, "%s%s%n", "{{7*7}}"]
WRONG_TYPES = [None, 12345678901234567890, -1, 1.5, True, [], {}, "not-a-number"]


def _body_operations(spec):
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method not in {"post", "put", "patch", "delete"}:
                continue
            yield path, method, op


def _fields(spec, op):
    content = (op.get("requestBody") or {}).get("content", {}).get("application/json", {})
    schema = content.get("schema") or {}
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return list((schema.get("properties") or {}).keys())


def _url(path):
    return re.sub(r"\{[^}]+\}", "1", path)


@pytest.fixture
def caller(app, make_user, token_for):
    user = make_user(roles=ROLES)
    return {"Authorization": f"Bearer {token_for(user)}"}


def _assert_problem(response, what):
    assert response.status_code < 500, (what, response.status_code, response.get_data(as_text=True)[:300])
    if response.status_code >= 400:
        assert response.mimetype == "application/problem+json", what
        body = response.get_json()
        assert body["code"] and body["detail"], what


def test_malformed_bodies_get_problems(app, client, caller):
    spec = client.get("/api/v1/openapi.json").get_json()
    checked = 0
    for path, method, _ in _body_operations(spec):
        url = _url(path)
        for data, ctype in [(b"{not json", "application/json"), (b"[1, 2]", "application/json"),
                            (b"\xff\xfe", "application/json"), (b"<xml/>", "application/xml"), (b"", "application/json")]:
            response = client.open(url, method=method.upper(), data=data, content_type=ctype, headers=caller)
            _assert_problem(response, (method, path, data))
        response = client.open(url, method=method.upper(), json={"surely_unknown_field": 1}, headers=caller)
        _assert_problem(response, (method, path, "unknown field"))
        checked += 1
    assert checked >= 2


def test_wrong_types_and_hostile_strings_in_every_field(app, client, caller):
    spec = client.get("/api/v1/openapi.json").get_json()
    for path, method, op in _body_operations(spec):
        url = _url(path)
        for field in _fields(spec, op):
            for value in WRONG_TYPES + HOSTILE_STRINGS:
                response = client.open(url, method=method.upper(), json={field: value}, headers=caller)
                _assert_problem(response, (method, path, field, repr(value)[:40]))
                if response.status_code >= 400 and isinstance(value, str) and "<script>" in value:
                    assert "<script>" not in response.get_data(as_text=True).replace("\\u003c", "<") or \
                        response.mimetype == "application/problem+json"


def test_nothing_half_written_after_a_refused_sign_up(client, db_session):
    from core.users import User

    response = client.post("/api/v1/users", json={"email": "x@example.com", "password": "short"})
    assert response.status_code == 422
    response = client.post("/api/v1/users", json={"email": "x@example.com", "password": "long enough pw",
                                                   "roles": ["admin"]})
    assert response.status_code == 422
    assert db_session.query(User).count() == 0
