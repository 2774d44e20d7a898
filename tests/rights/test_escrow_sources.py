"""Escrow over every source of a track's earnings besides ads: a sale (the signed webhook's fulfilment) and a
subscriber pool's share at the month close take the track's takedown case route (`rights.escrow.routes_for`),
so the money is held for that case while it is open and goes where the case ends: back to the track's payees
(withdrawn), or to the claimant (upheld)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, text

from catalog.models import Payee
from core.money import allocate
from ledger.accounts import payee_held, payee_payable
from rights import services
from sales.books import payee_side
from tests.rights.conftest import RightsWorld
from tests.sales.conftest import sales_app, shop, standin, stripe  # noqa: F401 - fixtures
from tests.subscriptions.conftest import localstripe_url, papp, pworld  # noqa: F401 - fixtures
from tests.subscriptions.test_close import OCT, close, pay


def claimant_payable(world: RightsWorld, notice_id: int) -> int:
    from rights.models import Notice

    with world.sessions() as s:
        claimant = s.get(Notice, notice_id).claimant_user_id
        payee = s.scalar(select(Payee.id).where(Payee.user_id == claimant))
    return 0 if payee is None else world.balance(payee_payable(payee))


def money(world: RightsWorld, case_id: int):
    with world.sessions() as s:
        return services.case_money(s, case_id)


def test_a_sale_of_a_track_under_notice_is_held_for_its_case_and_goes_where_the_case_goes(
        shop, clock, settings):  # noqa: F811 - the sales fixture
    from catalog import services as catalog

    world = RightsWorld(shop.app, clock, settings)
    ada = world.artist("Ada", tracks=2)  # distinct audio: a notice on one track does not take the other
    with world.unit() as s:
        catalog.set_release_price(s, catalog.get_release(s, ada["release_id"]), "fixed", price="8.00")
    held_track, upheld_track = ada["tracks"]
    open_notice = world.take_down([held_track])
    upheld_notice = world.take_down([upheld_track])
    open_case, upheld_case = world.case_ids(open_notice)[0], world.case_ids(upheld_notice)[0]
    world.accept(upheld_case, ada["user"])  # upheld while the track stays down: its sales are the claimant's

    order = shop.order(shop.buy(shop.user(), {"release_id": ada["release_id"]}).order_id)
    to_open, to_upheld = allocate(payee_side(order.amount_micros - order.fee_micros), [1, 1])
    artist, co = ada["payee_id"], ada["collaborator_id"]
    assert world.balance(payee_held(artist)) + world.balance(payee_held(co)) == to_open
    assert money(world, open_case).held == {"USD": to_open}
    assert claimant_payable(world, upheld_notice) == to_upheld
    assert money(world, upheld_case).held == {}
    assert world.balance(payee_payable(artist)) + world.balance(payee_payable(co)) == 0

    world.withdraw(open_notice)
    assert world.balance(payee_held(artist)) == world.balance(payee_held(co)) == 0
    assert world.balance(payee_payable(artist)) + world.balance(payee_payable(co)) == to_open
    assert money(world, open_case).released_to_artist == {"USD": to_open}
    assert claimant_payable(world, open_notice) == 0
    world.check_books()


def test_a_subscriber_pool_share_of_a_track_under_notice_is_held_for_its_case_and_forfeited_with_it(
        pworld, settings):  # noqa: F811 - the premium fixture
    world = RightsWorld(pworld.app, pworld.clock, settings)
    ana = pworld.artist("Ana", tracks=3)
    with world.unit() as s:  # the royalties world's release has no audio: make it public as publishing would
        s.execute(text("UPDATE releases SET status = 'published' WHERE id = :r"), {"r": ana["release_id"]})
        s.execute(text("UPDATE tracks SET status = 'published' WHERE release_id = :r"), {"r": ana["release_id"]})
    paid, held_track, upheld_track = ana["tracks"]
    listener = pworld.listener()
    _, stripe_sub, _, _ = pworld.subscribe(listener)
    pool = pay(pworld, stripe_sub, OCT)
    for track, ms in ((paid, 60_000), (held_track, 120_000), (upheld_track, 180_000)):
        pworld.play(listener.id, track, OCT + timedelta(days=2), ms)
    pworld.clock.set(OCT + timedelta(days=3))
    held_notice = world.take_down([held_track])
    upheld_notice = world.take_down([upheld_track])
    held_case, upheld_case = world.case_ids(held_notice)[0], world.case_ids(upheld_notice)[0]
    world.accept(upheld_case, ana["user"])  # upheld before the close: the claimant's share at the close

    close(pworld, OCT)
    to_paid, to_held, to_upheld = allocate(pool, [60_000, 120_000, 180_000])
    payee = ana["payee_id"]
    assert world.balance(payee_payable(payee)) == to_paid
    assert world.balance(payee_held(payee)) == to_held
    assert money(world, held_case).held == {"USD": to_held}
    assert claimant_payable(world, upheld_notice) == to_upheld

    # The artist accepts the second notice too: the held share is the claimant's, not the artist's.
    world.accept(held_case, ana["user"])
    assert world.balance(payee_held(payee)) == 0
    assert world.balance(payee_payable(payee)) == to_paid
    assert claimant_payable(world, held_notice) == to_held  # each notice here has its own rights holder
    assert money(world, held_case).to_claimant == {"USD": to_held}
    world.check_books()


def _held_sale(shop, clock, settings):  # noqa: F811 - the sales fixture, passed on
    """Ada's 8.00 release bought while her tracks are taken down: (world, notice, case, order, payee, held)."""
    from catalog import services as catalog

    world = RightsWorld(shop.app, clock, settings)
    ada = world.artist("Ada", collaborator=False)
    with world.unit() as s:
        catalog.set_release_price(s, catalog.get_release(s, ada["release_id"]), "fixed", price="8.00")
    notice_id = world.take_down(ada["tracks"])
    case_id = world.case_ids(notice_id)[0]
    order_id = shop.buy(shop.user(), {"release_id": ada["release_id"]}).order_id
    payee = ada["payee_id"]
    return world, notice_id, case_id, order_id, payee, world.balance(payee_held(payee))


