"""A real Redis Cluster for the suite: three `redis-server --cluster-enabled yes` masters on free loopback
ports, joined with `redis-cli --cluster create` (Debian's redis-server and redis-tools, as in CI).

`redis_cluster` (a plugin of tests/conftest.py) is one cluster per test session (and xdist worker), emptied
between tests. Suites that must hold on both kinds of Redis (the ad server, the flush, month close) override
the `config` fixture with params REDIS_MODES through `on_each_redis`, so every test there runs twice. Without
redis-server the cluster runs are skipped on a developer's machine, and fail under CI=true.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import replace as _replace
from pathlib import Path

import pytest
import redis as redis_lib

from core.redis import flush_all, make_redis

MASTERS = 3


def _free_ports(count: int) -> list[int]:
    """Free ports whose cluster bus port (port + 10000) is free too."""
    import socket

    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


class RedisClusterHarness:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ports = _free_ports(MASTERS)
        self.processes: list[subprocess.Popen] = []
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self) -> RedisClusterHarness:
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        for port in self.ports:
            node_dir = self.directory / str(port)
            node_dir.mkdir(parents=True, exist_ok=True)
            self.processes.append(subprocess.Popen(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(node_dir / "nodes.conf"), "--cluster-node-timeout", "5000",
                 "--dir", str(node_dir), "--save", "", "--appendonly", "no", "--protected-mode", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        for port in self.ports:
            self._wait(lambda port=port: redis_lib.Redis(port=port, socket_connect_timeout=1).ping(),
                       f"redis-server on port {port} did not start")
        created = subprocess.run([cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
                                  "--cluster-replicas", "0", "--cluster-yes"], capture_output=True, text=True,
                                 timeout=60)
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout}{created.stderr}")
        for port in self.ports:
            self._wait(lambda port=port: redis_lib.Redis(port=port).cluster("info")["cluster_state"] == "ok",
                       "the cluster did not reach cluster_state:ok")
        return self

    @staticmethod
    def _wait(check, message: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if check():
                    return
            except (redis_lib.RedisError, OSError, KeyError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(message)
            time.sleep(0.05)

    def flush(self) -> None:
        client = make_redis(self.url)
        try:
            flush_all(client)
        finally:
            client.close()

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    """A running 3-master Redis Cluster (`.url` is a redis+cluster:// REDIS_URL), for this session."""
    from tests.conftest import IN_CI

    if not (shutil.which("redis-server") and shutil.which("redis-cli")):
        message = "redis-server and redis-cli are needed for the Redis Cluster tests (apt-get install redis-server)"
        if IN_CI:
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
    harness = RedisClusterHarness(tmp_path_factory.mktemp("redis-cluster"))
    try:
        harness.start()
    except Exception:
        harness.stop()
        raise
    yield harness
    harness.stop()


REDIS_MODES = ("single", "cluster")


def on_each_redis(request, config):
    """For a `config` fixture with params=REDIS_MODES: the test's Config on one Redis server, then on the Redis
    Cluster (emptied before and after)."""
    if request.param == "single":
        yield config
        return
    cluster = request.getfixturevalue("redis_cluster")
    cluster.flush()
    # RQ's queue stays on the one server (JOBS_REDIS_URL), as a deployment on a cluster must set it
    yield _replace(config, redis_url=cluster.url, jobs_redis_url=config.redis_url)
    cluster.flush()
