"""The contract other packages code against (docs/contracts.md, catalog section)."""

from datetime import timedelta

import pytest

from catalog import services
from catalog.errors import InvalidSplitSheet
from catalog.models import Download, Payee


def test_track_context_is_plain_data(db_session, artist, make_published_track):
    track = make_published_track(artist, title="Morning")
    context = services.track_context(db_session, track.id)
    assert context == {
        "track_id": track.id, "release_id": track.release_id, "artist_id": artist.id, "title": "Morning",
        "artist_name": "The Tones", "genre": "ambient", "tags": ["drone"], "price_model": "free_with_ads",
        "currency": "USD", "status": "published",
    }


def test_artist_has_one_payee(db_session, artist):
    payees = db_session.query(Payee).filter_by(artist_id=artist.id).all()
    assert len(payees) == 1 and payees[0].display_name == "The Tones"


def test_split_sheets_are_versioned_by_effective_time(db_session, artist, make_published_track, clock):
    track = make_published_track(artist)
    own = services.artist_payee(db_session, artist.id)
    first_at = clock.now()
    assert services.split_sheet_at(db_session, track.id, first_at) == [(own.id, 10_000)]

    friend = services.invite_payee(db_session, artist.id, email="friend@example.com", display_name="Friend")
    clock.advance(days=1)
    services.set_split_sheet(db_session, track, [(own.id, 7000), (friend.id, 3000)], clock=clock)
    later = clock.now()
    assert services.split_sheet_at(db_session, track.id, later) == [(own.id, 7000), (friend.id, 3000)]
    # earnings from before the change keep the split they were earned under
    assert services.split_sheet_at(db_session, track.id, first_at + timedelta(hours=1)) == [(own.id, 10_000)]
    # before the first version: the first version applies
    assert services.split_sheet_at(db_session, track.id, first_at - timedelta(days=30)) == [(own.id, 10_000)]

    batch = services.split_sheets_at(db_session, [track.id, track.id], later)
    assert batch == {track.id: [(own.id, 7000), (friend.id, 3000)]}
    assert services.split_sheets_at(db_session, [track.id], first_at) == {track.id: [(own.id, 10_000)]}
    assert services.split_sheets_at(db_session, [], later) == {}


@pytest.mark.parametrize("shares,code", [
    ([], "empty_split_sheet"),
    ([("own", 6000), ("friend", 3000)], "split_sum_mismatch"),
    ([("own", 7000), ("friend", 3001)], "split_sum_mismatch"),
    ([("own", 10_000), ("friend", 0)], "invalid_share"),
    ([("own", 11_000), ("friend", -1000)], "invalid_share"),
    ([("own", 5000), ("own", 5000)], "duplicate_payee"),
    ([("own", 7000), (999_999, 3000)], "unknown_payee"),
    ([("own", 7000.0), ("friend", 3000)], "invalid_share"),
])
def test_bad_split_sheets_are_refused_and_nothing_is_written(db_session, artist, make_published_track, clock,
                                                              shares, code):
    track = make_published_track(artist)
    ids = {"own": services.artist_payee(db_session, artist.id).id,
           "friend": services.invite_payee(db_session, artist.id, email="f@example.com").id}
    resolved = [(ids.get(p, p), bp) for p, bp in shares]
    with pytest.raises(InvalidSplitSheet) as caught:
        services.set_split_sheet(db_session, track, resolved, clock=clock)
    assert caught.value.code == code
    db_session.rollback()
    assert services.split_sheet_at(db_session, track.id, clock.now()) == [(ids["own"], 10_000)]


def test_database_refuses_an_unbalanced_split_sheet(db_session, artist, make_published_track, clock):
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    track = make_published_track(artist)
    sheet_id = db_session.execute(text("SELECT id FROM split_sheets WHERE track_id = :t"), {"t": track.id}).scalar()
    db_session.execute(text("UPDATE split_shares SET share_bp = 9000 WHERE sheet_id = :s"), {"s": sheet_id})
    with pytest.raises(IntegrityError):
        db_session.commit()


def test_grant_is_single_use_and_records_the_download(db_session, artist, make_published_track, clock):
    track = make_published_track(artist)
    token = services.issue_grant(db_session, track_id=track.id, listener_id="a1b2", via="ad", secret="s" * 32,
                                 clock=clock, ttl_s=600, decision_id="dec-1")
    download = services.redeem_grant(db_session, token, secret="s" * 32, clock=clock)
    assert (download.track_id, download.listener_id, download.via, download.decision_id) == \
        (track.id, "a1b2", "ad", "dec-1")
    from catalog.errors import GrantRefused

    with pytest.raises(GrantRefused) as caught:
        services.redeem_grant(db_session, token, secret="s" * 32, clock=clock)
    assert caught.value.code == "grant_used"
    assert db_session.query(Download).count() == 1


