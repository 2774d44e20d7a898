"""The studio's plain-HTML forms (no JavaScript) and the public pages."""

import io
import re

import pytest

from catalog.models import Payee, Release, SplitSheet, Track
from tests.catalog.conftest import tone
from tests.conftest import login

HTML = {"Accept": "text/html"}


@pytest.fixture
def studio(app, make_user):
    client = app.test_client()
    login(client, make_user(roles=("artist",), email="rae@artists.example.com"))
    return client


def _form(client, url, data, **kwargs):
    return client.post(url, data={"csrf_token": "test-csrf", **data}, headers=HTML, **kwargs)


def _new_release(client, db_session, title="Tide <script>alert(1)</script>"):
    assert _form(client, "/studio/artists", {"name": "Rae & Co", "currency": "USD"}).status_code == 303
    artist_id = re.search(rb"/studio/artists/(\d+)/releases", client.get("/studio", headers=HTML).data)[1]
    response = _form(client, f"/studio/artists/{int(artist_id)}/releases", {"title": title, "kind": "album",
                                                                          "genre": "Folk", "tags": "sea, salt"})
    assert response.status_code == 303
    return int(response.headers["Location"].rsplit("/", 1)[1])


def test_studio_without_javascript(studio, app, db_session):
    release_id = _new_release(studio, db_session)
    publish = _form(studio, f"/studio/releases/{release_id}/publish", {})
    assert publish.status_code == 409 and b"Add at least one track" in publish.data

    upload = _form(studio, f"/studio/releases/{release_id}/tracks",
                   {"files": [(io.BytesIO(tone("flac", 1.0)), "01 - Ebb.flac"),
                              (io.BytesIO(tone("mp3", 1.0, 330)), "02 - Flow.mp3")]},
                   content_type="multipart/form-data")
    assert upload.status_code == 303
    page = studio.get(f"/studio/releases/{release_id}", headers=HTML)
    assert b"Ebb" in page.data and b"Flow" in page.data
    assert b"<script>alert(1)</script>" not in page.data and b"&lt;script&gt;" in page.data

    bad_price = _form(studio, f"/studio/releases/{release_id}/price",
                      {"price_model": "name_your_price", "minimum_price": "0.001"})
    assert bad_price.status_code == 422 and b"finer than one cent" in bad_price.data
    assert _form(studio, f"/studio/releases/{release_id}/price",
                 {"price_model": "name_your_price", "minimum_price": "2", "suggested_price": "5"}).status_code == 303

    own = db_session.query(Payee).filter(Payee.artist_id.isnot(None)).one()
    bad_split = _form(studio, f"/studio/releases/{release_id}/split",
                      {f"share_{own.id}": "70", "new_email_0": "kai@example.com", "new_share_0": "20"})
    assert bad_split.status_code == 422 and b"add up to 90%" in bad_split.data
    assert db_session.query(Payee).count() == 1  # the invitation was not kept either
    assert db_session.query(SplitSheet).count() == 2

    good = _form(studio, f"/studio/releases/{release_id}/split",
                 {f"share_{own.id}": "70", "new_email_0": "kai@example.com", "new_name_0": "Kai",
                  "new_share_0": "30"})
    assert good.status_code == 303
    assert db_session.query(SplitSheet).count() == 4
    assert b"Kai 30%" in studio.get(f"/studio/releases/{release_id}", headers=HTML).data

    published = _form(studio, f"/studio/releases/{release_id}/publish", {})
    assert published.status_code == 303
    public = app.test_client().get(published.headers["Location"], headers=HTML)
    assert public.status_code == 200 and b"Name your price: at least $2.00" in public.data
    assert b"&lt;script&gt;" in public.data


def test_csrf_and_roles_on_studio_forms(studio, app, make_user, db_session):
    release_id = _new_release(studio, db_session, "Quiet")
    forged = studio.post(f"/studio/releases/{release_id}/publish", data={"csrf_token": "nope"}, headers=HTML)
    assert forged.status_code == 403
    stranger = app.test_client()
    login(stranger, make_user(roles=("artist",)))
    assert stranger.get(f"/studio/releases/{release_id}", headers=HTML).status_code == 403
    anonymous = app.test_client().get("/studio", headers=HTML)
    assert anonymous.status_code == 302 and "/signin" in anonymous.headers["Location"]


def test_public_pages(app, db_session, artist, make_published_track):
    track = make_published_track(artist, title="Glass Harp", release_title="Mirrors", genre="classical")
    client = app.test_client()
    release = db_session.get(Release, track.release_id)
    for url, needle in [("/music", b"Mirrors"), ("/music?genre=classical", b"Mirrors"),
                        (f"/artists/{artist.slug}", b"Mirrors"),
                        (f"/artists/{artist.slug}/{release.slug}", b"Glass Harp"),
                        ("/search?q=glass", b"Glass Harp"), ("/search?q=nothing-like-it", b"No published tracks"),
                        ("/", b"Mirrors")]:
        response = client.get(url, headers=HTML)
        assert response.status_code == 200 and needle in response.data, url
    assert client.get("/artists/nobody", headers=HTML).status_code == 404
    cover_missing = client.get("/media/covers/" + "0" * 64)
    assert cover_missing.status_code == 404


