"""The subscriber phase of the month close, by example: tie-breaks, carry-forward and the third empty month,
held tracks, the receipt (closed, and the open month as if it closed now), and a refund after the close."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from core.money import allocate, share_ceil
from ledger.accounts import INCOME_UNATTRIBUTED, payee_held, payee_payable
from royalties.earnings import premium_earnings
from royalties.services import close_period
from royalties.subscriber_pool import subscriber_receipt, subscribers_reached
from sales import subscriptions
from sales.subscriptions import subscriber_pool
from tests.subscriptions.test_lifecycle import books_ok

OCT = datetime(2026, 10, 1, tzinfo=UTC)


def month_start(index: int) -> datetime:
    return datetime(2026 + (9 + index) // 12, (9 + index) % 12 + 1, 1, tzinfo=UTC)


def pay(world, stripe_sub, start, amount_minor=499):
    world.clock.set(start + timedelta(hours=1))
    world.apply(world.invoice_event("invoice.payment_succeeded", stripe_sub, amount_minor=amount_minor, start=start,
                                    end=start + timedelta(days=30)))
    return share_ceil(amount_minor * 10_000, 9, 10)


def close(world, start):
    period = f"{start.year:04d}-{start.month:02d}"
    world.clock.set(start + timedelta(days=33))
    with world.session() as s:
        return close_period(s, world.redis, period, clock=world.clock)


def test_equal_listening_splits_by_largest_remainder_with_the_track_order_and_sheet_order(pworld):
    a = pworld.artist("Ana", tracks=3)
    collab = pworld.collaborator("cy@example.com", a["artist_id"])
    pworld.split(a["tracks"][0], [(a["payee_id"], 5_000), (collab, 5_000)])
    user = pworld.listener()
    _, stripe_sub, _, _ = pworld.subscribe(user)
    pool = pay(pworld, stripe_sub, OCT, amount_minor=1)  # 9,000 micros
    for track in a["tracks"]:
        pworld.play(user.id, track, OCT + timedelta(days=2), 60_000)
    close(pworld, OCT)
    parts = allocate(pool, [1, 1, 1])  # equal remainders: the lower track ids get the extra micros
    assert parts == [3000, 3000, 3000]
    first = allocate(parts[0], [5_000, 5_000])
    assert pworld.balance(payee_payable(collab)) == first[1]
    assert pworld.balance(payee_payable(a["payee_id"])) == first[0] + parts[1] + parts[2]
    books_ok(pworld)


def test_an_uneven_pool_over_equal_listening_gives_the_rest_to_the_lowest_track_ids(pworld):
    a = pworld.artist("Ana", tracks=1)
    others = [pworld.artist(f"Other {i}", tracks=1) for i in range(6)]
    user = pworld.listener()
    _, stripe_sub, _, _ = pworld.subscribe(user)
    pool = pay(pworld, stripe_sub, OCT, amount_minor=499)
    assert pool % 7 == 3
    for artist in [*reversed(others), a]:
        pworld.play(user.id, artist["tracks"][0], OCT + timedelta(days=2), 90_000)
    close(pworld, OCT)
    expected = allocate(pool, [1] * 7)
    got = [pworld.balance(payee_payable(x["payee_id"])) for x in (a, *others)]  # in track id order
    assert got == expected and expected[0] == expected[-1] + 1


def test_a_subscriber_who_plays_nothing_carries_on_and_the_third_empty_month_is_unattributed(pworld):
    artist = pworld.artist("Ana")
    user, player = pworld.listener("quiet"), pworld.listener("player")
    _, quiet_sub, _, _ = pworld.subscribe(user)
    _, player_sub, _, _ = pworld.subscribe(player)
    total = 0
    for index in range(3):
        start = month_start(index)
        total += pay(pworld, quiet_sub, start)
        pay(pworld, player_sub, start)
        pworld.play(player.id, artist["tracks"][0], start + timedelta(days=2), 45_000)
        close(pworld, start)
        following = subscriber_pool(f"{month_start(index + 1):%Y-%m}")
        if index < 2:
            assert pworld.balance(following) == total  # everything so far carried into the next month
            assert pworld.balance(INCOME_UNATTRIBUTED) == 0
    assert pworld.balance(INCOME_UNATTRIBUTED) == total
    assert pworld.balance(subscriber_pool(f"{month_start(3):%Y-%m}")) == 0
    with pworld.session() as s:
        receipt = subscriber_receipt(s, user.id, f"{month_start(2):%Y-%m}", clock=pworld.clock)
    assert receipt["unattributed"][0]["amount_micros"] == total and receipt["artists"] == []
    books_ok(pworld)
    with pworld.session() as s:  # the player's pool reached Ana each month: one subscriber, three months
        assert [subscribers_reached(s, artist["payee_id"], f"{month_start(i):%Y-%m}") for i in range(3)] == [1, 1, 1]
        assert subscribers_reached(s, artist["payee_id"]) == 1
        earnings = premium_earnings(s, artist["payee_id"], "USD")
    assert earnings["subscribers"] == 1 and [m["subscribers"] for m in earnings["months"]] == [1, 1, 1]
    assert [m["period"] for m in earnings["months"]] == [f"{month_start(i):%Y-%m}" for i in (2, 1, 0)]


def test_a_taken_down_tracks_share_is_held(pworld):
    from rights.settings import RightsSettings
    from tests.rights.conftest import RightsWorld

    artist = pworld.artist("Ana", tracks=2)
    user = pworld.listener()
    _, stripe_sub, _, _ = pworld.subscribe(user)
    pool = pay(pworld, stripe_sub, OCT)
    pworld.play(user.id, artist["tracks"][0], OCT + timedelta(days=2), 60_000)
    pworld.play(user.id, artist["tracks"][1], OCT + timedelta(days=2), 120_000)
    with pworld.unit() as s:  # public, so a notice can name it; then held for the case (rights.escrow.routes_for)
        s.execute(text("UPDATE releases SET status = 'published' WHERE id = :r"), {"r": artist["release_id"]})
        s.execute(text("UPDATE tracks SET status = 'published' WHERE release_id = :r"), {"r": artist["release_id"]})
    RightsWorld(pworld.app, pworld.clock, RightsSettings(public_url="http://127.0.0.1:8000")).take_down(
        [artist["tracks"][1]])
    close(pworld, OCT)
    parts = allocate(pool, [60_000, 120_000])
    assert pworld.balance(payee_payable(artist["payee_id"])) == parts[0]
    assert pworld.balance(payee_held(artist["payee_id"])) == parts[1]


def test_the_receipt_shows_each_artist_how_much_and_minutes_and_the_open_month_if_it_closed_now(pworld):
    a, b = pworld.artist("Ana"), pworld.artist("Bo")
    user = pworld.listener()
    _, stripe_sub, _, _ = pworld.subscribe(user)
    pool = pay(pworld, stripe_sub, OCT)
    pworld.play(user.id, a["tracks"][0], OCT + timedelta(days=2), 180_000)
    pworld.play(user.id, b["tracks"][0], OCT + timedelta(days=3), 60_000)
    pworld.clock.set(OCT + timedelta(days=10))
    to_a, to_b = allocate(pool, [180_000, 60_000])
    with pworld.session() as s:
        provisional = subscriber_receipt(s, user.id, "2026-10", clock=pworld.clock)
    assert not provisional["closed"]
    assert [(r["name"], r["amount_micros"], r["minutes"]) for r in provisional["artists"]] == [
        ("Ana", to_a, 3.0), ("Bo", to_b, 1.0)]
    close(pworld, OCT)
    with pworld.session() as s:
        receipt = subscriber_receipt(s, user.id, "2026-10", clock=pworld.clock)
        assert subscribers_reached(s, a["payee_id"], "2026-10") == 1
    assert receipt["closed"] and receipt["artists"] == provisional["artists"]


def test_a_refund_after_the_close_is_recouped_from_the_artists_the_pool_paid(pworld):
    a, b = pworld.artist("Ana"), pworld.artist("Bo")
    finance = pworld.finance("fin")
    user = pworld.listener()
    _, stripe_sub, _, _ = pworld.subscribe(user)
    pool = pay(pworld, stripe_sub, OCT)
    pworld.play(user.id, a["tracks"][0], OCT + timedelta(days=2), 90_000)
    pworld.play(user.id, b["tracks"][0], OCT + timedelta(days=2), 30_000)
    close(pworld, OCT)
    paid_a, paid_b = allocate(pool, [90_000, 30_000])
    with pworld.session() as s:
        invoice_id = s.execute(text("SELECT id FROM subscription_invoices")).scalar()
    with pworld.unit() as s:
        refund = subscriptions.refund_invoice(s, pworld.gateway, invoice_id, None, by=finance, clock=pworld.clock)
        assert refund.recouped and refund.pool_micros == pool
    assert pworld.balance(payee_payable(a["payee_id"])) == 0
    assert pworld.balance(payee_payable(b["payee_id"])) == 0
    assert paid_a + paid_b == pool
    books_ok(pworld)


def test_a_pool_too_large_for_bigint_arithmetic_is_shared_exactly_in_numeric(pworld):
    """pool x listening time beyond 2**63 (here 5,000,000 USD over hours of listening): the bigint fast path
    overflows, PostgreSQL refuses it, and the close shares the pool in numeric, to the micro."""
    from ledger import services as ledger
    from ledger.accounts import STRIPE

    a, b, c = (pworld.artist(name) for name in ("Ana", "Bo", "Cy"))
    user = pworld.listener("whale")
    pool = 5_000_000_000_003
    with pworld.unit() as s:
        ledger.post(s, ledger.Entry("test:whale-pool", OCT + timedelta(hours=2), "a very large pool", [
            ledger.Posting(STRIPE, "debit", pool, "USD"),
            ledger.Posting(subscriber_pool("2026-10"), "credit", pool, "USD", ref=subscriptions.subscriber_ref(user.id))]))
    listening = [3_000_000, 2_000_000, 1_000_000]
    for artist, ms in zip((a, b, c), listening, strict=True):
        pworld.play(user.id, artist["tracks"][0], OCT + timedelta(days=2), ms)
    assert pool * sum(listening) > 2**63
    close(pworld, OCT)
    expected = allocate(pool, listening)
    assert [pworld.balance(payee_payable(x["payee_id"])) for x in (a, b, c)] == expected
    assert pworld.balance(subscriber_pool("2026-10")) == 0
    books_ok(pworld)


def test_a_completed_download_counts_as_a_whole_play_beside_the_listening(pworld):
    """Downloads in the month (not previews, not the next month's) weigh as one whole play of the track: a
    track without audio counts its one-second floor. They add to that track's listening, and alone they are
    enough to keep a pool from being carried."""
    a = pworld.artist("Ana", tracks=2)
    b = pworld.artist("Bo", tracks=1)
    first, second, third = a["tracks"][0], a["tracks"][1], b["tracks"][0]
    both, downloader = pworld.listener("both"), pworld.listener("downloader")
    subs = [pworld.subscribe(user)[1] for user in (both, downloader)]
    pools = [pay(pworld, sub, OCT, amount_minor=333) for sub in subs]
    pworld.play(both.id, first, OCT + timedelta(days=2), 30_000)
    pworld.play(both.id, third, OCT + timedelta(days=2), 60_000)
    for via in ("ad", "subscriber"):
        pworld.download(f"u{both.id}", first, OCT + timedelta(days=3), via=via)
    pworld.download(f"u{both.id}", second, OCT + timedelta(days=3), via="preview")  # a preview is not a play
    pworld.download(f"u{both.id}", second, OCT + timedelta(days=31, hours=1), via="ad")  # November's
    pworld.download(f"u{downloader.id}", third, OCT + timedelta(days=4), via="purchase")
    summary = close(pworld, OCT).summary["USD"]["subscribers"]
    assert summary["empty_subscribers"] == 0 and summary["carried_micros"] == 0
    to_first, to_third = allocate(pools[0], [30_000 + 2 * 1_000, 60_000])
    assert pworld.balance(payee_payable(a["payee_id"])) == to_first
    assert pworld.balance(payee_payable(b["payee_id"])) == to_third + pools[1]
    with pworld.session() as s:
        receipt = subscriber_receipt(s, both.id, "2026-10", clock=pworld.clock)
    assert sorted((line["name"], line["amount_micros"], line["tracks"]) for line in receipt["artists"]) == [
        ("Ana", to_first, 1), ("Bo", to_third, 1)]
    books_ok(pworld)
