"""A takedown stops an open file link at once, although the download's facts are cached for a minute."""

from __future__ import annotations

from catalog.delivery import issue_grant


def test_an_open_file_link_stops_when_the_notice_is_actioned(world, holder, admin):
    ada = world.artist("Ada")
    track = ada["tracks"][0]
    secret = world.app.extensions["ninety"].config.secret_key
    with world.unit() as s:
        token = issue_grant(s, track_id=track, listener_id="listener-1", via="ad", secret=secret, clock=world.clock,
                            ttl_s=600)
    client = world.app.test_client()
    redirect = client.get(f"/download/{token}")
    assert redirect.status_code == 303
    file_url = redirect.headers["Location"]
    first = client.get(file_url)
    assert first.status_code == 200 and len(first.data) > 1000
    world.action(admin, world.file(holder, [track]))
    again = client.get(file_url, headers={"Range": "bytes=0-99"})  # a download manager resuming
    assert again.status_code == 410
    assert again.get_json()["code"] == "track_taken_down"
