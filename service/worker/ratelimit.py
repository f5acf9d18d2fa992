"""The provider's SMS rate, shared by every worker process through Redis.

A reservation scheme (GCRA-like): each sender atomically books the next free
instant on a common timeline and sleeps until then, so N processes together
send at the configured rate without polling or busy retries.  Redis's own
clock is used, so the processes need not agree on the time.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

RATE_KEY = "mawid:ratelimit:sms"

# Returns how many microseconds the caller must wait before sending.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local nxt = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.ceil((nxt - now) / 1000) + 1000)
return tat - now
"""


class RateLimiter:
    def __init__(self, redis: Redis, per_second: float, key: str = RATE_KEY) -> None:
        self._redis = redis
        self._interval_us = int(1_000_000 / per_second) if per_second > 0 else 0
        self._key = key

    async def reserve(self) -> float:
        """Book the next free instant; returns the seconds until it."""
        if self._interval_us == 0:
            return 0.0
        reply = await self._redis.eval(_RESERVE, 1, self._key, str(self._interval_us))  # type: ignore[misc]
        return int(reply) / 1_000_000

    async def wait_turn(self) -> float:
        """Sleep until this caller may send; returns the seconds waited."""
        wait = await self.reserve()
        if wait > 0:
            await asyncio.sleep(wait)
        return wait
