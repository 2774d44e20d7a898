import pytest


def test_rate_limit_window_counts_and_expires(redis):
    from core import ratelimit
    from core.errors import RateLimited

    for expected in (1, 2, 3):
        assert ratelimit.hit(redis, "t", limit=3, window_s=60) == expected
    assert 0 < redis.ttl("rl:t") <= 60
    with pytest.raises(RateLimited):
        ratelimit.enforce(redis, "t", limit=3, window_s=60, message="slow down")
