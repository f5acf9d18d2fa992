"""Postgres going away while the web app runs: every request that needs it is
a 503 with Retry-After and a message in the reader's language (a page for the
citizen and office pages), one WARNING line for the whole outage, nothing
written, and bookings work again once Postgres answers, without a restart.

The app reaches the session's Postgres through a relay (tests/tcpproxy.py)
that the test cuts: to the app that is a server gone (live connections reset,
new ones refused), while the shared server other tests use keeps running.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.app import create_app
from service.config import Settings
from service.db import create_pool, unavailable
from service.domain.errors import DATABASE_RETRY_AFTER
from service.web.i18n import gettext
from tests.clock import FakeClock
from tests.fixtures.office import free_slot
from tests.tcpproxy import Relay

Client = TestClient  # type: ignore[type-arg]

UNAVAILABLE = (
    "The service is briefly unavailable and nothing was saved. Please try again shortly."
)


@pytest.fixture
async def relayed_client(
    relay: Relay, db_dsn: str, settings: Settings, clock: FakeClock
) -> AsyncIterator[Client]:
    dsn = relay.dsn_for(db_dsn)
    pool = await create_pool(dsn, min_size=1, max_size=4)
    app = create_app(settings.with_(database_url=dsn), pool=pool, clock=clock)
    try:
        async with TestClient(TestServer(app)) as client:
            yield client
    finally:
        pool.terminate()


def booking(slot_id: int) -> dict[str, Any]:
    return {
        "slot_id": slot_id,
        "service": "legalization",
        "name": "Amina El Idrissi",
        "phone": "+33612345678",
        "language": "fr",
    }


async def _bookings(db_dsn: str) -> int:
    conn = await asyncpg.connect(db_dsn)
    try:
        count: int = await conn.fetchval("SELECT count(*) FROM bookings")
        return count
    finally:
        await conn.close()


async def test_postgres_gone_is_a_503_once_logged_then_bookings_resume(
    relay: Relay,
    relayed_client: Client,
    pool: asyncpg.Pool,
    db_dsn: str,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = relayed_client
    login = await (await client.get("/office/login")).text()
    csrf = re.search(r'name="_csrf" value="([0-9a-f]+)"', login)
    assert csrf
    after = clock() + timedelta(days=2)
    slots = [(await free_slot(pool, "consulate-paris", "legalization", after, n))["id"]
             for n in range(3)]  # fmt: skip
    r = await client.post("/api/v1/bookings", json=booking(slots[0]))
    assert r.status == 201, await r.text()
    before = await _bookings(db_dsn)
    caplog.set_level(logging.INFO)
    caplog.clear()

    relay.cut()
    for language in ("ar", "fr", "en"):
        r = await client.post(
            "/api/v1/bookings", json=booking(slots[1]), headers={"Accept-Language": language}
        )
        assert r.status == 503
        assert r.headers["Retry-After"] == str(DATABASE_RETRY_AFTER)
        assert r.headers["Content-Language"] == language
        assert await r.json() == {"error": "unavailable", "message": gettext(language, UNAVAILABLE)}
    # The citizen's pages and form, and the office's, answer with a page.
    for r in (
        await client.get("/offices/consulate-paris?lang=ar"),
        await client.post(
            "/offices/consulate-paris/legalization/book?lang=ar",
            data={"_csrf": csrf[1], "slot": str(slots[1]), "name": "Amina", "phone": "0612345678"},
        ),
        await client.post(
            "/office/login?lang=ar",
            data={"_csrf": csrf[1], "email": "agent@mawid.test", "password": "dev-agent-password"},
        ),
    ):
        page = await r.text()
        assert r.status == 503, r.url
        assert r.headers["Retry-After"] == str(DATABASE_RETRY_AFTER)
        assert '<html lang="ar" dir="rtl">' in page
        assert gettext("ar", UNAVAILABLE) in page
        assert f"<h1>{gettext('ar', 'Temporarily unavailable')}</h1>" in page
    # Liveness is the process, readiness is whether it can serve.
    assert (await client.get("/healthz")).status == 200
    r = await client.get("/readyz")
    assert r.status == 503 and (await r.json())["failed"] == ["postgres"]

    outage = [rec for rec in caplog.records if rec.name.startswith("service.")]
    assert [(rec.levelno, rec.name) for rec in outage] == [
        (logging.WARNING, "service.web.outage")
    ]
    assert re.fullmatch(
        r"postgres does not answer \(\w+\): answering 503 until it does", outage[0].getMessage()
    )
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert await _bookings(db_dsn) == before

    await relay.restore()
    async with asyncio.timeout(15):
        # Polling: log records come with no event to wait on.
        while not any("answers again" in rec.getMessage() for rec in caplog.records):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    r = await client.post("/api/v1/bookings", json=booking(slots[2]))
    assert r.status == 201, await r.text()
    assert await _bookings(db_dsn) == before + 1
    levels = [rec.levelno for rec in caplog.records if rec.name.startswith("service.")]
    assert levels == [logging.WARNING, logging.INFO]


@pytest.mark.parametrize(
    "how",
    ["lost-in-a-statement", "lost-between-statements", "query-wrong"],
)
async def test_a_connection_lost_inside_a_transaction_is_an_outage(
    relay: Relay, db_dsn: str, how: str
) -> None:
    # A connection lost inside a transaction surfaces as the InterfaceError
    # that the next statement, or leaving the transaction, raises on the dead
    # connection, not as a lost connection: a booking cut that way must be a
    # 503 like any other, while a wrong query inside a transaction stays a 500.
    conn = await asyncpg.connect(relay.dsn_for(db_dsn))
    try:
        with pytest.raises(Exception) as raised:
            async with conn.transaction():
                await conn.execute("SELECT 1")
                if how == "query-wrong":
                    await conn.execute("SELECT * FROM no_such_table")
                relay.cut()
                if how == "lost-between-statements":
                    while not conn.is_closed():  # noqa: ASYNC110 - asyncpg has no event for it
                        await asyncio.sleep(0.01)
                await conn.execute("SELECT 1")
    finally:
        conn.terminate()
    assert unavailable(raised.value) is (how != "query-wrong"), repr(raised.value)
