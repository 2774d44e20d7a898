"""core.after_commit: work queued on a session runs after its outermost commit, never after a rollback."""

from __future__ import annotations

from sqlalchemy import text

from core.after_commit import after_commit, pending


def test_queued_work_runs_after_the_outermost_commit_in_order(db_session):
    ran = []
    after_commit(db_session, lambda: ran.append("first"))
    savepoint = db_session.begin_nested()
    after_commit(db_session, lambda: ran.append("released savepoint"))
    savepoint.commit()
    assert ran == [] and pending(db_session) == 2  # a savepoint's release is not the commit
    db_session.commit()
    assert ran == ["first", "released savepoint"] and pending(db_session) == 0
    db_session.commit()
    assert ran == ["first", "released savepoint"]  # run once


def test_a_rollback_or_rolled_back_savepoint_drops_what_was_queued_inside(db_session):
    ran = []
    after_commit(db_session, lambda: ran.append("kept"))
    savepoint = db_session.begin_nested()
    after_commit(db_session, lambda: ran.append("savepoint undone"))
    inner = db_session.begin_nested()
    after_commit(db_session, lambda: ran.append("inner of undone"))
    inner.commit()
    savepoint.rollback()
    db_session.commit()
    assert ran == ["kept"]

    after_commit(db_session, lambda: ran.append("rolled back"))
    db_session.rollback()
    db_session.commit()
    after_commit(db_session, lambda: ran.append("closed"))
    db_session.close()
    db_session.execute(text("SELECT 1"))
    db_session.commit()
    assert ran == ["kept"]


def test_failing_work_is_logged_and_the_rest_still_runs(db_session, caplog):
    ran = []
    after_commit(db_session, lambda: 1 / 0)
    after_commit(db_session, lambda: ran.append("second"))
    db_session.commit()
    assert ran == ["second"]
    assert "after-commit work failed" in caplog.text
