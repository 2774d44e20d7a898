"""Artists see sales: the statement's sources (sales, refunds, disputes per track), the dashboard's track
table (sales, refunded, disputed, card fees) and the earnings API, all read from the books."""

from __future__ import annotations

from ledger.accounts import payee_payable
from tests.conftest import login


def test_sales_refunds_and_disputes_per_track_on_the_statement_and_the_track_table(shop):
    from royalties.earnings import track_table
    from royalties.statements import statement

    release = shop.release(price="10.00", tracks=2, shares=(7000, 3000))
    first = shop.buy(shop.user(), release)
    second = shop.buy(shop.user(), release)
    shop.refund(first.order_id, "5.00")
    dispute = shop.standin.dispute(second.payment_intent_id, fee=1500)
    assert shop.deliver(shop.standin.event("charge.dispute.created", dispute)) == "dispute_opened"
    artist = release["payee_id"]
    with shop.sessions() as s:
        stmt = statement(s, artist, "2026-10", "USD")
        rows = {r["track_id"]: r for r in track_table(s, artist, "USD")}
    per_sale = (-(-(10_000_000 - 590_000) * 9 // 10)) // 2 * 7 // 10  # one track's 70% of one sale
    by_source = stmt.by_source()
    assert set(by_source) == {"Sales", "Sales refunded", "Sales disputed"}
    assert by_source["Sales"] == 2 * 2 * per_sale
    assert by_source["Sales refunded"] < 0 and by_source["Sales disputed"] == -2 * per_sale
    assert stmt.closing_micros == stmt.opening_micros + stmt.earnings_micros + stmt.adjustments_micros - \
        stmt.payouts_micros
    assert stmt.closing_micros == shop.balance(payee_payable(artist))
    assert {line.track_id for line in stmt.earnings} == set(release["tracks"])
    for track_id in release["tracks"]:
        row = rows[track_id]
        assert (row["sales"], row["sales_micros"], row["disputes_micros"]) == (2, 2 * per_sale, per_sale)
        assert row["refunds_micros"] == -sum(line.amount_micros for line in stmt.earnings
                                             if line.track_id == track_id and line.source == "Sales refunded")
        assert row["fees_micros"] == 2 * 590_000 // 2  # each sale's fee, split over its two tracks
        assert row["revenue_micros"] == row["sales_micros"] - row["refunds_micros"] - row["disputes_micros"]

    client = shop.app.test_client()
    login(client, release["artist_user"])
    body = client.get(f"/api/v1/royalties/tracks?payee={artist}&currency=USD").get_json()
    assert {t["track_id"]: t["sales_micros"] for t in body["tracks"]} == {t: 2 * per_sale for t in release["tracks"]}
    api_statement = client.get(f"/api/v1/royalties/statements/{artist}/2026-10?currency=USD").get_json()
    assert api_statement["by_source"]["Sales disputed"] == -2 * per_sale
    outsider = shop.app.test_client()
    login(outsider, shop.user())
    assert outsider.get(f"/api/v1/royalties/tracks?payee={artist}").status_code in (403, 404)
