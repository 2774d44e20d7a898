"""The demo has a rights holder, an actioned notice whose track's earnings are held, and a restored one whose
held earnings went back to the artist; the books still balance and Redis agrees with them."""

from __future__ import annotations

from tests.conftest import login


def test_the_demo_has_an_actioned_notice_with_held_earnings_and_a_restored_one(app, runner):
    from app.seed import seeders
    from core.users import get_user
    from rights import services as rights

    runtime = app.extensions["ninety"]
    state: dict = {}
    # The seeders the takedowns build on (people, music, ads, a month of royalties) and ours; the slow
    # media renditions and the sales history are left to their own tests.
    for module in seeders():
        if module.__name__.rsplit(".", 1)[1] in {"accounts", "catalog", "ads", "royalties", "rights"}:
            module.seed(runtime, state)
    with runtime.sessions() as s:
        rita = get_user(s, state["users"]["rights@ninety.test"])
        held = rights.get_notice(s, state["notices"]["held"], rita)
        restored = rights.get_notice(s, state["notices"]["restored"], rita)
        assert held.status == "actioned" and [c.state for c in held.cases] == ["disabled"]
        held_money = rights.case_money(s, held.cases[0].id)
        assert held_money.held.get("USD", 0) > 0 and not held_money.released_to_artist
        assert restored.cases[0].state == "restored" and restored.cases[0].outcome_reason == "restored"
        restored_money = rights.case_money(s, restored.cases[0].id)
        assert restored_money.released_to_artist.get("USD", 0) > 0 and not restored_money.held.get("USD")
        s.expunge(rita)
    client = app.test_client()
    login(client, rita)
    page = client.get("/rights")
    assert page.status_code == 200 and f"Notice {held.id}" in page.text and f"Notice {restored.id}" in page.text
    for args in (["ledger", "check"], ["ads", "reconcile"]):
        result = runner.invoke(args)
        assert result.exit_code == 0, (args, result.output)
