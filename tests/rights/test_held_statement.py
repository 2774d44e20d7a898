"""Held lines on the artist's statement and dashboard: per takedown case, what it holds of the payee's money,
from which sources, the case's state and deadline, and, on a month's statement after the case ended, where
the money went (rights.escrow.held_lines, read through case_money)."""

from __future__ import annotations

from datetime import timedelta

from ledger.accounts import payee_held
from tests.conftest import login
from tests.rights.conftest import RightsWorld


def statement(world: RightsWorld, payee_id: int, period: str):
    from royalties.services import statement as build

    with world.sessions() as s:
        return build(s, payee_id, period, "USD")


def test_the_statement_and_dashboard_show_each_case_its_held_sources_and_deadline(world, holder, admin):
    ada = world.artist("Ada")
    track = ada["tracks"][0]
    notice_id = world.file(holder, [track])
    world.action(admin, notice_id)
    world.earn(track, 2_000_001, count=3)
    case_id = world.case_ids(notice_id)[0]
    artist = ada["payee_id"]
    held = world.balance(payee_held(artist))
    assert held > 0

    stmt = statement(world, artist, "2026-10")
    [line] = stmt.held_cases
    assert (line.case_id, line.notice_id, line.track_id, line.currency) == (case_id, notice_id, track, "USD")
    assert line.held_micros == held == stmt.held_micros
    assert line.by_source == {"ad_flush": held}
    assert stmt.held_sources(line) == [("Ads at the download gate", held)]
    case = world.case(case_id)
    assert (line.state, line.deadline_at) == ("disabled", case.counter_deadline_at)
    co_share = world.balance(payee_held(ada["collaborator_id"]))
    assert line.money.held == {"USD": held + co_share}  # the whole case, as rights.services.case_money says

    client = world.app.test_client()
    login(client, ada["user"])
    page = client.get(f"/royalties/statements/{artist}/2026-10?currency=USD").get_data(as_text=True)
    assert f'data-case="{case_id}"' in page and "Ads at the download gate" in page
    assert "counter-notice by " + case.counter_deadline_at.strftime("%Y-%m-%d") in page
    csv = client.get(f"/royalties/statements/{artist}/2026-10?currency=USD&format=csv").get_data(as_text=True)
    assert f"held for takedown case {case_id},Ads at the download gate" in csv
    dashboard = client.get(f"/dashboard?payee={artist}").get_data(as_text=True)
    assert f'data-held="{case_id}"' in dashboard

    # The case ends next month: October's statement still shows what it held, and that it went to the artist.
    world.clock.set(world.clock.now() + timedelta(days=30))
    world.withdraw(notice_id, holder)
    [line] = statement(world, artist, "2026-10").held_cases
    assert (line.state, line.held_micros) == ("withdrawn", held)
    assert line.money.released_to_artist == {"USD": held + co_share} and line.money.held == {}
    assert statement(world, artist, "2026-11").held_cases == []
    dashboard = client.get(f"/dashboard?payee={artist}").get_data(as_text=True)
    assert "data-held=" not in dashboard


def test_another_artists_held_money_is_not_on_my_statement(world, holder, admin):
    ada, bo = world.artist("Ada"), world.artist("Bo")
    notice_id = world.file(holder, [ada["tracks"][0]])
    world.action(admin, notice_id)
    world.earn(ada["tracks"][0], 1_000_000)
    world.earn(bo["tracks"][0], 1_000_000)
    assert statement(world, bo["payee_id"], "2026-10").held_cases == []
    assert len(statement(world, ada["payee_id"], "2026-10").held_cases) == 1
