"""Typed application state keys (aiohttp AppKey): no globals anywhere."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg
from aiohttp import web
from redis.asyncio import Redis

from service.config import Settings
from service.metrics import Metrics

SETTINGS_KEY = web.AppKey("settings", Settings)
POOL_KEY = web.AppKey("pool", asyncpg.Pool)
REDIS_KEY = web.AppKey("redis", Redis)
METRICS_KEY = web.AppKey("metrics", Metrics)
# Aware UTC "now"; tests replace it to travel in time.
Clock = Callable[[], datetime]
CLOCK_KEY: web.AppKey[Clock] = web.AppKey("clock")
