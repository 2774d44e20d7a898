"""The demo catalog seeds published releases of real audio, with the price models and a 70/30 split."""

from catalog import search, services
from catalog.models import Release


def test_demo_catalog(app, db_session):
    from app.seed import accounts, catalog

    runtime = app.extensions["ninety"]
    state: dict = {}
    accounts.seed(runtime, state)
    catalog.seed(runtime, state)
    assert len(state["artists"]) >= 3 and len(state["tracks"]) >= 6
    details = state["catalog"]
    assert details["free_releases"] and details["fixed_releases"] and details["name_your_price_releases"]
    releases = db_session.query(Release).all()
    assert all(r.status == "published" and r.cover_sha256 for r in releases)
    track_id = details["split_70_30_tracks"][0]
    shares = services.split_sheet_at(db_session, track_id, runtime.clock.now())
    assert sorted(bp for _, bp in shares) == [3000, 7000]
    assert search.search_tracks(db_session, "neon", now=runtime.clock.now()).items[0]["title"] == "Neon Rain"
    media = runtime.config.media_path
    for track_id in state["tracks"]:
        track = services.get_track(db_session, track_id)
        assert track.asset.duration_ms > 3000
        assert (media / "audio" / track.asset.sha256[:2] / track.asset.sha256).exists()
    page = app.test_client().get("/", headers={"Accept": "text/html"})
    assert b"Polar Drift" in page.data and b"New releases" in page.data
