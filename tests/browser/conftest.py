"""A live Mawid server and a headless Debian Chromium driven by Playwright.

The server is the real app (create_app) on 127.0.0.1 with the seeded test
database and the fake clock of tests/citizen_fixtures.py. Chromium is the
distribution's /usr/bin/chromium (`apt-get install chromium`); `playwright
install` is never needed. axe-core comes from tests/browser/node_modules
(`npm ci --prefix tests/browser`).
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web

from service.app import create_app
from service.config import Settings
from tests.citizen_fixtures import *  # noqa: F403
from tests.citizen_fixtures import SECRET_KEY, FakeClock, LiveServer

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE.parent / "artifacts"
AXE_JS = HERE / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE_JS.exists():
        pytest.fail(f"{AXE_JS} missing: run `npm ci --prefix tests/browser`")
    return AXE_JS.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def chromium() -> str:
    found = shutil.which(CHROMIUM)
    if found is None:
        pytest.fail(f"{CHROMIUM} missing: apt-get install chromium")
    return found


@pytest.fixture(scope="session")
async def browser(chromium: str) -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


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


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
