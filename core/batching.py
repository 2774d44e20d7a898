"""Batches: many request threads' items applied together by one thread of the process.

A write that every request makes the same way (a sale's entry on the balances all sales share, a play beacon's
statement) costs a round trip, a statement and a commit each. Handed to a `Batches`, the items that arrive while
one batch is applied wait for the next, and `apply_batch` takes them all at once: one round trip, one statement,
one commit for many.

`submit` waits for its own item's result (or the exception that refused it), so a request is answered only once
what it asked for is done, exactly as without the batch (a sale). `offer` does not wait: for writes whose loss
does no harm because the next one repeats them (a play beacon reports the cumulative time heard); an offered
item that fails is logged, and `drain` waits for everything offered before it.

With `take_turn`, several processes' batch threads take turns: the thread that has an item first waits for its
turn (the webhook's is a PostgreSQL advisory lock, so the processes' batches never queue on each other's row
locks halfway through), and only then gathers what has arrived meanwhile, so a wait for the turn grows the
batch instead of leaving it half done. The turn's value is handed to `apply_batch(items, turn)`.

The thread lives in the process that made it: gunicorn forks its workers after the app is made, so `per_process`
makes one in each process on first use.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar

log = logging.getLogger("ninety.batching")

T = TypeVar("T")
_lock = threading.Lock()
_DRAIN = object()  # queued by `drain`: answered once everything queued before it has been applied


class Batches:
    """`submit(item)` queues the item and waits for its result. One thread takes up to `max_batch` waiting
    items at a time and calls `apply_batch(items)`, which returns one result per item, in order; a result that
    is an exception is raised to that item's caller. If `apply_batch` itself raises, every item of the batch
    gets that exception: no caller is left waiting."""

    def __init__(self, apply_batch: Callable[[list], list], *, name: str, max_batch: int,
                 answer_within_s: float = 60.0, drain_at_exit: bool = False, max_waiting: int | None = None,
                 take_turn: Callable[[], AbstractContextManager] | None = None) -> None:
        self.apply_batch = apply_batch
        self.take_turn = take_turn
        self.max_batch = max_batch
        self.max_waiting = 4 * max_batch if max_waiting is None else max_waiting
        self.answer_within_s = answer_within_s
        self.pid = os.getpid()
        self._waiting: queue.SimpleQueue[tuple[Any, Future | None]] = queue.SimpleQueue()
        threading.Thread(target=self._run, name=name, daemon=True).start()
        if drain_at_exit:  # a worker stopping (SIGTERM, sys.exit) writes what it was offered first
            atexit.register(self._drain_at_exit)

    def _drain_at_exit(self) -> None:
        if self.pid == os.getpid():
            try:
                self.drain(timeout=5)
            except Exception:  # noqa: BLE001 - exiting anyway
                log.warning("batches not drained at exit", exc_info=True)

    def submit(self, item):
        answer: Future = Future()
        self._waiting.put((item, answer))
        return answer.result(timeout=self.answer_within_s)

    def offer(self, item) -> None:
        """Queue the item and return at once; its result is not kept, a failure is logged. While more than
        `max_waiting` items wait, the caller waits for its own as `submit` does: offers faster than the
        batches are written slow down to their pace instead of piling up in memory."""
        if self._waiting.qsize() > self.max_waiting:
            self.submit(item)
        else:
            self._waiting.put((item, None))

    def drain(self, timeout: float | None = None) -> None:
        """Wait until every item queued before this call has been applied (by the end of the batch after)."""
        done: Future = Future()
        self._waiting.put((_DRAIN, done))
        done.result(timeout=self.answer_within_s if timeout is None else timeout)

    def _run(self) -> None:
        while True:
            first = self._waiting.get()
            batch = [first]
            try:
                with self.take_turn() if self.take_turn is not None else nullcontext() as turn:
                    batch = self._gather(first)
                    self._answer(batch, turn)
            except BaseException as exc:  # noqa: BLE001 - the turn was refused (the database is away): say so
                log.exception("batch turn failed", extra={"batches": threading.current_thread().name})
                for item, answer in batch:
                    if answer is None or answer.done():
                        continue
                    if item is _DRAIN:
                        answer.set_result(None)
                    else:
                        answer.set_exception(exc)

    def _gather(self, first) -> list:
        batch = [first]
        while len(batch) < self.max_batch:
            try:
                batch.append(self._waiting.get_nowait())
            except queue.Empty:
                break
        return batch

    def _answer(self, batch: list, turn) -> None:
        drains = [answer for item, answer in batch if item is _DRAIN]
        batch = [(item, answer) for item, answer in batch if item is not _DRAIN]
        try:
            items = [item for item, _ in batch]
            if not batch:
                results = []
            else:
                results = self.apply_batch(items, turn) if self.take_turn is not None else self.apply_batch(items)
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} gave {len(results)} results")
        except BaseException as exc:  # noqa: BLE001 - never leave a caller unanswered
            log.exception("batch failed", extra={"batches": threading.current_thread().name})
            results = [exc] * len(batch)
        offered_failed = 0
        for (_, answer), result in zip(batch, results, strict=True):
            if answer is None:
                offered_failed += isinstance(result, BaseException)
            elif isinstance(result, BaseException):
                answer.set_exception(result)
            else:
                answer.set_result(result)
        if offered_failed:
            log.warning("offered items failed", extra={"batches": threading.current_thread().name,
                                                       "failed": offered_failed})
        for answer in drains:
            answer.set_result(None)


def per_process(extras: dict, key: str, make: Callable[[], T]) -> T:
    """The `extras[key]` of this process, made by `make()` on first use here (a forked child makes its own:
    the parent's thread did not survive the fork). `make()`'s result must have a `pid` attribute."""
    found = extras.get(key)
    if found is None or found.pid != os.getpid():
        with _lock:
            found = extras.get(key)
            if found is None or found.pid != os.getpid():
                found = extras[key] = make()
    return found
