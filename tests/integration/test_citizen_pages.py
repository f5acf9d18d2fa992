"""The citizen pages over real HTTP against real Postgres (no browser).

Everything here works without JavaScript: plain links and form posts.
"""

from __future__ import annotations

import asyncio
import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service import bookings
from service.config import Settings
from service.domain.models import LANGUAGES
from service.domain.validation import RawDetails
from service.web.i18n import gettext
from service.web.security import CONTENT_SECURITY_POLICY
from tests.clock import FakeClock

Client = TestClient  # type: ignore[type-arg]

# The booking core as a returning citizen books it (test_abuse_*.py test
# the code step, the limits and the household cap).
pytestmark = [pytest.mark.no_rate_limits, pytest.mark.usefixtures("returning_citizen")]

PAGE_BUDGET = 50 * 1024


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no hidden field {name}"
    return html.unescape(match.group(1))


def slot_links(page: str, office: str, service: str) -> list[int]:
    return [
        int(m) for m in re.findall(rf'href="/offices/{office}/{service}/book\?slot=(\d+)"', page)
    ]


async def counts(pool: asyncpg.Pool) -> dict[str, int]:
    async with pool.acquire() as conn:
        return {
            "bookings": await conn.fetchval("SELECT count(*) FROM bookings"),
            "taken": await conn.fetchval("SELECT coalesce(sum(taken), 0) FROM slots"),
            "audit": await conn.fetchval("SELECT count(*) FROM audit_log"),
            "form_keys": await conn.fetchval("SELECT count(*) FROM form_keys"),
        }


async def open_form(
    client: Client, office: str = "consulate-paris", service: str = "legalization"
) -> tuple[str, int, str]:
    """The slots page, then the form of its first time: (form html, slot id, url)."""
    resp = await client.get(f"/offices/{office}/{service}")
    assert resp.status == 200
    slot_id = slot_links(await resp.text(), office, service)[0]
    resp = await client.get(f"/offices/{office}/{service}/book", params={"slot": slot_id})
    assert resp.status == 200
    return await resp.text(), slot_id, f"/offices/{office}/{service}/book"


def details(page: str, slot_id: int, **extra: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "_csrf": hidden(page, "_csrf"),
        "form_key": hidden(page, "form_key"),
        "slot": str(slot_id),
        "name": "Amina El Idrissi",
        "phone_country": "FR",
        "phone": "06 12 34 56 78",
        "email": "",
        "language": "fr",
    }
    data.update(extra)
    return data


async def test_pages_carry_security_headers_and_language(app_client: Client) -> None:
    resp = await app_client.get("/", headers={"Accept-Language": "ar"})
    page = await resp.text()
    assert resp.status == 200
    assert '<html lang="ar" dir="rtl">' in page
    assert "القنصليات" in page
    csp = resp.headers["Content-Security-Policy"]
    assert csp == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    # The language switch points at the same page in the other languages.
    assert 'href="/?lang=fr"' in page and 'href="/?lang=en"' in page
    # No inline script or style anywhere: the CSP would block them.
    assert "<script" not in page and "style=" not in page

    resp = await app_client.get("/?lang=en", headers={"Accept-Language": "ar"})
    assert '<html lang="en" dir="ltr">' in await resp.text()
    cookie = resp.headers["Set-Cookie"]
    assert "lang=en" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # The choice sticks: the cookie now beats Accept-Language.
    resp = await app_client.get("/offices/consulate-paris", headers={"Accept-Language": "ar"})
    assert '<html lang="en"' in await resp.text()


async def test_start_groups_consulates_by_country_then_prefectures(app_client: Client) -> None:
    page = await (await app_client.get("/?lang=fr")).text()
    # (Mobile consular days open for booking come first, by country too.)
    consulates = page.index("<h2>Consulats</h2>")
    france = page.index("<h3>France</h3>", consulates)
    assert france < page.index("Préfectures et provinces au Maroc")
    assert page.index("Préfectures et provinces au Maroc") < page.index(
        'href="/offices/prefecture-tiznit"'
    )


