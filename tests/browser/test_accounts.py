import re

import pytest

pytestmark = pytest.mark.browser


def test_sign_up_sign_in_and_see_the_account_page(live_server, page):
    page.goto(live_server.url + "/")
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Email").fill("mira@example.com")
    page.get_by_label("Name shown to others").fill("Mira")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_label(re.compile("Artist")).check()
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(re.compile(r"/account$"))
    assert page.get_by_role("heading", name="Your account").is_visible()

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Email").fill("mira@example.com")
    page.get_by_label("Password").fill("wrong password here")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text().startswith("That email and password do not match")

    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/account$"))
    facts = page.locator("dl.facts").inner_text()
    assert "mira@example.com" in facts and "artist" in facts and "listener" in facts