def test_a_refund_of_a_held_sale_shows_on_the_case_line_and_only_the_rest_is_released(
        shop, clock, settings):  # noqa: F811 - the sales fixture
    from royalties.services import statement

    world, notice_id, case_id, order_id, payee, sold = _held_sale(shop, clock, settings)
    shop.refund(order_id, "2.00")
    left = world.balance(payee_held(payee))
    assert 0 < left < sold
    with world.sessions() as s:
        [line] = statement(s, payee, f"{clock.now():%Y-%m}", "USD").held_cases
    assert line.case_id == case_id and line.held_micros == left
    assert line.by_source == {"sale": sold, "refund": left - sold}
    world.withdraw(notice_id)
    assert world.balance(payee_held(payee)) == 0 and world.balance(payee_payable(payee)) == left
    assert money(world, case_id).released_to_artist == {"USD": left}
    world.check_books()


def test_a_refund_after_the_case_released_the_sale_is_taken_back_from_where_the_money_went(
        shop, clock, settings):  # noqa: F811 - the sales fixture
    world, notice_id, case_id, order_id, payee, sold = _held_sale(shop, clock, settings)
    world.withdraw(notice_id)
    assert world.balance(payee_payable(payee)) == sold
    shop.refund(order_id, "2.00")  # the sale's posting was on the held account: the refund debits it there
    taken_back = -world.balance(payee_held(payee))
    assert taken_back > 0
    assert world.tick().late_settlements == 1  # ... and the timer takes it back from the artist's payable
    assert world.tick().late_settlements == 0
    assert world.balance(payee_held(payee)) == 0
    assert world.balance(payee_payable(payee)) == sold - taken_back
    assert money(world, case_id).released_to_artist == {"USD": sold - taken_back}
    world.check_books()
