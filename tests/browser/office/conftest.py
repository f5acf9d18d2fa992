"""A live server and a headless Debian Chromium for the office browser tests.

Self-contained on purpose (the citizen browser fixtures may change shape):
the database, clock and demo accounts come from the office integration
fixtures; Chromium is /usr/bin/chromium, never `playwright install`.
"""

from __future__ import annotations

import os
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

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


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


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install chromium")
    return CHROMIUM


@pytest.fixture
async def office_page(office_live: OfficeLive, chromium_path: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        context = await chromium.new_context(
            base_url=office_live.url, viewport={"width": 1280, "height": 900}
        )
        try:
            yield await context.new_page()
        finally:
            await context.close()
            await chromium.close()


@pytest.fixture(scope="session")
def office_artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
