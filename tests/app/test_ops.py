"""Operations: `ninety run` supervises its children, survives slow clients, and leaves nothing behind.

These start real processes (gunicorn, the flush worker, embedded PostgreSQL and Redis) and talk to them
over real sockets. No timing assertions: generous timeouts only say "it answered", benchmarks measure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests

from app.supervisor import ChildSpec, Supervisor, read_state, state_path
from tests.conftest import ROOT, TEST_SECRET, free_port

pytestmark = pytest.mark.xdist_group("ops")


def _wait_until(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _healthz(url: str, timeout_s: float = 5.0):
    try:
        return requests.get(f"{url}/healthz", timeout=timeout_s)
    except requests.RequestException:
        return None


def _start_ninety_run(var_dir: Path, env_overrides: dict, *args: str):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "NINETY_VAR_DIR"}}
    env.update(SECRET_KEY=TEST_SECRET, NINETY_VAR_DIR=str(var_dir), LOG_LEVEL="WARNING", **env_overrides)
    log = open(var_dir.parent / f"ninety-run-{port}.log", "w")  # noqa: SIM115 - closed by the caller
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "run", "--port", str(port), *args], env=env,
                               cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until(lambda: (r := _healthz(url, 2)) is not None and r.status_code == 200
                    and "processes" in r.json(), 120, f"ninety run on {url} (log: {log.name})")
    except AssertionError:
        process.kill()
        raise
    return process, url, log


def _stop(process, log) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log.close()


@pytest.fixture(scope="module")
def served(database_url, redis_url, tmp_path_factory):
    """`ninety run` against the suite's PostgreSQL and Redis, as a user would start it."""
    var_dir = tmp_path_factory.mktemp("ops") / "var"
    var_dir.mkdir()
    process, url, log = _start_ninety_run(var_dir, {"DATABASE_URL": database_url, "REDIS_URL": redis_url})
    yield {"process": process, "url": url, "var": var_dir, "log": Path(log.name)}
    _stop(process, log)


