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


# --- numbers and months no column or calendar holds --------------------------------------------------------
BEYOND_INTEGER = [2**31, 99999999999, 10**30]


def test_ids_beyond_the_integer_columns_are_404_not_500(client, caller):
    for big in BEYOND_INTEGER:
        for path in [f"/api/v1/releases/{big}", f"/api/v1/artists/{big}", f"/api/v1/tracks/{big}/split",
                     f"/api/v1/royalties/statements/{big}/2026-01", f"/api/v1/payouts/batches/{big}/progress"]:
            response = client.get(path, headers=caller)
            assert response.status_code == 404, (path, response.status_code)
            assert response.mimetype == "application/problem+json", path
        assert client.get(f"/ads/vast?track={big}").status_code in (404, 422)
        for path in [f"/tracks/{big}/free", f"/royalties/statements/{big}/2026-01"]:
            assert client.get(path, headers={**caller, "Accept": "text/html"}).status_code == 404, path
    # the largest id a row can have still reaches the database, which says there is none
    assert client.get(f"/api/v1/releases/{2**31 - 1}").get_json()["code"] == "release_not_found"


def test_journal_entry_ids_are_bigint(client, caller):
    assert client.get(f"/api/v1/ledger/entries/{2**40}", headers=caller).status_code == 404
    assert client.get(f"/api/v1/ledger/entries/{2**63}", headers=caller).status_code == 404


def test_path_ids_are_documented_with_their_column_bounds(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    release = spec["paths"]["/api/v1/releases/{release_id}"]["get"]["parameters"][0]
    assert release["schema"]["maximum"] == 2**31 - 1 and release["schema"]["format"] == "int32"
    entry = spec["paths"]["/api/v1/ledger/entries/{entry_id}"]["get"]["parameters"][0]
    assert entry["schema"]["maximum"] == 2**63 - 1


def test_ids_beyond_the_integer_columns_in_a_body_are_422(client, caller):
    for big in BEYOND_INTEGER:
        response = client.put("/api/v1/tracks/1/split", json={"shares": [{"payee_id": big, "share_bp": 10000}]},
                              headers=caller)
        assert response.status_code == 422, response.get_json()
        assert "payee_id" in str(response.get_json()["errors"])
        response = client.post("/api/v1/ads/campaigns", headers=caller, json={
            "advertiser_id": big, "name": "x", "starts_at": "2026-01-01T00:00:00Z", "total_budget_micros": 1,
            "daily_budget_micros": 1, "bid_cpm_micros": 1, "slots": ["gate"]})
        assert response.status_code == 422, response.get_json()
        assert "advertiser_id" in response.get_json()["errors"]


@pytest.mark.parametrize("period", ["0000-01", "9999-12"])
def test_months_outside_the_calendar_are_refused_with_a_reason(client, caller, period):
    for path in [f"/api/v1/royalties/receipt?period={period}", f"/api/v1/royalties/statements/1/{period}"]:
        response = client.get(path, headers=caller)
        assert response.status_code == 422, (path, response.status_code)
        assert response.get_json()["code"] == "invalid_period"
    page = client.get(f"/royalties/receipt?period={period}", headers={"Accept": "text/html"})
    assert page.status_code == 422
    response = client.post("/api/v1/payouts/batches", json={"period": period}, headers=caller)
    assert response.status_code == 422 and response.get_json()["code"] == "invalid_period"
    response = client.post(f"/api/v1/royalties/periods/{period}/close", headers=caller)
    assert response.status_code == 422 and response.get_json()["code"] == "invalid_period"


def test_ledger_period_bounds_refuse_year_zero():
    from ledger.errors import InvalidEntry
    from ledger.periods import period_bounds

    for period in ("0000-01", "9999-12"):
        with pytest.raises(InvalidEntry):
            period_bounds(period)
    assert period_bounds("9999-11")[1].year == 9999


# --- statuses that promise a header ------------------------------------------------------------------------
def test_405_says_which_methods_are_allowed(client):
    response = client.delete("/api/v1/releases")
    assert response.status_code == 405 and response.mimetype == "application/problem+json"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "HEAD", "OPTIONS"}
    page = client.delete("/music", headers={"Accept": "text/html"})
    assert page.status_code == 405 and "GET" in page.headers["Allow"]


def test_425_and_503_say_when_to_try_again(make_app):
    from adserver.errors import TooEarly
    from app.auth import access
    from core.errors import NinetyError

    app = make_app()

    @app.get("/api/v1/test-too-early")
    @access(public=True)
    def too_early():
        raise TooEarly("wait a little", retry_after=3)

    @app.get("/api/v1/test-too-early-unsaid")
    @access(public=True)
    def too_early_unsaid():
        raise TooEarly("wait")

    @app.get("/api/v1/test-unavailable")
    @access(public=True)
    def unavailable():
        raise NinetyError("down for a moment", code="maintenance", status=503)

    client = app.test_client()
    response = client.get("/api/v1/test-too-early")
    assert response.status_code == 425 and response.headers["Retry-After"] == "3"
    assert response.get_json()["retry_after"] == 3
    assert client.get("/api/v1/test-too-early-unsaid").headers["Retry-After"] == "1"
    assert client.get("/api/v1/test-unavailable").headers["Retry-After"] == "1"


def test_ids_beyond_the_integer_columns_in_a_query_are_refused(client, caller):
    for big in BEYOND_INTEGER:
        for path in [f"/api/v1/releases?artist_id={big}", f"/api/v1/royalties/balance?payee={big}",
                     f"/api/v1/releases?limit={big}", f"/api/v1/search?q=a&limit={big}"]:
            response = client.get(path, headers=caller)
            assert response.status_code < 500, (path, response.status_code)
            assert response.status_code >= 400 or response.get_json()["items"] == [], path
        page = client.get(f"/dashboard?payee={big}", headers={**caller, "Accept": "text/html"})
        assert page.status_code < 500, page.status_code


def test_days_at_the_ends_of_the_calendar(client, caller):
    """The end of 9999-12-31 is the last moment a datetime holds, not an overflow; year 0 is no date."""
    last = client.get("/api/v1/ledger/trial-balance?as_of=9999-12-31", headers=caller)
    assert last.status_code == 200, last.get_data(as_text=True)[:300]
    statement = client.get("/api/v1/ledger/accounts/income:ads/statement?start=0001-01-01&end=9999-12-31",
                           headers=caller)
    assert statement.status_code < 500, statement.get_data(as_text=True)[:300]
    zero = client.get("/api/v1/ledger/trial-balance?as_of=0000-01-01", headers=caller)
    assert zero.status_code == 422 and zero.get_json()["code"] == "invalid_date"
