"""Fixtures and helpers for the office tests (a plugin of tests/conftest.py)."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from service import bookings
from service.app import create_app
from service.config import Settings
from service.domain.models import Booking
from service.domain.staff import Role
from service.domain.validation import RawDetails
from service.office.accounts import add_staff
from tests.clock import FIXED_NOW, FakeClock

START = FIXED_NOW  # a Monday


# Aliases of the shared fixtures (tests/conftest.py): the template database
# already carries the demo offices and staff accounts.
@pytest.fixture
def office_clock(clock: FakeClock) -> FakeClock:
    return clock


@pytest.fixture
def office_settings(settings: Settings) -> Settings:
    return settings


@pytest.fixture
def office_pool(pool: asyncpg.Pool) -> asyncpg.Pool:
    return pool


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


class Browser:
    """A cookie jar of its own against the test server, like one browser."""

    def __init__(self, server: TestServer) -> None:
        self.server = server
        self.session = aiohttp.ClientSession(
            base_url=str(server.make_url("/")),
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            # The office pages follow the reader's language (French when none
            # is chosen); these tests read the English source text.
            headers={"Accept-Language": "en"},
        )
        self.csrf = ""

    async def close(self) -> None:
        await self.session.close()

    async def fetch_csrf(self) -> str:
        async with self.session.get("/office/login") as r:
            page = await r.text()
        found = re.search(r'name="_csrf" value="([0-9a-f]+)"', page)
        assert found, page
        self.csrf = found[1]
        return self.csrf

    async def login(self, who: Demo) -> aiohttp.ClientResponse:
        await self.fetch_csrf()
        r = await self.session.post(
            "/office/login",
            data={"email": who.email, "password": who.password, "_csrf": self.csrf},
            allow_redirects=False,
        )
        await r.read()
        return r

    async def post_form(
        self, path: str, data: dict[str, str] | None = None, csrf: bool = True
    ) -> aiohttp.ClientResponse:
        body = dict(data or {})
        if csrf:
            body["_csrf"] = self.csrf
        r = await self.session.post(path, data=body, allow_redirects=False)
        await r.read()
        return r

    async def get(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        kwargs.setdefault("allow_redirects", False)
        r = await self.session.get(path, **kwargs)
        await r.read()
        return r


@pytest.fixture
async def office_server(
    office_settings: Settings, office_pool: asyncpg.Pool, office_clock: FakeClock
) -> AsyncIterator[TestServer]:
    server = TestServer(create_app(office_settings, pool=office_pool, clock=office_clock))
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def browsers(office_server: TestServer) -> AsyncIterator[Callable[[], Browser]]:
    opened: list[Browser] = []

    def make() -> Browser:
        browser = Browser(office_server)
        opened.append(browser)
        return browser

    try:
        yield make
    finally:
        for browser in opened:
            await browser.close()


async def free_slot(
    pool: asyncpg.Pool, office: str, service: str, after: datetime, nth: int = 0
) -> asyncpg.Record:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            """SELECT * FROM slots WHERE office_id = $1 AND service_id = $2
                 AND starts_at > $3 AND taken < capacity
               ORDER BY starts_at OFFSET $4 LIMIT 1""",
            office,
            service,
            after,
            nth,
        )
    assert row is not None
    return row


async def make_booking(
    pool: asyncpg.Pool,
    office: str,
    service: str,
    *,
    now: datetime = START,
    after: datetime | None = None,
    nth: int = 0,
    name: str = "Amina El Idrissi",
    phone: str = "+212612345678",
    document: str | None = None,
) -> Booking:
    slot = await free_slot(pool, office, service, after or now + timedelta(hours=3), nth)
    booked = await bookings.book(
        pool,
        slot_id=slot["id"],
        service_id=service,
        details=RawDetails(
            name=name,
            phone=phone,
            language="fr",
            # Random, so that bookings never trip the one-per-document rule.
            document_number=document or f"ZX{secrets.randbelow(10**8):08d}",
        ),
        secret_key="office-test-secret",
        now=now,
    )
    return booked.booking


async def add_account(pool: asyncpg.Pool, email: str, role: Role, offices: list[str]) -> Demo:
    async with pool.acquire() as conn:
        created = await add_staff(conn, email, role, offices, START)
    return Demo(email, created.password)
