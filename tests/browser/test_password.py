import re

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_change_the_password_and_sign_in_with_the_new_one(live_server, page, make_user, _playwright_browser):
    user = make_user()
    page.goto(live_server.url + "/signin")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/account$"))

    other_context = _playwright_browser.new_context()  # another device with a copy of the session cookie
    other_context.add_cookies(page.context.cookies())
    other_device = other_context.new_page()
    other_device.goto(live_server.url + "/account")
    assert other_device.get_by_role("heading", name="Your account").is_visible()

    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label(re.compile("^New password")).fill("a brand new secret")
    page.get_by_role("button", name="Change password").click()
    assert "Every other session has been signed out" in page.get_by_role("status").first.inner_text()

    other_device.goto(live_server.url + "/account")
    other_device.wait_for_url(re.compile(r"/signin\?next="))

    page.get_by_role("button", name="Sign out").click()
    page.goto(live_server.url + "/signin")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill("a brand new secret")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/account$"))
    other_context.close()
