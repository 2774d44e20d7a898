"""The ad server's JSON API: decisions for apps and players, the gate flow as JSON, campaigns and reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, request
from marshmallow import Schema, fields, validate

from adserver import services as ads
from adserver.errors import AdError
from adserver.models import MODES, PACINGS, SLOTS
from app import context
from app.adrequest import credit_json, download_url, gate_settings, placement_json, requester
from app.api import API_PREFIX, load
from app.auth import access, current_listener_id, current_principal, current_user
from core.fields import Id
from entitlements import services as entitlements

bp = Blueprint("api_ads", __name__, url_prefix=API_PREFIX)


class DecisionRequestSchema(Schema):
    slot = fields.String(required=True, validate=validate.OneOf(SLOTS))
    track_id = fields.Integer(validate=validate.Range(min=1, max=2**31 - 1))


class GateRequestSchema(Schema):
    track_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**31 - 1))


class GrantRequestSchema(Schema):
    decision = fields.String(required=True, validate=validate.Length(min=1, max=1200))


class KeyModeSchema(Schema):
    enabled = fields.Boolean(required=True)


class CampaignSchema(Schema):
    id = fields.Integer(dump_only=True)
    advertiser_id = Id(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    status = fields.String(load_default="active", validate=validate.OneOf(("draft", "active", "paused")))
    starts_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    ends_at = fields.AwareDateTime(allow_none=True, load_default=None, default_timezone=UTC)
    total_budget_micros = fields.Integer(required=True, validate=validate.Range(min=1, max=10**15))
    daily_budget_micros = fields.Integer(required=True, validate=validate.Range(min=1, max=10**15))
    bid_cpm_micros = fields.Integer(required=True, validate=validate.Range(min=1, max=10**12))
    pacing = fields.String(load_default="even", validate=validate.OneOf(PACINGS))
    slots = fields.List(fields.String(validate=validate.OneOf(SLOTS)), required=True,
                        validate=validate.Length(min=1, max=3))
    target_genres = fields.List(fields.String(validate=validate.Length(min=1, max=64)), load_default=list,
                                validate=validate.Length(max=50))
    target_countries = fields.List(fields.String(validate=validate.Length(equal=2)), load_default=list,
                                   validate=validate.Length(max=250))
    target_modes = fields.List(fields.String(validate=validate.OneOf(MODES)), load_default=list)
    frequency_cap_per_day = fields.Integer(allow_none=True, load_default=None,
                                           validate=validate.Range(min=1, max=1000))
    currency = fields.String(dump_only=True)


class ReportRowSchema(Schema):
    period = fields.String()
    impressions = fields.Integer()
    invalid = fields.Integer()
    clicks = fields.Integer()
    ctr_bp = fields.Integer(metadata={"description": "click-through rate in basis points"})
    spend_micros = fields.Integer()
    ecpm_micros = fields.Integer()


@bp.post("/ads/decisions")
@access(public=True, csrf=False)
def decision():
    """Ask for an ad (no fill is {"fill": false}); beacon `impression_url` when it is shown.
    ---
    post:
      requestBody:
        content:
          application/json:
            schema: DecisionRequestSchema
      responses:
        200:
          description: a signed decision and its creative, or no fill
    """
    data = load(DecisionRequestSchema())
    mode = "key" if data["slot"] == "browse" else "gate"
    placement = entitlements.place_ad(context.db(), context.redis(), requester(), data["slot"],
                                      track_id=data.get("track_id"), mode=mode, settings=gate_settings(),
                                      clock=context.clock())
    return placement_json(placement) if placement else {"fill": False}


@bp.post("/ads/gate")
@access(public=True, csrf=False)
def gate():
    """Start a free download: an ad to show (then POST /ads/gate/grant), or a download URL straight away
    in key mode or when no ad fills (recorded as such on the grant). A key-mode download spends the
    listener's credit of counted browse ad views; `key_mode` says how many they have and one download
    needs (null when key mode is off), and with too few the gate shows the ad instead.
    ---
    post:
      requestBody:
        content:
          application/json:
            schema: GateRequestSchema
      responses:
        200:
          description: the gate's state
    """
    data = load(GateRequestSchema())
    offer = entitlements.open_gate(context.db(), context.redis(), requester(), data["track_id"],
                                   settings=gate_settings(), clock=context.clock(), grant_now=True)
    key_mode = credit_json(offer.credit)
    if offer.state == "ad":
        body = placement_json(offer.placement)
        body.update(state="ad", grant_url=f"{API_PREFIX}/ads/gate/grant", key_mode=key_mode)
        return body
    return {"state": offer.state, "fill": False, "download_url": download_url(offer.grant), "key_mode": key_mode}


@bp.post("/ads/gate/grant")
@access(public=True, csrf=False)
def gate_grant():
    """After the ad has shown for its minimum time: a single-use download URL (425 while too early).
    ---
    post:
      requestBody:
        content:
          application/json:
            schema: GrantRequestSchema
      responses:
        200:
          description: the download URL
    """
    data = load(GrantRequestSchema())
    grant = entitlements.grant_after_ad(context.db(), context.redis(), requester(), data["decision"],
                                        settings=gate_settings(), clock=context.clock())
    return {"download_url": download_url(grant)}


@bp.put("/ads/key-mode")
@access(public=True)
def key_mode():
    """Switch key mode on or off for the calling listener.
    ---
    put:
      requestBody:
        content:
          application/json:
            schema: KeyModeSchema
      responses:
        200:
          description: the new state
    """
    data = load(KeyModeSchema())
    entitlements.set_key_mode(context.redis(), current_listener_id(), data["enabled"])
    return {"enabled": data["enabled"]}


def _advertiser(advertiser_id: int):
    principal = current_principal()
    return ads.get_advertiser(context.db(), advertiser_id, user_id=current_user().id,
                              is_admin=principal.has_role("admin"))


@bp.get("/ads/campaigns")
@access("advertiser", "admin")
def list_campaigns():
    """The caller's advertisers' campaigns.
    ---
    get:
      responses:
        200:
          content:
            application/json:
              schema:
                type: object
                properties:
                  items:
                    type: array
                    items: CampaignSchema
    """
    items = []
    for advertiser in ads.advertisers_of(context.db(), current_user().id):
        items += advertiser.campaigns
    return {"items": CampaignSchema(many=True).dump(items)}


@bp.post("/ads/campaigns")
@access("advertiser", "admin")
def create_campaign():
    """Create a campaign for one of the caller's advertisers.
    ---
    post:
      requestBody:
        content:
          application/json:
            schema: CampaignSchema
      responses:
        201:
          content:
            application/json:
              schema: CampaignSchema
    """
    data = load(CampaignSchema())
    advertiser = _advertiser(data.pop("advertiser_id"))
    campaign = ads.create_campaign(
        context.db(), context.redis(), advertiser.id,
        ads.CampaignInput(**{**data, "slots": tuple(data["slots"]), "target_genres": tuple(data["target_genres"]),
                             "target_countries": tuple(data["target_countries"]),
                             "target_modes": tuple(data["target_modes"])}),
        floor_cpm_micros=gate_settings().floor_cpm_micros)
    return CampaignSchema().dump(campaign), 201


@bp.get("/ads/campaigns/<int:campaign_id>/report")
@access("advertiser", "admin")
def campaign_report(campaign_id: int):
    """Delivery by day (or ?by=hour) over the last ?days=7: impressions, invalid, clicks, CTR, spend, eCPM,
    unique listeners; fresh within seconds of each beacon.
    ---
    get:
      responses:
        200:
          description: the report
    """
    from adserver.models import Campaign

    campaign = context.db().get(Campaign, campaign_id)
    if campaign is None:
        raise AdError("No such campaign.", code="campaign_not_found", status=404)
    _advertiser(campaign.advertiser_id)
    body = report_json("campaign", campaign.id, request.args.get("by", "day"), request.args.get("days", "7"))
    body["creatives"] = [{"id": c.id, "name": c.name, "kind": c.kind, "status": c.status,
                          **report_json("creative", c.id, "day", request.args.get("days", "7"))["total"]}
                         for c in campaign.creatives]
    return body


def report_json(scope: str, ident: int, by: str, days: str) -> dict:
    if not days.isdigit() or not 1 <= int(days) <= 93:
        raise AdError("days is a whole number from 1 to 93.", code="invalid_range", status=422)
    end = context.clock().now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = datetime.combine((end - timedelta(days=int(days))).date(), datetime.min.time(), tzinfo=UTC)
    result = ads.report(context.redis(), scope, ident, start=start, end=end, by=by)
    return {"scope": scope, "id": ident, "by": by, "unique_listeners": result.unique_listeners,
            "rows": ReportRowSchema(many=True).dump([r.to_json() for r in result.rows if r.impressions or r.invalid
                                                     or r.clicks]),
            "total": {**result.total.to_json(), "unique_listeners": result.unique_listeners}}
