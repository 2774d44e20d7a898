"""The month-end journey in a browser: finance closes October and drafts a batch, a second finance user
approves and executes it (Stripe Connect over HTTP to our stand-in), and the artist sees the payout on the
dashboard and downloads the statement."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime

import pytest

from core.clock import FrozenClock
from tests.payments.conftest import connect_standin, stripe_client  # noqa: F401 - fixtures
from tests.royalties.conftest import World
from tests.royalties.helpers import connect

pytestmark = pytest.mark.browser
PASSWORD = "correct horse battery"


@pytest.fixture
def clock():
    return FrozenClock(datetime(2026, 10, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def app(make_app, clock, connect_standin):  # noqa: F811 - the live server serves this app
    return make_app(clock=clock, stripe_api_base=connect_standin.url)


def sign_in(page, url, email):
    page.goto(url + "/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/account$"))


def sign_out(page):
    page.get_by_role("button", name="Sign out").click()


def test_close_draft_approve_execute_and_the_artist_downloads_the_statement(app, clock, live_server, page,
                                                                              stripe_client, connect_standin,  # noqa: F811
                                                                              tmp_path):
    world = World(app, clock)
    artist = world.artist("Nova", tracks=1)
    world.gate_revenue(artist["tracks"][0], 25_555_555, datetime(2026, 10, 9, tzinfo=UTC))  # 90% = 23.0000
    connect(world, stripe_client, artist["payee_id"])
    fin, approver = world.finance("fin"), world.finance("approver")
    clock.set(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))

    sign_in(page, live_server.url, fin.email)
    page.get_by_role("link", name="Finance").click()
    page.get_by_label("Month", exact=True).fill("2026-10")
    page.get_by_role("button", name="Close month").click()
    assert "2026-10 is closed." in page.get_by_role("status").first.inner_text()
    page.get_by_label("Closed month", exact=True).fill("2026-10")
    page.get_by_role("button", name="Draft batch").click()
    page.wait_for_url(re.compile(r"/finance/batches/\d+$"))
    batch_url = page.url
    assert "$23.00" in page.locator("dl.facts").inner_text()
    page.get_by_role("button", name="Approve batch").click()
    assert "second finance user" in page.get_by_role("status").first.inner_text()
    sign_out(page)

    sign_in(page, live_server.url, approver.email)
    page.goto(batch_url)
    page.get_by_role("button", name="Approve batch").click()
    assert page.locator("[data-batch-status]").inner_text() == "approved"
    page.get_by_role("button", name="Execute batch").click()
    page.wait_for_function("document.querySelector('[data-batch-status]').textContent === 'done'")
    assert "1 of 1 items finished (1 settled, 0 reversed)" in page.locator("[data-progress-text]").inner_text()
    assert len(connect_standin.transfers) == 1
    sign_out(page)

    sign_in(page, live_server.url, artist["user"].email)
    page.get_by_role("link", name="Dashboard").click()
    history = page.locator("#payout-history").inner_text()
    assert "2026-10" in history and "settled" in history and "$23.00" in history
    assert "Ninety royalties 2026-10: Nova LP" in history
    page.get_by_role("link", name="2026-10 (USD)").click()
    assert page.locator("[data-figure=payout]").inner_text().startswith("$23.00")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    path = tmp_path / "statement.csv"
    download_info.value.save_as(path)
    rows = {row[0]: row for row in csv.reader(path.open())}
    assert rows["closing balance"][5] == "23.000000"
    assert rows["payout for this month"][5] == "23.000000" and rows["payout for this month"][1] == "settled"
    assert rows["carried to next month"][5] == "0.000000"
