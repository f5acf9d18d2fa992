"""The product's "now": the real clock, unless a test starts it elsewhere."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from service.config import Settings, parse_instant

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


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