# -- supervision ----------------------------------------------------------------------------------------
def test_kill_9_of_the_worker_brings_it_back_while_the_site_keeps_serving(served):
    url, var = served["url"], served["var"]
    before = read_state(var)["worker"]
    assert before["state"] == "up" and before["pid"]

    failures, served_ok, stop = [], [], threading.Event()

    def keep_requesting():
        while not stop.is_set():
            try:
                response = requests.get(f"{url}/", timeout=10)
                (served_ok if response.status_code == 200 else failures).append(response.status_code)
            except requests.RequestException as exc:
                failures.append(repr(exc))
            time.sleep(0.05)

    client = threading.Thread(target=keep_requesting)
    client.start()
    try:
        time.sleep(0.5)
        try:
            os.kill(before["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pytest.fail(f"the worker died by itself before the test killed it:\n{served['log'].read_text()[-3000:]}")
        after = _wait_until(lambda: (s := read_state(var)["worker"])["pid"] not in (None, before["pid"])
                            and s["state"] == "up" and s, 20, "the worker to be restarted")
        time.sleep(0.5)
    finally:
        stop.set()
        client.join(timeout=30)
    assert after["restarts"] == before["restarts"] + 1
    assert psutil.Process(after["pid"]).cmdline()[-1] == "worker"
    assert served["process"].poll() is None  # ninety itself kept running
    assert failures == [] and len(served_ok) > 5
    health = requests.get(f"{url}/healthz", timeout=5).json()
    assert health["processes"]["worker"] == {"state": "up", "restarts": after["restarts"]}
    assert health["processes"]["web"]["state"] == "up"


def test_the_supervisor_restarts_with_capped_exponential_backoff(tmp_path):
    lines = []
    crash = ChildSpec("crashy", [sys.executable, "-c", "import sys; sys.exit(3)"])
    steady = ChildSpec("steady", [sys.executable, "-c", "import time; time.sleep(60)"])
    supervisor = Supervisor([crash, steady], env=dict(os.environ), var_dir=tmp_path, log=lines.append,
                            backoff_initial_s=0.5, backoff_max_s=2.0, stable_after_s=30.0)
    supervisor.start()
    try:
        crashy = supervisor.children[0]
        delays, now = [], time.monotonic()
        for _ in range(5):
            crashy.process.wait(timeout=30)
            assert supervisor.step(now) is True
            assert read_state(tmp_path)["crashy"]["state"] == "restarting"
            delays.append(round(crashy.restart_at - now, 3))
            now = crashy.restart_at
            supervisor.step(now)  # the backoff has passed: started again
            assert crashy.process is not None
        assert delays == [0.5, 1.0, 2.0, 2.0, 2.0]
        assert crashy.restarts == 5
        state = read_state(tmp_path)
        assert state["crashy"]["last_exit"] == 3 and state["steady"] == {
            "state": "up", "restarts": 0, "pid": supervisor.children[1].process.pid, "last_exit": None}
    finally:
        supervisor.stop()
    assert not state_path(tmp_path).exists()
    assert any("crashy exited with 3" in line for line in lines)


def test_an_essential_child_exiting_stops_everything(tmp_path):
    web = ChildSpec("web", [sys.executable, "-c", "import sys; sys.exit(4)"], essential=True)
    worker = ChildSpec("worker", [sys.executable, "-c", "import time; time.sleep(60)"])
    supervisor = Supervisor([web, worker], env=dict(os.environ), var_dir=tmp_path, log=lambda line: None)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert supervisor.run(poll_s=0.05) == 4
    assert all(child.process is None for child in supervisor.children)
    # Signals are ignored only while it stops its children: left ignored, every process this one forks later
    # (the demo's media pool, in this very test process) would shrug off SIGTERM.
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_healthz_reports_supervised_processes_only_from_a_live_supervisor(app, client):
    var = app.extensions["ninety"].config.var_dir
    path = state_path(var)
    path.parent.mkdir(parents=True, exist_ok=True)
    processes = {"web": {"state": "up", "restarts": 0, "pid": 1, "last_exit": None},
                 "worker": {"state": "restarting", "restarts": 2, "pid": None, "last_exit": -9}}
    path.write_text(json.dumps({"supervisor": os.getpid(), "processes": processes}))
    body = client.get("/healthz").get_json()
    assert client.get("/healthz").status_code == 200
    assert body["status"] == "degraded"
    assert body["processes"] == {"web": {"state": "up", "restarts": 0}, "worker": {"state": "restarting",
                                                                                   "restarts": 2}}
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path.write_text(json.dumps({"supervisor": dead.pid, "processes": processes}))
    body = client.get("/healthz").get_json()
    assert "processes" not in body and body["status"] == "ok"


# -- nothing left behind --------------------------------------------------------------------------------
@pytest.fixture
def open_var_dir():
    """A var/ the embedded PostgreSQL's own user can reach (pytest's tmp_path is private to root)."""
    top = Path(tempfile.mkdtemp(prefix="ninety-ops-"))
    top.chmod(0o755)
    (top / "var").mkdir()
    yield top / "var"
    shutil.rmtree(top, ignore_errors=True)


def test_sigterm_of_ninety_run_leaves_no_child_nor_embedded_server(open_var_dir):
    from core.embedded import redis_server_pid

    var_dir = open_var_dir
    process, url, log = _start_ninety_run(var_dir, {})  # no DATABASE_URL / REDIS_URL: embedded servers
    try:
        children = [p.pid for p in psutil.Process(process.pid).children(recursive=True)]
        redis_pid = redis_server_pid(var_dir)
        postgres_pid = int((var_dir / "pg" / "postmaster.pid").read_text().split()[0])
        assert len(children) >= 4  # gunicorn master, its workers, the flush worker
        assert redis_pid and postgres_pid and not _gone(redis_pid) and not _gone(postgres_pid)
    finally:
        _stop(process, log)
    assert process.returncode == 0
    leftovers = [pid for pid in [*children, redis_pid, postgres_pid] if not _wait_gone(pid)]
    assert leftovers == []


def _wait_gone(pid: int, timeout_s: float = 20) -> bool:
    try:
        _wait_until(lambda: _gone(pid), timeout_s, f"pid {pid} to exit")
        return True
    except AssertionError:
        return False


# -- slow clients and the control socket ------------------------------------------------------------------
def _trickle(url: str, count: int, path: str = "/signin", length: int = 100_000):
    host, port = url.removeprefix("http://").split(":")
    socks = []
    for _ in range(count):
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                  f"Content-Length: {length}\r\n\r\n".encode())
        socks.append(s)
    return socks


def test_fifty_slow_uploads_do_not_stop_the_site(served):
    url = served["url"]
    socks = _trickle(url, 50)
    try:
        answered = []
        for _ in range(6):
            for s in socks:
                s.sendall(b"a")
            response = _healthz(url, timeout_s=5)
            answered.append(response is not None and response.status_code == 200)
            time.sleep(0.5)
        assert answered == [True] * 6
    finally:
        for s in socks:
            s.close()


def test_the_control_socket_is_in_var_run(served):
    ctl = served["var"] / "run" / "gunicorn.ctl"
    assert stat.S_ISSOCK(ctl.stat().st_mode)
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(ctl))  # gunicorn is listening on it
    web = read_state(served["var"])["web"]["pid"]
    assert str(ctl) in psutil.Process(web).cmdline()


ECHO_APP = textwrap.dedent("""
    import gc

    from app.request_body import BufferedBody

    def echo(environ, start_response):
        body = environ["wsgi.input"].read()
        if environ["PATH_INFO"] == "/gc":
            body = str(gc.get_freeze_count()).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    app = BufferedBody(echo, max_bytes=1000, min_rate_bps=1000, grace_s=1.0)
""")