async def test_slots_in_office_time_with_zone_and_closures(app_client: Client) -> None:
    # Tiznit on 2027-02-15 (Ramadan, UTC+0) opens 09:00 local = 09:00 UTC.
    resp = await app_client.get(
        "/offices/prefecture-tiznit/mre-desk", params={"week": "2027-02-15", "lang": "fr"}
    )
    page = await resp.text()
    assert "heure du Maroc" in page
    assert "Semaine du lundi 15 février 2027" in page
    assert ">09:00</a>" in page
    # 2027-03-09 is Eid al-Fitr (as the holidays package estimates it).
    resp = await app_client.get(
        "/offices/prefecture-tiznit/mre-desk", params={"week": "2027-03-08", "lang": "ar"}
    )
    page = await resp.text()
    assert "توقيت المغرب" in page
    assert re.search(r"مغلق: [^<]*عيد الفطر", page), page
    # Weekends are shown closed; paging moves a week at a time.
    assert 'href="/offices/prefecture-tiznit/mre-desk?week=2027-03-15"' in page
    assert 'href="/offices/prefecture-tiznit/mre-desk?week=2027-03-01"' in page


async def test_book_end_to_end(app_client: Client, pool: asyncpg.Pool) -> None:
    page, slot_id, url = await open_form(app_client)
    assert "heure de Paris" in page or "Paris" in page
    resp = await app_client.post(url, data=details(page, slot_id), allow_redirects=False)
    assert resp.status == 303, await resp.text()
    location = resp.headers["Location"]
    assert re.match(r"^/b/PAR-[A-Z0-9]{6}/[A-Za-z0-9_-]{43}/confirmation$", location)
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    resp = await app_client.get(location + "?lang=fr")
    page = await resp.text()
    assert resp.status == 200
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-store"
    assert "Votre rendez-vous est réservé" in page
    assert '<svg role="img"' in page  # the QR code, inline
    # Where the confirmation goes, half hidden: not the whole number.
    assert "par SMS au <bdi dir=\"ltr\">+33 6 •• •• •• 78</bdi>" in page
    assert "12 34 56" not in page
    assert "heure de Paris" in page
    reference = location.split("/")[2]
    assert page.count(f"<bdi>{reference}</bdi>") == 1  # the reference once, in the panel
    assert "(.ics)" not in page and "Ajouter à mon agenda" in page
    assert (await counts(pool))["bookings"] == 1

    ics = await app_client.get(location.rsplit("/", 1)[0] + "/calendar.ics")
    assert ics.status == 200
    assert ics.headers["Content-Type"].startswith("text/calendar")
    body = await ics.text()
    assert "BEGIN:VEVENT" in body and f"UID:{reference}@mawid" in body
    assert re.search(r"DTSTART:\d{8}T\d{6}Z", body)


async def test_post_without_csrf_is_refused_and_writes_nothing(
    app_client: Client, pool: asyncpg.Pool
) -> None:
    page, slot_id, url = await open_form(app_client)
    before = await counts(pool)
    data = details(page, slot_id)
    del data["_csrf"]
    resp = await app_client.post(url, data=data, allow_redirects=False)
    assert resp.status == 403
    data["_csrf"] = "0" * 64
    resp = await app_client.post(url, data=data, allow_redirects=False)
    assert resp.status == 403
    # A token minted for another browser's cookie does not fit this one.
    app_client.session.cookie_jar.clear()
    resp = await app_client.post(url, data=details(page, slot_id), allow_redirects=False)
    assert resp.status == 403
    assert await counts(pool) == before


async def test_double_submission_books_once(app_client: Client, pool: asyncpg.Pool) -> None:
    page, slot_id, url = await open_form(app_client)
    data = details(page, slot_id, document_number="")
    first, second = await asyncio.gather(
        app_client.post(url, data=data, allow_redirects=False),
        app_client.post(url, data=data, allow_redirects=False),
    )
    assert first.status == second.status == 303
    assert first.headers["Location"] == second.headers["Location"]
    # Back and resubmit, later: the same booking again.
    third = await app_client.post(url, data=data, allow_redirects=False)
    assert third.headers["Location"] == first.headers["Location"]
    after = await counts(pool)
    assert after["bookings"] == 1 and after["taken"] == 1 and after["form_keys"] == 1
    resp = await app_client.get(third.headers["Location"])
    assert resp.status == 200


async def test_errors_listed_linked_and_inputs_kept_escaped(
    app_client: Client, pool: asyncpg.Pool
) -> None:
    page, slot_id, url = await open_form(app_client, service="passport")
    before = await counts(pool)
    data = details(page, slot_id, name="", phone="12", email="<script>x</script>", language="fr")
    resp = await app_client.post(url + "?lang=fr", data=data, allow_redirects=False)
    page = await resp.text()
    assert resp.status == 422
    assert 'class="error-summary" role="alert"' in page
    for field in ("name", "phone", "email", "document_number"):
        assert f'<a href="#f-{field}">' in page
        assert f'id="f-{field}-error"' in page
    assert "Saisissez vos nom et prénom." in page
    assert "<script>x</script>" not in page
    assert 'value="&lt;script&gt;x&lt;/script&gt;"' in page
    assert 'value="12"' in page
    assert await counts(pool) == before


