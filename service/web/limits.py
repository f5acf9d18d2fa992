"""Rate limits per client address, counted in Redis so that every web process
shares them (GCRA: one key per client and action, holding the instant its
allowance is back; one atomic script per request).

    await limits.check(request, "book")   raises TooManyRequests (429 with
                                          Retry-After) past the limit

The instant comes from the app's clock, so that every process counts on one
timeline (their clocks agree as NTP keeps them) and tests can move it. When
Redis does not answer the request goes through: the limits slow down
scripts, while the invariants (seats, one booking per document, the
household cap) are the database's and hold without Redis.
"""

from __future__ import annotations

import logging
import math

from aiohttp import web
from redis.exceptions import RedisError

from service.domain import errors
from service.domain.errors import N_
from service.domain.limits import client_address
from service.web.keys import CLOCK_KEY, REDIS_KEY, SETTINGS_KEY

log = logging.getLogger(__name__)

PREFIX = "mawid:limit"

# KEYS[1] the client's key; ARGV: now, emission interval and burst
# tolerance, in milliseconds. Returns 0 when the request conforms (and
# counts it), else the milliseconds until it would.
_GCRA = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - now > tolerance then
  return tat - tolerance - now
end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.max(tat - now, 1) + 1000)
return 0
"""


def client_of(request: web.Request) -> str:
    """The address the request counts under (X-Forwarded-For only behind a
    trusted proxy; see service.domain.limits.client_address)."""
    return client_address(
        request.remote,
        request.headers.getall("X-Forwarded-For", []),
        request.app[SETTINGS_KEY].proxies,
    )


async def check(request: web.Request, action: str) -> None:
    """Count one `action` for the request's client; 429 past its limit."""
    rate = request.app[SETTINGS_KEY].rate(action)
    if rate is None:
        return
    now_ms = int(request.app[CLOCK_KEY]().timestamp() * 1000)
    interval_ms = int(rate.interval.total_seconds() * 1000)
    tolerance_ms = int(rate.period.total_seconds() * 1000) - interval_ms
    key = f"{PREFIX}:{action}:{client_of(request)}"
    try:
        wait_ms = int(
            await request.app[REDIS_KEY].eval(  # type: ignore[misc]
                _GCRA, 1, key, str(now_ms), str(interval_ms), str(tolerance_ms)
            )
        )
    except (RedisError, OSError) as exc:
        # /readyz reports Redis down; one line per request would bury the log.
        log.info("rate limit not counted, Redis unavailable: %s", type(exc).__name__)
        return
    if wait_ms > 0:
        raise too_many(math.ceil(wait_ms / 1000))


def too_many(retry_after: int) -> errors.TooManyRequests:
    minutes = max(1, math.ceil(retry_after / 60))
    return errors.TooManyRequests(
        "rate_limited",
        N_("Too many requests from your connection. Please try again in %(minutes)s min."),
        retry_after=retry_after,
        params={"minutes": str(minutes)},
    )
