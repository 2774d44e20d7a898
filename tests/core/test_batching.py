"""core.batching: many threads' items applied together by one thread, each caller answered with its own result."""

from __future__ import annotations

import threading
import time

import pytest

from core.batching import Batches, per_process


def test_each_caller_gets_its_own_result_and_items_arriving_together_share_a_batch():
    seen: list[list[int]] = []
    gate = threading.Event()

    def apply(items):
        gate.wait(5)  # the first batch holds the thread while the others queue up behind it
        seen.append(list(items))
        return [item * 10 for item in items]

    batches = Batches(apply, name="test-batches", max_batch=64)
    results: dict[int, int] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, batches.submit(i))) for i in range(20)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    gate.set()
    for thread in threads:
        thread.join(5)
    assert results == {i: i * 10 for i in range(20)}
    assert sorted(sum(seen, [])) == list(range(20))
    assert len(seen) < 20  # some of them were applied together


def test_an_item_refused_alone_raises_to_its_caller_only():
    def apply(items):
        return [ValueError(f"no {item}") if item == 2 else item for item in items]

    batches = Batches(apply, name="test-batches", max_batch=8)
    assert batches.submit(1) == 1
    with pytest.raises(ValueError, match="no 2"):
        batches.submit(2)
    assert batches.submit(3) == 3


def test_a_batch_that_fails_answers_every_caller_with_the_error_and_the_thread_goes_on():
    calls = []

    def apply(items):
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("the database went away")
        return items

    batches = Batches(apply, name="test-batches", max_batch=8)
    with pytest.raises(RuntimeError, match="went away"):
        batches.submit("a")
    assert batches.submit("b") == "b"


def test_a_wrong_number_of_results_is_an_error_not_a_misdelivery():
    batches = Batches(lambda items: [], name="test-batches", max_batch=8)
    with pytest.raises(RuntimeError, match="gave 0 results"):
        batches.submit("a")


def test_offered_items_are_applied_and_drain_waits_for_them():
    applied: list[int] = []
    lock = threading.Lock()

    def apply(items):
        time.sleep(0.01)
        with lock:
            applied.extend(items)
        return [None] * len(items)

    batches = Batches(apply, name="test-batches", max_batch=16)
    for i in range(100):
        batches.offer(i)
    batches.drain()
    assert sorted(applied) == list(range(100))


def test_an_offered_item_that_fails_is_logged_and_does_not_stop_the_others(caplog):
    batches = Batches(lambda items: [ValueError("bad") if i == 1 else i for i in items], name="test-batches",
                      max_batch=8)
    batches.offer(1)
    batches.drain()
    assert batches.submit(2) == 2
    assert any(r.message == "offered items failed" and r.failed == 1 for r in caplog.records)


def test_offers_beyond_the_backlog_limit_wait_for_their_own_batch():
    gate, holding = threading.Event(), threading.Event()

    def apply(items):
        holding.set()
        gate.wait(5)
        return items

    batches = Batches(apply, name="test-batches", max_batch=1, max_waiting=2)
    batches.offer(0)
    assert holding.wait(5)  # the thread holds the first at the gate
    for i in range(1, 4):  # three wait behind it: more than 2
        batches.offer(i)
    waited = threading.Event()

    def offer_one_more():
        batches.offer(99)
        waited.set()

    thread = threading.Thread(target=offer_one_more)
    thread.start()
    assert not waited.wait(0.3)  # it waits for its own item: the backlog does not grow without end
    gate.set()
    assert waited.wait(5)
    thread.join(5)


def test_per_process_makes_one_and_a_new_one_after_a_fork(monkeypatch):
    import os

    extras: dict = {}
    made = []

    class Thing:
        def __init__(self):
            self.pid = os.getpid()
            made.append(self)

    first = per_process(extras, "thing", Thing)
    assert per_process(extras, "thing", Thing) is first
    first.pid = -1  # as a child sees its parent's: made in another process
    second = per_process(extras, "thing", Thing)
    assert second is not first and len(made) == 2


def test_with_take_turn_a_batch_is_gathered_only_once_its_turn_comes_and_gets_the_turn():
    from contextlib import contextmanager

    turn_free = threading.Event()
    turns: list[str] = []
    seen: list[tuple[list[int], str]] = []

    @contextmanager
    def take_turn():
        turn_free.wait(5)  # another process's batch holds the turn
        turns.append(f"turn {len(turns) + 1}")
        yield turns[-1]

    def apply(items, turn):
        seen.append((list(items), turn))
        return [item + 1 for item in items]

    batches = Batches(apply, name="test-batches", max_batch=64, take_turn=take_turn)
    results: dict[int, int] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, batches.submit(i))) for i in range(12)]
    for thread in threads:
        thread.start()
        time.sleep(0.01)  # they arrive one after the other, while the first waits for its turn
    turn_free.set()
    for thread in threads:
        thread.join(5)
    assert results == {i: i + 1 for i in range(12)}
    assert seen[0] == (list(range(12)), "turn 1")  # all of them, gathered after the wait, in the first turn


def test_a_turn_that_cannot_be_taken_answers_the_waiting_caller_with_why():
    from contextlib import contextmanager

    @contextmanager
    def take_turn():
        raise ConnectionError("the database is away")
        yield

    batches = Batches(lambda items, turn: items, name="test-batches", max_batch=8, take_turn=take_turn)
    with pytest.raises(ConnectionError, match="away"):
        batches.submit(1)
    batches.drain(timeout=5)  # the thread lives on: a drain is answered too
