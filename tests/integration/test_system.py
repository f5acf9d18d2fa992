"""Health, readiness, and the OpenAPI document matching the routes."""

from __future__ import annotations

import logging
import re
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from service.app import create_app
from service.config import Settings
from service.logs import REQUEST_ID
from service.web.accesslog import SafeAccessLogger, answered_requests, runner_options
from service.web.keys import METRICS_KEY
from tests.clock import FakeClock

Client = TestClient  # type: ignore[type-arg]


async def test_healthz_and_readyz(app_client: Client) -> None:
    assert (await app_client.get("/healthz")).status == 200
    resp = await app_client.get("/readyz")
    assert resp.status == 200, await resp.text()


async def test_readyz_names_redis_when_it_is_down(
    settings: Settings, pool: asyncpg.Pool, clock: Any
) -> None:
    app = create_app(settings.with_(redis_url="redis://127.0.0.1:1/0"), pool=pool, clock=clock)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/readyz")
        assert resp.status == 503
        assert (await resp.json())["failed"] == ["redis"]


async def test_readyz_names_postgres_when_it_is_down(
    settings: Settings, db_dsn: str, clock: Any
) -> None:
    from service.db import create_pool

    pool = await create_pool(db_dsn, min_size=1, max_size=1)
    await pool.close()  # a pool that cannot give a connection, as when Postgres is gone
    app = create_app(settings, pool=pool, clock=clock)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/readyz")
        assert resp.status == 503
        assert (await resp.json())["failed"] == ["postgres"]


async def test_openapi_describes_every_api_route(app_client: Client) -> None:
    resp = await app_client.get("/api/openapi.json")
    document = await resp.json()
    assert document["openapi"].startswith("3.")
    described = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    served = set()
    for route in app_client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path and path.startswith("/api/v1/") and route.method != "HEAD":
            served.add((route.method, path))
    assert served <= described, served - described
    # Every $ref points at a schema that exists.
    schemas = document["components"]["schemas"]

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(document):
        assert ref.removeprefix("#/components/schemas/") in schemas


async def test_unknown_api_path_is_a_json_404(app_client: Client) -> None:
    resp = await app_client.get("/api/v1/nothing-here", headers={"Accept-Language": "en"})
    assert resp.status == 404
    assert (await resp.json())["error"] == "not_found"


def access_lines(caplog: pytest.LogCaptureFixture, name: str = "aiohttp.access") -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == name]


async def test_access_log_names_routes_not_paths(
    app_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        resp = await app_client.get("/api/v1/bookings/PAR-ABCDEF?email=a@b.c")
        assert resp.status in (401, 404)
        assert access_lines(caplog) == [], "kept for its batch"
        answered_requests(app_client.app).flush()
    [line] = access_lines(caplog)
    assert re.fullmatch(rf"GET /api/v1/bookings/\{{reference\}} {resp.status} [\d.]+ms", line), line


async def test_aiohttp_writes_only_the_requests_the_app_never_saw(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unread = make_mocked_request("GET", "/b/PAR-ABCDEF/token")
    unread._match_info = None  # never routed, as a line aiohttp could not read
    before = REQUEST_ID.set(None)
    try:
        with caplog.at_level(logging.INFO, logger="test.access"):
            logger = logging.getLogger("test.access")
            SafeAccessLogger(logger, "").log(unread, web.Response(status=400), 0.002)
            assert access_lines(caplog, "test.access") == ["GET - 400 2.0ms"], "unrouted, at once"
            # A request the middleware saw (it set the id) is the app's to write.
            REQUEST_ID.set("seen-by-the-app")
            SafeAccessLogger(logger, "").log(unread, web.Response(status=200), 0.002)
            assert access_lines(caplog, "test.access") == ["GET - 400 2.0ms"]
    finally:
        REQUEST_ID.reset(before)


async def test_a_stopping_app_counts_and_writes_the_answers_that_wait(
    settings: Settings, pool: asyncpg.Pool, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings, pool=pool, clock=clock)
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        server = TestServer(app)
        await server.start_server(**runner_options())
        async with TestClient(server) as client:
            assert (await client.get("/healthz")).status == 200
            assert access_lines(caplog) == [], "kept for its batch"
        # The app has stopped: nothing waits for a timer that will not come.
        assert [line for line in access_lines(caplog) if line.startswith("GET /healthz 200 ")]
    counted = app[METRICS_KEY].exposition().decode()
    healthz = 'mawid_http_requests_total{method="GET",route="/healthz",status="200"}'
    assert f"{healthz} 1.0" in counted
