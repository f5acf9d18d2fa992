"""Fixtures for the citizen pages: a seeded database, a fake clock, the app.

Imported by tests/integration/test_citizen*.py and tests/browser/conftest.py
with `from tests.citizen_fixtures import *`. The names are the lead's planned
shared fixtures (pool, clock, settings, app_client); imported ones take
precedence in the modules that import them, so both can coexist.

The demo offices are seeded once per session into a template database, with
slots generated from FIXED_NOW, and each test gets a file-level copy.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from service.app import create_app
from service.config import Settings
from service.db import create_pool

FIXED_NOW = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)
SECRET_KEY = "citizen-tests-secret-key"

__all__ = [
    "FIXED_NOW",
    "FakeClock",
    "LiveServer",
    "app_client",
    "citizen_app",
    "clock",
    "live_server",
    "pool",
    "seeded_dsn",
    "seeded_template",
    "settings",
]


class FakeClock:
    """A callable 'now' for the app that tests can move."""

    def __init__(self, now: datetime = FIXED_NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class LiveServer:
    """A running app for browser tests (see tests/browser/conftest.py)."""

    url: str
    pool: asyncpg.Pool
    clock: FakeClock
    secret_key: str


def _with_database(dsn: str, database: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path="/" + database))


@pytest.fixture(scope="session")
async def seeded_template(pg_dsn: str, template_db: str) -> AsyncIterator[str]:
    from service.seed import seed_demo

    name = f"citizen_tpl_{os.getpid()}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(pg_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(_with_database(pg_dsn, name))
    try:
        await conn.execute("SET TIME ZONE 'UTC'")
        await seed_demo(conn, FIXED_NOW, 84)
    finally:
        await conn.close()
    try:
        yield name
    finally:
        admin = await asyncpg.connect(pg_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def seeded_dsn(pg_dsn: str, seeded_template: str) -> AsyncIterator[str]:
    name = f"citizen_{os.getpid()}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(pg_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{seeded_template}"')
    finally:
        await admin.close()
    try:
        yield _with_database(pg_dsn, name)
    finally:
        admin = await asyncpg.connect(pg_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def pool(seeded_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    created = await create_pool(seeded_dsn, min_size=1, max_size=10)
    try:
        yield created
    finally:
        await created.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return Settings(env="test", secret_key=SECRET_KEY, redis_url=redis_url)


@pytest.fixture
def citizen_app(settings: Settings, pool: asyncpg.Pool, clock: FakeClock) -> web.Application:
    return create_app(settings, pool=pool, clock=clock)


@pytest.fixture
async def app_client(
    citizen_app: web.Application,
) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    client: TestClient = TestClient(TestServer(citizen_app))  # type: ignore[type-arg]
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def live_server(
    pool: asyncpg.Pool, clock: FakeClock, redis_url: str
) -> AsyncIterator[LiveServer]:
    # A socket bound before the app starts: no window in which another
    # process could take the port we picked.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = Settings(env="test", secret_key=SECRET_KEY, redis_url=redis_url, base_url=url)
    runner = web.AppRunner(create_app(settings, pool=pool, clock=clock))
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield LiveServer(url, pool, clock, SECRET_KEY)
    finally:
        await runner.cleanup()
        sock.close()
