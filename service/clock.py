"""The product's "now": the real clock, unless a test starts it elsewhere."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from service.config import Settings, parse_instant

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def micros_of(clock: Clock) -> Callable[[], int]:
    """`clock`'s instant in microseconds since the epoch; the real clock's
    without making a datetime (the rate limits read it on every request)."""
    if clock is utc_now:
        return lambda: time.time_ns() // 1000
    return lambda: int(clock().timestamp() * 1_000_000)


def clock_for(settings: Settings) -> Clock:
    """The real clock; outside production with MAWID_CLOCK_START set, a clock
    that reads that instant now and runs on from it at real speed.

    It puts a web server or worker that the tests start as a child process on
    their fixed clock. Running, not frozen: a worker counts on time passing
    (a new job id per queueing, leases that run out).
    """
    if not settings.clock_start or settings.is_production:
        return utc_now
    start = parse_instant("MAWID_CLOCK_START", settings.clock_start)
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)
