"""Rate limits per client address, counted in Redis so that every web process
shares them (GCRA: one key per client and action, holding the instant its
allowance is back; one atomic script per count).

    await limits.check(request, "book")   raises TooManyRequests (429 with
                                          Retry-After) past the limit

A client that sends many requests is counted ahead: when a process asks
Redis for a client whose last count it spent within LEASE_SECONDS, it asks
for twice as many requests as last time (at most LEASE_MOST, and at most
half of what the limit still allows, at least one). Redis counts them all
when it grants them, and the process lets the client's next requests
through on them, without asking, for at most LEASE_SECONDS after the grant.
So every request let through is counted in Redis before it goes; in any
span of time a client gets at most what its limit allows over that span
lengthened by LEASE_SECONDS (on a clock that stands still, exactly its
limit); near its limit it is counted request by request, and its 429 and
Retry-After come from Redis. Requests granted but not made within the lease
are lost to the client: a limit can only come out stricter, never looser.

The instant comes from the app's clock, so that every process counts on one
timeline (their clocks agree as NTP keeps them) and tests can move it. When
Redis does not answer the request goes through: the limits slow down
scripts, while the invariants (seats, one booking per document, the
household cap) are the database's and hold without Redis.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from service.config import Settings
from service.domain import errors
from service.domain.errors import N_
from service.domain.limits import ACTIONS, Network, Rate, client_address
from service.web.keys import CLOCK_KEY, REDIS_KEY, SETTINGS_KEY, Clock

log = logging.getLogger(__name__)

PREFIX = "mawid:limit"
# How long a process may hold requests Redis counted ahead for a client,
# and how many at most.
LEASE_SECONDS = 1.0
LEASE_MOST = 32
# Clients with a lease kept per process: past this many all are dropped
# (their requests are lost to them, never let through uncounted).
MAX_LEASES = 10_000

# KEYS[1] the client's key; ARGV: now, emission interval and burst
# tolerance, in milliseconds, and how many requests are wanted. Counts as
# many as conform now, up to that many and at most half of them (at least
# one), and returns how many it counted; else minus the milliseconds until
# one would conform.
_GCRA = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local wanted = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - now > tolerance then
  return now + tolerance - tat
end
local room = math.floor((tolerance - (tat - now)) / interval) + 1
local granted = math.min(wanted, math.max(1, math.floor(room / 2)))
tat = tat + granted * interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.max(tat - now, 1) + 1000)
return granted
"""


@dataclass(slots=True)
class _Lease:
    at_ms: int  # when Redis counted the oldest requests still held
    left: int  # requests counted and not yet let through
    size: int  # how many the last grant counted


class Limiter:
    """One web process's limits: the rates read once from the settings, the
    counting script, and the requests counted ahead per client."""

    def __init__(self, settings: Settings, clock: Clock, redis: Redis) -> None:
        self._rates: dict[str, Rate | None] = {a: settings.rate(a) for a in ACTIONS}
        self.proxies: tuple[Network, ...] = settings.proxies
        self._clock = clock
        self._script: AsyncScript = redis.register_script(_GCRA)
        self._leases: dict[str, _Lease] = {}

    async def check(self, action: str, client: str) -> None:
        """Count one `action` for `client`; TooManyRequests past its limit."""
        rate = self._rates[action]
        if rate is None:
            return
        now_ms = int(self._clock().timestamp() * 1000)
        key = f"{PREFIX}:{action}:{client}"
        held = self._leases.get(key)
        wanted = 1
        if held is not None and 0 <= now_ms - held.at_ms <= LEASE_SECONDS * 1000:
            if held.left > 0:
                held.left -= 1
                return
            wanted = min(LEASE_MOST, held.size * 2)
        interval_ms = int(rate.interval.total_seconds() * 1000)
        tolerance_ms = int(rate.period.total_seconds() * 1000) - interval_ms
        try:
            answer = int(
                await self._script(
                    keys=[key], args=[now_ms, interval_ms, tolerance_ms, wanted]
                )
            )
        except (RedisError, OSError) as exc:
            # /readyz reports Redis down; one line per request would bury the log.
            log.info("rate limit not counted, Redis unavailable: %s", type(exc).__name__)
            return
        if answer <= 0:
            raise too_many(math.ceil(-answer / 1000))
        self._keep(key, now_ms, answer)

    def _keep(self, key: str, now_ms: int, granted: int) -> None:
        # Another request of the client may have been granted some meanwhile:
        # the requests are pooled, and expire with the oldest.
        held = self._leases.get(key)
        if held is not None and 0 <= now_ms - held.at_ms <= LEASE_SECONDS * 1000:
            held.left += granted - 1
            held.size = max(held.size, granted)
            return
        if len(self._leases) >= MAX_LEASES:
            self._leases.clear()
        self._leases[key] = _Lease(now_ms, granted - 1, granted)


LIMITER_KEY = web.AppKey("limiter", Limiter)


async def _limiter(app: web.Application) -> AsyncIterator[None]:
    app[LIMITER_KEY] = Limiter(app[SETTINGS_KEY], app[CLOCK_KEY], app[REDIS_KEY])
    yield


def install(app: web.Application) -> None:
    """After the Redis client's cleanup context."""
    app.cleanup_ctx.append(_limiter)


def client_of(request: web.Request) -> str:
    """The address the request counts under (X-Forwarded-For only behind a
    trusted proxy; see service.domain.limits.client_address)."""
    return client_address(
        request.remote,
        request.headers.getall("X-Forwarded-For", []),
        request.app[LIMITER_KEY].proxies,
    )


async def check(request: web.Request, action: str) -> None:
    """Count one `action` for the request's client; 429 past its limit."""
    await request.app[LIMITER_KEY].check(action, client_of(request))


def too_many(retry_after: int) -> errors.TooManyRequests:
    minutes = max(1, math.ceil(retry_after / 60))
    return errors.TooManyRequests(
        "rate_limited",
        N_("Too many requests from your connection. Please try again in %(minutes)s min."),
        retry_after=retry_after,
        params={"minutes": str(minutes)},
    )
