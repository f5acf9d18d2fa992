"""Rate limits per client address, counted in Redis so that every web process
shares them (GCRA: one key per client and action, holding the instant its
allowance is back; one atomic script call counts every client asked for in
one turn of the event loop).

    await limits.check(request, "book")   raises TooManyRequests (429 with
                                          Retry-After) past the limit
    limits.attempt(request)               the same, for a use case to ask
                                          once it found the form well-formed

A client that sends many requests is counted ahead: when a process asks
Redis for a client whose last count it spent within LEASE_SECONDS, it asks
for twice as many requests as last time (at most LEASE_MOST, and at most
half of what the limit still allows, at least one). Redis counts them all
when it grants them, and the process lets the client's next requests
through on them, without asking, each within LEASE_SECONDS of its grant; a
client counted AHEAD_FROM at a time or more is counted again in the
background once half of its grant is spent, so that its requests seldom
wait for Redis. So every request let through is counted in Redis before it
goes; in any span of time a client gets at most what its limit allows over
that span lengthened by LEASE_SECONDS (on a clock that stands still,
exactly its limit); near its limit it is counted request by request, and
its 429 and Retry-After come from Redis. Requests granted but not made
within the lease are lost to the client: a limit can only come out
stricter, never looser.

The instant comes from the app's clock, so that every process counts on one
timeline (their clocks agree as NTP keeps them) and tests can move it. When
Redis does not answer the request goes through: the limits slow down
scripts, while the invariants (seats, one booking per document, the
household cap) are the database's and hold without Redis.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from service.clock import micros_of
from service.config import Settings
from service.domain import errors
from service.domain.errors import Nn_
from service.domain.limits import ACTIONS, Network, Rate, client_address
from service.web.keys import CLOCK_KEY, REDIS_KEY, SETTINGS_KEY, Clock

log = logging.getLogger(__name__)

# Counted in microseconds (a raised limit such as 999999/1s still counts).
PREFIX = "mawid:limit:us"
# How long a process may hold requests Redis counted ahead for a client,
# and how many at most in one grant.
LEASE_SECONDS = 1.0
LEASE_MOST = 256
# A client with at least this many counted per grant is counted again in
# the background once half of it is spent, so that its requests do not wait.
AHEAD_FROM = 4
# Clients with requests counted ahead, kept per process: past this many all
# are dropped (their requests are lost to them, never let through uncounted).
MAX_LEASES = 10_000

# The counts asked for during one turn of the event loop go to Redis together.
BATCH_MOST = 512

# KEYS: the clients' keys; ARGV, four for each key: now, emission interval
# and burst tolerance, in microseconds, and how many requests are wanted.
# For each key in turn: counts as many as conform now, up to that many and
# at most half of them (at least one), and answers how many it counted;
# else minus the microseconds until one would conform.
_GCRA = """
local answers = {}
for i, key in ipairs(KEYS) do
  local now = tonumber(ARGV[i * 4 - 3])
  local interval = tonumber(ARGV[i * 4 - 2])
  local tolerance = tonumber(ARGV[i * 4 - 1])
  local wanted = tonumber(ARGV[i * 4])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  if tat - now > tolerance then
    answers[i] = now + tolerance - tat
  else
    local room = math.floor((tolerance - (tat - now)) / interval) + 1
    local granted = math.min(wanted, math.max(1, math.floor(room / 2)))
    tat = tat + granted * interval
    redis.call('SET', key, string.format('%.0f', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
    answers[i] = granted
  end
end
return answers
"""

_LEASE_US = int(LEASE_SECONDS * 1_000_000)


@dataclass(slots=True)
class _Held:
    """A client's requests counted in Redis and not yet let through, and what
    Redis last said of it."""

    grants: deque[list[int]] = field(default_factory=deque)  # [at (us), left], oldest first
    size: int = 0  # how many the last grant counted
    last_us: int = 0  # when it was counted
    refused_until_us: int = 0  # Redis refuses the client until then
    counting: asyncio.Future[int | None] | None = None  # a count on its way

    def take(self, now_us: int) -> bool:
        """Let one request through on a grant still within its lease."""
        grants = self.grants
        while grants:
            at, left = grants[0]
            if left > 0 and 0 <= now_us - at <= _LEASE_US:
                grants[0][1] = left - 1
                return True
            grants.popleft()
        return False

    def running_low(self) -> bool:
        """Half of a sizeable grant spent, and no count on its way."""
        return (
            self.size >= AHEAD_FROM
            and self.counting is None
            and sum(left for _, left in self.grants) < self.size // 2
        )

    def wanted(self, now_us: int) -> int:
        # Twice the last grant when it was spent within its lease: a busy client.
        if self.size and 0 <= now_us - self.last_us <= _LEASE_US:
            return min(LEASE_MOST, self.size * 2)
        return 1


class Limiter:
    """One web process's limits: the rates read once from the settings, the
    counting script, and what each client has been counted."""

    def __init__(self, settings: Settings, clock: Clock, redis: Redis) -> None:
        self._rates: dict[str, Rate | None] = {a: settings.rate(a) for a in ACTIONS}
        self.proxies: tuple[Network, ...] = settings.proxies
        self._micros = micros_of(clock)
        # Made where the app's loop runs (a cleanup context): awaited, it
        # answers at once.
        self._passed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._passed.set_result(None)
        self._script: AsyncScript = redis.register_script(_GCRA)
        self._held: dict[str, _Held] = {}
        self._clients: dict[tuple[str | None, tuple[str, ...]], str] = {}
        self._counts: set[asyncio.Future[Any]] = set()
        self._asking: list[tuple[str, tuple[int, int, int, int], asyncio.Future[int]]] = []

    def client(self, peer: str | None, forwarded_for: tuple[str, ...]) -> str:
        """client_address, remembered: parsing addresses costs more than a
        cached page (at most MAX_LEASES remembered, all forgotten past that)."""
        key = (peer, forwarded_for)
        found = self._clients.get(key)
        if found is None:
            if len(self._clients) >= MAX_LEASES:
                self._clients.clear()
            found = self._clients[key] = client_address(peer, list(forwarded_for), self.proxies)
        return found

    def check(self, action: str, client: str) -> Awaitable[None]:
        """Count one `action` for `client`; TooManyRequests past its limit.
        A request let through on its client's grant is answered by a future
        already done: no coroutine on most requests of a busy client."""
        rate = self._rates[action]
        if rate is None:
            return self._passed
        now_us = self._micros()
        key = f"{PREFIX}:{action}:{client}"
        held = self._held.get(key)
        if held is None:
            if len(self._held) >= MAX_LEASES:
                self._held.clear()
            held = self._held[key] = _Held()
        if held.take(now_us):
            if held.running_low():
                self._count(key, rate, held, now_us, used=0)
            return self._passed
        return self._wait(key, rate, held, now_us)

    async def _wait(self, key: str, rate: Rate, held: _Held, now_us: int) -> None:
        while not held.take(now_us):
            if held.counting is None:
                break
            # The client is being counted already: that grant may do.
            await asyncio.shield(held.counting)
        else:
            if held.running_low():
                self._count(key, rate, held, now_us, used=0)
            return
        # Refused by Redis until then: it would refuse again (a client's
        # instant in Redis only moves forward), so the answer is given here.
        if now_us < held.refused_until_us:
            raise too_many(math.ceil((held.refused_until_us - now_us) / 1_000_000))
        answer = await asyncio.shield(self._count(key, rate, held, now_us, used=1))
        if answer is not None and answer <= 0 and not held.take(now_us):
            raise too_many(math.ceil(-answer / 1_000_000))

    def _count(
        self, key: str, rate: Rate, held: _Held, now_us: int, *, used: int
    ) -> asyncio.Future[int | None]:
        """Ask Redis to count the client's next requests, `used` of them
        being let through now; its answer, or None when Redis is away."""
        wanted = held.wanted(now_us)
        interval_us = max(1, int(rate.interval.total_seconds() * 1_000_000))
        tolerance_us = int(rate.period.total_seconds() * 1_000_000) - interval_us

        asked = self._ask(key, (now_us, interval_us, tolerance_us, wanted))

        async def count() -> int | None:
            try:
                answer = await asked
            except (RedisError, OSError) as exc:
                # /readyz reports Redis down; one line per request would bury the log.
                log.info("rate limit not counted, Redis unavailable: %s", type(exc).__name__)
                return None
            finally:
                if held.counting is counting:
                    held.counting = None
            if answer > 0:
                held.size, held.last_us = answer, now_us
                if answer > used:
                    held.grants.append([now_us, answer - used])
            else:
                held.refused_until_us = now_us - answer
            return answer

        counting = held.counting = asyncio.ensure_future(count())
        self._counts.add(counting)
        counting.add_done_callback(self._counts.discard)
        return counting

    def _ask(self, key: str, args: tuple[int, int, int, int]) -> asyncio.Future[int]:
        """Redis's answer for `key`, asked with the others of this turn of
        the event loop in one call of the script."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[int] = loop.create_future()
        self._asking.append((key, args, answer))
        if len(self._asking) == 1:
            loop.call_soon(self._send)
        elif len(self._asking) >= BATCH_MOST:
            self._send()
        return answer

    def _send(self) -> None:
        asking, self._asking = self._asking, []
        if not asking:
            return

        async def send() -> None:
            try:
                answers = await self._script(
                    keys=[key for key, _, _ in asking],
                    args=[value for _, args, _ in asking for value in args],
                )
            except (RedisError, OSError) as exc:
                for _, _, answer in asking:
                    if not answer.done():
                        answer.set_exception(exc)
                return
            for (_, _, answer), value in zip(asking, answers, strict=True):
                if not answer.done():
                    answer.set_result(int(value))

        sending = asyncio.ensure_future(send())
        self._counts.add(sending)
        sending.add_done_callback(self._counts.discard)

    async def close(self) -> None:
        for counting in list(self._counts):
            counting.cancel()
        await asyncio.gather(*self._counts, return_exceptions=True)


LIMITER_KEY = web.AppKey("limiter", Limiter)


async def _limiter(app: web.Application) -> AsyncIterator[None]:
    app[LIMITER_KEY] = limiter = Limiter(app[SETTINGS_KEY], app[CLOCK_KEY], app[REDIS_KEY])
    yield
    await limiter.close()


def install(app: web.Application) -> None:
    """After the Redis client's cleanup context."""
    app.cleanup_ctx.append(_limiter)


def client_of(request: web.Request) -> str:
    """The address the request counts under (X-Forwarded-For only behind a
    trusted proxy; see service.domain.limits.client_address)."""
    return request.app[LIMITER_KEY].client(
        request.remote, tuple(request.headers.getall("X-Forwarded-For", ()))
    )


def check(request: web.Request, action: str) -> Awaitable[None]:
    """Count one `action` for the request's client (awaited); 429 past its limit."""
    return request.app[LIMITER_KEY].check(action, client_of(request))


def attempt(request: web.Request) -> Callable[[], Awaitable[None]]:
    """A form that asks for a seat or a place counted as a booking attempt
    once its use case finds it well-formed (bookings.Admit): a form sent
    back for a typing mistake costs what a read costs, so that a family
    behind one address is not locked out by its typos."""
    return functools.partial(check, request, "book")


def too_many(retry_after: int) -> errors.TooManyRequests:
    minutes = max(1, math.ceil(retry_after / 60))
    return errors.TooManyRequests(
        "rate_limited",
        Nn_(
            "Too many requests from your connection. Please try again in %(minutes)s minute.",
            "Too many requests from your connection. Please try again in %(minutes)s minutes.",
        ),
        retry_after=retry_after,
        params={"minutes": str(minutes)},
        count=minutes,
    )
