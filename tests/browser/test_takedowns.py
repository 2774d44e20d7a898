"""A takedown in a real browser, start to end: a rights holder files a notice in the portal; an admin
actions it; the release page says the track is unavailable and a download link the listener already had
fails; the artist counter-notifies; the clock moves 10 business days; the track is back and the earnings
held meanwhile are on the artist's statement."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from core.clock import FrozenClock
from tests.app.rights_world import PASSWORD, START, RightsWorld, earn

pytestmark = pytest.mark.browser
BROWSER_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
              "Safari/537.36")


@pytest.fixture
def clock():
    return FrozenClock(START)


@pytest.fixture
def app(make_app, clock):
    return make_app(clock=clock)


def sign_in(page, url, email):
    page.goto(url + "/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/account$"))


def sign_out(page):
    page.get_by_role("button", name="Sign out").click()


def tick(app, clock):
    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from app.cli import main

    info = ScriptInfo(create_app=lambda: app, set_debug_flag=False, load_dotenv_defaults=False)
    result = CliRunner().invoke(main, ["notices", "tick"], obj=info)
    assert result.exit_code == 0, result.output


def test_notice_action_counter_notice_and_restore(app, clock, live_server, page):
    world = RightsWorld(app, clock)
    nova = world.artist("Nova", tracks=2)
    track_id = nova["tracks"][0]
    rita = world.user("rights_holder", name="Rita Rights")
    admin = world.user("admin", name="Ada Admin")
    url = live_server.url
    page.set_extra_http_headers({"User-Agent": BROWSER_UA})

    # A listener downloads the track while it is up (no ad to show: the free download); the file link stays.
    page.goto(url + nova["release_url"])
    page.locator(f"#track-{track_id}").get_by_role("link", name=re.compile("Free download")).click()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download").first.click()
    file_link = download_info.value.url
    assert "/files/" in file_link

    # The rights holder files a notice in the portal, naming the track by its release page and number.
    sign_in(page, url, rita.email)
    page.get_by_role("link", name="Notices").click()
    page.get_by_role("link", name="File a notice", exact=True).click()
    page.get_by_label("Full name", exact=True).fill("Rita Rights")
    page.get_by_label("Postal address").fill("1 Label Street, Nashville TN")
    page.get_by_label("Title of the copyrighted work").fill("Moonlight Sonata (2019 recording)")
    page.get_by_label("Why the tracks infringe it").fill("A copy of our master recording.")
    page.get_by_label("Ninety tracks or releases").fill(str(track_id))
    page.get_by_role("button", name="File the notice").click()
    # Forgot the statements: the form says which, and keeps what was typed.
    problems = page.locator("#notice-problems").inner_text()
    assert "good-faith" in problems and "signature" in problems
    assert page.get_by_label("Full name", exact=True).input_value() == "Rita Rights"
    page.get_by_label(re.compile("good faith belief")).check()
    page.get_by_label(re.compile("information in this notice is accurate")).check()
    page.get_by_label(re.compile("penalty of perjury")).check()
    page.get_by_label(re.compile("Signature")).fill("Rita Rights")
    page.get_by_role("button", name="File the notice").click()
    page.wait_for_url(re.compile(r"/rights/notices/\d+$"))
    notice_id = int(page.url.rsplit("/", 1)[1])
    assert f"Notice {notice_id} received" in page.get_by_role("status").first.inner_text()
    sign_out(page)

    # The admin actions it from the queue, two hours later.
    clock.advance(hours=2)
    sign_in(page, url, admin.email)
    page.get_by_role("link", name="Admin", exact=True).click()
    page.get_by_role("link", name="Notice queue").click()
    assert "22 h 00 min left" in page.locator(f"#queue-{notice_id}").inner_text()
    page.get_by_role("link", name=f"Notice {notice_id}").click()
    page.get_by_label("Statement of reasons").fill("The claimant identified their master recording.")
    page.get_by_role("button", name="Action notice").click()
    assert f"Notice {notice_id} actioned" in page.get_by_role("status").first.inner_text()
    sign_out(page)

    # The release page says why; the listener's file link no longer works.
    page.goto(url + nova["release_url"])
    assert f"Unavailable because of copyright notice {notice_id}" in page.locator(f"#unavailable-{track_id}").inner_text()
    assert "taken down" in page.locator(f"#track-{track_id}").inner_text()
    assert page.locator(f"#track-{track_id}").get_by_role("link", name=re.compile("Free download")).count() == 0
    assert page.request.get(file_link, max_redirects=0).status >= 400

    # Earnings while the case is open are held, not paid.
    earn(world, track_id, 5_555_555, clock.now() + timedelta(hours=1))  # 90% = 5.000000
    clock.advance(hours=2)

    # The artist reads the statement of reasons and counter-notifies.
    sign_in(page, url, nova["user"].email)
    page.goto(url + "/dashboard/notices")
    page.get_by_role("link", name=re.compile(r"Case \d+")).first.click()
    assert "The claimant identified their master recording." in page.locator("#statement-of-reasons").inner_text()
    assert "$5.000000" in page.locator("#case-money").inner_text()
    page.get_by_label("Full name", exact=True).fill("Nova Artist")
    page.get_by_label("Address", exact=True).fill("2 Studio Lane, Berlin")
    page.get_by_label("Phone", exact=True).fill("+49 30 555 0100")
    page.get_by_label("Email", exact=True).fill("nova@artists.test")
    page.get_by_label("Why the removal is a mistake").fill("I wrote and recorded this piece myself.")
    page.get_by_label(re.compile("mistake or misidentification")).check()
    page.get_by_label(re.compile("consent to the jurisdiction")).check()
    page.get_by_label(re.compile("Signature")).fill("Nova Artist")
    page.get_by_role("button", name="Send counter-notice").click()
    assert "Counter-notice filed" in page.get_by_role("status").first.inner_text()
    assert page.locator("#case-state").inner_text() == "countered"
    case_url = page.url
    # The dashboard lists the case with what it holds, from which source, and when the track comes back.
    page.goto(url + "/dashboard")
    held_line = page.locator("#held-cases tbody tr").first.inner_text()
    assert "$5.000000" in held_line and "Ads at the download gate" in held_line and "countered" in held_line
    assert "restored on" in held_line, held_line

    # Ten business days later (two weekends in between) the timer restores the track.
    clock.advance(days=14)
    tick(app, clock)
    page.goto(case_url)
    assert page.locator("#case-state").inner_text().startswith("restored")
    page.goto(url + nova["release_url"])
    assert page.locator(f"#unavailable-{track_id}").count() == 0
    assert page.locator(f"#track-{track_id}").get_by_role("link", name=re.compile("Free download")).count() == 1

    # The held earnings were released to the artist: on the dashboard and on October's statement.
    page.goto(url + "/dashboard")
    assert "$5.000000" in page.locator("#live-balance").inner_text()
    page.goto(url + f"/royalties/statements/{nova['payee_id']}/2026-10?currency=USD")
    statement = page.locator("main").inner_text()
    assert "5.000000" in statement and re.search(r"(?i)held", statement), statement
