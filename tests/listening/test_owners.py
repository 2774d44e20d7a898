"""Owners hear everything: a listener who bought a priced track (here through a redeemed download code, a
purchase at 0) streams it in full, with no ad and no full-play allowance spent, long after the allowance
a stranger gets is used up."""

from __future__ import annotations

from tests.conftest import login
from tests.listening.conftest import start_play


def _own(app, track_id: int, artist_user, buyer) -> None:
    from catalog.models import Track
    from core.users import get_user
    from sales.services import generate_codes, redeem_code

    runtime = app.extensions["ninety"]
    with runtime.sessions() as session:
        release_id = session.get(Track, track_id).release_id
        code = generate_codes(session, release_id=release_id, user=get_user(session, artist_user.id), count=1,
                              clock=runtime.clock)[0].code
        redeem_code(session, runtime.redis, code=code, user=get_user(session, buyer.id), ip="10.0.0.9",
                    clock=runtime.clock)
        session.commit()


def test_the_owner_of_a_bought_track_streams_it_in_full_every_time(app, make_track, make_user):
    track_id = make_track("fixed")
    buyer = make_user()
    listener = app.test_client()
    login(listener, buyer)
    spent = [start_play(listener, track_id).get_json() for _ in range(3)]  # every full play a stranger gets
    assert [t["full_plays_left"] for t in spent] == [2, 1, 0]
    capped = start_play(listener, track_id).get_json()
    assert capped["access"] == "preview" and capped["buy_url"] is not None

    _own(app, track_id, make_track.users["Listening Testers:user"], buyer)

    for _ in range(3):
        ticket = start_play(listener, track_id).get_json()
        assert ticket["access"] == "full" and ticket["reason"] == "owner"
        assert ticket["ad_first"] is False and ticket["buy_url"] is None and ticket["full_plays_left"] is None
        assert ticket["duration_ms"] > 30_000  # the whole track, not the 30-second preview copy
    page = listener.get(f"/tracks/{track_id}").get_data(as_text=True)
    assert "30-second preview" not in page  # the page's own <audio> plays the full stream too
    stranger = app.test_client()
    login(stranger, make_user())
    for _ in range(3):
        start_play(stranger, track_id)
    assert start_play(stranger, track_id).get_json()["access"] == "preview"  # owning is per listener
