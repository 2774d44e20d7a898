"""Takedown notices over the API (/api/v1/notices), for rights holders with many works: file one notice for
one or many works (JSON, or multipart with a CSV of works and reference audio files), list and read their
own notices with each case and the audit log, withdraw, report a court action.

`Idempotency-Key` (a header, like Stripe's): the same key from the same rights holder returns the notice
it first filed (200, the same id) instead of filing another (201); the same key with different content is
a 409. An incomplete notice is a 422 problem whose `missing` lists exactly which elements are missing;
an invalid one (unknown or already-disabled tracks, one's own track, a malformed CSV) lists `problems`.
Nothing is written for a refused notice: the request rolls back.
"""

from __future__ import annotations

import re

from flask import Blueprint, request, url_for
from marshmallow import Schema, fields, validate
from marshmallow import ValidationError as SchemaError
from sqlalchemy import select

from app import context
from app.api import API_PREFIX, json_body, load
from app.auth import access, current_user
from app.noticerequest import read_csv_upload, saved_references, settings
from app.request_body import file_parts, is_multipart, json_field
from core.errors import ValidationError
from rights import services
from rights.models import Notice

bp = Blueprint("api_notices", __name__, url_prefix=API_PREFIX)

IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")
MAX_ID = 2**31 - 1


