"""A scheduled release is public from its time on, decided at read time; promotion is a background step."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from catalog import search, services
from catalog.errors import TrackUnavailable
from catalog.models import Release, Track
from entitlements import services as entitlements
from tests.catalog.conftest import tone

HTML = {"Accept": "text/html"}


def _scheduled(db_session, store, clock, artist, *, title="Later Light", days=2):
    from catalog.uploads import upload_track

    release = services.create_release(db_session, artist.id, title=title, genre="dusk", tags=["slow"])
    upload_track(db_session, store, release, io.BytesIO(tone("wav", 0.5)), "01 Evening Song.wav", clock=clock,
                 max_bytes=None, title="Evening Song")
    services.publish_release(db_session, release, clock=clock, at=clock.now() + timedelta(days=days))
    db_session.commit()
    return release


def _visible(db_session, now):
    return {
        "browse": [r["title"] for r in search.browse_releases(db_session, now=now).items],
        "search": [r["release_title"] for r in search.search_tracks(db_session, "evening", now=now).items],
        "genres": [g for g, _ in search.genres(db_session, now=now)],
        "artists": [a["artist_name"] for a in search.browse_artists(db_session, now=now).items],
    }


def test_a_due_scheduled_release_is_public_without_a_write(db_session, store, clock, artist, make_published_track):
    make_published_track(artist, title="Morning Song", release_title="Early", genre="dawn")
    release = _scheduled(db_session, store, clock, artist)
    track = release.tracks[0]
    assert _visible(db_session, clock.now()) == {"browse": ["Early"], "search": [], "genres": ["dawn"],
                                                  "artists": ["The Tones"]}
    assert not services.is_track_public(track, clock.now())
    assert services.track_context(db_session, track.id, now=clock.now())["status"] == "draft"

    later = clock.advance(days=3)
    assert _visible(db_session, later) == {"browse": ["Later Light", "Early"], "search": ["Later Light"],
                                            "genres": ["dawn", "dusk"], "artists": ["The Tones"]}
    page = search.browse_releases(db_session, now=later).items
    assert page[0]["track_count"] == 1 and page[0]["published_at"] == release.publish_at
    assert services.is_track_public(track, later)
    assert services.track_context(db_session, track.id, now=later)["status"] == "published"
    assert entitlements.free_track(db_session, track.id, now=later)["track_id"] == track.id  # the ad gate opens
    with pytest.raises(TrackUnavailable):
        entitlements.free_track(db_session, track.id, now=later - timedelta(days=2))
    db_session.expire_all()
    assert db_session.get(Release, release.id).status == "scheduled"  # nothing was written by reading

    # The background step records it; what readers see does not change.
    assert services.promote_due_releases(db_session, clock) == 1
    db_session.commit()
    assert (release.status, release.published_at, track.status) == ("published", release.publish_at, "published")
    assert _visible(db_session, later)["browse"] == ["Later Light", "Early"]
    assert _visible(db_session, later)["search"] == ["Later Light"]


def test_browse_pages_through_scheduled_and_published_releases_in_order(db_session, store, clock, artist,
                                                                        make_published_track):
    make_published_track(artist, release_title="Now")
    _scheduled(db_session, store, clock, artist, title="Soon", days=1)
    _scheduled(db_session, store, clock, artist, title="Sooner", days=0.5)
    now = clock.advance(days=2)
    first = search.browse_releases(db_session, now=now, limit=2)
    second = search.browse_releases(db_session, now=now, limit=2, cursor=first.next_cursor)
    assert [r["title"] for r in first.items + second.items] == ["Soon", "Sooner", "Now"]
    assert second.next_cursor is None


def test_taken_down_tracks_of_a_scheduled_release_stay_out_of_search(db_session, store, clock, artist):
    release = _scheduled(db_session, store, clock, artist)
    services.take_down_track(db_session, release.tracks[0])
    db_session.commit()
    later = clock.advance(days=3)
    assert search.search_tracks(db_session, "evening", now=later).items == []
    assert search.browse_releases(db_session, now=later).items[0]["track_count"] == 0


def test_pages_and_api_show_a_due_release_without_writing_and_the_publisher_records_it(
        make_app, db_session, store, artist):
    from core.clock import FrozenClock
    from tests.conftest import CliRunner

    clock = FrozenClock()
    app = make_app(clock=clock, media_root=store.root)
    release = _scheduled(db_session, store, clock, artist)
    client = app.test_client()
    url = f"/artists/{artist.slug}/{release.slug}"
    assert client.get(url, headers=HTML).status_code == 404
    clock.advance(days=3)
    # The app runs strict: a GET that wrote would fail here (GetWrote) instead of answering.
    assert b"Later Light" in client.get("/music", headers=HTML).data
    assert b"Evening Song" in client.get("/search?q=evening", headers=HTML).data
    assert [r["title"] for r in client.get("/api/v1/releases").get_json()["items"]] == ["Later Light"]
    assert [r["title"] for r in client.get("/api/v1/search?q=evening").get_json()["items"]] == ["Evening Song"]
    page = client.get(url, headers=HTML)
    assert page.status_code == 200 and b"only its artist can see this page" not in page.data
    assert client.get(f"/api/v1/releases/{release.id}").status_code == 200
    db_session.expire_all()
    assert db_session.get(Release, release.id).status == "scheduled"

    result = CliRunner(app).invoke(["catalog", "publish-due"])
    assert result.exit_code == 0 and "1 scheduled release published" in result.output
    db_session.expire_all()
    assert db_session.get(Release, release.id).status == "published"
    assert {t.status for t in db_session.query(Track).filter_by(release_id=release.id)} == {"published"}
    assert "0 scheduled releases published" in CliRunner(app).invoke(["catalog", "publish-due"]).output


def test_ninety_run_supervises_the_publisher(app, tmp_path):
    import click

    from app.cli import main
    from app.cli.core import child_commands

    with app.test_request_context(), click.Context(main):
        specs = child_commands(host="127.0.0.1", port=8000, workers=1, threads=4, with_worker=True,
                               var_dir=tmp_path)
    assert [spec.argv[-2:] for spec in specs if spec.name == "publisher"] == [["catalog", "publisher"]]
