"""Fixed-window rate limits in Redis: SET NX EX opens the window, INCR counts (works on Redis 6 and 7)."""

from __future__ import annotations

from core.errors import RateLimited


def hit(redis, key: str, *, limit: int, window_s: int) -> int:
    """Count one hit; return how many hits the window has now."""
    pipe = redis.pipeline()
    pipe.set(f"rl:{key}", 0, ex=window_s, nx=True)
    pipe.incr(f"rl:{key}")
    _, count = pipe.execute()
    return int(count)


def enforce(redis, key: str, *, limit: int, window_s: int, message: str) -> None:
    if hit(redis, key, limit=limit, window_s=window_s) > limit:
        raise RateLimited(message, retry_after=redis.ttl(f"rl:{key}"))