async def test_the_phone_read_back_after_a_mistake_reads_left_to_right_in_arabic(
    app_client: Client,
) -> None:
    """Its digit groups isolated as one run: bare in an Arabic sentence they
    came out in reverse order ("78 56 34 12 6 33+")."""
    page, slot_id, url = await open_form(app_client)
    data = details(page, slot_id, name="")
    page = await (await app_client.post(url + "?lang=ar", data=data)).text()
    assert '<bdi dir="ltr">+33 6 12 34 56 78</bdi>' in page


async def test_full_slot_offers_the_next_free_times(
    app_client: Client, pool: asyncpg.Pool, clock: FakeClock, settings: Settings
) -> None:
    page, slot_id, url = await open_form(app_client)
    # Someone else takes every seat between choosing and submitting.
    async with pool.acquire() as conn:
        capacity = await conn.fetchval("SELECT capacity FROM slots WHERE id = $1", slot_id)
    for n in range(capacity):
        await bookings.book(
            pool,
            slot_id=slot_id,
            service_id="legalization",
            details=RawDetails(
                name=f"Other {'ABCDEFGH'[n]}", email=f"o{n}@example.com", language="fr"
            ),
            secret_key=settings.secret_key,
            now=clock(),
        )
    before = await counts(pool)
    data = details(page, slot_id, name="Youssef Ben'Ali")
    resp = await app_client.post(url + "?lang=fr", data=data, allow_redirects=False)
    page = await resp.text()
    assert resp.status == 409
    assert "Cet horaire n’est plus disponible" in page
    assert "Prochains horaires libres" in page
    choices = [int(v) for v in re.findall(r'type="radio" name="slot" value="(\d+)"', page)]
    assert 1 <= len(choices) <= 6 and slot_id not in choices
    assert 'value="Youssef Ben&#39;Ali"' in page
    assert await counts(pool) == before
    # Picking one of the offered times books it, with the same form key.
    data = details(page, choices[0], name="Youssef Benali")
    resp = await app_client.post(url, data=data, allow_redirects=False)
    assert resp.status == 303
    assert (await counts(pool))["bookings"] == before["bookings"] + 1


async def book_via_form(client: Client, **extra: str) -> str:
    page, slot_id, url = await open_form(client)
    resp = await client.post(url, data=details(page, slot_id, **extra), allow_redirects=False)
    assert resp.status == 303
    return resp.headers["Location"].removesuffix("/confirmation")


async def test_manage_cancel_with_confirmation_step(app_client: Client, pool: asyncpg.Pool) -> None:
    manage = await book_via_form(app_client, language="ar")
    resp = await app_client.get(manage)
    page = await resp.text()
    # Opened without a language choice, the page speaks the booking's language.
    app_client.session.cookie_jar.clear()
    resp = await app_client.get(manage)
    page = await resp.text()
    assert '<html lang="ar" dir="rtl">' in page
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert f'href="{manage}/cancel"' in page
    page = await (await app_client.get(manage + "/cancel?lang=fr")).text()
    assert "Annuler votre rendez-vous" in page
    resp = await app_client.post(
        manage + "/cancel", data={"_csrf": hidden(page, "_csrf")}, allow_redirects=False
    )
    assert resp.status == 303
    assert resp.headers["Location"] == manage + "?done=cancelled"
    page = await (await app_client.get(resp.headers["Location"])).text()
    assert "Votre rendez-vous est annulé." in page
    assert "<dt>Statut</dt><dd><strong>Annulé</strong></dd>" in page
    assert (await counts(pool))["taken"] == 0
    # Cancelled: nothing left to do.
    assert f'href="{manage}/cancel"' not in page


def reschedule_links(page: str, manage: str) -> list[int]:
    return [int(m) for m in re.findall(rf'href="{manage}/reschedule/confirm\?slot=(\d+)"', page)]


