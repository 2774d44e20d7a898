"""Fixed-window rate limits in Redis: one INCR and one EXPIRE in a pipeline."""

from __future__ import annotations

from core.errors import RateLimited


def hit(redis, key: str, *, limit: int, window_s: int) -> int:
    """Count one hit; return how many hits the window has now."""
    pipe = redis.pipeline()
    pipe.incr(f"rl:{key}")
    pipe.expire(f"rl:{key}", window_s, nx=True)
    count, _ = pipe.execute()
    return int(count)


def enforce(redis, key: str, *, limit: int, window_s: int, message: str) -> None:
    if hit(redis, key, limit=limit, window_s=window_s) > limit:
        raise RateLimited(message, retry_after=redis.ttl(f"rl:{key}"))
