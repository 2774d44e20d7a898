"""`ninety notices overdue|tick` and the transparency figures."""

from __future__ import annotations

import json
from datetime import timedelta

from rights import services
from tests.conftest import CliRunner


def test_overdue_lists_notices_past_their_deadline(world, holder, admin):
    ada = world.artist("Ada", tracks=3)
    late = world.file(holder, [ada["tracks"][0]])
    world.clock.advance(hours=20)
    fresh = world.file(holder, [ada["tracks"][1]])
    decided = world.file(holder, [ada["tracks"][2]])
    world.action(admin, decided)
    runner = CliRunner(world.app)
    world.clock.advance(hours=5)  # the first is 25 h old, the second 5 h
    result = runner.invoke(["notices", "overdue", "--json"])
    assert result.exit_code == 1
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["notice_id"] for r in rows] == [late]
    assert rows[0]["hours_overdue"] == 1.0
    world.clock.advance(hours=20)
    text = runner.invoke(["notices", "overdue"]).output
    assert f"notice {late}" in text and f"notice {fresh}" in text and "2 notices overdue" in text
    with world.unit() as s:
        services.reject_notice(s, late, s.merge(admin), reason="no", clock=world.clock, settings=world.settings)
        services.action_notice(s, fresh, s.merge(admin), reason="yes", clock=world.clock, settings=world.settings)
    result = runner.invoke(["notices", "overdue"])
    assert result.exit_code == 0 and "0 notices overdue" in result.output
    with world.sessions() as s:
        assert [n.id for n in services.decision_queue(s, now=world.clock.now())] == []


def test_tick_restores_through_the_cli(world, holder, admin):
    ada = world.artist("Ada")
    notice_id, case_id = world.actioned(holder, admin, ada["tracks"])
    world.counter(case_id, ada["user"])
    world.clock.advance(days=20)
    result = CliRunner(world.app).invoke(["notices", "tick"])
    assert result.exit_code == 0 and "1 restored, 0 upheld" in result.output
    assert world.track_status(ada["tracks"][0]) == "published"


def test_transparency_counts_per_month_with_decision_times(world, holder, admin):
    ada = world.artist("Ada", tracks=4)
    ids = []
    for hours, track in zip((2, 10, 30), ada["tracks"], strict=False):
        notice_id = world.file(holder, [track])
        ids.append((notice_id, hours))
    start = world.clock.now()
    for index, (notice_id, hours) in enumerate(ids):
        world.clock.set(start + timedelta(hours=hours))
        with world.unit() as s:
            decide = services.reject_notice if index == 1 else services.action_notice
            decide(s, notice_id, s.merge(admin), reason="r", clock=world.clock, settings=world.settings)
    world.file(holder, [ada["tracks"][3]])  # undecided
    with world.sessions() as s:
        [october] = services.transparency(s, now=world.clock.now())
    assert (october.month, october.received, october.actioned, october.rejected) == ("2026-10", 4, 2, 1)
    assert (october.median_decision_s, october.max_decision_s) == (10 * 3600, 30 * 3600)
