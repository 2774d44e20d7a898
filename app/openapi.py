"""The OpenAPI 3 document, built from the API views themselves.

Each API view's docstring carries its operation in YAML after a `---` line (apispec's convention);
marshmallow schemas named there are resolved by class name and published under components.
"""

from __future__ import annotations

import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.yaml_utils import load_operations_from_docstring
from flask import Flask

from app.converters import PATH_SCHEMAS

_CONVERTER = re.compile(r"<(?:(?P<conv>[a-z_]+)(?:\([^)]*\))?:)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")

PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "code": {"type": "string"}, "detail": {"type": "string"}, "instance": {"type": "string"},
    },
    "required": ["type", "title", "status", "code"],
}


_STATUS_TEXT = {"200": "OK", "201": "Created", "202": "Accepted", "204": "No content", "302": "Redirect",
                "206": "Partial content", "304": "Not modified"}


def _path(rule: str) -> tuple[str, list[dict]]:
    params = []

    def repl(match):
        schema = dict(PATH_SCHEMAS.get(match["conv"] or "", {"type": "string"}))
        params.append({"name": match["name"], "in": "path", "required": True, "schema": schema})
        return "{" + match["name"] + "}"

    return _CONVERTER.sub(repl, rule), params


def build_spec(app: Flask) -> dict:
    spec = APISpec(
        title="Ninety API",
        version="1.0.0",
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={"description": "Artist-direct music: ninety percent to the artist, to the sub-cent."},
    )
    spec.components.schema("Problem", PROBLEM)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("session", {"type": "apiKey", "in": "cookie", "name": "session"})
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/api/v1") or rule.endpoint.endswith("openapi"):
            continue
        view = app.view_functions[rule.endpoint]
        operations = load_operations_from_docstring(view.__doc__ or "") or {}
        path, params = _path(rule.rule)
        ops = {}
        access = getattr(view, "ninety_access", {})
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op = dict(operations.get(method.lower()) or {})
            summary = (view.__doc__ or "").strip().split("\n")[0] if view.__doc__ else rule.endpoint
            op.setdefault("summary", summary)
            op.setdefault("operationId", f"{rule.endpoint}.{method.lower()}")
            op.setdefault("tags", [rule.endpoint.split(".")[0].removeprefix("api_")])
            responses = op.setdefault("responses", {"200": {"description": "OK"}})
            for status, response in responses.items():
                if isinstance(response, dict):
                    response.setdefault("description", _STATUS_TEXT.get(str(status), "Response"))
            responses.setdefault("default", {"description": "Problem",
                                             "content": {"application/problem+json": {
                                                 "schema": {"$ref": "#/components/schemas/Problem"}}}})
            if access and not access.get("public"):
                op.setdefault("security", [{"bearer": []}, {"session": []}])
                if access.get("roles"):
                    op.setdefault("x-roles", list(access["roles"]))
            if params:
                op.setdefault("parameters", [])
                names = {p.get("name") for p in op["parameters"]}
                op["parameters"] = [p for p in params if p["name"] not in names] + op["parameters"]
            ops[method.lower()] = op
        if ops:
            spec.path(path=path, operations=ops)
    return spec.to_dict()
