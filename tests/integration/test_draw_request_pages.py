"""A citizen's request in a draw on the pages, without JavaScript: the
service's page leads to the request form while a window is open, the code
step is the booking's own, the receipt shows the entry id and the seed's
hash, a request can be withdrawn; in Arabic and French."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service import draw
from service.config import Settings
from service.domain.verification import contact_hash
from tests.clock import FakeClock
from tests.codesink import code_for, send_codes
from tests.integration.test_citizen_pages import hidden
from tests.integration.test_draw_flow import (
    FIRST,
    LAST,
    OFFICE,
    SERVICE,
    STAFF,
    draw_service,
    person,
    tick,
)

Client = TestClient[Any, Any]
FORM = f"/offices/{OFFICE}/{SERVICE}/draw"


def request_data(page: str, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "_csrf": hidden(page, "_csrf"),
        "window": hidden(page, "window"),
        "days": [FIRST.isoformat(), LAST.isoformat()],
        "parts": ["morning"],
        "name": "Amina El Idrissi",
        "phone_country": "FR",
        "phone": "06 12 34 56 78",
        "email": "",
        "language": "fr",
    }
    data.update(extra)
    return data


def form_body(data: dict[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        for one in value if isinstance(value, list) else [value]:
            pairs.append((key, one))
    return pairs


def ticked(page: str, name: str) -> set[str]:
    """The values of the checkboxes `name` a form page shows ticked."""
    return set(re.findall(rf'name="{name}" value="([^"]*)" checked', page))


def field_errors(page: str) -> set[str]:
    """The fields a form page marks as at fault."""
    return set(re.findall(r'id="f-([\w-]+)-error"', page))


@pytest.mark.parametrize("lang", ["fr", "ar"])
async def test_a_request_through_the_code_step_to_the_receipt_then_withdrawn(
    lang: str, app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    # An instant service has no request form: its times are on sale.
    resp = await app_client.get(FORM, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"/offices/{OFFICE}/{SERVICE}"
    window_id = await draw_service(pool, clock)
    seed_hash = (await (await app_client.get(f"/api/v1/draws/{window_id}")).json())["seed_sha256"]
    # The service's times page leads to its request form: no seat is on sale.
    resp = await app_client.get(f"/offices/{OFFICE}/{SERVICE}", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == FORM
    page = await (await app_client.get(f"{FORM}?lang={lang}")).text()
    assert seed_hash in page and f'href="/draws/{window_id}"' in page
    assert {"fr": "Demander une place au tirage au sort", "ar": "طلب مكان في القرعة"}[lang] in page
    # Nothing chosen: the errors say so in the page's language, nothing is written.
    bad = request_data(page, days=[], parts=[])
    resp = await app_client.post(FORM, data=form_body(bad))
    assert resp.status == 422
    wrong = await resp.text()
    assert {"fr": "Choisissez au moins un jour.", "ar": "اختر يوماً واحداً على الأقل."}[lang] in wrong
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM draw_entries") == 0
    resp = await app_client.post(FORM, data=form_body(request_data(page)), allow_redirects=False)
    assert resp.status == 303
    link = resp.headers["Location"]
    match = re.fullmatch(r"/r/([0-9a-f]{32})/([\w-]+)", link)
    assert match
    entry_id = match[1]
    # The code step, as a held booking's.
    page = await (await app_client.get(link)).text()
    assert "+33 6 12 34 56 78" in page and entry_id in page
    assert {"fr": "Saisissez le code", "ar": "أدخل الرمز"}[lang] in page
    # Another code asked for at once: the code step says when, with Retry-After.
    resp = await app_client.post(f"{link}/code/resend", data={"_csrf": hidden(page, "_csrf")})
    assert resp.status == 429 and resp.headers["Retry-After"] == "60"
    assert {"fr": "Saisissez le code", "ar": "أدخل الرمز"}[lang] in await resp.text()
    code = await code_for(pool, settings, clock, "+33612345678")
    resp = await app_client.post(
        f"{link}/code", data={"_csrf": hidden(page, "_csrf"), "code": "12"}
    )
    assert resp.status == 422 and 'aria-invalid="true"' in await resp.text()
    resp = await app_client.post(
        f"{link}/code", data={"_csrf": hidden(page, "_csrf"), "code": code},
        allow_redirects=False,
    )  # fmt: skip
    assert resp.status == 303 and resp.headers["Location"] == link
    receipt = await (await app_client.get(link)).text()
    assert entry_id in receipt and seed_hash in receipt
    # Proved, there is no code to send again: the receipt says so (409).
    resp = await app_client.post(f"{link}/code/resend", data={"_csrf": hidden(page, "_csrf")})
    assert resp.status == 409 and entry_id in await resp.text()
    assert {"fr": "Votre demande est dans le tirage au sort", "ar": "طلبكم في القرعة"}[
        lang
    ] in receipt
    # A second request for the same phone is refused, whatever else changes.
    page = await (await app_client.get(FORM)).text()
    resp = await app_client.post(
        FORM, data=form_body(request_data(page, name="Autre Nom", days=[FIRST.isoformat()]))
    )
    assert resp.status == 409
    # Withdrawn: out of the draw.
    resp = await app_client.post(
        f"{link}/withdraw", data={"_csrf": hidden(receipt, "_csrf")}, allow_redirects=False
    )
    assert resp.status == 303
    gone = await (await app_client.get(link)).text()
    assert {"fr": "Vous avez retiré votre demande", "ar": "سحبتم طلبكم"}[lang] in gone
    clock.advance(timedelta(days=7))
    await tick(pool, settings, clock)
    doc = await (await app_client.get(f"/api/v1/draws/{window_id}")).json()
    assert doc["entries"] == []


async def test_the_receipt_opens_only_with_its_token_and_says_not_served(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    await draw_service(pool, clock, capacity=1)
    async with pool.acquire() as conn:
        for address in ("a@example.org", "b@example.org"):
            await conn.execute(
                "INSERT INTO verified_contacts VALUES ($1, $2)",
                contact_hash("email", address, settings.secret_key),
                clock(),
            )
    links = []
    for address in ("a@example.org", "b@example.org"):
        page = await (await app_client.get(FORM)).text()
        data = request_data(page, phone="", email=address, parts=["morning", "afternoon"])
        resp = await app_client.post(FORM, data=form_body(data), allow_redirects=False)
        assert resp.status == 303
        links.append(resp.headers["Location"])
    entry_id = links[0].split("/")[2]
    assert (await app_client.get(f"/r/{entry_id}/wrongtoken0000000000")).status == 401
    assert (await app_client.get(f"/r/{'0' * 32}/wrongtoken0000000000")).status == 401
    clock.advance(timedelta(days=7))
    await tick(pool, settings, clock)
    pages = [await (await app_client.get(f"{link}?lang=fr")).text() for link in links]
    assert sum("Vous êtes sur la liste d’attente" in p for p in pages) == 1
    assert sum("Une place vous est proposée" in p for p in pages) == 1


async def test_the_form_offers_only_the_days_with_times(
    app_client: Client, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    # The period is Monday 15 to Friday 19 February; times only on the 16th
    # and the 18th (a holiday, a day the office is shut: no times either).
    await draw_service(pool, clock)
    async with pool.acquire() as conn:
        await conn.execute(
            """UPDATE slots SET capacity = 0 WHERE office_id = $1 AND service_id = $2
                 AND (starts_at AT TIME ZONE 'Europe/Paris')::date NOT IN ($3, $4)""",
            OFFICE, SERVICE, date(2027, 2, 16), date(2027, 2, 18),
        )  # fmt: skip
    page = await (await app_client.get(f"{FORM}?lang=fr")).text()
    offered = re.findall(r'name="days" value="([0-9-]+)"', page)
    assert offered == ["2027-02-16", "2027-02-18"]


@pytest.mark.parametrize("lang", ["fr", "ar"])
async def test_every_problem_of_a_request_comes_back_at_once_on_its_field(
    lang: str, app_client: Client, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    await draw_service(pool, clock)
    page = await (await app_client.get(f"{FORM}?lang={lang}")).text()
    # No name, no contact, no day, no part of day: one round, not two.
    bad = request_data(page, name="", phone="", days=[], parts=[])
    resp = await app_client.post(FORM, data=form_body(bad))
    assert resp.status == 422
    wrong = await resp.text()
    assert field_errors(wrong) == {"name", "phone", "days", "parts"}
    assert {"fr": "Choisissez au moins un jour.", "ar": "اختر يوماً واحداً على الأقل."}[lang] in wrong
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM draw_entries") == 0


async def test_a_request_sent_back_shows_the_days_and_parts_of_day_as_ticked(
    app_client: Client, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    await draw_service(pool, clock)
    page = await (await app_client.get(f"{FORM}?lang=ar")).text()
    # A blank form offers both parts of the day.
    assert ticked(page, "days") == set() and ticked(page, "parts") == {"morning", "afternoon"}
    resp = await app_client.post(FORM, data=form_body(request_data(page, parts=[])))
    assert resp.status == 422
    wrong = await resp.text()
    assert field_errors(wrong) == {"parts"}
    # Neither part ticked, as sent: not both again beside the error.
    assert ticked(wrong, "parts") == set()
    assert ticked(wrong, "days") == {FIRST.isoformat(), LAST.isoformat()}
    resp = await app_client.post(FORM, data=form_body(request_data(page, name="")))
    assert ticked(await resp.text(), "parts") == {"morning"}


async def test_a_request_that_counts_is_sent_its_receipt_and_a_withdrawn_one_is_not(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    await draw_service(pool, clock)

    async def received() -> list[asyncpg.Record]:
        return await pool.fetch(
            "SELECT channel, status, status_reason FROM outbox WHERE kind = 'entry_received'"
        )

    page = await (await app_client.get(FORM)).text()
    resp = await app_client.post(FORM, data=form_body(request_data(page)), allow_redirects=False)
    link = resp.headers["Location"]
    entry_id = link.split("/")[2]
    # Waiting for its code, it does not count yet: nothing to tell.
    assert await received() == []
    code = await code_for(pool, settings, clock, "+33612345678")
    resp = await app_client.post(
        f"{link}/code", data={"_csrf": hidden(page, "_csrf"), "code": code},
        allow_redirects=False,
    )  # fmt: skip
    assert resp.status == 303
    # Worth sending until the draw, whose own message says what came of it.
    assert await pool.fetchval(
        "SELECT appointment_at FROM outbox WHERE kind = 'entry_received'"
    ) == await pool.fetchval("SELECT closes_at FROM draw_windows")
    kept = await send_codes(pool, settings, clock, "entry_received")
    [(to, body)] = kept.sms
    assert to == "+33612345678" and "votre demande est enregistrée" in body
    # Its link opens the receipt, even with the page the citizen closed gone.
    found = re.search(r"/r/[0-9a-f]{32}/[\w-]+", body)
    assert found and found[0].startswith(f"/r/{entry_id}/")
    receipt = await app_client.get(found[0])
    assert receipt.status == 200 and entry_id in await receipt.text()
    assert [tuple(r) for r in await received()] == [("sms", "sent", None)]

    # A contact proved lately counts at once; withdrawn before its message
    # leaves, it is not told it counts.
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO verified_contacts VALUES ($1, $2)",
            contact_hash("email", "b@example.org", settings.secret_key),
            clock(),
        )
    page = await (await app_client.get(FORM)).text()
    data = request_data(page, phone="", email="b@example.org", name="Omar Tazi")
    resp = await app_client.post(FORM, data=form_body(data), allow_redirects=False)
    other = resp.headers["Location"]
    shown = await (await app_client.get(other)).text()
    resp = await app_client.post(
        f"{other}/withdraw", data={"_csrf": hidden(shown, "_csrf")}, allow_redirects=False
    )
    assert resp.status == 303
    kept = await send_codes(pool, settings, clock, "entry_received")
    assert kept.emails == [] and kept.sms == []
    rows = sorted(tuple(r) for r in await received())
    assert rows == [("email", "skipped", "booking_inactive"), ("sms", "sent", None)]


async def test_the_receipt_lists_the_parts_of_the_day_apart(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    window_id = await draw_service(pool, clock)
    receipt = await draw.request(
        pool, window_id, person(1, "ar"), [FIRST], ["morning", "afternoon"],
        secret_key=settings.secret_key, now=clock(), actor=STAFF,
    )  # fmt: skip
    page = await (await app_client.get(draw.receipt_url(receipt.entry_id, receipt.token))).text()
    # Run together, "الصباح بعد الزوال" read "the morning after noon".
    assert "<dd>الصباح، بعد الزوال</dd>" in page
