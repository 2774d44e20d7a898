"""Supervise the processes `ninety run` starts: the web server and the background workers.

A worker that exits is started again after a capped exponential backoff while the site keeps serving;
the web server is `essential` (gunicorn supervises its own workers, so its exit means it cannot serve:
everything stops and `ninety` exits non-zero). Each process's state is written to a small JSON file under
var/run/ that /healthz reads. On stop every child gets SIGTERM, then SIGKILL after a grace period; on
Linux children also get SIGTERM if this process dies without cleaning up (kill -9).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

STATE_FILE = Path("run") / "supervisor.json"


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: list[str]
    essential: bool = False  # its exit stops everything instead of a restart


@dataclass
class _Child:
    spec: ChildSpec
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    failures_in_a_row: int = 0
    restart_at: float | None = None
    last_exit: int | None = None

    @property
    def state(self) -> str:
        if self.process is not None and self.process.poll() is None:
            return "up"
        return "restarting" if self.restart_at is not None else "stopped"


def state_path(var_dir: Path) -> Path:
    return Path(var_dir) / STATE_FILE


def read_state(var_dir: Path) -> dict | None:
    """The supervised processes' states ({name: {"state", "restarts", "pid"}}), or None when no live
    supervisor wrote them (not started by `ninety run`, or a stale file from a killed one)."""
    try:
        data = json.loads(state_path(var_dir).read_text())
    except (OSError, ValueError):
        return None
    if not _alive(data.get("supervisor")):
        return None
    return data.get("processes") or None


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _die_with_parent() -> None:
    """preexec_fn: ask Linux to SIGTERM the child when its parent dies (PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
        except (OSError, AttributeError):
            pass


class Supervisor:
    def __init__(self, specs: list[ChildSpec], *, env: dict, var_dir: Path, log: Callable[[str], None] = print,
                 backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0, stable_after_s: float = 30.0,
                 stop_timeout_s: float = 15.0):
        self.children = [_Child(spec) for spec in specs]
        self.env = env
        self.state_file = state_path(var_dir)
        self.log = log
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.stable_after_s = stable_after_s
        self.stop_timeout_s = stop_timeout_s
        self.exit_code = 0

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        for child in self.children:
            self._spawn(child)
        self._write_state()

    def run(self, poll_s: float = 0.5) -> int:
        """Supervise until an essential child exits or KeyboardInterrupt (SIGINT/SIGTERM); then stop all."""
        try:
            self.start()
            while self.step():
                time.sleep(poll_s)
        except KeyboardInterrupt:
            pass
        finally:
            previous = None
            if threading.current_thread() is threading.main_thread():
                # A second Ctrl-C or SIGTERM must not cut the clean stop short and leave children behind.
                previous = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self.stop()
            if previous is not None:  # then as before: a process that goes on after supervising hears them again
                signal.signal(signal.SIGINT, previous[0])
                signal.signal(signal.SIGTERM, previous[1])
        return self.exit_code

    def step(self, now: float | None = None) -> bool:
        """One look at every child; False when supervision must end (an essential child exited)."""
        now = time.monotonic() if now is None else now
        changed = False
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                code = child.process.returncode
                child.last_exit, child.process = code, None
                changed = True
                if child.spec.essential:
                    self.log(f"{child.spec.name} exited with {code}; stopping everything")
                    self.exit_code = code or 1
                    self._write_state()
                    return False
                ran_s = now - child.started_at
                child.failures_in_a_row = 1 if ran_s >= self.stable_after_s else child.failures_in_a_row + 1
                delay = min(self.backoff_initial_s * 2 ** (child.failures_in_a_row - 1), self.backoff_max_s)
                child.restart_at = now + delay
                self.log(f"{child.spec.name} exited with {code} after {ran_s:.1f}s; restarting in {delay:.1f}s")
            if child.process is None and child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                self._spawn(child)
                changed = True
        if changed:
            self._write_state()
        return True

    def stop(self) -> None:
        running = [c for c in self.children if c.process is not None and c.process.poll() is None]
        for child in running:
            try:
                child.process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.stop_timeout_s
        for child in running:
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log(f"{child.spec.name} did not stop in {self.stop_timeout_s:.0f}s; killing it")
                child.process.kill()
                child.process.wait()
        for child in self.children:
            child.process, child.restart_at = None, None
        try:
            self.state_file.unlink()
        except FileNotFoundError:
            pass

    # -- internals -------------------------------------------------------------------------------------
    def _spawn(self, child: _Child) -> None:
        child.process = subprocess.Popen(child.spec.argv, env=self.env, preexec_fn=_die_with_parent)  # noqa: PLW1509
        child.started_at = time.monotonic()
        child.restart_at = None

    def _write_state(self) -> None:
        processes = {c.spec.name: {"state": c.state, "restarts": c.restarts,
                                   "pid": c.process.pid if c.process is not None else None,
                                   "last_exit": c.last_exit} for c in self.children}
        body = {"supervisor": os.getpid(), "updated": datetime.now(UTC).isoformat(timespec="seconds"),
                "processes": processes}
        tmp = self.state_file.with_name(self.state_file.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(body))
        os.replace(tmp, tmp.with_name(self.state_file.name))
