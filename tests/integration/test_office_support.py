"""Fixtures for the office tests, imported by each test_office_* module.

They build on tests/conftest.py's `db_dsn`. The shared app fixtures there may
differ in name or arrive later, so the office tests carry their own small
ones, prefixed `office_` to avoid clashing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.app import create_app
from service.config import Settings
from service.db import create_pool
from service.seed import seed_demo
from service.staff import seed_demo_staff

START = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)  # a Monday


class FakeClock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> None:
        self.now = now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def office_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def office_settings(db_dsn: str) -> Settings:
    return Settings(env="test", database_url=db_dsn, secret_key="office-test-secret")


@pytest.fixture
async def office_pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(db_dsn, min_size=1, max_size=10)
    async with pool.acquire() as conn:
        # The shared template may or may not carry the demo data yet.
        if not await conn.fetchval("SELECT count(*) FROM offices"):
            await seed_demo(conn, START, 84)
        await seed_demo_staff(conn, START)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def office_client(
    office_settings: Settings, office_pool: asyncpg.Pool, office_clock: FakeClock
) -> AsyncIterator[TestClient[object, object]]:
    app = create_app(office_settings, pool=office_pool, clock=office_clock)
    client: TestClient[object, object] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@dataclass(frozen=True)
class Demo:
    email: str
    password: str


ADMIN = Demo("admin@mawid.test", "dev-admin-password")
MANAGER = Demo("manager@mawid.test", "dev-manager-password")
AGENT = Demo("agent@mawid.test", "dev-agent-password")
