"""The provider's SMS rate, shared by every worker process through Redis.

Two timelines, both on Redis's own clock, so the processes need not agree
on the time:

- turns, a reservation scheme (GCRA-like): a caller atomically books the
  next free instants, so N processes together plan sends at the configured
  rate without polling or busy retries.  The sweeper books them, and only
  within a short horizon: the send jobs are queued to start at their turn
  (arq's defer), so no job waits long inside its timeout, and no more SMS
  are in flight than the rate serves in that horizon, however many workers
  there are;
- a gate (`pass_now`), which spaces the sends themselves: a job at its turn
  goes through only if the last one went at least an interval ago.  A job
  runs a little after its turn, by an amount that varies (a stalled or busy
  worker, a restart); the gate keeps such jobs from bunching up.
"""

from __future__ import annotations

from redis.asyncio import Redis

RATE_KEY = "mawid:ratelimit:sms"
# Farther than any horizon: "no horizon".
_UNBOUNDED_US = 2**52

# Books up to ARGV[2] turns that start at most ARGV[3] microseconds from now,
# and no sooner than ARGV[4]; returns the microseconds until each.  Nothing is
# booked beyond the horizon, so a caller turned away leaves the timeline as
# it was.  A timeline left idle restarts from now (plus the lead): turns that
# passed unused are never handed out.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local horizon = tonumber(ARGV[3])
local lead = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now + lead then tat = now + lead end
local waits = {}
while #waits < n and tat - now <= horizon do
  waits[#waits + 1] = tat - now
  tat = tat + interval
end
if #waits > 0 then
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX',
             math.ceil((tat - now) / 1000) + 1000)
end
return waits
"""

# How many turns are free within ARGV[2] microseconds (none sooner than
# ARGV[3]), booking nothing.
_FREE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local horizon = tonumber(ARGV[2])
local lead = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now + lead then tat = now + lead end
if tat - now > horizon then return 0 end
return math.floor((horizon - (tat - now)) / interval) + 1
"""


# Lets the caller through when at least ARGV[1] microseconds have passed
# since the last caller it let through (returns 0 and records now as the
# last); otherwise returns the microseconds left.
_GATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if now - last >= interval then
  redis.call('SET', KEYS[1], string.format('%.0f', now), 'PX',
             math.ceil(interval / 1000) + 1000)
  return 0
end
return last + interval - now
"""


class RateLimiter:
    def __init__(self, redis: Redis, per_second: float, key: str = RATE_KEY) -> None:
        self._redis = redis
        self._interval_us = int(1_000_000 / per_second) if per_second > 0 else 0
        self._key = key

    @property
    def interval(self) -> float:
        """Seconds between two turns."""
        return self._interval_us / 1_000_000

    async def pass_now(self) -> float:
        """The gate: 0.0 when the last caller let through went at least one
        interval ago (and this one is now the last); else the seconds left."""
        if self._interval_us == 0:
            return 0.0
        reply = await self._redis.eval(  # type: ignore[misc]
            _GATE, 1, self._key, str(self._interval_us)
        )
        return int(reply) / 1_000_000

    async def reserve(self) -> float:
        """Book the next free instant, however far; returns the seconds until it."""
        [wait] = await self.reserve_within(1, _UNBOUNDED_US / 1_000_000)
        return wait

    async def reserve_within(self, n: int, horizon: float, lead: float = 0.0) -> list[float]:
        """Book up to `n` successive turns that start within `horizon`
        seconds, none sooner than `lead` seconds; returns the seconds until
        each (fewer, or none, when the timeline is booked that far)."""
        if n <= 0:
            return []
        if self._interval_us == 0:
            return [lead] * n
        reply = await self._redis.eval(  # type: ignore[misc]
            _RESERVE,
            1,
            self._key,
            str(self._interval_us),
            str(n),
            str(int(horizon * 1e6)),
            str(int(lead * 1e6)),
        )
        return [int(w) / 1_000_000 for w in reply]

    async def free_within(self, horizon: float, cap: int, lead: float = 0.0) -> int:
        """How many turns (at most `cap`) could still be booked within
        `horizon` seconds, none sooner than `lead`; books nothing."""
        if self._interval_us == 0:
            return cap
        reply = await self._redis.eval(  # type: ignore[misc]
            _FREE,
            1,
            self._key,
            str(self._interval_us),
            str(int(horizon * 1e6)),
            str(int(lead * 1e6)),
        )
        return min(int(reply), cap)
