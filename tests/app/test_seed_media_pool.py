"""The demo's media seed makes renditions in a forked process pool. A process that catches SIGTERM to stop
cleanly (`ninety worker` does, through stop_requested; the supervisor ignores it while it stops) passed that
handler on to the pool's children, which then shrugged off the pool's terminate(): the seed, and the test
suite running it after such a test, waited forever. The children now take the default handlers back."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import multiprocessing, signal, sys, types
    from app.seed import media

    signal.signal(signal.SIGTERM, lambda *_: None)  # as stop_requested() leaves it in a CLI process
    sessions = types.SimpleNamespace(kw={})
    pool = multiprocessing.get_context("fork").Pool(2, initializer=media._init, initargs=(sessions, sys.argv[1]))
    print(pool.apply(signal.getsignal, (signal.SIGTERM,)) == signal.SIG_DFL, flush=True)
    pool.terminate()  # idle workers blocked on the task queue: only SIGTERM ends them
    pool.join()
    print("stopped", flush=True)
""")


def test_the_media_pool_stops_in_a_process_that_catches_sigterm(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "media")], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "stopped"]
