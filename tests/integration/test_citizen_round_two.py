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


async def test_arabic_pages_isolate_numbers_and_use_the_arabic_comma(app_client: Client) -> None:
    from tests.integration.test_citizen_pages import details, open_form

    page, slot_id, url = await open_form(app_client, "consulate-paris", "passport")
    resp = await app_client.post(
        url + "?lang=ar", data=details(page, slot_id, phone="12", email="", language="ar")
    )
    assert resp.status == 422
    page = await resp.text()
    # The example number reads left to right on one line, in the summary and
    # beside the field; the full stop after it stays Arabic.
    example = '<bdi dir="ltr" class="ltr">06 12 34 56 78</bdi>.'
    assert page.count(example) == 2, page
    # Date and time joined by the Arabic comma, never a Latin one.
    assert "2027، <time" in page and "2027, <time" not in page
    french = await (await app_client.get(f"{url}?slot={slot_id}&lang=fr")).text()
    assert "2027, <time" in french and 'class="ltr"' not in french


def test_isolate_ltr_keeps_markup_and_brackets() -> None:
    from markupsafe import Markup

    from service.web.templating import isolate_ltr

    assert isolate_ltr("أضف (.ics)") == 'أضف <bdi dir="ltr" class="ltr">(.ics)</bdi>'
    # A bracket only comes inside with its partner.
    assert isolate_ltr("مثل x3 (من 1 إلى 100)") == (
        'مثل <bdi dir="ltr" class="ltr">x3</bdi> (من <bdi dir="ltr" class="ltr">1</bdi>'
        ' إلى <bdi dir="ltr" class="ltr">100</bdi>)'
    )
    # Text is escaped; markup and character references are left whole.
    assert isolate_ltr("<b>x</b> & y") == (
        '&lt;<bdi dir="ltr" class="ltr">b</bdi>&gt;<bdi dir="ltr" class="ltr">x</bdi>'
        '&lt;/<bdi dir="ltr" class="ltr">b</bdi>&gt; &amp; <bdi dir="ltr" class="ltr">y</bdi>'
    )
    assert isolate_ltr(Markup('<code dir="ltr">mon</code> &amp;')) == (
        '<code dir="ltr"><bdi dir="ltr" class="ltr">mon</bdi></code> &amp;'
    )
