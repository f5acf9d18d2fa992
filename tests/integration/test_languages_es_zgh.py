"""Spanish and Tamazight (Tifinagh): the switch, the order an office offers
its languages in, Babel dates on the pages, and the database accepting them."""

from __future__ import annotations

import re
from datetime import timedelta

import asyncpg
from aiohttp.test_utils import TestClient

from service import bookings
from service.config import Settings
from service.domain.models import LANGUAGES
from service.domain.validation import RawDetails
from tests.clock import FakeClock

Client = TestClient  # type: ignore[type-arg]

OWN_NAMES = {
    "ar": "العربية",
    "fr": "Français",
    "en": "English",
    "es": "Español",
    "zgh": "ⵜⴰⵎⴰⵣⵉⵖⵜ",
}


def switch(page: str) -> list[tuple[str, str]]:
    """(code, name) of the language switch, in its order."""
    nav = page.split('<nav class="langs"', 1)[1].split("</nav>", 1)[0]
    return re.findall(r'lang="([a-z]+)"[^>]*>([^<]+)<', nav)


async def test_the_switch_lists_each_language_in_its_own_name(app_client: Client) -> None:
    for language in LANGUAGES:
        resp = await app_client.get("/", params={"lang": language})
        page = await resp.text()
        assert f'<html lang="{language}" dir="{"rtl" if language == "ar" else "ltr"}">' in page
        assert switch(page) == list(OWN_NAMES.items()), language
        assert resp.headers["Content-Language"] == language


async def test_tiznit_and_agadir_offer_tamazight_right_after_arabic(app_client: Client) -> None:
    for office in ("prefecture-tiznit", "prefecture-agadir"):
        page = await (await app_client.get(f"/offices/{office}", params={"lang": "fr"})).text()
        assert [code for code, _ in switch(page)] == ["ar", "zgh", "fr", "en", "es"], office
        offered = page.split("<dt>Langues</dt><dd>", 1)[1].split("</dd>", 1)[0]
        assert re.findall(r'lang="([a-z]+)"', offered) == ["ar", "zgh", "fr", "en", "es"]
    # A consulate in Paris keeps the usual order.
    page = await (await app_client.get("/offices/consulate-paris")).text()
    assert [code for code, _ in switch(page)] == list(LANGUAGES)


async def test_the_booking_form_offers_the_office_languages_in_its_order(
    app_client: Client,
) -> None:
    resp = await app_client.get("/offices/prefecture-tiznit/admin-certificate")
    slot = re.search(r"/book\?slot=(\d+)", await resp.text())
    assert slot is not None
    resp = await app_client.get(
        "/offices/prefecture-tiznit/admin-certificate/book",
        params={"slot": slot.group(1), "lang": "zgh"},
    )
    page = await resp.text()
    radios = re.findall(r'name="language" value="([a-z]+)"', page)
    assert radios == ["ar", "zgh", "fr", "en", "es"]
    assert "ⵜⵓⵜⵍⴰⵢⵜ ⵏ ⵜⵓⵣⵉⵏⵉⵏ ⵏⴽ" in page  # "Language of your messages"


async def test_pages_give_dates_in_spanish_and_in_tifinagh_with_latin_digits(
    app_client: Client,
) -> None:
    # The fixed clock is 2027-02-01: the first open week is in February.
    es = await (await app_client.get("/offices/consulate-paris/passport?lang=es")).text()
    assert "febrero" in es
    zgh = await (await app_client.get("/offices/consulate-paris/passport?lang=zgh")).text()
    assert "ⴱⵕⴰⵢⵕ" in zgh  # February
    assert re.search(r"\d{1,2} ⴱⵕⴰⵢⵕ", zgh)
    assert not re.search("[\u0660-\u0669\u06f0-\u06f9]", zgh)  # no Arabic-Indic digits


async def test_the_office_texts_fall_back_to_french_and_arabic(app_client: Client) -> None:
    es = await (await app_client.get("/offices/consulate-barcelona?lang=es")).text()
    assert "Consulat général du Royaume du Maroc à Barcelone" in es
    zgh = await (await app_client.get("/offices/prefecture-tiznit?lang=zgh")).text()
    assert "تيزنيت" in zgh


async def test_every_language_column_accepts_es_and_zgh_and_nothing_else(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    checks = await pool.fetch(
        """SELECT conrelid::regclass::text AS tbl, pg_get_constraintdef(oid) AS def
             FROM pg_constraint
            WHERE contype = 'c' AND pg_get_constraintdef(oid) LIKE '%(language %'"""
    )
    assert {c["tbl"] for c in checks} >= {"bookings", "outbox", "draw_entries"}
    for check in checks:
        for language in LANGUAGES:
            assert f"'{language}'" in check["def"], (check["tbl"], check["def"])
    slot_id = await pool.fetchval(
        """SELECT id FROM slots WHERE office_id = 'prefecture-tiznit'
             AND service_id = 'admin-certificate' AND starts_at > $1 AND taken < capacity
           ORDER BY starts_at LIMIT 1""",
        clock() + timedelta(days=2),
    )
    booked = await bookings.book(
        pool,
        slot_id=slot_id,
        service_id="admin-certificate",
        details=RawDetails(
            name="Tudert Ait Ali",
            email="tudert@example.com",
            language="zgh",
            document_number="JT482913",
        ),
        secret_key=settings.secret_key,
        now=clock(),
    )
    row = await pool.fetchrow(
        "SELECT language FROM bookings WHERE id = $1", booked.booking.id
    )
    assert row["language"] == "zgh"
    languages = await pool.fetch(
        "SELECT DISTINCT language FROM outbox WHERE booking_id = $1", booked.booking.id
    )
    assert {r["language"] for r in languages} <= {"zgh"}
    async with pool.acquire() as conn:
        try:
            await conn.execute(
                "UPDATE bookings SET language = 'kab' WHERE id = $1", booked.booking.id
            )
        except asyncpg.CheckViolationError:
            pass
        else:
            raise AssertionError("a language outside the list was stored")
