"""`/metrics`: the web's, and the worker's own small server (`metrics_app`).
Requests are counted by service.web.front."""

from __future__ import annotations

import hmac
from datetime import datetime

import asyncpg
from aiohttp import web

from service.config import Settings
from service.metrics import CONTENT_TYPE, Metrics
from service.store import outbox
from service.web import system
from service.web.accesslog import ANSWERED_KEY
from service.web.keys import CLOCK_KEY, METRICS_KEY, POOL_KEY, REDIS_KEY, SETTINGS_KEY, Clock

# A scrape waits this long for Postgres at most; the process's own counters
# are still answered when it does not.
_OUTBOX_PROBE_TIMEOUT = 2.0


def install(app: web.Application, metrics: Metrics | None = None) -> None:
    app[METRICS_KEY] = metrics or Metrics()
    app.router.add_get("/metrics", metrics_endpoint)


def allowed(request: web.Request, settings: Settings, *, open_without_token: bool) -> bool:
    if settings.metrics_token:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {settings.metrics_token}".encode())
    return open_without_token


async def metrics_endpoint(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    # Without a token the web's /metrics is for dev and tests only: in
    # production the public port must not show it (the worker's own port,
    # on an internal address, is another matter: `metrics_app`).
    open_without_token = request.app.get(_OPEN_KEY, not settings.is_production)
    if not allowed(request, settings, open_without_token=open_without_token):
        raise web.HTTPNotFound()
    metrics = request.app[METRICS_KEY]
    answered = request.app.get(ANSWERED_KEY)
    if answered is not None:
        # This process's answers of the last moment, counted now.
        answered.flush()
    failed = await system.failing(request.app)
    for part in ("postgres", "redis") if REDIS_KEY in request.app else ("postgres",):
        metrics.ready.labels(part).set(0 if part in failed else 1)
    if "postgres" not in failed:
        await refresh_outbox(metrics, request.app[POOL_KEY], request.app[CLOCK_KEY]())
    return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})


async def refresh_outbox(metrics: Metrics, pool: asyncpg.Pool, now: datetime) -> None:
    """Rows waiting and the outbox lag, read from Postgres at scrape time
    (the same for every process: dashboards take the max)."""
    try:
        async with pool.acquire(timeout=_OUTBOX_PROBE_TIMEOUT) as conn:
            state = await outbox.backlog(conn, now)
    except Exception:
        # Postgres away: readiness says so; the process's counters still go out.
        return
    metrics.outbox_rows.clear()
    for (channel, status), count in state.rows.items():
        metrics.outbox_rows.labels(channel, status).set(count)
    metrics.outbox_lag.set(state.lag_seconds)


_OPEN_KEY = web.AppKey("metrics_open", bool)


def metrics_app(
    settings: Settings, metrics: Metrics, pool: asyncpg.Pool, clock: Clock
) -> web.Application:
    """The worker's /metrics, on METRICS_HOST:METRICS_PORT: open there unless
    METRICS_TOKEN is set, since its address is meant to be internal."""
    app = web.Application()
    app[SETTINGS_KEY] = settings
    app[METRICS_KEY] = metrics
    app[POOL_KEY] = pool
    app[CLOCK_KEY] = clock
    app[_OPEN_KEY] = True
    app.router.add_get("/metrics", metrics_endpoint)
    app.router.add_get("/healthz", system.healthz)
    return app
