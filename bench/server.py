"""Server resilience figures: `python -m bench server`.

1. /healthz latency while 50 clients trickle request bodies at about 1 byte/s, against the server exactly
   as `ninety run` starts it (gunicorn with app/gunicorn_conf.py, the flush worker, the supervisor).
   Target: every /healthz answers, the slowest in under 1 s.
2. The same against the old default (2 sync workers) for contrast: how many /healthz calls answered
   within 5 s.
3. Worker crash: kill -9 of the flush worker, seconds until the supervisor reports it up again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench.common import emit, fresh_database, log, redis_url

SECRET = "bench-secret-key-not-for-production-0123456789"
ROOT = Path(__file__).resolve().parent.parent
SLOW_CLIENTS = int(os.environ.get("SERVER_BENCH_CLIENTS", "50"))
SECONDS = int(os.environ.get("SERVER_BENCH_SECONDS", "8"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(db_url: str, rd_url: str, var_dir: Path) -> dict:
    env = dict(os.environ, DATABASE_URL=db_url, REDIS_URL=rd_url, SECRET_KEY=SECRET, NINETY_VAR_DIR=str(var_dir),
               LOG_LEVEL="WARNING")
    return env


def _wait_healthy(url: str, process, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become healthy")


def _stop(process) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _slow_clients(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"POST /signin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: 100000\r\n\r\n")
        socks.append(s)
    return socks


def _healthz_under_trickle(url: str, port: int, timeout_s: float) -> tuple[list[float], int]:
    """Latencies of the /healthz calls that answered, and how many did not, while clients trickle."""
    socks = _slow_clients(port, SLOW_CLIENTS)
    latencies, failed = [], 0
    try:
        end = time.monotonic() + SECONDS
        while time.monotonic() < end:
            for s in socks:
                try:
                    s.sendall(b"a")
                except OSError:
                    pass
            started = time.perf_counter()
            try:
                ok = requests.get(f"{url}/healthz", timeout=timeout_s).status_code == 200
            except requests.RequestException:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                failed += 1
            time.sleep(max(0.0, 1.0 - (time.perf_counter() - started)))
    finally:
        for s in socks:
            s.close()
    return latencies, failed


def bench_default_setup(db_url: str, rd_url: str, workdir: Path) -> None:
    var_dir = workdir / "var"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "run", "--port", str(port)], cwd=ROOT,
                               env=_env(db_url, rd_url, var_dir), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        _wait_healthy(url, process)
        latencies, failed = _healthz_under_trickle(url, port, timeout_s=5)
        slowest = max(latencies) if latencies else float("inf")
        emit("server.healthz_with_slow_clients.max_latency", slowest, 1.0, "lower", "s",
             clients=SLOW_CLIENTS, calls=len(latencies) + failed, failed=failed,
             p50_s=round(statistics.median(latencies), 4) if latencies else None, setup="ninety run")
        bench_worker_restart(url, var_dir)
    finally:
        _stop(process)


def bench_worker_restart(url: str, var_dir: Path) -> None:
    state_file = var_dir / "run" / "supervisor.json"
    before = json.loads(state_file.read_text())["processes"]["worker"]
    os.kill(before["pid"], signal.SIGKILL)
    started = time.perf_counter()
    while time.perf_counter() - started < 60:
        now = json.loads(state_file.read_text())["processes"]["worker"]
        if now["state"] == "up" and now["pid"] not in (None, before["pid"]):
            break
        time.sleep(0.05)
    back_s = time.perf_counter() - started
    health = requests.get(f"{url}/healthz", timeout=5).json()
    emit("server.worker_restart_after_kill9", back_s, 5.0, "lower", "s",
         restarts=health["processes"]["worker"]["restarts"])


def bench_old_sync_setup(db_url: str, rd_url: str, workdir: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-k", "sync", "-w", "2", "-b", f"127.0.0.1:{port}",
                                "--control-socket", str(workdir / "sync.ctl"), "app.wsgi:app"], cwd=ROOT,
                               env=_env(db_url, rd_url, workdir / "var-sync"), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        _wait_healthy(url, process)
        latencies, failed = _healthz_under_trickle(url, port, timeout_s=5)
        emit("server.healthz_with_slow_clients.answered_old_sync_setup", len(latencies), None, "higher", "calls",
             clients=SLOW_CLIENTS, calls=len(latencies) + failed, failed=failed, setup="gunicorn -k sync -w 2")
    finally:
        _stop(process)


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="ninety-bench-server-", dir=os.environ.get("BENCH_TMP") or None))
    try:
        db_url = fresh_database("ninety_bench_server")
        rd_url = redis_url(13)
        log(f"# {SLOW_CLIENTS} slow clients, {SECONDS} s each setup")
        bench_default_setup(db_url, rd_url, workdir)
        bench_old_sync_setup(db_url, rd_url, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
