"""Citizen pages, round two (issue 11): practical information, the services
list, links to book again, and Arabic text that reads the right way round.
Over real HTTP against real Postgres, without a browser."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import asyncpg
from aiohttp.test_utils import TestClient

from service import bookings
from service.config import Settings
from service.domain.validation import RawDetails
from tests.clock import FakeClock
from tests.fixtures.app import any_document
from tests.fixtures.office import AGENT, MANAGER, Browser

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


async def test_the_office_page_shows_hours_contact_and_each_service_with_its_duration(
    app_client: Client,
) -> None:
    page = await (await app_client.get("/offices/prefecture-tiznit?lang=fr")).text()
    # Each service's duration is inside its own link, with its description.
    assert (
        '<a href="/offices/prefecture-tiznit/admin-certificate"><span class="service-name">'
        'Attestation administrative</span> <span class="duration">(10 minutes)</span></a>'
    ) in page
    assert "Certificat de résidence, de vie ou autre attestation administrative." in page
    assert "<dt>Arriver</dt><dd>10 minutes à l'avance.</dd>" in page
    # Opening hours, then Ramadan hours (2027-02-08 on): the fixed clock is a week before.
    assert "<th scope=\"row\">lundi – vendredi</th><td><bdi dir=\"ltr\">08:30–12:30</bdi>, " in page
    assert "samedi – dimanche</th><td>Fermé</td>" in page
    assert "Horaires du ramadan, du lundi 8 février 2027 au" in page
    assert '<bdi dir="ltr">09:00–15:00</bdi>' in page
    assert 'href="tel:+212520123456"' in page
    assert "Accès sans marche" in page and "Comment venir" in page
    assert "Données de démonstration" in page
    arabic = await (await app_client.get("/offices/prefecture-tiznit?lang=ar")).text()
    assert "الاثنين – الجمعة" in arabic and "أوقات العمل في رمضان" in arabic
    assert "<bdi dir=\"ltr\">08:30–12:30</bdi>، <bdi dir=\"ltr\">13:30–16:30</bdi>" in arabic


async def test_a_manager_writes_the_practical_information_in_three_languages(
    app_client: Client, browsers: Callable[[], Browser], pool: asyncpg.Pool
) -> None:
    browser = browsers()
    await browser.login(MANAGER)
    page = await (await browser.get("/office/consulate-paris/info")).text()
    assert "demo data" in page
    form = {
        "phone": "12 34",
        "email": "accueil@consulat.example",
        "directions_fr": "Métro ligne 1, station George V.",
        "directions_ar": "الميترو الخط 1، محطة جورج الخامس.",
        "directions_en": "Metro line 1, George V station.",
        "access_fr": "Entrée de plain-pied.",
        "access_ar": "",
        "access_en": "Step-free entrance.",
    }
    r = await browser.post_form("/office/consulate-paris/info", form)
    assert r.status == 422
    page = await r.text()
    assert 'id="i-phone" name="phone" value="12 34"' in page
    assert 'aria-invalid="true"' in page and "country code" in page
    async with pool.acquire() as conn:
        assert await conn.fetchval(
            "SELECT info_demo FROM offices WHERE id = 'consulate-paris'"
        )  # nothing written
    r = await browser.post_form("/office/consulate-paris/info", {**form, "phone": "01 40 12 34 56"})
    assert r.status == 303 and r.headers["Location"].endswith("/info?notice=info_saved")
    saved = await (await browser.get(r.headers["Location"])).text()
    assert "Saved: the practical information" in saved and "demo data" not in saved
    r = await browser.post_form("/office/consulate-paris/info", {**form, "phone": "+33140123456"})
    assert r.headers["Location"].endswith("notice=unchanged")
    for lang, text in (("fr", "Métro ligne 1"), ("ar", "الميترو الخط 1"), ("en", "Metro line 1")):
        citizen = await (await app_client.get(f"/offices/consulate-paris?lang={lang}")).text()
        assert text in citizen and 'href="tel:+33140123456"' in citizen
        assert "accueil@consulat.example" in citizen
    # Agents may not.
    agent = browsers()
    await agent.login(AGENT)
    assert (await agent.get("/office/consulate-paris/info")).status == 403


async def test_a_service_s_practical_information_reaches_the_citizen(
    app_client: Client, browsers: Callable[[], Browser], pool: asyncpg.Pool
) -> None:
    from tests.integration.test_office_changes import service_form

    browser = browsers()
    await browser.login(MANAGER)
    async with pool.acquire() as conn:
        duration = await conn.fetchval(
            "SELECT duration_minutes FROM services WHERE office_id = 'consulate-paris'"
            " AND id = 'legalization'"
        )
    form = service_form(
        duration_minutes=str(duration), document_required="-", description_fr="Signer devant nous.",
        fees_fr="Dix euros.", late_fr="Reprenez rendez-vous.", arrive_early_minutes="5",
    )  # fmt: skip
    r = await browser.post_form("/office/consulate-paris/services/legalization", form)
    assert r.status == 303, await r.text()
    page = await (await app_client.get("/offices/consulate-paris?lang=fr")).text()
    for text in ("Signer devant nous.", "Dix euros.", "Reprenez rendez-vous.",
                 "5 minutes à l'avance."):  # fmt: skip
        assert text in page
    async with pool.acquire() as conn:
        assert not await conn.fetchval(
            "SELECT info_demo FROM services WHERE office_id = 'consulate-paris'"
            " AND id = 'legalization'"
        )