async def test_manage_reschedule_asks_before_moving(app_client: Client, pool: asyncpg.Pool) -> None:
    manage = await book_via_form(app_client)
    page = await (await app_client.get(manage + "/reschedule?lang=fr")).text()
    links = reschedule_links(page, manage)
    assert links
    assert 'type="submit"' not in page  # choosing a time is a link: nothing moves yet
    async with pool.acquire() as conn:
        current = await conn.fetchval("SELECT slot_id FROM bookings")
    assert current not in links
    # A tap on a time asks first: from when, to when.
    resp = await app_client.get(f"{manage}/reschedule/confirm?slot={links[-1]}&lang=fr")
    page = await resp.text()
    assert resp.status == 200
    assert re.search(r"Déplacer du <strong><time [^>]+>\w+\. \d+ \w+\.? \d\d:\d\d</time>", page)
    assert "Oui, déplacer mon rendez-vous" in page
    assert f'href="{manage}">Non, garder mon horaire actuel</a>' in page
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT slot_id FROM bookings") == current
    assert hidden(page, "slot") == str(links[-1])
    resp = await app_client.post(
        manage + "/reschedule",
        data={"_csrf": hidden(page, "_csrf"), "slot": hidden(page, "slot"),
              "day": hidden(page, "day")},
        allow_redirects=False,
    )  # fmt: skip
    assert resp.status == 303
    assert resp.headers["Location"] == manage + "?done=rescheduled"
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT slot_id, status FROM bookings")
        taken = await conn.fetch("SELECT id, taken FROM slots WHERE taken > 0")
    assert row["slot_id"] == links[-1] and row["status"] == "confirmed"
    assert [(r["id"], r["taken"]) for r in taken] == [(links[-1], 1)]
    page = await (await app_client.get(resp.headers["Location"])).text()
    assert "Votre rendez-vous a été déplacé." in page


async def test_reschedule_confirmation_refuses_times_it_cannot_move_to(
    app_client: Client, pool: asyncpg.Pool
) -> None:
    manage = await book_via_form(app_client)
    full = reschedule_links(await (await app_client.get(manage + "/reschedule")).text(), manage)[0]
    async with pool.acquire() as conn:
        current = await conn.fetchval("SELECT slot_id FROM bookings")
        elsewhere = await conn.fetchval(
            "SELECT id FROM slots WHERE office_id <> 'consulate-paris' LIMIT 1"
        )
        # Filled by others between the list and the tap.
        await conn.execute("UPDATE slots SET taken = capacity WHERE id = $1", full)
    for slot, status in ((current, 409), (full, 409), (elsewhere, 422), ("x", 422)):
        resp = await app_client.get(f"{manage}/reschedule/confirm?slot={slot}&lang=en")
        page = await resp.text()
        assert resp.status == status, slot
        assert 'role="alert"' in page and "Choose another time" in page
        assert "Yes, move my appointment" not in page
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT slot_id FROM bookings") == current


async def test_wrong_token_or_reference_is_the_same_404(app_client: Client) -> None:
    manage = await book_via_form(app_client)
    _, _, reference, token = manage.split("/")
    for path in (
        f"/b/{reference}/{'x' * 43}",
        f"/b/PAR-ZZZZZZ/{token}",
        f"/b/not-a-ref/{token}",
        f"/b/{reference}/{'x' * 43}/calendar.ics",
    ):
        resp = await app_client.get(path + "?lang=en")
        assert resp.status == 404, path
        assert "Page not found" in await resp.text()
        assert resp.headers["Referrer-Policy"] == "no-referrer"