class TrackReference(fields.Field):
    """A track or release: an id, `track:12`, `release:5`, or the URL of its page on Ninety."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise SchemaError("A track is an id, 'track:ID', 'release:ID' or a Ninety page URL.")
        if isinstance(value, int) and not 1 <= value <= MAX_ID:
            raise SchemaError("No track has that id.")
        if isinstance(value, str) and not 1 <= len(value) <= 2000:
            raise SchemaError("A track reference is 1 to 2,000 characters.")
        return value


TRACK_REF_DOC = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_ID},
                           {"type": "string", "minLength": 1, "maxLength": 2000}]}


class NoticeClaimantSchema(Schema):
    name = fields.String(validate=validate.Length(max=500))
    email = fields.String(validate=validate.Length(max=320))
    address = fields.String(validate=validate.Length(max=500))
    phone = fields.String(validate=validate.Length(max=60))
    acting_for = fields.String(validate=validate.Length(max=500), allow_none=True)


class NoticeWorkInSchema(Schema):
    title = fields.String(validate=validate.Length(max=500))
    description = fields.String(validate=validate.Length(max=5000))
    tracks = fields.List(TrackReference(metadata=TRACK_REF_DOC), validate=validate.Length(max=1000))
    reference = fields.String(validate=validate.Length(min=1, max=200),
                              metadata={"description": "the name of a reference audio file sent in the same "
                                                       "multipart request"})


class NoticeStatementsSchema(Schema):
    good_faith = fields.Boolean()
    accurate = fields.Boolean()
    authorized = fields.Boolean()


class NoticeCreateSchema(Schema):
    """A notice. Every element is checked by the service, which names each missing one; only the types are
    checked here."""

    claimant = fields.Nested(NoticeClaimantSchema)
    works = fields.List(fields.Nested(NoticeWorkInSchema), validate=validate.Length(max=20_000))
    statements = fields.Nested(NoticeStatementsSchema)
    signature = fields.String(validate=validate.Length(max=200))


class NoticeWorkSchema(Schema):
    position = fields.Integer()
    title = fields.String()
    description = fields.String()
    reference_sha256 = fields.String(allow_none=True)


class NoticeCaseSchema(Schema):
    id = fields.Integer()
    track_id = fields.Integer()
    release_id = fields.Integer(allow_none=True)
    via = fields.String(metadata={"enum": ["named", "same_audio", "fingerprint"]})
    state = fields.String()
    outcome_reason = fields.String(allow_none=True)
    actioned_at = fields.DateTime(allow_none=True)
    counter_deadline_at = fields.DateTime(allow_none=True)
    countered_at = fields.DateTime(allow_none=True)
    restore_at = fields.DateTime(allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)


class NoticeEventSchema(Schema):
    at = fields.DateTime()
    case_id = fields.Integer(allow_none=True)
    actor_role = fields.String()
    action = fields.String()
    reason = fields.String(allow_none=True)


class NoticeSchema(Schema):
    id = fields.Integer()
    status = fields.String(metadata={"enum": ["received", "actioned", "rejected", "withdrawn"]})
    source = fields.String()
    received_at = fields.DateTime()
    deadline_at = fields.DateTime()
    decided_at = fields.DateTime(allow_none=True)
    decision_reason = fields.String(allow_none=True)
    idempotency_key = fields.String(allow_none=True)
    works = fields.List(fields.Nested(NoticeWorkSchema))
    cases = fields.List(fields.Nested(NoticeCaseSchema))


class NoticeDetailSchema(NoticeSchema):
    events = fields.List(fields.Nested(NoticeEventSchema))


class NoticeListSchema(Schema):
    items = fields.List(fields.Nested(NoticeSchema))


class NoticeWithdrawSchema(Schema):
    reason = fields.String(load_default="", validate=validate.Length(max=2000))


class CourtActionSchema(Schema):
    reference = fields.String(required=True, validate=validate.Length(min=1, max=500))


def idempotency_key() -> str | None:
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(raw):
        raise ValidationError("The Idempotency-Key header is 1 to 200 visible ASCII characters.",
                              code="invalid_idempotency_key", status=400)
    return raw


def _payload_and_files() -> tuple[dict, dict, str]:
    """The notice payload, the reference files by name, and the source (api, or csv when works came as CSV)."""
    if not is_multipart():
        return load(NoticeCreateSchema()), {}, "api"
    payload = load(NoticeCreateSchema(), json_field("notice"))
    source = "api"
    files: dict = {}
    for name, file in file_parts(exclude=("csv",)):
        files.setdefault(name, file)
    csv_file = dict(file_parts("csv")).get("csv")
    if csv_file is not None:
        payload["works"] = services.parse_works_csv(read_csv_upload(csv_file))
        source = "csv"
    return payload, files, source


@bp.post("/notices")
@access("rights_holder", "admin")
def create_notice():
    """File a takedown notice (one or many works; `Idempotency-Key` header: a retry returns the same notice).
    ---
    post:
      parameters:
        - {name: Idempotency-Key, in: header, schema: {type: string, pattern: "^[!-~]{1,200}$"}}
      requestBody:
        content:
          application/json:
            schema: NoticeCreateSchema
          multipart/form-data:
            schema:
              type: object
              properties:
                notice: {type: string, description: the notice as JSON (works may come as the csv file)}
                csv: {type: string, format: binary, description: "works as CSV: title,description,tracks"}
              additionalProperties: {type: string, format: binary, description: a reference audio file}
      responses:
        201:
          description: the notice, received (a confirmation is emailed to the claimant)
          content:
            application/json:
              schema: NoticeDetailSchema
        200:
          description: the notice this Idempotency-Key filed before
          content:
            application/json:
              schema: NoticeDetailSchema
        413:
          description: a reference file (or the body) is too large
        422:
          description: "incomplete: `missing` lists each element; invalid: `problems` lists each one"
    """
    session = context.db()
    user = current_user()
    key = idempotency_key()
    payload, files, source = _payload_and_files()
    if key is not None:
        earlier = session.scalar(select(Notice).where(Notice.claimant_user_id == user.id,
                                                      Notice.idempotency_key == key))
    else:
        earlier = None
    cfg = settings()
    with saved_references(files, max_bytes=cfg.max_reference_bytes) as references:
        notice = services.file_notice(session, user, payload, clock=context.clock(), settings=cfg,
                                      idempotency_key=key, references=references or None, source=source)
    status = 200 if earlier is not None and earlier.id == notice.id else 201
    headers = {"Location": url_for("api_notices.get_notice", notice_id=notice.id)}
    return _detail(notice), status, headers


def _detail(notice) -> dict:
    body = NoticeSchema().dump(notice)  # and its events, as NoticeDetailSchema declares them
    body["events"] = NoticeEventSchema(many=True).dump(services.notice_events(context.db(), notice.id, current_user()))
    return body


@bp.get("/notices")
@access("rights_holder", "admin")
def list_notices():
    """The caller's own notices, newest first (?limit=, at most 200).
    ---
    get:
      parameters:
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 200}}
      responses:
        200:
          content:
            application/json:
              schema: NoticeListSchema
    """
    limit = request.args.get("limit", type=int) or 100
    if not 1 <= limit <= 200:
        raise ValidationError("limit is 1 to 200.", code="invalid_limit", field="limit")
    return NoticeListSchema().dump({"items": services.notices_for_claimant(context.db(), current_user().id, limit=limit)})


@bp.get("/notices/<int:notice_id>")
@access("rights_holder", "admin")
def get_notice(notice_id: int):
    """One of the caller's notices with its cases and audit log (anyone else's is a 404).
    ---
    get:
      responses:
        200:
          content:
            application/json:
              schema: NoticeDetailSchema
    """
    return _detail(services.get_notice(context.db(), notice_id, current_user()))


@bp.post("/notices/<int:notice_id>/withdraw")
@access("rights_holder", "admin")
def withdraw_notice(notice_id: int):
    """Withdraw a notice: every open case ends, the tracks come back, held earnings go to the artists.
    ---
    post:
      requestBody:
        content:
          application/json:
            schema: NoticeWithdrawSchema
      responses:
        200:
          content:
            application/json:
              schema: NoticeDetailSchema
    """
    data = load(NoticeWithdrawSchema(), json_body() if request.content_length else {})
    notice = services.withdraw_notice(context.db(), notice_id, current_user(), clock=context.clock(), settings=settings(),
                      reason=data["reason"])
    return _detail(notice)


@bp.post("/notices/cases/<int:case_id>/court-action")
@access("rights_holder", "admin")
def court_action(case_id: int):
    """Report a court action against a counter-notified case: the track stays down, the case is upheld.
    ---
    post:
      requestBody:
        content:
          application/json:
            schema: CourtActionSchema
      responses:
        200:
          content:
            application/json:
              schema: NoticeDetailSchema
    """
    data = load(CourtActionSchema())
    session = context.db()
    case = services.report_court_action(session, case_id, current_user(), clock=context.clock(),
                                        settings=settings(), reference=data["reference"])
    return _detail(services.get_notice(session, case.notice_id, current_user()))
