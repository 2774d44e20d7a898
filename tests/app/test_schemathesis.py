"""schemathesis over the whole OpenAPI document (/api/v1/openapi.json): no operation answers 5xx, and every
response matches the schema, status codes, content type and headers the document names.

The document is loaded once, at collection, from an app built with engines it never reaches (serving the
document needs neither); each generated case is then sent to the test's own app, which has a real
PostgreSQL and Redis and a fresh token of a user holding every role, so protected operations get past auth.

Budget: the examples and coverage phases plus a few seeded, derandomized fuzzing examples per operation;
about a minute on one core. Checks that judge business rules the schema cannot state (a schema-valid split
sheet that does not sum to 100 %, say) are left out: `positive_data_acceptance`, `negative_data_rejection`.
"""

from __future__ import annotations

import io

import pytest
import schemathesis

from app import create_app
from app.config import Config
from catalog import services as catalog
from catalog.schemas import (
    AudioSchema,
    MoneySchema,
    PriceOutSchema,
    ReleaseCardSchema,
    ReleaseSchema,
    TrackSchema,
)
from catalog.storage import MediaStore
from catalog.uploads import upload_track
from core.users import ROLES, get_user
from tests.catalog.conftest import tone

SETTINGS = {
    "seed": 90,
    "generation": {"max-examples": 10, "deterministic": True},
    "checks": {"positive_data_acceptance": {"enabled": False}, "negative_data_rejection": {"enabled": False}},
}


class _TestsApp:
    """A WSGI app that forwards to the app the running test built (the schema outlives any one app)."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


def _document_app():
    unreachable = Config(env="test", secret_key="d" * 40, log_level="WARNING",
                         database_url="postgresql+psycopg://nobody@127.0.0.1:9/none", redis_url="redis://127.0.0.1:9/0")
    return create_app(unreachable)


FORWARD = _TestsApp(_document_app())
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", FORWARD,
                                        config=schemathesis.Config.from_dict(SETTINGS))


@pytest.fixture
def served(app):
    FORWARD.app = app
    yield app


@pytest.fixture
def bearer(served, make_user, token_for):
    """A fresh token per case (a generated DELETE /tokens/{id} may revoke the one before) of a user who holds
    every role and is the member of artist 1, whose release 1 (published) has track 1: generated ids reach
    rows the caller may change, not only 404s."""
    user = make_user(roles=ROLES)
    runtime = served.extensions["ninety"]
    session = runtime.sessions()
    artist = catalog.create_artist(session, user=get_user(session, user.id), name="Fuzz Ensemble")
    release = catalog.create_release(session, artist.id, title="Generated", genre="noise", kind="single")
    upload_track(session, MediaStore(runtime.config.media_path), release, io.BytesIO(tone()), "01 One.wav",
                 clock=runtime.clock, max_bytes=None, title="One")
    catalog.publish_release(session, release, clock=runtime.clock)
    session.commit()
    session.close()
    return lambda: token_for(user)


def test_the_document_tested_is_the_one_served(client):
    assert client.get("/api/v1/openapi.json").get_json() == schema.raw_schema


def pytest_generate_tests(metafunc):
    # pytest 9.2 builds a node id from the function's name and its parametrization only, so every operation's
    # item would be `test_api` and xdist (make test: -n 2 --dist loadgroup) would run one of them. A one-value
    # parametrization keeps schemathesis's "[METHOD /path]" in the id: test_api[GET /api/v1/me][every-role].
    if metafunc.definition.originalname == "test_api":
        metafunc.parametrize("caller", ["every-role"])


@schema.parametrize()
def test_api(case, bearer, caller):
    response = case.call_and_validate(headers={"Authorization": f"Bearer {bearer()}"})
    assert_no_undocumented_fields(case.operation.label, response)


def _resolve(node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        node = schema.raw_schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _undocumented(value, node: dict, where: str) -> list[str]:
    """Fields in `value` that its documented schema does not name (schemathesis allows them by default)."""
    node = _resolve(node)
    for branch in node.get("anyOf", []) + node.get("oneOf", []):
        if _resolve(branch).get("properties") or _resolve(branch).get("items"):
            node = _resolve(branch)
            break
    found = []
    if isinstance(value, dict) and "properties" in node:
        found += [f"{where}.{key}" for key in value if key not in node["properties"]]
        for key, item in value.items():
            if key in node["properties"]:
                found += _undocumented(item, node["properties"][key], f"{where}.{key}")
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for index, item in enumerate(value[:20]):
            found += _undocumented(item, node["items"], f"{where}[{index}]")
    return found


def assert_no_undocumented_fields(label: str, response) -> None:
    method, path = label.split(" ", 1)
    operation = schema.raw_schema["paths"][path][method.lower()]
    documented = (operation.get("responses") or {}).get(str(response.status_code)) or {}
    body_schema = (documented.get("content") or {}).get("application/json", {}).get("schema")
    if not (200 <= response.status_code < 300 and body_schema and response.content):
        return
    extra = _undocumented(response.json(), body_schema, "body")
    assert not extra, f"{label} returned fields its documented schema lacks: {extra}"


def test_the_undocumented_field_check_finds_one():
    me = schema.raw_schema["paths"]["/api/v1/me"]["get"]["responses"]["200"]["content"]["application/json"]
    assert _undocumented({"id": 1, "email": "a@example.com", "secret_flag": True}, me["schema"], "body") == \
        ["body.secret_flag"]


def test_catalog_output_is_dumped_with_the_schemas_the_document_names(client, bearer):
    """What GET /releases/{id} and /releases return is exactly what ReleaseSchema, TrackSchema and
    ReleaseCardSchema declare: no field added or dropped by hand."""
    release = client.get("/api/v1/releases/1").get_json()
    assert set(release) == set(ReleaseSchema().fields)
    assert release["url"] == "/artists/fuzz-ensemble/generated" and release["cover_url"] is None
    assert set(release["artist"]) >= {"id", "slug", "name"} and release["artist"]["name"] == "Fuzz Ensemble"
    assert set(release["price"]) == set(PriceOutSchema().fields)
    track = release["tracks"][0]
    assert set(track) == set(TrackSchema().fields) and track["title"] == "One"
    assert set(track["audio"]) == set(AudioSchema().fields) and len(track["audio"]["sha256"]) == 64
    assert track["price"]["price_model"] == release["price"]["price_model"]
    price = release["price"]["price"]
    assert price is None or set(price) == set(MoneySchema().fields)
    page = client.get("/api/v1/releases").get_json()
    assert [set(item) for item in page["items"]] == [set(ReleaseCardSchema().fields)]
    assert page["items"][0]["id"] == 1 and page["items"][0]["url"] == release["url"]
    documented = schema.raw_schema["components"]["schemas"]
    assert set(documented["Release"]["properties"]) == set(release)
    assert set(documented["ReleaseCard"]["properties"]) == set(page["items"][0])
