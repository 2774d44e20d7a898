"""Key-mode credit: counted browse impressions a listener has earned and not yet spent on a download.

One sorted set per listener (member: the impression's decision id, score: when the ad server counted it, in
ms) holds the unspent credit of the last 30 days. A key-mode download spends the oldest N at once in one Lua
script, so two downloads racing for the same credit cannot both get it: one spends, the other finds too
little. Spent members leave the set, so no later download can spend them again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from entitlements import keys

WINDOW = timedelta(days=30)
# Far more than any listener can use in a month; bounds the set if a beacon loop runs for weeks.
MAX_HELD = 10_000

# KEYS: credit set. ARGV: cutoff_ms (older does not count), needed.
# Returns {1, remaining, member, score, ...} when spent, {0, have} when there is too little.
SPEND_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local needed = tonumber(ARGV[2])
local have = redis.call('ZCARD', KEYS[1])
if have < needed then return {0, have} end
local spent = redis.call('ZRANGE', KEYS[1], 0, needed - 1, 'WITHSCORES')
for i = 1, #spent, 2 do redis.call('ZREM', KEYS[1], spent[i]) end
return {1, have - needed, unpack(spent)}
"""


@dataclass(frozen=True)
class KeyCredit:
    """How many counted browse impressions a listener holds, and how many one download needs."""

    have: int
    needed: int

    @property
    def enough(self) -> bool:
        return self.have >= self.needed

    @property
    def short_by(self) -> int:
        return max(0, self.needed - self.have)


@dataclass(frozen=True)
class Spend:
    """The impressions one download spent: (decision id, counted at ms), to give back if the grant fails."""

    listener_id: str
    impressions: tuple[tuple[str, int], ...]
    remaining: int


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _script(redis):
    script = getattr(redis, "_ninety_key_credit_spend", None)
    if script is None:
        script = redis.register_script(SPEND_LUA)
        try:
            redis._ninety_key_credit_spend = script
        except AttributeError:
            pass
    return script


def earn(redis, listener_id: str, decision_id: str, *, at: datetime) -> None:
    """Credit one counted browse impression (idempotent per decision), trimming what is past the window."""
    key = keys.key_credit(listener_id)
    pipe = redis.pipeline(transaction=True)
    pipe.zadd(key, {decision_id: _ms(at)}, nx=True)
    pipe.zremrangebyscore(key, "-inf", f"({_ms(at - WINDOW)}")
    pipe.zremrangebyrank(key, 0, -(MAX_HELD + 1))
    pipe.pexpire(key, int(WINDOW.total_seconds() * 1000))
    pipe.execute()


def balance(redis, listener_id: str, *, needed: int, now: datetime) -> KeyCredit:
    """Unspent credit of the last 30 days (a read: nothing is trimmed or spent)."""
    have = redis.zcount(keys.key_credit(listener_id), _ms(now - WINDOW), "+inf")
    return KeyCredit(have=int(have), needed=needed)


def spend(redis, listener_id: str, *, needed: int, now: datetime) -> Spend | None:
    """Take `needed` impressions of credit atomically (the oldest first); None when there are too few."""
    result = _script(redis)(keys=[keys.key_credit(listener_id)], args=[_ms(now - WINDOW), needed])
    if int(result[0]) != 1:
        return None
    pairs = result[2:]
    impressions = tuple((_text(pairs[i]), int(float(pairs[i + 1]))) for i in range(0, len(pairs), 2))
    return Spend(listener_id=listener_id, impressions=impressions, remaining=int(result[1]))


def refund(redis, spent: Spend) -> None:
    """Give back what a download spent when its grant could not be issued."""
    if spent.impressions:
        redis.zadd(keys.key_credit(spent.listener_id), dict(spent.impressions), nx=True)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
