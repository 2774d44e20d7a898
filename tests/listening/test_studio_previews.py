"""The studio's "previews only" checkbox: the artist restricts a priced track to its 30-second preview from
the release page's form, and can lift it again."""

from __future__ import annotations

import re

from tests.conftest import login
from tests.listening.conftest import start_play


def _studio_form(artist, release_id: int, track_id: int) -> tuple[str, bool]:
    page = artist.get(f"/studio/releases/{release_id}").get_data(as_text=True)
    start = page.index(f'action="/studio/tracks/{track_id}/previews-only"')
    form = page[start:page.index("</form>", start)]
    box = re.search(r'<input type="checkbox" id="previews-only-\d+" name="previews_only"( checked)?>', form)
    assert box is not None and "csrf_token" in form
    return f"/studio/tracks/{track_id}/previews-only", bool(box.group(1))


def test_the_artist_ticks_previews_only_in_the_studio(app, client, make_track):
    from catalog.models import Track

    track_id = make_track("fixed")
    with app.extensions["ninety"].sessions() as session:
        release_id = session.get(Track, track_id).release_id
    artist = app.test_client()
    login(artist, make_track.users["Listening Testers:user"])
    action, checked = _studio_form(artist, release_id, track_id)
    assert not checked
    assert start_play(client, track_id).get_json()["access"] == "full"

    saved = artist.post(action, data={"csrf_token": "test-csrf", "previews_only": "on"})
    assert saved.status_code == 303 and saved.headers["Location"].endswith(f"/studio/releases/{release_id}")
    assert _studio_form(artist, release_id, track_id)[1] is True
    listener = app.test_client()
    ticket = start_play(listener, track_id).get_json()
    assert ticket["access"] == "preview" and ticket["reason"] == "previews_only" and ticket["buy_url"]

    artist.post(action, data={"csrf_token": "test-csrf"})  # the box unticked
    assert _studio_form(artist, release_id, track_id)[1] is False
    assert start_play(app.test_client(), track_id).get_json()["access"] == "full"
