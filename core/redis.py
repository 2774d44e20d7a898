"""The Redis client, built from a URL by whoever composes the application."""

from __future__ import annotations

import redis


def make_redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=False, health_check_interval=30)