def test_draft_release_page_is_private(app, db_session, artist):
    from catalog import services

    release = services.create_release(db_session, artist.id, title="Secret")
    assert app.test_client().get(f"/artists/{artist.slug}/{release.slug}", headers=HTML).status_code == 404
    assert db_session.query(Track).count() == 0


def test_collaborator_accepts_an_invitation(app, db_session, artist, make_user):
    from catalog import services

    payee = services.invite_payee(db_session, artist.id, email="sam@example.com", display_name="Sam")
    db_session.commit()  # services never commit; the test owns this unit of work
    secret = app.extensions["ninety"].config.secret_key
    token = services.invitation_token(payee, secret)
    sam = app.test_client()
    login(sam, make_user(roles=("listener",), email="Sam@Example.com"))  # the invited address, any case
    assert sam.get(f"/invitations/{token[:-2]}xx", headers=HTML).status_code == 404
    assert b"Sam" in sam.get(f"/invitations/{token}", headers=HTML).data
    assert _form(sam, f"/invitations/{token}", {}).status_code == 303
    db_session.refresh(payee)
    assert payee.user_id is not None and payee.accepted_at is not None
    assert b"You are paid as" in sam.get("/account", headers=HTML).data
    thief = app.test_client()
    login(thief, make_user(roles=("listener",)))
    assert _form(thief, f"/invitations/{token}", {}).status_code == 409


def test_scheduled_release_goes_live_at_its_time(make_app, make_user, db_session):
    from datetime import timedelta

    from core.clock import FrozenClock

    clock = FrozenClock()
    app = make_app(clock=clock)
    client = app.test_client()
    login(client, make_user(roles=("artist",)))
    release_id = _new_release(client, db_session, "Later")
    _form(client, f"/studio/releases/{release_id}/tracks", {"files": [(io.BytesIO(tone("wav", 0.5)), "a.wav")]},
          content_type="multipart/form-data")
    at = (clock.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    assert _form(client, f"/studio/releases/{release_id}/publish", {"publish_at": at}).status_code == 303
    assert _form(client, f"/studio/releases/{release_id}/publish", {"publish_at": "soon"}).status_code == 422
    anonymous = app.test_client()
    assert b"Later" not in anonymous.get("/music", headers=HTML).data
    assert anonymous.get("/api/v1/search?q=later").get_json()["items"] == []
    clock.advance(days=3)
    assert [h["release_title"] for h in anonymous.get("/api/v1/search?q=later").get_json()["items"]] == ["Later"]
    assert b"Later" in anonymous.get("/music", headers=HTML).data


def test_track_price_override_from_the_studio(studio, app, db_session):
    release_id = _new_release(studio, db_session, "Mixed")
    _form(studio, f"/studio/releases/{release_id}/tracks", {"files": [(io.BytesIO(tone("wav", 0.5)), "a.wav")]},
          content_type="multipart/form-data")
    track = db_session.query(Track).one()
    assert _form(studio, f"/studio/tracks/{track.id}/price", {"price_model": "fixed", "amount": "1.5"}).status_code \
        == 303
    assert _form(studio, f"/studio/tracks/{track.id}/price", {"price_model": "fixed", "amount": "-2"}).status_code \
        == 422
    db_session.refresh(track)
    assert (track.price_model, track.price_micros) == ("fixed", 1_500_000)
    assert _form(studio, f"/studio/tracks/{track.id}/price", {"price_model": ""}).status_code == 303
    db_session.refresh(track)
    assert track.price_model is None


def test_artist_image_and_members(studio, app, db_session, make_user):
    from app.seed.catalog import cover_png
    from catalog.models import Artist, ArtistMember

    _form(studio, "/studio/artists", {"name": "Duo", "currency": "USD"})
    artist = db_session.query(Artist).one()
    png = cover_png((10, 20, 30), size=16)
    assert _form(studio, f"/studio/artists/{artist.id}/image", {"image": (io.BytesIO(png), "me.png")},
                 content_type="multipart/form-data").status_code == 303
    refused = _form(studio, f"/studio/artists/{artist.id}/image", {"image": (io.BytesIO(b"GIF89a..."), "x.gif")},
                    content_type="multipart/form-data")
    assert refused.status_code == 422 and b"JPEG or PNG" in refused.data
    db_session.refresh(artist)
    served = app.test_client().get(f"/media/images/{artist.image_sha256}")
    assert served.status_code == 200 and served.data == png and served.mimetype == "image/png"

    partner = make_user(roles=("artist",), email="partner@example.com")
    make_user(roles=("listener",), email="fan@example.com")
    assert _form(studio, f"/studio/artists/{artist.id}/members", {"email": "fan@example.com"}).status_code == 422
    assert _form(studio, f"/studio/artists/{artist.id}/members", {"email": "partner@example.com"}).status_code == 303
    assert _form(studio, f"/studio/artists/{artist.id}/members", {"email": "partner@example.com"}).status_code == 409
    assert db_session.query(ArtistMember).filter_by(artist_id=artist.id, user_id=partner.id).count() == 1
