"""What every benchmark shares: a fresh migrated database, Redis, and the one JSON line per figure."""

from __future__ import annotations

import json
import os
import resource
import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg


def emit(metric: str, value: float, target: float | None, better: str, unit: str, **extra) -> dict:
    """Print one figure as a JSON line: metric, value, target, better (higher/lower), unit."""
    line = {"metric": metric, "value": round(value, 3) if isinstance(value, float) else value,
            "target": target, "better": better, "unit": unit}
    if target is not None:
        line["met"] = value >= target if better == "higher" else value <= target
    line.update(extra)
    print(json.dumps(line), flush=True)
    return line


def server_url() -> str:
    return (os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/test").replace("+psycopg", "")


def redis_url(db: int = 15) -> str:
    url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, ""))


def fresh_database(name: str) -> str:
    """Drop and create database `name` on the server, migrate it, and return its URL."""
    base = server_url()
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(base)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    from app.cli.core import upgrade_database

    upgrade_database(url)
    return url


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
