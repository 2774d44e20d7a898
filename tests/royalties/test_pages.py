"""HTTP: the finance console's journey, the dashboard, statements (page, CSV, print), payout methods, the
receipt, and who may see what."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

from ledger.accounts import payee_payable
from royalties.services import statement
from tests.conftest import csrf_headers, login
from tests.royalties.helpers import close, connect

OCT5 = datetime(2026, 10, 5, tzinfo=UTC)
FORM = {"csrf_token": "test-csrf"}


def test_finance_closes_drafts_approves_and_executes_over_http(world, rapp, stripe_client, connect_standin):
    a = world.artist("Ana")
    world.gate_revenue(a["tracks"][0], 20_000_000, OCT5)
    connect(world, stripe_client, a["payee_id"])
    world.clock.set(datetime(2026, 11, 2, tzinfo=UTC))
    fin, approver = world.finance("fin"), world.finance("approver")
    client = rapp.test_client()
    login(client, fin)
    page = client.get("/finance")
    assert page.status_code == 200 and 'value="2026-10"' in page.text
    assert "Trial balance" in page.text and "Beancount export" in page.text
    assert client.post("/finance/close", data={**FORM, "period": "2026-10"}).status_code == 302
    drafted = client.post("/finance/batches", data={**FORM, "period": "2026-10", "currency": "USD"})
    batch_url = drafted.headers["Location"]
    assert batch_url.endswith("/finance/batches/1")
    client.post("/finance/batches/1/approve", data=FORM)
    assert "second finance user" in client.get(batch_url).text  # the drafter was refused
    other = rapp.test_client()
    login(other, approver)
    other.post("/finance/batches/1/approve", data=FORM)
    other.post("/finance/batches/1/execute", data=FORM)
    body = other.get(batch_url).text
    assert "1 of 1 items finished (1 settled, 0 reversed)" in body and "done" in body
    progress = other.get("/api/v1/payouts/batches/1/progress").get_json()
    assert progress["status"] == "done" and progress["counts"]["settled"] == 1
    assert len(connect_standin.transfers) == 1


def test_only_finance_closes_and_pays(world, rapp, make_user):
    artist = world.artist("Ana")
    world.clock.set(datetime(2026, 11, 2, tzinfo=UTC))
    client = rapp.test_client()
    login(client, artist["user"])
    assert client.post("/finance/close", data={**FORM, "period": "2026-10"}).status_code == 403
    assert client.post("/api/v1/royalties/periods/2026-10/close", headers=csrf_headers()).status_code == 403
    assert client.post("/api/v1/payouts/batches", json={"period": "2026-10"}, headers=csrf_headers()).status_code == 403
    assert client.get("/finance").status_code == 403
    anonymous = rapp.test_client()
    assert anonymous.post("/api/v1/payouts/batches/1/approve").status_code == 401


def test_api_refuses_bad_input_with_problems(world, rapp):
    world.clock.set(datetime(2026, 11, 2, tzinfo=UTC))
    client = rapp.test_client()
    login(client, world.finance("fin"))
    bad = client.post("/api/v1/payouts/batches", json={"period": "2026-13"}, headers=csrf_headers())
    assert bad.status_code == 422 and bad.mimetype == "application/problem+json"
    early = client.post("/api/v1/royalties/periods/2026-11/close", headers=csrf_headers())
    assert early.status_code == 409 and early.get_json()["code"] == "period_not_over"
    not_closed = client.post("/api/v1/payouts/batches", json={"period": "2026-10"}, headers=csrf_headers())
    assert not_closed.status_code == 409 and not_closed.get_json()["code"] == "period_not_closed"
    assert client.post("/api/v1/royalties/periods/junk/close", headers=csrf_headers()).status_code == 422
    assert client.get("/api/v1/payouts/batches/99/progress").status_code == 404


def test_the_dashboard_shows_balance_chart_tracks_and_statements(world, rapp):
    a = world.artist("Ana", tracks=2)
    world.gate_revenue(a["tracks"][0], 13_717_420, OCT5)
    world.download("u1", a["tracks"][0], OCT5)
    world.clock.set(datetime(2026, 10, 20, tzinfo=UTC))
    client = rapp.test_client()
    login(client, a["user"])
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert "$12.345678" in page.text                       # live balance, to the micro
    svg = page.text.split("<svg", 1)[1].split("</svg>")[0]
    assert "Earnings per day" in svg and "<rect" in svg
    assert "src=" not in svg and "kozea" not in svg  # nothing fetched from elsewhere: no CDN
    assert "2026-10-05" in page.text                       # the table behind the chart
    assert "Ana song 1" in page.text and "Ana song 2" in page.text
    assert f"/royalties/statements/{a['payee_id']}/2026-10" in page.text
    api = client.get("/api/v1/royalties/balance").get_json()
    assert api["balances"][0]["payable_micros"] == 12_345_678


def test_artists_see_only_their_own(world, rapp):
    a = world.artist("Ana")
    b = world.artist("Bo")
    world.gate_revenue(b["tracks"][0], 10_000_000, OCT5)
    client = rapp.test_client()
    login(client, a["user"])
    assert client.get(f"/dashboard?payee={b['payee_id']}").status_code == 404
    assert client.get(f"/royalties/statements/{b['payee_id']}/2026-10").status_code == 404
    assert client.get(f"/royalties/statements/{b['payee_id']}/2026-10?format=csv").status_code == 404
    assert client.get(f"/api/v1/royalties/statements/{b['payee_id']}/2026-10").status_code == 404
    assert client.get(f"/api/v1/royalties/balance?payee={b['payee_id']}").status_code == 404
    assert client.get(f"/royalties/payout-method/{b['payee_id']}").status_code == 404
    finance = rapp.test_client()
    login(finance, world.finance("fin"))
    assert finance.get(f"/royalties/statements/{b['payee_id']}/2026-10").status_code == 200


def test_statement_reconciles_to_the_ledger_in_every_format(world, rapp, stripe_client):
    a = world.artist("Ana", tracks=2)
    world.gate_revenue(a["tracks"][0], 13_717_420, OCT5)
    world.gate_revenue(a["tracks"][1], 1_111_111, OCT5)
    world.download("lx", a["tracks"][1], OCT5)
    pooled = world.key_revenue("lx", 7_777_777, OCT5)
    connect(world, stripe_client, a["payee_id"])
    close(world)
    code = payee_payable(a["payee_id"])
    closing = world.balance(code, as_of=datetime(2026, 10, 31, 23, 59, 59, 999999, tzinfo=UTC))
    with world.session() as s:
        stmt = statement(s, a["payee_id"], "2026-10", "USD")
    assert stmt.opening_micros == 0 and stmt.closing_micros == closing
    assert stmt.opening_micros + stmt.earnings_micros + stmt.adjustments_micros - stmt.payouts_micros == closing
    assert stmt.by_source() == {"Ads at the download gate": 12_345_678 + 1_000_000, "Key-mode pool": pooled}
    client = rapp.test_client()
    login(client, a["user"])
    page = client.get(f"/royalties/statements/{a['payee_id']}/2026-10")
    assert page.status_code == 200
    shown = re.search(r'data-figure="closing"><strong>\$([0-9.]+)<', page.text).group(1)
    assert int(shown.replace(".", "")) == closing
    rows = list(csv.reader(io.StringIO(client.get(f"/royalties/statements/{a['payee_id']}/2026-10?format=csv").text)))
    by_section = {}
    for row in rows[1:]:
        by_section.setdefault(row[0], 0)
        by_section[row[0]] += int(row[5].replace(".", "").replace("-", "")) * (-1 if row[5].startswith("-") else 1)
    assert by_section["closing balance"] == closing
    assert by_section["earnings"] == stmt.earnings_micros
    printable = client.get(f"/royalties/statements/{a['payee_id']}/2026-10?format=print")
    assert printable.status_code == 200 and "Ninety · Statement" in printable.text and "<nav" not in printable.text


def test_payout_method_page_validates_and_saves_an_iban(world, rapp):
    a = world.artist("Ana")
    client = rapp.test_client()
    login(client, a["user"])
    url = f"/royalties/payout-method/{a['payee_id']}"
    bad = client.post(url, data={**FORM, "kind": "sepa", "holder_name": "Ana", "iban": "DE00 1234"})
    assert bad.status_code == 422 and "IBAN is not valid" in bad.text
    good = client.post(url, data={**FORM, "kind": "sepa", "holder_name": "Ana", "iban": "DE89 3704 0044 0532 0130 00"})
    assert good.status_code == 303
    page = client.get(url)
    assert "IBAN …3000" in page.text and "waiting for confirmation" in page.text  # confirmed by email only
    assert client.post(url, data={**FORM, "kind": "bitcoin", "holder_name": "Ana"}).status_code == 422


def test_the_listener_receipt_page(world, rapp, make_user):
    a = world.artist("Ana")
    listener = make_user(roles=("listener",))
    lid = f"u{listener.id}"
    world.download(lid, a["tracks"][0], OCT5)
    pooled = world.key_revenue(lid, 3_000_000, OCT5)
    world.clock.set(datetime(2026, 10, 6, tzinfo=UTC))
    client = rapp.test_client()
    login(client, listener)
    page = client.get("/royalties/receipt")
    assert page.status_code == 200 and "Ana" in page.text and f"${pooled // 1_000_000}.{pooled % 1_000_000:06d}" in page.text
    assert client.get("/api/v1/royalties/receipt").get_json()["artists"][0]["amount_micros"] == pooled
    assert client.get("/royalties/receipt?period=nope").status_code == 422


def test_finance_holds_and_confirms_manual_methods(world, rapp):
    from tests.royalties.helpers import manual

    a = world.artist("Ana")
    method = manual(world, a["payee_id"])
    client = rapp.test_client()
    login(client, world.finance("fin"))
    page = client.get("/finance")
    assert "PayPal hand@example.com" in page.text
    client.post(f"/finance/methods/{method.id}/verify", data=FORM)
    client.post("/finance/holds", data={**FORM, "payee_id": str(a["payee_id"]), "reason": "tax form missing"})
    page = client.get("/finance")
    assert "tax form missing" in page.text and "PayPal hand@example.com" not in page.text
    assert "already on hold" in client.get(client.post("/finance/holds", data={
        **FORM, "payee_id": str(a["payee_id"]), "reason": "again"}).headers["Location"]).text
    unknown = client.post("/finance/holds", data={**FORM, "payee_id": "99999", "reason": "who?"})
    assert "no payee 99999" in client.get(unknown.headers["Location"]).text
    client.post(f"/finance/holds/{a['payee_id']}/release", data=FORM)
    assert "tax form missing" not in client.get("/finance").text
    with world.session() as s:
        from payments.services import get_method

        assert get_method(s, method.id).status == "verified"
