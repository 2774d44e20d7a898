"""The advertiser console (advertisers, campaigns, creatives, delivery and spend) and admin creative review."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from adserver import keys
from adserver import services as ads
from adserver.errors import CampaignInvalid, NotFoundError
from adserver.models import SLOTS, Campaign, Creative
from app import context
from app.adrequest import creative_json, gate_settings
from app.auth import access, current_principal, current_user
from app.forms import attempt
from core.errors import NinetyError
from core.money import Money

bp = Blueprint("web_ads_console", __name__)


def init_app(app) -> None:
    app.jinja_env.globals["nav_links"].extend([
        ("Advertise", "web_ads_console.console", ("advertiser",)),
        ("Ad review", "web_ads_console.review_queue", ("admin",)),
    ])


def _advertiser(advertiser_id: int):
    return ads.get_advertiser(context.db(), advertiser_id, user_id=current_user().id,
                              is_admin=current_principal().has_role("admin"))


def _campaign(campaign_id: int) -> Campaign:
    campaign = context.db().get(Campaign, campaign_id)
    if campaign is None:
        raise NotFoundError("No such campaign.", code="campaign_not_found")
    _advertiser(campaign.advertiser_id)
    return campaign


def _balances(advertiser) -> dict:
    from adserver.budgets import prepaid_balance

    avail = context.redis().get(keys.advertiser_avail(advertiser.id))
    return {"prepaid": Money(prepaid_balance(context.db(), advertiser.id, advertiser.currency), advertiser.currency),
            "spendable": Money(int(avail), advertiser.currency) if avail is not None else None}


def _delivery(scope: str, ident: int, days: int = 7, by: str = "day"):
    end = context.clock().now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=24) if by == "hour" else \
        datetime.combine((end - timedelta(days=days)).date(), time(0), tzinfo=UTC)
    return ads.report(context.redis(), scope, ident, start=start, end=end, by=by)


@bp.get("/advertise")
@access("advertiser", "admin")
def console():
    advertisers = ads.advertisers_of(context.db(), current_user().id)
    if len(advertisers) == 1:
        return redirect(url_for("web_ads_console.advertiser", advertiser_id=advertisers[0].id))
    return render_template("ads/console.html", advertisers=advertisers,
                           currency=context.config().currency)


@bp.post("/advertise")
@access("advertiser", "admin")
def create_advertiser():
    with attempt() as tried:
        advertiser = ads.create_advertiser(context.db(), name=request.form.get("name", "")[:200],
                                           currency=request.form.get("currency", context.config().currency)[:3],
                                           member_user_ids=[current_user().id])
    if tried.failed:
        return redirect(url_for("web_ads_console.console"), code=303)
    flash("Advertiser created. An admin credits your prepaid balance when your payment arrives.", "success")
    return redirect(url_for("web_ads_console.advertiser", advertiser_id=advertiser.id), code=303)


@bp.get("/advertise/<int:advertiser_id>")
@access("advertiser", "admin")
def advertiser(advertiser_id: int):
    adv = _advertiser(advertiser_id)
    campaigns = [(c, _delivery("campaign", c.id).total) for c in adv.campaigns]
    today = context.clock().now().date()
    return render_template("ads/advertiser.html", advertiser=adv, balances=_balances(adv), campaigns=campaigns,
                           slots=SLOTS, today=today.isoformat(),
                           floor=Money.parse(context.config().ad_floor_cpm, context.config().currency))


def _money_field(name: str, currency: str, label: str) -> int:
    raw = request.form.get(name, "").strip()
    try:
        return Money.parse(raw, currency).micros
    except NinetyError:
        raise CampaignInvalid(f"{label} must be an amount like 25.00.", code="invalid_amount", field=name) from None


def _date_field(name: str, *, end: bool = False) -> datetime | None:
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    try:
        day = datetime.strptime(raw, "%Y-%m-%d").date()
    except ValueError:
        raise CampaignInvalid("Dates look like 2026-11-30.", code="invalid_dates", field=name) from None
    return datetime.combine(day + timedelta(days=1) if end else day, time(0), tzinfo=UTC)


def _list_field(name: str) -> tuple:
    return tuple(part.strip() for part in request.form.get(name, "").replace(";", ",").split(",") if part.strip())


@bp.post("/advertise/<int:advertiser_id>/campaigns")
@access("advertiser", "admin")
def create_campaign(advertiser_id: int):
    adv = _advertiser(advertiser_id)
    with attempt() as tried:
        cap = request.form.get("frequency_cap", "").strip()
        data = ads.CampaignInput(
            name=request.form.get("name", "")[:200],
            starts_at=_date_field("starts_on") or context.clock().now(), ends_at=_date_field("ends_on", end=True),
            total_budget_micros=_money_field("total_budget", adv.currency, "The total budget"),
            daily_budget_micros=_money_field("daily_budget", adv.currency, "The daily budget"),
            bid_cpm_micros=_money_field("bid_cpm", adv.currency, "The CPM bid"),
            pacing=request.form.get("pacing", "even"), slots=tuple(request.form.getlist("slots")),
            target_genres=_list_field("genres"), target_countries=tuple(c.upper() for c in _list_field("countries")),
            target_modes=tuple(request.form.getlist("modes")),
            frequency_cap_per_day=int(cap) if cap.isdigit() else None,
            status="active" if request.form.get("start_now") else "paused")
        if cap and not cap.isdigit():
            raise CampaignInvalid("The frequency cap is a whole number of impressions.", code="invalid_frequency_cap")
        campaign = ads.create_campaign(context.db(), context.redis(), adv.id, data,
                                       floor_cpm_micros=gate_settings().floor_cpm_micros)
    if tried.failed:
        return redirect(url_for("web_ads_console.advertiser", advertiser_id=adv.id), code=303)
    flash("Campaign created. Add a creative; it serves once an admin approves it.", "success")
    return redirect(url_for("web_ads_console.campaign", campaign_id=campaign.id), code=303)


@bp.get("/advertise/campaigns/<int:campaign_id>")
@access("advertiser", "admin")
def campaign(campaign_id: int):
    c = _campaign(campaign_id)
    return render_template("ads/campaign.html", campaign=c, advertiser=c.advertiser,
                           by_day=_delivery("campaign", c.id), by_hour=_delivery("campaign", c.id, by="hour"),
                           creatives=[(k, _delivery("creative", k.id).total) for k in c.creatives])


@bp.post("/advertise/campaigns/<int:campaign_id>/status")
@access("advertiser", "admin")
def campaign_status(campaign_id: int):
    c = _campaign(campaign_id)
    status = request.form.get("status", "")
    with attempt():
        if status not in {"active", "paused", "ended"}:
            raise CampaignInvalid("Choose active, paused or ended.", code="invalid_status")
        ads.set_campaign_status(context.db(), context.redis(), c.id, status)
        flash(f"Campaign {status}.", "success")
    return redirect(url_for("web_ads_console.campaign", campaign_id=c.id), code=303)


@bp.post("/advertise/campaigns/<int:campaign_id>/creatives")
@access("advertiser", "admin")
def create_creative(campaign_id: int):
    c = _campaign(campaign_id)
    image, audio = request.files.get("image"), request.files.get("audio")
    with attempt():
        ads.create_creative(context.db(), context.redis(), c.id, kind=request.form.get("kind", ""),
                            name=request.form.get("name", "")[:200], click_url=request.form.get("click_url", "")[:2100],
                            alt_text=request.form.get("alt_text", "")[:400],
                            image=image.read() if image and image.filename else None,
                            audio=audio.read() if audio and audio.filename else None,
                            media_root=context.config().media_path)
        flash("Creative uploaded; it serves once an admin approves it.", "success")
    return redirect(url_for("web_ads_console.campaign", campaign_id=c.id), code=303)


# --- admin review -------------------------------------------------------------------------------------------
@bp.get("/admin/ads/creatives")
@access("admin")
def review_queue():
    session = context.db()
    pending = session.scalars(select(Creative).where(Creative.status == "pending").order_by(Creative.id)).all()
    recent = session.scalars(select(Creative).where(Creative.status != "pending")
                             .order_by(Creative.reviewed_at.desc().nulls_last()).limit(20)).all()

    def preview(creative):
        from types import SimpleNamespace

        return creative_json(SimpleNamespace(creative=creative, token="preview"))

    return render_template("ads/review.html", pending=[(c, preview(c)) for c in pending], recent=recent)


@bp.post("/admin/ads/creatives/<int:creative_id>/review")
@access("admin")
def review(creative_id: int):
    approve = request.form.get("decision") == "approve"
    with attempt():
        creative = ads.review_creative(context.db(), context.redis(), creative_id, approve=approve,
                                       reviewer_id=current_user().id, note=request.form.get("note", "")[:500],
                                       clock=context.clock())
        flash(f"Creative {creative.name!r} {creative.status}.", "success")
    return redirect(url_for("web_ads_console.review_queue"), code=303)
