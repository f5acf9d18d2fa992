"""The channel choice on the citizen pages, without JavaScript: the details
form offers SMS, WhatsApp and e-mail only; the manage page shows the choice
and changes it; a choice the contacts cannot serve is refused in the
reader's language and writes nothing."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.config import Settings
from service.notify import delivery
from tests.clock import FakeClock
from tests.fixtures.office import AGENT, MANAGER, Browser, make_booking
from tests.integration.test_draw_flow import draw_service
from tests.integration.test_draw_request_pages import form_body, request_data

Client = TestClient  # type: ignore[type-arg]

pytestmark = [pytest.mark.no_rate_limits, pytest.mark.usefixtures("returning_citizen")]
OFFICE, SERVICE = "consulate-paris", "legalization"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_(twilio_whatsapp_from="+14155238886")


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no hidden field {name}"
    return html.unescape(match.group(1))


def radios(page: str) -> list[tuple[str, bool]]:
    return [
        (m.group(1), m.group(2) is not None)
        for m in re.finditer(r'name="channel" value="(\w+)"( checked)?', page)
    ]


async def open_form(client: Client) -> tuple[str, dict[str, Any]]:
    page = await (await client.get(f"/offices/{OFFICE}/{SERVICE}?lang=fr")).text()
    slot = re.findall(rf'href="/offices/{OFFICE}/{SERVICE}/book\?slot=(\d+)"', page)[0]
    url = f"/offices/{OFFICE}/{SERVICE}/book"
    page = await (await client.get(url, params={"slot": slot})).text()
    data = {
        "_csrf": hidden(page, "_csrf"),
        "form_key": hidden(page, "form_key"),
        "slot": slot,
        "name": "Amina El Idrissi",
        "phone_country": "FR",
        "phone": "06 12 34 56 78",
        "email": "",
        "language": "fr",
    }
    return page, data


async def book_by_whatsapp(client: Client) -> str:
    """Books through the form choosing WhatsApp; returns the manage page's path."""
    _, data = await open_form(client)
    url = f"/offices/{OFFICE}/{SERVICE}/book"
    resp = await client.post(url, data=data | {"channel": "whatsapp"}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    location: str = resp.headers["Location"]
    return location.removesuffix("/confirmation")


async def test_the_form_offers_each_channel_and_books_by_whatsapp(
    app_client: Client, pool: asyncpg.Pool
) -> None:
    page, data = await open_form(app_client)
    assert "Comment voulez-vous recevoir vos messages ?" in page
    # Nothing chosen beforehand: without a choice, SMS when there is a phone.
    assert radios(page) == [("sms", False), ("whatsapp", False), ("email", False)]
    url = f"/offices/{OFFICE}/{SERVICE}/book"
    resp = await app_client.post(url, data=data | {"channel": "whatsapp"}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    page = await (await app_client.get(resp.headers["Location"])).text()
    assert 'par WhatsApp au <bdi dir="ltr">+33 6 •• •• •• 78</bdi>' in page
    assert await pool.fetchval("SELECT message_channel FROM bookings") == "whatsapp"
    channels = await pool.fetch("SELECT DISTINCT channel FROM outbox")
    assert [r["channel"] for r in channels] == ["whatsapp"]


async def test_a_choice_without_its_contact_is_refused_and_books_nothing(
    app_client: Client, pool: asyncpg.Pool
) -> None:
    _, data = await open_form(app_client)
    url = f"/offices/{OFFICE}/{SERVICE}/book"
    resp = await app_client.post(url, data=data | {"channel": "email"}, allow_redirects=False)
    assert resp.status == 422
    page = await resp.text()
    assert "Donnez une adresse e-mail pour recevoir vos messages par e-mail seulement." in page
    assert radios(page) == [("sms", False), ("whatsapp", False), ("email", True)]
    assert await pool.fetchval("SELECT count(*) FROM bookings") == 0


async def test_the_manage_page_shows_and_changes_the_choice(
    app_client: Client, pool: asyncpg.Pool
) -> None:
    manage = await book_by_whatsapp(app_client)
    page = await (await app_client.get(manage + "?lang=fr")).text()
    # No address on this booking: e-mail only is not offered.
    assert radios(page) == [("sms", False), ("whatsapp", True)]
    refused = await app_client.post(
        manage + "/channel",
        data={"_csrf": hidden(page, "_csrf"), "channel": "email"},
        allow_redirects=False,
    )
    assert refused.status == 422
    assert "Donnez une adresse e-mail" in await refused.text()
    assert await pool.fetchval("SELECT message_channel FROM bookings") == "whatsapp"
    resp = await app_client.post(
        manage + "/channel",
        data={"_csrf": hidden(page, "_csrf"), "channel": "sms"},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert resp.headers["Location"] == manage + "?done=channel"
    page = await (await app_client.get(resp.headers["Location"])).text()
    assert "Votre choix est enregistré" in page
    assert radios(page) == [("sms", True), ("whatsapp", False)]
    pending = await pool.fetch("SELECT DISTINCT channel FROM outbox WHERE status = 'pending'")
    assert [r["channel"] for r in pending] == ["sms"]


async def test_a_change_without_the_form_token_is_refused(
    app_client: Client, pool: asyncpg.Pool
) -> None:
    manage = await book_by_whatsapp(app_client)
    resp = await app_client.post(manage + "/channel", data={"channel": "sms"})
    assert resp.status == 403
    assert await pool.fetchval("SELECT message_channel FROM bookings") == "whatsapp"


async def test_the_office_message_log_shows_whatsapp_read_and_the_fallback(
    pool: asyncpg.Pool, clock: FakeClock, browsers: Callable[[], Browser], settings: Settings
) -> None:
    # Days ahead, so that it has reminders.
    booking = await make_booking(
        pool, "consulate-paris", "passport", after=clock() + timedelta(days=5)
    )
    await pool.execute("UPDATE bookings SET message_channel = 'whatsapp' WHERE id = $1", booking.id)
    wa_id = await pool.fetchval(
        "SELECT id FROM outbox WHERE booking_id = $1 AND kind = 'confirmation'", booking.id
    )
    # Sent by WhatsApp (what the worker writes), then read, as Twilio reports.
    await pool.execute(
        """UPDATE outbox SET channel = 'whatsapp', status = 'sent', provider_id = 'SMwa1',
                             sent_at = $2 WHERE id = $1""",
        wa_id,
        clock(),
    )
    async with pool.acquire() as conn, conn.transaction():
        receipt = await delivery.record_receipt(
            conn, provider_id="SMwa1", outbox_id=None, message_status="read",
            error_code=None, now=clock(), secret_key=settings.secret_key,
        )  # fmt: skip
        assert receipt is not None and receipt.status == "read"
        # A later reminder could not go by WhatsApp: its SMS stands in.
        reminder = await conn.fetchval(
            "SELECT id FROM outbox WHERE booking_id = $1 AND kind = 'reminder' LIMIT 1",
            booking.id,
        )
        await conn.execute("UPDATE outbox SET channel = 'whatsapp' WHERE id = $1", reminder)
        await delivery.give_up(
            conn, reminder, channel="whatsapp", code="63003", reason="permanent_error",
            now=clock(), secret_key=settings.secret_key,
        )  # fmt: skip
    browser = browsers()
    await browser.login(AGENT)
    page = await (await browser.get(f"/office/consulate-paris/bookings/{booking.reference}")).text()
    assert re.search(
        r'<tr class="msg-read"><td[^>]*>WhatsApp</td><td[^>]*>Confirmation</td>', page
    )
    assert re.search(r"<td[^>]*>Read</td>", page)
    assert "whatsapp_fallback" in page and "63003" in page


async def test_the_manage_page_says_why_whatsapp_was_left_and_takes_it_again(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    manage = await book_by_whatsapp(app_client)
    wa_id = await pool.fetchval("SELECT id FROM outbox WHERE kind = 'confirmation'")
    async with pool.acquire() as conn, conn.transaction():
        # What Twilio's 63003 does (test_whatsapp_reach sends it for real).
        await conn.execute("UPDATE outbox SET status = 'sending' WHERE id = $1", wa_id)
        await delivery.give_up(
            conn, wa_id, channel="whatsapp", code="63003", reason="permanent_error",
            now=clock(), secret_key=settings.secret_key,
        )  # fmt: skip
    page = await (await app_client.get(manage + "?lang=fr")).text()
    assert "Votre numéro ne semble pas utiliser WhatsApp" in page
    assert radios(page) == [("sms", True), ("whatsapp", False)]
    resp = await app_client.post(
        manage + "/channel",
        data={"_csrf": hidden(page, "_csrf"), "channel": "whatsapp"},
        allow_redirects=False,
    )
    assert resp.status == 303
    page = await (await app_client.get(manage + "?lang=fr")).text()
    assert "ne semble pas utiliser WhatsApp" not in page
    assert radios(page) == [("sms", False), ("whatsapp", True)]


@pytest.mark.parametrize("lang", ["fr", "ar"])
async def test_a_number_that_said_stop_is_not_offered_whatsapp(
    lang: str, app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    manage = await book_by_whatsapp(app_client)
    async with pool.acquire() as conn, conn.transaction():
        await delivery.whatsapp_opt_out(conn, "+33612345678", "stop", clock(), settings.secret_key)
    page = await (await app_client.get(f"{manage}?lang={lang}")).text()
    said = {
        "fr": "Ce numéro nous a demandé de ne plus lui envoyer de messages WhatsApp (STOP).",
        "ar": "طلب هذا الرقم ألا نبعث إليه رسائل واتساب بعد الآن (STOP).",
    }
    assert said[lang] in page
    # SMS is left to choose (for its reminders), WhatsApp is not.
    assert radios(page) == [("sms", False)]
    resp = await app_client.post(
        manage + f"/channel?lang={lang}",
        data={"_csrf": hidden(page, "_csrf"), "channel": "whatsapp"},
        allow_redirects=False,
    )
    assert resp.status == 422
    refused = {
        "fr": "envoyez START à notre numéro WhatsApp",
        "ar": "أرسلوا START إلى رقمنا على واتساب",
    }
    assert refused[lang] in await resp.text()
    assert await pool.fetchval("SELECT message_channel FROM bookings") == "whatsapp"


DRAW_FORM = f"/offices/{OFFICE}/legalization/draw"


async def test_a_draw_request_chooses_its_channel_and_changes_it_on_its_receipt(
    app_client: Client, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    await draw_service(pool, clock)
    page = await (await app_client.get(DRAW_FORM + "?lang=fr")).text()
    assert "Comment voulez-vous recevoir vos messages ?" in page
    assert radios(page) == [("sms", False), ("whatsapp", False), ("email", False)]
    data = request_data(page, channel="whatsapp")
    resp = await app_client.post(DRAW_FORM, data=form_body(data), allow_redirects=False)
    assert resp.status == 303, await resp.text()
    receipt = resp.headers["Location"]
    assert await pool.fetchval("SELECT message_channel FROM draw_entries") == "whatsapp"
    page = await (await app_client.get(receipt + "?lang=fr")).text()
    assert "<dd>Par WhatsApp</dd>" in page
    assert radios(page) == [("sms", False), ("whatsapp", True)]
    resp = await app_client.post(
        receipt + "/channel",
        data={"_csrf": hidden(page, "_csrf"), "channel": "sms"},
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"] == receipt + "?done=channel"
    page = await (await app_client.get(resp.headers["Location"] + "&lang=fr")).text()
    assert "Votre choix est enregistré" in page and "<dd>Par SMS</dd>" in page
    assert await pool.fetchval("SELECT message_channel FROM draw_entries") == "sms"
    refused = await app_client.post(
        receipt + "/channel", data={"_csrf": hidden(page, "_csrf"), "channel": "fax"}
    )
    assert refused.status == 422
    assert await pool.fetchval("SELECT message_channel FROM draw_entries") == "sms"


async def whatsapp_week(
    pool: asyncpg.Pool, clock: FakeClock, browsers: Callable[[], Browser], settings: Settings
) -> tuple[Browser, str]:
    """A booking by WhatsApp whose confirmation was read and whose first
    reminder was refused (the number has no WhatsApp); a manager's browser
    and the booking's reference."""
    booking = await make_booking(
        pool, "consulate-paris", "passport", after=clock() + timedelta(days=5)
    )
    await pool.execute("UPDATE bookings SET message_channel = 'whatsapp' WHERE id = $1", booking.id)
    rows = await pool.fetch(
        "SELECT id FROM outbox WHERE booking_id = $1 AND channel = 'sms' ORDER BY id", booking.id
    )
    confirmation, first_reminder, second_reminder = (r["id"] for r in rows)
    # The confirmation read, a reminder refused: the number has no WhatsApp.
    await pool.execute(
        """UPDATE outbox SET channel = 'whatsapp', status = 'read', sent_at = $2
           WHERE id = $1""",
        confirmation,
        clock(),
    )
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE outbox SET channel = 'whatsapp', status = 'sending' WHERE id = ANY($1)",
            [first_reminder, second_reminder],
        )
        await conn.execute("UPDATE outbox SET status = 'pending' WHERE id = $1", second_reminder)
        await delivery.give_up(
            conn, first_reminder, channel="whatsapp", code="63003",
            reason="permanent_error", now=clock(), secret_key=settings.secret_key,
        )  # fmt: skip
    browser = browsers()
    await browser.login(MANAGER)
    return browser, booking.reference


async def test_the_office_booking_page_shows_the_switch(
    pool: asyncpg.Pool, clock: FakeClock, browsers: Callable[[], Browser], settings: Settings
) -> None:
    browser, reference = await whatsapp_week(pool, clock, browsers, settings)
    page = await (await browser.get(f"/office/consulate-paris/bookings/{reference}")).text()
    assert '<dd class="message-channel">SMS (switched: the number has no WhatsApp)</dd>' in page
    assert "not_whatsapp_user" in page  # the reminder moved to SMS says why


async def test_the_office_statistics_count_whatsapp_messages_by_status(
    pool: asyncpg.Pool, clock: FakeClock, browsers: Callable[[], Browser], settings: Settings
) -> None:
    browser, _ = await whatsapp_week(pool, clock, browsers, settings)
    body = await (await browser.get("/api/v1/offices/consulate-paris/stats?week=2027-W05")).json()
    assert body["whatsapp_messages"] == {
        "read": 1,
        "delivered": 0,
        "sent": 0,
        "undelivered": 0,
        "failed": 1,
    }
    page = await (await browser.get("/office/consulate-paris/stats?week=2027-W05")).text()
    assert '<dd data-stat="whatsapp_messages">2 (Read: 1 · Failed: 1)</dd>' in page