@pytest.fixture
def echo_server(tmp_path):
    (tmp_path / "echo_app.py").write_text(ECHO_APP)
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:app.gunicorn_conf", "-w", "1",
                                "--threads", "4", "-b", f"127.0.0.1:{port}", "--pythonpath", f"{tmp_path},{ROOT}",
                                "--control-socket", str(tmp_path / "g.ctl"), "echo_app:app"], cwd=ROOT,
                               env=dict(os.environ, NINETY_VAR_DIR=str(tmp_path / "var")),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until(lambda: _get(url), 30, "the echo server")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _get(url):
    try:
        return requests.get(url, timeout=2)
    except requests.RequestException:
        return None


def test_a_body_is_handed_to_the_app_whole_and_a_too_large_one_refused(echo_server):
    assert requests.post(echo_server, data=b"x" * 900, timeout=10).content == b"x" * 900
    chunked = requests.post(echo_server, data=iter([b"ab", b"cd"]), timeout=10)
    assert chunked.status_code == 200 and chunked.content == b"abcd"
    too_large = requests.post(echo_server, data=b"x" * 1001, timeout=10)
    assert too_large.status_code == 413
    assert too_large.headers["Content-Type"] == "application/problem+json"


def test_a_worker_keeps_what_it_loaded_out_of_the_garbage_collectors_walks(echo_server):
    frozen = int(requests.get(f"{echo_server}/gc", timeout=10).text)
    assert frozen > 10_000  # the modules and objects loaded before the first request (post_worker_init)


def test_a_keep_alive_connection_is_closed_after_its_last_request_and_the_client_carries_on(echo_server):
    """The connection serves KEEPALIVE_REQUESTS requests, the last answered with `Connection: close`, then
    the server closes it; a client's next connection is served as the first was."""
    from app.gunicorn_conf import KEEPALIVE_REQUESTS

    host, port = echo_server.removeprefix("http://").split(":")

    def answers(count: int) -> tuple[list[bytes], bytes]:
        with socket.create_connection((host, int(port)), timeout=10) as s:
            heads = []
            for _ in range(count):
                s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                received = b""
                while b"\r\n\r\n" not in received:
                    received += s.recv(4096)
                heads.append(received.split(b"\r\n\r\n")[0].lower())
            try:
                after = s.recv(4096)  # b"" once the server has closed its side
            except OSError:
                after = b""
            return heads, after

    heads, after = answers(KEEPALIVE_REQUESTS)
    assert all(b"connection: keep-alive" in head for head in heads[:-1])
    assert b"connection: close" in heads[-1] and after == b""
    again, _ = answers(2)
    assert all(head.startswith(b"http/1.1 200") and b"connection: keep-alive" in head for head in again)


def test_a_body_slower_than_the_minimum_rate_is_cut_off_with_408(echo_server):
    (s,) = _trickle(echo_server, 1, path="/", length=500)
    try:
        s.settimeout(30)
        received = b""
        for _ in range(200):  # 1 byte every 0.1 s: far below 1000 bytes/s, cut after the 1 s grace
            try:
                s.sendall(b"a")
            except OSError:
                break
            s.setblocking(False)
            try:
                received += s.recv(4096)
            except BlockingIOError:
                pass
            s.setblocking(True)
            s.settimeout(30)
            if received:
                break
            time.sleep(0.1)
        while b"\r\n\r\n" not in received:
            chunk = s.recv(4096)
            if not chunk:
                break
            received += chunk
    finally:
        s.close()
    assert received.startswith(b"HTTP/1.1 408 ")


# -- a fresh machine --------------------------------------------------------------------------------------
def _as_nobody(argv: list[str], **env) -> subprocess.CompletedProcess:
    """Run as an unprivileged user: one who cannot apt-get install anything."""
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv], cwd=ROOT,
                          env=dict(os.environ, **env), capture_output=True, text=True, timeout=120)


@pytest.fixture
def stamp():
    """An up-to-date install stamp the unprivileged user can see: only the Chromium check stands before
    the suite (pytest's tmp_path is private to root)."""
    fd, name = tempfile.mkstemp(prefix="ninety-stamp-")
    os.close(fd)
    os.chmod(name, 0o644)
    yield Path(name)
    os.unlink(name)


def test_make_test_without_chromium_stops_before_the_suite_with_the_command_to_type(stamp):
    out = _as_nobody(["make", "-s", "test", f"STAMP={stamp}", "PY=echo SUITE-RAN"], CHROMIUM="/nonexistent")
    assert out.returncode != 0
    assert "SUITE-RAN" not in out.stdout + out.stderr
    assert "sudo apt-get install -y chromium" in out.stderr


def test_make_test_with_chromium_runs_the_suite(stamp):
    out = _as_nobody(["make", "-s", "test", f"STAMP={stamp}", "PY=echo SUITE-RAN"], CHROMIUM="/bin/sh")
    assert out.returncode == 0, out.stderr
    assert "SUITE-RAN" in out.stdout
