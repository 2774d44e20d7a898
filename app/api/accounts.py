"""Accounts API: sign-up, the caller's profile, API tokens, and the OpenAPI document.

Managing tokens (list, create, revoke) needs a signed-in session, or a token carrying the `tokens`
scope; a token creates tokens only within its own scopes, so a `listener` token can never mint a
`finance` one.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template
from marshmallow import Schema, fields, validate

from app import context
from app.api import API_PREFIX, load
from app.auth import access, current_principal, current_user
from app.openapi import build_spec
from core import ratelimit
from core.users import (
    ROLES,
    SELF_SERVICE_ROLES,
    TOKEN_SCOPES,
    TOKENS_SCOPE,
    create_user,
    issue_token,
    revoke_token,
)

bp = Blueprint("api_accounts", __name__, url_prefix=API_PREFIX)


class SignUpSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(max=320))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=10, max=1024))
    display_name = fields.String(validate=validate.Length(min=1, max=120))
    roles = fields.List(fields.String(validate=validate.OneOf(SELF_SERVICE_ROLES)),
                        load_default=["listener"], validate=validate.Length(min=1, max=4))


class UserSchema(Schema):
    id = fields.Integer(dump_only=True)
    email = fields.String()
    display_name = fields.String()
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)))
    created_at = fields.DateTime(dump_only=True)


class MeSchema(UserSchema):
    effective_roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), metadata={
        "description": "the roles this request acts with (a token's scopes narrow the user's roles)"})


class TokenRequestSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    scopes = fields.List(fields.String(validate=validate.OneOf(TOKEN_SCOPES)), metadata={
        "description": "roles the token acts with, plus `tokens` to let it manage tokens; from a token, only "
                       "scopes that token has. Default: the caller's roles (never `tokens`)"})


class TokenSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    scopes = fields.List(fields.String())
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)
    token = fields.String(metadata={"description": "the raw token; shown once, at creation"})


@bp.get("/openapi.json")
@access(public=True)
def openapi():
    """The OpenAPI 3 document of this API."""
    spec = current_app.extensions["ninety"].extras.get("openapi")
    if spec is None:
        spec = current_app.extensions["ninety"].extras["openapi"] = build_spec(current_app)
    return jsonify(spec)


@bp.get("/docs")
@access(public=True)
def docs():
    """A readable page of the API."""
    spec = current_app.extensions["ninety"].extras.get("openapi") or build_spec(current_app)
    return render_template("api_docs.html", spec=spec)


@bp.post("/users")
@access(public=True, csrf=False)
def sign_up():
    """Create an account.
    ---
    post:
      requestBody:
        content:
          application/json:
            schema: SignUpSchema
      responses:
        201:
          description: the new account
          content:
            application/json:
              schema: UserSchema
    """
    data = load(SignUpSchema())
    ratelimit.enforce(context.redis(), f"signup:{_client_ip()}", limit=20, window_s=3600,
                      message="Too many sign-ups from this address; try again later.")
    user = create_user(context.db(), email=data["email"], password=data["password"],
                       display_name=data.get("display_name"), roles=data["roles"])
    return UserSchema().dump(user), 201


@bp.get("/me")
@access()
def me():
    """The signed-in caller.
    ---
    get:
      responses:
        200:
          content:
            application/json:
              schema: MeSchema
    """
    principal = current_principal()
    body = MeSchema().dump(principal.user)
    body["effective_roles"] = sorted(principal.roles)
    return body


@bp.get("/tokens")
@access(token_scope=TOKENS_SCOPE)
def list_tokens():
    """The caller's API tokens (never their values). Needs a session or a token with the `tokens` scope.
    ---
    get:
      security:
        - session: []
        - bearer: [tokens]
      responses:
        200:
          content:
            application/json:
              schema:
                type: object
                properties:
                  items:
                    type: array
                    items: TokenSchema
    """
    return {"items": TokenSchema(many=True, exclude=("token",)).dump(current_user().tokens)}


@bp.post("/tokens")
@access(token_scope=TOKENS_SCOPE)
def create_token():
    """Create an API token scoped to some of the caller's roles; its value is shown once.

    Needs a session or a token with the `tokens` scope; a token creates only tokens within its own
    scopes (403 `scope_exceeds_token` otherwise).
    ---
    post:
      description: >-
        Needs a signed-in session, or a token with the `tokens` scope. A token creates only tokens within
        its own scopes (403 `scope_exceeds_token`); without `scopes`, the new token gets the caller's roles.
      security:
        - session: []
        - bearer: [tokens]
      requestBody:
        content:
          application/json:
            schema: TokenRequestSchema
      responses:
        201:
          content:
            application/json:
              schema: TokenSchema
    """
    data = load(TokenRequestSchema())
    token, raw = issue_token(context.db(), current_user(), name=data["name"], scopes=data.get("scopes"),
                             within=current_principal().scopes)
    body = TokenSchema().dump(token)
    body["token"] = raw
    return body, 201


@bp.delete("/tokens/<int:token_id>")
@access(token_scope=TOKENS_SCOPE)
def delete_token(token_id: int):
    """Revoke one of the caller's API tokens. Needs a session or a token with the `tokens` scope.
    ---
    delete:
      security:
        - session: []
        - bearer: [tokens]
      responses:
        200:
          content:
            application/json:
              schema: TokenSchema
    """
    token = revoke_token(context.db(), current_user(), token_id, context.clock())
    return TokenSchema(exclude=("token",)).dump(token)


def _client_ip() -> str:
    from flask import request

    return request.remote_addr or "unknown"