async def test_an_address_no_route_knows_is_the_sites_404_page_in_the_readers_language(
    app_client: Client,
) -> None:
    ar = gettext("ar", "Page not found")
    assert ar != "Page not found"
    for path in ("/nowhere", "/offices/consulate-paris/passport/nowhere/else"):
        resp = await app_client.get(path, headers={"Accept-Language": "ar"})
        assert resp.status == 404, path
        page = await resp.text()
        assert ar in page and 'dir="rtl"' in page, path
        assert resp.headers["Content-Language"] == "ar"
        assert resp.headers["X-Request-Id"] and resp.headers["Referrer-Policy"] == "no-referrer"
    # The API's stays JSON.
    resp = await app_client.get("/api/v1/nowhere", headers={"Accept-Language": "ar"})
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"
    # An address made to look like another site's: its language links stay here.
    assert app_client.server.port is not None
    for path in ("//evil.example/phish", "/\\evil.example/phish", "///evil.example/x"):
        # Sent as written: a client library would take the first two for a host.
        reader, writer = await asyncio.open_connection("127.0.0.1", app_client.server.port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        answer = (await reader.read()).decode()
        writer.close()
        assert answer.startswith("HTTP/1.1 404"), path
        links = re.findall(r'href="([^"]*lang=[^"]*)"', answer)
        assert links and all(
            link.startswith("/") and not link.startswith(("//", "/\\")) for link in links
        ), links
    # The office side's points home to the office pages.
    page = await (await app_client.get("/office")).text()
    assert 'href="/office/"' in page


async def test_cancel_after_start_is_refused(
    app_client: Client, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    manage = await book_via_form(app_client)
    page = await (await app_client.get(manage + "/cancel")).text()
    async with pool.acquire() as conn:
        starts = await conn.fetchval("SELECT starts_at FROM bookings")
    clock.set(starts + timedelta(minutes=1))
    resp = await app_client.post(
        manage + "/cancel?lang=en", data={"_csrf": hidden(page, "_csrf")}, allow_redirects=False
    )
    assert resp.status == 409
    assert "It is too late to change this appointment." in await resp.text()
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM bookings") == "confirmed"


async def test_every_page_is_under_the_weight_budget(app_client: Client) -> None:
    css = await app_client.get("/static/site.css")
    css_bytes = len(await css.read())
    manage = await book_via_form(app_client)
    paths = [
        "/",
        "/offices/consulate-paris",
        "/offices/consulate-paris/legalization",
        "/offices/prefecture-agadir/admin-certificate",
        manage + "/confirmation",
        manage,
        manage + "/cancel",
        manage + "/reschedule",
    ]
    _page, slot_id, url = await open_form(app_client, service="passport")
    weights = {}
    for language in LANGUAGES:
        for path in paths:
            resp = await app_client.get(path, params={"lang": language})
            weights[(path, language)] = len(await resp.read()) + css_bytes
        resp = await app_client.get(url, params={"slot": slot_id, "lang": language})
        weights[("form", language)] = len(await resp.read()) + css_bytes
    heaviest = max(weights.items(), key=lambda item: item[1])
    assert heaviest[1] < PAGE_BUDGET, heaviest


async def test_json_api_errors_in_the_readers_language(app_client: Client) -> None:
    resp = await app_client.get(
        "/api/v1/offices/nowhere/services", headers={"Accept-Language": "ar"}
    )
    assert resp.status == 404
    assert (await resp.json())["message"] == "هذا المكتب غير موجود."
    # The API is exempt from CSRF (bearer tokens), the pages are not.
    resp = await app_client.post("/api/v1/bookings", data="{}", headers={"Accept-Language": "fr"})
    assert resp.status == 422


async def test_today_is_the_offices_day_not_utcs(app_client: Client, clock: FakeClock) -> None:
    """23:30 UTC on Sunday 7 February is already Monday 8 February in Paris
    (and still Sunday in Montreal): each office's first week follows its own
    calendar, so Paris offers no way back to the week of 1 February."""
    clock.set(datetime(2027, 2, 7, 23, 30, tzinfo=UTC))  # type: ignore[attr-defined]
    resp = await app_client.get(
        "/offices/consulate-paris/legalization", params={"week": "2027-02-01", "lang": "en"}
    )
    page = await resp.text()
    assert "Week of Monday, 8 February 2027" in page
    assert 'legalization?week=2027-02-01"' not in page  # no "previous week" link
    resp = await app_client.get(
        "/offices/consulate-montreal/passport", params={"week": "2027-02-01", "lang": "en"}
    )
    assert "Week of Monday, 1 February 2027" in await resp.text()


async def test_a_token_issued_with_a_message_opens_the_manage_pages(
    app_client: Client, pool: asyncpg.Pool, settings: Settings
) -> None:
    from service.domain.booking import hash_token, new_manage_token
    from service.store import bookings as booking_store

    manage = await book_via_form(app_client)
    reference = manage.split("/")[2]
    message_token = new_manage_token()
    async with pool.acquire() as conn:
        booking_id = await conn.fetchval("SELECT id FROM bookings WHERE reference = $1", reference)
        await booking_store.add_manage_token(
            conn, booking_id, hash_token(message_token, settings.secret_key)
        )
    link = f"/b/{reference}/{message_token}"
    page = await (await app_client.get(link + "/cancel?lang=en")).text()
    assert "Cancel your appointment?" in page
    resp = await app_client.post(
        link + "/cancel", data={"_csrf": hidden(page, "_csrf")}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == link + "?done=cancelled"
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM bookings") == "cancelled"
