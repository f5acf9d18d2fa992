"""Citizen pages, round two (issue 11): practical information, the services
list, links to book again, and Arabic text that reads the right way round.
Over real HTTP against real Postgres, without a browser."""

from __future__ import annotations

import secrets

import asyncpg
from aiohttp.test_utils import TestClient

from service import bookings
from service.config import Settings
from service.domain.validation import RawDetails
from tests.clock import FakeClock
from tests.fixtures.app import any_document

Client = TestClient  # type: ignore[type-arg]


async def book_paris(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock, language: str = "fr"
) -> tuple[str, str]:
    """A passport booking at Paris tomorrow or later: (reference, manage path)."""
    async with pool.acquire() as conn:
        slot_id = await conn.fetchval(
            """SELECT id FROM slots WHERE office_id = 'consulate-paris' AND service_id = 'passport'
               AND starts_at > $1::timestamptz + interval '1 day' ORDER BY starts_at LIMIT 1""",
            clock(),
        )
    token = secrets.token_urlsafe(32)
    booked = await bookings.book(
        pool,
        slot_id=slot_id,
        service_id="passport",
        details=RawDetails(name="Amina El Idrissi", phone="06 12 34 56 78", phone_country="FR",
                           language=language, document_number=any_document()),
        secret_key=settings.secret_key,
        now=clock(),
        manage_token=token,
    )  # fmt: skip
    reference = booked.booking.reference
    return reference, f"/b/{reference}/{token}"


async def test_a_cancelled_booking_links_to_booking_again(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    reference, manage = await book_paris(pool, settings, clock)
    page = await (await app_client.get(manage)).text()
    assert "/offices/consulate-paris/passport" not in page
    await bookings.cancel(pool, reference, manage.rsplit("/", 1)[1], settings.secret_key, clock())
    page = await (await app_client.get(manage + "?lang=fr")).text()
    assert 'href="/offices/consulate-paris/passport">Prendre un nouveau rendez-vous</a>' in page
    # The short link of the cancellation messages leads to the office's page.
    resp = await app_client.get("/o/PAR", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/offices/consulate-paris"
    assert (await app_client.get("/o/par", allow_redirects=False)).status == 303
    assert (await app_client.get("/o/ZZZ", allow_redirects=False)).status == 404
    assert (await app_client.get("/o/TOOLONG", allow_redirects=False)).status == 404
