"""The finance pages and the JSON API over the books: who may see them, what they show, bad input."""

from __future__ import annotations

import pytest

from ledger import accounts
from ledger.services import post, reverse
from tests.conftest import login
from tests.ledger.factories import flush, fund, transfer


@pytest.fixture
def book(db_session):
    post(db_session, fund("fund", 7, 10_000_000))
    flush_id = post(db_session, flush("flush", 7, {41: 900_001}, 99_999))
    sale = post(db_session, transfer("sale<script>", accounts.STRIPE, accounts.INCOME_SALES, 1_500_000))
    reversal = reverse(db_session, sale, "refund <b>requested</b>")
    db_session.commit()
    return {"flush": flush_id, "sale": sale, "reversal": reversal}


@pytest.fixture
def finance(make_user, client):
    user = make_user(roles=("finance",))
    login(client, user)
    return user


@pytest.mark.parametrize("path", ["/finance/books", "/finance/books/accounts/assets:stripe?currency=USD",
                                  "/finance/books/entries/1", "/finance/books/export.beancount",
                                  "/finance/books/journal.csv", "/api/v1/ledger/trial-balance",
                                  "/api/v1/ledger/entries/1", "/api/v1/ledger/check"])
@pytest.mark.parametrize("roles", [("artist",), ("advertiser", "listener"), ("admin",)])
def test_only_finance_reads_the_books(client, make_user, book, path, roles):
    login(client, make_user(roles=roles))
    response = client.get(path, headers={"Accept": "application/json"})
    assert response.status_code == 403
    assert response.get_json()["code"] == "role_required"


def test_anonymous_is_sent_to_sign_in(client, book):
    assert client.get("/api/v1/ledger/trial-balance").status_code == 401
    assert client.get("/finance/books", headers={"Accept": "text/html"}).status_code in (302, 303)


def test_trial_balance_page(client, finance, book):
    page = client.get("/finance/books")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "liabilities:payee:41:payable" in html
    assert "$0.900001" in html
    assert "balanced" in html and "NOT BALANCED" not in html
    assert 'href="/finance/books/accounts/liabilities:payee:41:payable?currency=USD"' in html
    early = client.get("/finance/books?as_of=2026-01-01").get_data(as_text=True)
    assert "No entries" in early
    bad = client.get("/finance/books?as_of=31/10/2026", headers={"Accept": "application/json"})
    assert bad.status_code == 422 and bad.get_json()["code"] == "invalid_date"


def test_statement_page(client, finance, book):
    html = client.get("/finance/books/accounts/liabilities:advertiser:7:prepaid?currency=USD").get_data(as_text=True)
    assert "$9.00" in html  # running balance after the flush
    assert f'/finance/books/entries/{book["flush"]}' in html
    missing = client.get("/finance/books/accounts/assets:nowhere?currency=USD", headers={"Accept": "application/json"})
    assert missing.status_code == 404 and missing.get_json()["code"] == "account_not_found"
    malformed = client.get("/finance/books/accounts/DROP TABLE?currency=USD", headers={"Accept": "application/json"})
    assert malformed.status_code == 422 and malformed.get_json()["code"] == "invalid_account"
    currency = client.get("/finance/books/accounts/assets:stripe?currency=XYZ", headers={"Accept": "application/json"})
    assert currency.status_code == 422


def test_entry_page_escapes_and_links_the_reversal(client, finance, book):
    html = client.get(f"/finance/books/entries/{book['sale']}").get_data(as_text=True)
    assert "sale&lt;script&gt;" in html and "sale<script>" not in html
    assert f'/finance/books/entries/{book["reversal"]}' in html
    reversal = client.get(f"/finance/books/entries/{book['reversal']}").get_data(as_text=True)
    assert "refund &lt;b&gt;requested&lt;/b&gt;" in reversal
    assert client.get("/finance/books/entries/999999", headers={"Accept": "application/json"}).status_code == 404


def test_downloads(client, finance, book):
    beancount = client.get("/finance/books/export.beancount")
    assert beancount.status_code == 200
    assert "Liabilities:Payee:41:Payable" in beancount.get_data(as_text=True)
    journal = client.get("/finance/books/journal.csv")
    assert journal.get_data(as_text=True).startswith("entry_id,effective_at")


def test_api(client, finance, book):
    body = client.get("/api/v1/ledger/trial-balance").get_json()
    assert body["totals"]["USD"]["debits_micros"] == body["totals"]["USD"]["credits_micros"]
    assert {"account": "income:ads", "currency": "USD", "type": "income", "debits_micros": 0,
            "credits_micros": 99_999, "balance_micros": 99_999} in body["accounts"]
    statement = client.get("/api/v1/ledger/accounts/liabilities:payee:41:payable/statement?currency=USD").get_json()
    assert statement["balance_micros"] == 900_001
    assert statement["lines"][0]["ref"] == "track:1"
    entry = client.get(f"/api/v1/ledger/entries/{book['sale']}").get_json()
    assert entry["reversed_by_id"] == book["reversal"]
    assert [p["side"] for p in entry["postings"]] == ["debit", "credit"]
    check = client.get("/api/v1/ledger/check").get_json()
    assert check["ok"] is True and check["entries"] == 4
    assert client.get("/api/v1/ledger/entries/0").status_code == 404


def test_nav_link_for_finance_only(client, finance):
    assert 'href="/finance/books"' in client.get("/").get_data(as_text=True)


def test_trial_balance_page_filters_and_caps(client, finance, book, monkeypatch):
    from app.web import ledger as web_ledger

    html = client.get("/finance/books?prefix=liabilities:payee:").get_data(as_text=True)
    assert "liabilities:payee:41:payable" in html and "income:ads" not in html
    monkeypatch.setattr(web_ledger, "TRIAL_BALANCE_ROWS", 2)
    capped = client.get("/finance/books").get_data(as_text=True)
    assert "more accounts not shown" in capped
    assert "balanced" in capped  # totals still cover every account
