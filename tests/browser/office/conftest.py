"""A live server and a page for the office browser tests.

The database, clock and demo accounts come from the office integration
fixtures; the browser itself (Debian's Chromium) and the artifacts directory
from tests/browser/conftest.py.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from service.app import create_app
from service.config import Settings
from tests.office_fixtures import FakeClock


@dataclass(frozen=True)
class OfficeLive:
    url: str
    pool: asyncpg.Pool
    clock: FakeClock


@pytest.fixture
async def office_live(
    office_pool: asyncpg.Pool, office_clock: FakeClock, db_dsn: str
) -> AsyncIterator[OfficeLive]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = Settings(
        env="test", database_url=db_dsn, secret_key="office-test-secret", base_url=url
    )
    runner = web.AppRunner(create_app(settings, pool=office_pool, clock=office_clock))
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield OfficeLive(url, office_pool, office_clock)
    finally:
        await runner.cleanup()
        sock.close()


@pytest.fixture
async def office_page(office_live: OfficeLive, browser: Any) -> AsyncIterator[Any]:
    # English: the source text the office browser tests read (with no
    # language at all the office pages are in French).
    context = await browser.new_context(
        base_url=office_live.url, viewport={"width": 1280, "height": 900}, locale="en-GB"
    )
    try:
        yield await context.new_page()
    finally:
        await context.close()


@pytest.fixture(scope="session")
def office_artifacts(artifacts: Path) -> Path:
    return artifacts
