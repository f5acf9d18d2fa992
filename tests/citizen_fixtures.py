"""Fixtures of the citizen tests on top of tests/conftest.py (pool, clock, settings).

Imported by tests/integration/test_citizen*.py and
tests/browser/test_citizen_browser.py with `from tests.citizen_fixtures import *`.

live_server   a real listening app (aiohttp AppRunner on 127.0.0.1) for the
              browser, on the seeded test database and the shared fake clock,
              with BASE_URL pointing at itself so that manage links work.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import asyncpg
import pytest
from aiohttp import web

from service.app import create_app
from service.config import Settings

__all__ = ["Clock", "LiveServer", "live_server"]


class Clock(Protocol):
    """The shape of tests/conftest.py's FakeClock."""

    def __call__(self) -> datetime: ...

    def set(self, now: datetime) -> None: ...

    def advance(self, delta: timedelta) -> None: ...


@dataclass
class LiveServer:
    url: str
    pool: asyncpg.Pool
    clock: Clock
    secret_key: str


@pytest.fixture
async def live_server(
    settings: Settings, pool: asyncpg.Pool, clock: Clock
) -> AsyncIterator[LiveServer]:
    # A socket bound before the app starts: no window in which another
    # process could take the port we picked.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    runner = web.AppRunner(create_app(settings.with_(base_url=url), pool=pool, clock=clock))
    await runner.setup()
    await web.SockSite(runner, sock).start()
    try:
        yield LiveServer(url, pool, clock, settings.secret_key)
    finally:
        await runner.cleanup()
        sock.close()
