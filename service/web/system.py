"""Health, readiness and the OpenAPI document."""

from __future__ import annotations

import asyncio

from aiohttp import web

from service.web.keys import POOL_KEY, REDIS_KEY
from service.web.openapi import openapi_document

routes = web.RouteTableDef()

_PROBE_TIMEOUT = 2.0


_OK = b'{"status": "ok"}'


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    # Bytes made once: load balancers ask this every second or so, per process.
    return web.Response(body=_OK, content_type="application/json")


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    failed: list[str] = []
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT):
            async with request.app[POOL_KEY].acquire() as conn:
                await conn.fetchval("SELECT 1")
    except Exception:
        failed.append("postgres")
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT):
            await request.app[REDIS_KEY].ping()
    except Exception:
        failed.append("redis")
    if failed:
        return web.json_response({"status": "unavailable", "failed": failed}, status=503)
    return web.json_response({"status": "ok"})


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())
