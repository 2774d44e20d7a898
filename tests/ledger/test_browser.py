"""A finance user reads the books in a real browser: trial balance → account statement → entry."""

from __future__ import annotations

import re

import pytest

from ledger import accounts
from ledger.services import post
from tests.conftest import PASSWORD
from tests.ledger.factories import flush, fund

pytestmark = pytest.mark.browser


def test_finance_reads_the_books(live_server, page, make_user, db_session):
    user = make_user(roles=("finance",), email="fin@example.com")
    post(db_session, fund("fund", 7, 10_000_000))
    flush_id = post(db_session, flush("flush", 7, {41: 900_001}, 99_999))
    db_session.commit()

    page.goto(live_server.url + "/signin")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/account$"))

    page.get_by_role("link", name="Books").click()
    assert page.get_by_role("heading", name="Trial balance").is_visible()
    assert "balanced" in page.locator("tfoot").inner_text()
    page.get_by_role("link", name=accounts.payee_payable(41)).click()
    assert page.get_by_role("heading", name=re.compile(r"liabilities:payee:41:payable")).is_visible()
    assert "$0.900001" in page.locator("table").inner_text()

    page.get_by_role("link", name=f"#{flush_id}").click()
    assert page.get_by_role("heading", name=f"Entry #{flush_id}").is_visible()
    postings = page.locator("table").inner_text()
    assert "liabilities:advertiser:7:prepaid" in postings and "income:ads" in postings
