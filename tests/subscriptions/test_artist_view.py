"""Artists see premium as a source: the statement's Premium subscribers line and how many subscribers' money
reached them, the dashboard's premium section per closed month; another artist's statement is not theirs."""

from __future__ import annotations

from datetime import timedelta

from app.templating import money
from core.money import allocate
from ledger.accounts import payee_payable
from tests.conftest import login
from tests.subscriptions.test_close import OCT, close, pay


def test_an_artist_sees_premium_earnings_and_subscribers_reached_on_the_statement_and_dashboard(pworld):
    ana, bo = pworld.artist("Ana", tracks=2), pworld.artist("Bo", tracks=1)
    first, second = pworld.listener("first"), pworld.listener("second")
    _, first_sub, _, _ = pworld.subscribe(first)
    _, second_sub, _, _ = pworld.subscribe(second)
    pool_first = pay(pworld, first_sub, OCT)
    pool_second = pay(pworld, second_sub, OCT)
    pworld.play(first.id, ana["tracks"][0], OCT + timedelta(days=2), 120_000)
    pworld.play(first.id, bo["tracks"][0], OCT + timedelta(days=3), 60_000)
    pworld.play(second.id, ana["tracks"][1], OCT + timedelta(days=4), 45_000)
    close(pworld, OCT)
    first_parts = allocate(pool_first, [120_000, 60_000])
    ana_micros = first_parts[0] + pool_second
    assert pworld.balance(payee_payable(ana["payee_id"])) == ana_micros
    assert pworld.balance(payee_payable(bo["payee_id"])) == first_parts[1]

    client = pworld.app.test_client()
    login(client, ana["user"])
    page = client.get(f"/royalties/statements/{ana['payee_id']}/2026-10")
    assert page.status_code == 200
    assert "Earnings: Premium subscribers" in page.text
    assert 'data-figure="subscribers-reached">2<' in page.text
    csv = client.get(f"/royalties/statements/{ana['payee_id']}/2026-10?format=csv")
    assert csv.status_code == 200 and "Premium subscribers" in csv.text

    dashboard = client.get(f"/dashboard?payee={ana['payee_id']}")
    assert dashboard.status_code == 200
    assert 'data-figure="premium-subscribers">2<' in dashboard.text
    assert 'data-premium-month="2026-10"' in dashboard.text
    assert f'data-figure="premium-earned">{money(ana_micros, "USD", full=True)}<' in dashboard.text

    # Bo was reached by one subscriber; Ana cannot read Bo's statement.
    assert client.get(f"/royalties/statements/{bo['payee_id']}/2026-10").status_code == 404
    login(client, bo["user"])
    assert 'data-figure="subscribers-reached">1<' in client.get(f"/royalties/statements/{bo['payee_id']}/2026-10").text
    assert pool_second + pool_first == ana_micros + first_parts[1]  # every micro of both pools reached an artist
