"""Postgres not answering, seen from the web process: one WARNING when an
outage starts, one INFO when it ends, and nothing per request in between.

service.web.errors answers each request that meets the outage with a 503
(service.domain.errors.database_unavailable) and calls `noticed`. The first
call of an outage logs it and starts a probe that asks Postgres every second
until it answers, then says so. The pool needs no restart: asyncpg drops the
connections that died and opens new ones once the server is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

from service.web.keys import POOL_KEY

log = logging.getLogger(__name__)

PROBE_EVERY = 1.0
PROBE_TIMEOUT = 2.0


class DatabaseOutage:
    """Whether Postgres is known not to answer, since when, and the probe
    that watches for its return."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._since: float | None = None
        self._probe: asyncio.Task[None] | None = None

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def noticed(self, exc: BaseException) -> None:
        if self._since is not None:
            return
        self._since = time.monotonic()
        # The type only: a driver's message may quote data.
        log.warning(
            "postgres does not answer (%s): answering 503 until it does",
            type(exc).__name__,
        )
        self._probe = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(PROBE_EVERY)
            try:
                async with asyncio.timeout(PROBE_TIMEOUT):
                    async with self._app[POOL_KEY].acquire() as conn:
                        await conn.fetchval("SELECT 1")
            except Exception:  # noqa: S112 - every failure means "not yet"
                continue
            since, self._since = self._since, None
            log.info(
                "postgres answers again after %.0f s", time.monotonic() - (since or 0.0)
            )
            return

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe


OUTAGE_KEY = web.AppKey("database_outage", DatabaseOutage)


async def _outage(app: web.Application) -> AsyncIterator[None]:
    app[OUTAGE_KEY] = outage = DatabaseOutage(app)
    yield
    await outage.close()


def install(app: web.Application) -> None:
    app.cleanup_ctx.append(_outage)
