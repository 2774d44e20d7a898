"""An artist's earnings per track, from the ledger, updating live while the page is open."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template
from sqlalchemy import select

from app import context
from app.auth import access, current_user
from core.money import Money

bp = Blueprint("web_ads_earnings", __name__)


def init_app(app) -> None:
    app.jinja_env.globals["nav_links"].append(("Earnings", "web_ads_earnings.earnings", ("artist",)))


def _rows() -> list[dict]:
    from catalog.models import Payee, Track
    from catalog.services import artists_for_user
    from royalties.earnings import earnings_by_track

    session = context.db()
    user = current_user()
    artist_ids = [a.id for a in artists_for_user(session, user.id)]
    payee_query = select(Payee.id).where(Payee.user_id == user.id)
    if artist_ids:
        payee_query = select(Payee.id).where((Payee.user_id == user.id) | Payee.artist_id.in_(artist_ids))
    earnings = earnings_by_track(session, session.scalars(payee_query).all())
    titles = dict(session.execute(select(Track.id, Track.title).where(
        Track.id.in_([e.track_id for e in earnings]))).all()) if earnings else {}
    return [{"track_id": e.track_id, "title": titles.get(e.track_id, f"Track {e.track_id}"),
             "impressions": e.impressions, "currency": e.currency,
             "payable": Money(e.payable_micros, e.currency).to_json(),
             "held": Money(e.held_micros, e.currency).to_json()} for e in earnings]


@bp.get("/earnings")
@access("artist")
def earnings():
    return render_template("ads/earnings.html", rows=_rows())


@bp.get("/earnings.json")
@access("artist")
def earnings_json():
    response = jsonify({"items": _rows()})
    response.headers["Cache-Control"] = "no-store"
    return response
