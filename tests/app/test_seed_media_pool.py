"""The demo's media seed makes renditions in a forked process pool. A process that catches SIGTERM to stop
cleanly (`ninety worker` does, through stop_requested; the supervisor ignores it while it stops) passed that
handler on to the pool's children, which then shrugged off the pool's terminate(): the seed, and the test
suite running it after such a test, waited forever. The children now take the default handlers back, and
are forked with them in place, so a terminate() while a child is still starting ends it too."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import signal, sys, types
    from app.seed import media

    signal.signal(signal.SIGTERM, lambda *_: None)  # as stop_requested() leaves it in a CLI process
    sessions = types.SimpleNamespace(kw={})
    handler = signal.getsignal(signal.SIGTERM)
    pool = media.make_pool(2, sessions, sys.argv[1])
    print(signal.getsignal(signal.SIGTERM) is handler, flush=True)  # the parent's own handler is back
    print(pool.apply(signal.getsignal, (signal.SIGTERM,)) == signal.SIG_DFL, flush=True)
    pool.terminate()  # at once: a child may still be starting; idle ones block on the task queue
    pool.join()
    print("stopped", flush=True)
""")


def _run(script: str, tmp_path) -> list[str]:
    """Run `script` in a Python process of its own (its signal handlers are its own); what it printed."""
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "media")], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_the_media_pool_stops_in_a_process_that_catches_sigterm(tmp_path):
    assert _run(SCRIPT, tmp_path) == ["True", "True", "stopped"]


RACE = textwrap.dedent("""
    import signal, sys, types
    from app.seed import media

    signal.signal(signal.SIGTERM, lambda *_: None)
    sessions = types.SimpleNamespace(kw={})
    for _ in range(20):  # terminated the moment it is made: its children have not run their initializer yet
        pool = media.make_pool(2, sessions, sys.argv[1])
        pool.terminate()
        pool.join()
    print("stopped", flush=True)
""")


def test_a_pool_terminated_while_its_children_start_still_stops(tmp_path):
    assert _run(RACE, tmp_path) == ["stopped"]
