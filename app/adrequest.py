"""What the ad and gate views share: who is asking, the gate's settings, and ads as JSON.

Not a blueprint: the web pages (app/web/ads.py) and the JSON API (app/api/ads.py) both use it, and
blueprints never import each other.
"""

from __future__ import annotations

from flask import request, url_for

from adserver import services as ads
from adserver.media import file_name
from app import context
from app.auth import current_listener_id
from core.money import Money
from entitlements.services import GateSettings, Requester


def requester() -> Requester:
    """This request's listener, address and client, as plain data for the domain."""
    return Requester(listener_id=current_listener_id(), ip=request.remote_addr or "",
                     user_agent=request.headers.get("User-Agent", ""),
                     country=(request.headers.get("CF-IPCountry") or "")[:2].upper() or None,
                     headers=request.headers)


def gate_settings() -> GateSettings:
    """The gate's settings, built once per app from its Config."""
    runtime = context.runtime()
    settings = runtime.extras.get("gate_settings")
    if settings is None:
        cfg = runtime.config
        settings = runtime.extras["gate_settings"] = GateSettings(
            secret=cfg.secret_key, currency=cfg.currency,
            floor_cpm_micros=Money.parse(cfg.ad_floor_cpm, cfg.currency).micros,
            decision_ttl_s=cfg.ad_decision_ttl_s, min_view_s=cfg.ad_min_view_s,
            grant_ttl_s=cfg.download_grant_ttl_s, key_impressions_per_download=cfg.key_impressions_per_download,
            beacon_limits=ads.Limits.parse(cfg.ad_beacon_limits))
    return settings


def download_url(grant: str, fmt: str | None = None) -> str:
    """The single-use download link of a grant, in the listener's chosen format (None: as uploaded)."""
    return url_for("web_catalog.download", token=grant, format=fmt)


def creative_json(placement) -> dict:
    c = placement.creative
    body = {"id": c.id, "kind": c.kind, "name": c.name, "alt_text": c.alt_text,
            "click_url": url_for("web_ads.click", token=placement.token, _external=True)}
    if c.image_sha256:
        body["image_url"] = url_for("web_ads.media", name=file_name(c.image_sha256, c.image_mime), _external=True)
    if c.audio_sha256:
        body["audio_url"] = url_for("web_ads.media", name=file_name(c.audio_sha256, c.audio_mime), _external=True)
        body["duration_ms"] = c.duration_ms
    return body


def placement_json(placement) -> dict:
    d = placement.decision
    return {"fill": True, "decision": placement.token, "decision_id": d.id, "slot": d.slot, "mode": d.mode,
            "track_id": d.track_id, "expires_at": d.expires_at, "min_view_ms": d.min_view_ms,
            "price": {"micros": d.price_micros, "currency": d.currency},
            "impression_url": url_for("web_ads.impression", token=placement.token, _external=True),
            "creative": creative_json(placement)}


def credit_json(credit) -> dict | None:
    """Key-mode credit for a client: how many counted ad views it holds and one download needs."""
    if credit is None:
        return None
    return {"have": credit.have, "needed": credit.needed, "enough": credit.enough}
