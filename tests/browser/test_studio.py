"""An artist in a real browser: create a release, upload two tracks (with per-file progress), set a
name-your-price minimum and a 70/30 split, publish, and see the public release page."""

import re

import pytest

from tests.catalog.conftest import tone
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def _sign_in(page, live_server, email):
    page.goto(live_server.url + "/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/account$"))


def test_artist_publishes_a_release_in_the_browser(live_server, page, make_user, tmp_path):
    make_user(roles=("artist",), email="nova@artists.example.com", display_name="Nova")
    first = tmp_path / "01 - Aurora.flac"
    first.write_bytes(tone("flac", 2.0, 440))
    second = tmp_path / "02 - Borealis.wav"
    second.write_bytes(tone("wav", 1.0, 550))

    _sign_in(page, live_server, "nova@artists.example.com")
    page.get_by_role("link", name="Studio").click()
    page.get_by_label("Artist or band name").fill("Nova Lights")
    page.get_by_role("button", name="Create artist profile").click()
    assert page.get_by_role("heading", name="Nova Lights").is_visible()

    page.get_by_label("Title").fill("Polar Nights")
    page.get_by_label("Type").select_option("ep")
    page.get_by_label("Genre").fill("Electronic")
    page.get_by_role("button", name="Create release").click()
    page.wait_for_url(re.compile(r"/studio/releases/\d+$"))

    # two files at once: the script uploads them one by one with a progress bar each
    page.get_by_label(re.compile("^Audio files")).set_input_files([str(first), str(second)])
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_selector("#studio-track-2, tr[id^=studio-track-] >> nth=1")
    rows = page.locator("tr[id^=studio-track-]")
    assert rows.count() == 2
    assert page.locator("#title-1").input_value() == "Aurora"
    assert "FLAC" in rows.nth(0).inner_text() and "WAV" in rows.nth(1).inner_text()

    page.get_by_role("radio", name="Name your price").check()
    page.get_by_label("Minimum price (name your price)").fill("2.50")
    page.get_by_label("Suggested price (name your price, optional)").fill("6.00")
    page.get_by_role("button", name="Save price").click()
    assert "Price saved" in page.get_by_role("status").first.inner_text()

    page.get_by_label("Nova Lights (you)").fill("70")
    page.get_by_label("New collaborator's email").first.fill("sam@example.com")
    page.get_by_label("Their name").first.fill("Sam Synth")
    page.get_by_label("Share %").first.fill("30")
    page.get_by_role("button", name="Save split").click()
    assert "Split saved" in page.get_by_role("status").first.inner_text()
    assert "Nova Lights 70%, Sam Synth 30%" in rows.nth(0).inner_text()

    page.get_by_role("button", name="Publish release").click()
    page.wait_for_url(re.compile(r"/artists/nova-lights/polar-nights$"))
    assert page.get_by_role("heading", name="Polar Nights").is_visible()
    assert "Name your price: at least $2.50" in page.locator("#release-price").inner_text()
    tracks = page.locator("tbody tr")
    assert tracks.count() == 2
    assert "Aurora" in tracks.nth(0).inner_text() and "0:02" in tracks.nth(0).inner_text()
    assert "Borealis" in tracks.nth(1).inner_text()

    # and a visitor finds it by searching
    page.goto(live_server.url + "/search?q=borealis")
    assert page.get_by_role("link", name="Borealis").is_visible()


def test_a_refused_file_says_why(live_server, page, make_user, tmp_path):
    make_user(roles=("artist",), email="kim@artists.example.com")
    bad = tmp_path / "cover.mp3"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 4000)
    _sign_in(page, live_server, "kim@artists.example.com")
    page.goto(live_server.url + "/studio")
    page.get_by_label("Artist or band name").fill("Kim")
    page.get_by_role("button", name="Create artist profile").click()
    page.get_by_label("Title").fill("Tries")
    page.get_by_role("button", name="Create release").click()
    page.get_by_label(re.compile("^Audio files")).set_input_files([str(bad)])
    page.get_by_role("button", name="Upload", exact=True).click()
    status = page.locator("#upload-progress li.error .upload-status")
    status.wait_for()
    assert "JPEG image, not an audio file" in status.inner_text()