def test_taken_down_track_gets_no_grant(db_session, artist, make_published_track, clock):
    from catalog.errors import TrackUnavailable

    track = make_published_track(artist)
    services.take_down_track(db_session, track)
    assert services.track_context(db_session, track.id)["status"] == "taken_down"
    with pytest.raises(TrackUnavailable):
        services.issue_grant(db_session, track_id=track.id, listener_id="x", via="ad", secret="s" * 32,
                             clock=clock, ttl_s=60)


def test_taken_down_release_leaves_search_and_gets_no_grants(db_session, artist, make_published_track, clock):
    from catalog import search
    from catalog.errors import TrackUnavailable

    track = make_published_track(artist, title="Withdrawn Song")
    assert search.search_tracks(db_session, "withdrawn", now=clock.now()).items
    services.take_down_release(db_session, track.release)
    assert search.search_tracks(db_session, "withdrawn", now=clock.now()).items == []
    assert services.track_context(db_session, track.id)["status"] == "taken_down"
    with pytest.raises(TrackUnavailable):
        services.issue_grant(db_session, track_id=track.id, listener_id="x", via="purchase", secret="s" * 32,
                             clock=clock, ttl_s=60)


def test_drafts_only_get_preview_grants(db_session, artist, store, clock):
    import io

    from catalog.errors import TrackUnavailable
    from catalog.uploads import upload_track
    from tests.catalog.conftest import tone

    release = services.create_release(db_session, artist.id, title="Unreleased")
    track = upload_track(db_session, store, release, io.BytesIO(tone("wav", 0.5)), "a.wav", clock=clock,
                         max_bytes=None).track
    with pytest.raises(TrackUnavailable) as caught:
        services.issue_grant(db_session, track_id=track.id, listener_id="x", via="ad", secret="s" * 32,
                             clock=clock, ttl_s=60)
    assert caught.value.code == "track_not_published"
    assert services.issue_grant(db_session, track_id=track.id, listener_id="u1", via="preview", secret="s" * 32,
                                clock=clock, ttl_s=60)


def test_catalog_services_and_the_upload_leave_the_commit_to_the_caller(app, db_session, artist_user, store,
                                                                         clock):
    """Nothing is committed until the caller commits; the uploaded file is already in place by then."""
    import io

    from sqlalchemy import func, select

    from catalog.models import Artist, Track
    from catalog.uploads import upload_track
    from core.users import get_user
    from tests.catalog.conftest import tone

    artist = services.create_artist(db_session, user=get_user(db_session, artist_user.id), name="Uncommitted")
    release = services.create_release(db_session, artist.id, title="Pending")
    result = upload_track(db_session, store, release, io.BytesIO(tone()), "01 Hum.wav", clock=clock,
                          max_bytes=None)
    services.publish_release(db_session, release, clock=clock)
    assert store.path_for("audio", result.asset.sha256).exists()  # rows flushed first, then the file moved
    other = app.extensions["ninety"].sessions()
    try:
        assert other.scalar(select(func.count()).select_from(Artist)) == 0
        assert other.scalar(select(func.count()).select_from(Track)) == 0
        db_session.commit()
        assert other.scalar(select(func.count()).select_from(Track)) == 1
    finally:
        other.close()


def test_a_refused_redemption_leaves_the_callers_transaction_as_it_was(db_session, artist, make_published_track,
                                                                       clock):
    from catalog.errors import TrackUnavailable
    from catalog.models import DownloadGrant

    track = make_published_track(artist)
    token = services.issue_grant(db_session, track_id=track.id, listener_id="l1", via="ad", secret="s" * 32,
                                 clock=clock, ttl_s=600)
    services.take_down_track(db_session, track)
    db_session.commit()
    artist.bio = "edited in the caller's transaction, not committed yet"
    db_session.flush()
    with pytest.raises(TrackUnavailable):
        services.redeem_grant(db_session, token, secret="s" * 32, clock=clock)
    # only the redemption's savepoint was rolled back: the grant is unused, the caller's other work is intact
    db_session.refresh(artist)
    assert artist.bio == "edited in the caller's transaction, not committed yet"
    assert db_session.get(DownloadGrant, token.split(".")[0]).redeemed_at is None
    assert db_session.query(Download).count() == 0
