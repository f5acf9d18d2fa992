"""aiohttp application factory: middlewares, routes, cleanup contexts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime

import asyncpg
from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

from service.clock import clock_for
from service.config import Settings
from service.db import create_pool
from service.web import (
    accesslog,
    api,
    citizen,
    devmessages,
    front,
    limits,
    observe,
    office,
    outage,
    readcache,
    system,
    templating,
    webhooks,
)
from service.web import draw as draw_pages
from service.web import feedback as feedback_pages
from service.web import mobile as mobile_pages
from service.web import mobile_alerts as alert_pages
from service.web import waitlist as waitlist_pages
from service.web.keys import CLOCK_KEY, POOL_KEY, REDIS_KEY, SETTINGS_KEY
from service.web.office import alerts as login_alerts
from service.web.office import callboard

MAX_BODY_BYTES = 64 * 1024
# Redis connections per web process, at most (a request waits up to 2 s for one).
REDIS_CONNECTIONS = 32


def create_app(
    settings: Settings,
    *,
    pool: asyncpg.Pool | None = None,
    clock: Callable[[], datetime] | None = None,
) -> web.Application:
    """Build the app. A pool passed in is borrowed (the caller closes it);
    the clock is the settings' (service.clock) unless one is passed in."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[front.front])
    app[SETTINGS_KEY] = settings
    app[CLOCK_KEY] = clock or clock_for(settings)
    accesslog.install(app)
    observe.install(app)
    templating.setup(app)
    outage.install(app)
    login_alerts.install(app)
    if pool is not None:
        app[POOL_KEY] = pool
    else:
        app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_redis)
    limits.install(app)
    readcache.install(app)
    app.add_routes(system.routes)
    app.add_routes(api.routes)
    app.add_routes(citizen.routes)
    # The alerts' form before /mobile-days/{id}, which would take its address.
    app.add_routes(alert_pages.routes)
    app.add_routes(mobile_pages.routes)
    app.add_routes(draw_pages.routes)
    app.add_routes(feedback_pages.routes)
    app.add_routes(waitlist_pages.routes)
    app.add_routes(webhooks.routes)
    if settings.is_dev:
        app.add_routes(devmessages.routes)
    app.add_routes(office.routes)
    callboard.setup(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    pool = await create_pool(
        settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
    )
    app[POOL_KEY] = pool
    yield
    await pool.close()


async def _redis(app: web.Application) -> AsyncIterator[None]:
    # Connecting is lazy: the site serves bookings while Redis is down, since
    # the outbox in Postgres is the only copy that matters.
    # A blocking pool: the plain one checks each connection it hands out
    # while holding its one lock, and that check waits for the next turn of
    # the event loop, so that under a rush every Redis command of the process
    # queued behind the others, one per turn.
    pool = BlockingConnectionPool.from_url(
        app[SETTINGS_KEY].redis_url or "redis://127.0.0.1:6379",
        max_connections=REDIS_CONNECTIONS,
        timeout=2,
        socket_connect_timeout=1,
        socket_timeout=2,
    )
    client = Redis(connection_pool=pool)
    app[REDIS_KEY] = client
    yield
    await client.aclose()
    await pool.aclose()
