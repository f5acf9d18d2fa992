"""The waiting list on the pages, without JavaScript: the times page leads to
the form (days, parts of day, the booking form's details and channel), the
code step is the booking's own, the receipt leaves the list; in French and
Arabic. The office's service page shows the list without names, and an
agent adds someone at the counter."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service import draw
from service.config import Settings
from tests.clock import FakeClock
from tests.codesink import code_for, send_codes
from tests.fixtures.office import AGENT, MANAGER, Browser
from tests.integration.test_citizen_pages import hidden
from tests.integration.test_draw_request_pages import field_errors, form_body, ticked
from tests.integration.test_waitlist_flow import (
    OFFICE,
    SERVICE,
    THU,
    WED,
    WED_MORNING,
    book,
    cancel,
    entry,
    join,
    offer_token,
    scarce,
)

Client = TestClient[Any, Any]
TIMES = f"/offices/{OFFICE}/{SERVICE}"
FORM = f"{TIMES}/waitlist"
WORDS = {
    "fr": {
        "link": "Aucun horaire ne vous convient ? Inscrivez-vous sur la liste d’attente",
        "heading": "S’inscrire sur la liste d’attente",
        "no_day": "Choisissez au moins un jour.",
        "code": "Votre inscription sur la liste d’attente attend ce code",
        "receipt": "Vous êtes sur la liste d’attente",
        "left": "Vous avez quitté la liste d’attente",
        "offer": "Cet horaire s’est libéré sur la liste d’attente",
    },
    "ar": {
        "link": "لا يناسبكم أي موعد؟ سجلوا في لائحة الانتظار",
        "heading": "التسجيل في لائحة الانتظار",
        "no_day": "اختر يوماً واحداً على الأقل.",
        "code": "ينتظر تسجيلكم في لائحة الانتظار هذا الرمز",
        "receipt": "أنتم في لائحة الانتظار",
        "left": "خرجتم من لائحة الانتظار",
        "offer": "تحرر هذا الموعد في لائحة الانتظار",
    },
}


def join_data(page: str, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "_csrf": hidden(page, "_csrf"),
        "days": [WED.isoformat(), THU.isoformat()],
        "parts": ["morning"],
        "name": "Amina El Idrissi",
        "phone_country": "FR",
        "phone": "06 12 34 56 78",
        "email": "",
        "language": "fr",
        "channel": "sms",
    }
    data.update(extra)
    return data


@pytest.mark.parametrize("lang", ["fr", "ar"])
async def test_joining_through_the_code_step_to_the_receipt_then_leaving(
    lang: str, app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    words = WORDS[lang]
    times = await (await app_client.get(f"{TIMES}?lang={lang}")).text()
    assert words["link"] in times and f'href="{FORM}"' in times
    page = await (await app_client.get(f"{FORM}?lang={lang}")).text()
    assert words["heading"] in page
    # The days of the list's horizon with times, and the channel choice.
    assert f'value="{WED.isoformat()}"' in page and 'name="channel"' in page
    # Nothing chosen: the errors in the page's language, nothing written.
    resp = await app_client.post(FORM, data=form_body(join_data(page, days=[], parts=[])))
    assert resp.status == 422 and words["no_day"] in await resp.text()
    # A day far past the horizon is refused as well.
    resp = await app_client.post(FORM, data=form_body(join_data(page, days=["2027-06-01"])))
    assert resp.status == 422
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM draw_entries") == 0
    resp = await app_client.post(FORM, data=form_body(join_data(page)), allow_redirects=False)
    assert resp.status == 303
    link = resp.headers["Location"]
    match = re.fullmatch(r"/r/([0-9a-f]{32})/([\w-]+)", link)
    assert match
    # The code step of a held booking, speaking of the list.
    step = await (await app_client.get(link)).text()
    assert "+33 6 12 34 56 78" in step and words["code"] in step
    code = await code_for(pool, settings, clock, "+33612345678")
    resp = await app_client.post(
        f"{link}/code", data={"_csrf": hidden(step, "_csrf"), "code": code},
        allow_redirects=False,
    )  # fmt: skip
    assert resp.status == 303 and resp.headers["Location"] == link
    receipt = await (await app_client.get(link)).text()
    assert words["receipt"] in receipt
    # Told by SMS that it counts, with the receipt's link to leave later.
    [(_, body)] = (await send_codes(pool, settings, clock, "entry_received")).sms
    assert body.startswith("Liste d'attente") and f"/r/{match[1]}/" in body
    # A second place for the same phone is refused, whatever else changes.
    page = await (await app_client.get(FORM)).text()
    resp = await app_client.post(FORM, data=form_body(join_data(page, name="Autre Nom")))
    assert resp.status == 409
    # Leaving by the receipt's link.
    resp = await app_client.post(
        f"{link}/withdraw", data={"_csrf": hidden(receipt, "_csrf")}, allow_redirects=False
    )
    assert resp.status == 303
    gone = await (await app_client.get(link)).text()
    assert words["left"] in gone
    assert (await entry(pool, match[1]))["outcome"] == "withdrawn"


@pytest.mark.parametrize("lang", ["fr", "ar"])
async def test_every_problem_of_a_submission_comes_back_at_once_on_its_field(
    lang: str, app_client: Client, pool: asyncpg.Pool
) -> None:
    page = await (await app_client.get(f"{FORM}?lang={lang}")).text()
    # No name, no contact, no day, no part of day: one round, not two.
    bad = join_data(page, name="", phone="", days=[], parts=[])
    resp = await app_client.post(FORM, data=form_body(bad))
    assert resp.status == 422
    wrong = await resp.text()
    assert field_errors(wrong) == {"name", "phone", "days", "parts"}
    assert WORDS[lang]["no_day"] in wrong
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM draw_entries") == 0


async def test_a_form_sent_back_shows_the_days_and_parts_of_day_as_ticked(
    app_client: Client, pool: asyncpg.Pool
) -> None:
    page = await (await app_client.get(f"{FORM}?lang=ar")).text()
    # A blank form offers both parts of the day.
    assert ticked(page, "days") == set() and ticked(page, "parts") == {"morning", "afternoon"}
    resp = await app_client.post(
        FORM, data=form_body(join_data(page, days=[THU.isoformat()], parts=[]))
    )
    assert resp.status == 422
    wrong = await resp.text()
    assert field_errors(wrong) == {"parts"}
    # The error names the afternoon as its box does (بعد الزوال).
    assert "اختر الصباح أو بعد الزوال أو كليهما." in wrong and "الظهر" not in wrong
    # Neither part ticked, as sent: not both again beside the error.
    assert ticked(wrong, "parts") == set() and ticked(wrong, "days") == {THU.isoformat()}
    resp = await app_client.post(FORM, data=form_body(join_data(page, name="")))
    assert ticked(await resp.text(), "parts") == {"morning"}


@pytest.mark.parametrize(
    ("lang", "both", "afternoon"),
    [
        ("ar", "الصباح، بعد الزوال", "بعد الزوال"),
        ("fr", "Matin, Après-midi", "Après-midi"),
        ("es", "Mañana, Tarde", "Tarde"),
    ],
)
async def test_the_receipt_lists_the_parts_of_the_day_apart(
    lang: str, both: str, afternoon: str, app_client: Client, pool: asyncpg.Pool,
    settings: Settings, clock: FakeClock,
) -> None:  # fmt: skip
    # Run together, "الصباح بعد الزوال" read "the morning after noon".
    for n, parts, shown in [(1, ("morning", "afternoon"), both), (2, ("afternoon",), afternoon)]:
        receipt = await join(pool, settings, clock, n, [WED], parts)
        link = draw.receipt_url(receipt.entry_id, receipt.token)
        page = await (await app_client.get(f"{link}?lang={lang}")).text()
        assert f"<dd>{shown}</dd>" in page


@pytest.mark.parametrize("lang", ["fr", "ar"])
async def test_the_offer_page_says_the_seat_comes_from_the_waiting_list(
    lang: str, app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    [slot] = await scarce(pool, SERVICE, WED_MORNING)
    booked = await book(pool, settings, clock, slot, 0)
    waiting = await join(pool, settings, clock, 1, [WED])
    await cancel(pool, settings, clock, booked)
    reference = (await entry(pool, waiting.entry_id))["reference"]
    token = await offer_token(pool, settings, reference)
    page = await (await app_client.get(f"/d/{reference}/{token}?lang={lang}")).text()
    assert WORDS[lang]["offer"] in page and waiting.entry_id not in page
    # Its seat is not among the times on sale meanwhile.
    times = await (await app_client.get(f"{TIMES}?day={WED.isoformat()}")).text()
    assert f"slot={slot}" not in times
    resp = await app_client.post(
        f"/d/{reference}/{token}", data={"_csrf": hidden(page, "_csrf"), "answer": "accept"},
        allow_redirects=False,
    )  # fmt: skip
    assert resp.status == 303
    assert (await entry(pool, waiting.entry_id))["status"] == "confirmed"


async def test_a_draw_services_waiting_list_form_leads_to_its_request_form(
    app_client: Client, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    await draw.set_mode(pool, OFFICE, SERVICE, "draw", clock())
    resp = await app_client.get(FORM, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == f"{TIMES}/draw"


async def test_the_office_sees_the_list_without_names_and_adds_someone_at_the_counter(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock, browsers: Callable[[], Browser]
) -> None:
    await join(pool, settings, clock, 1, [WED])
    await join(pool, settings, clock, 2, [THU], ("afternoon",))
    manager = browsers()
    assert (await manager.login(MANAGER)).status == 303
    page = await (await manager.get(f"/office/{OFFICE}/services/{SERVICE}")).text()
    assert "2 people on the list." in page
    assert "Personne" not in page and "wait1@example.org" not in page
    agent = browsers()
    assert (await agent.login(AGENT)).status == 303
    list_page = f"/office/{OFFICE}/services/{SERVICE}/waitlist"
    form = await (await agent.get(list_page)).text()
    assert "2 people on the list." in form and "Add someone at the counter" in form
    # Each entry's parts of the day, apart.
    assert "<td>Morning, Afternoon</td>" in form and "<td>Afternoon</td>" in form
    body = [("_csrf", agent.csrf), ("days", WED.isoformat()), ("parts", "morning"),
            ("name", "Fatima Zahra"), ("phone", "06 11 22 33 44"), ("phone_country", "FR"),
            ("language", "ar")]  # fmt: skip
    r = await agent.session.post(list_page, data=body)
    done = await r.text()
    assert r.status == 200 and "Added to the waiting list" in done
    assert "3 people on the list." in done and "At the counter" in done
    # The same phone again: refused, nothing written.
    r = await agent.session.post(list_page, data=body)
    assert r.status == 409
    # No part of the day: sent back with none ticked, as sent.
    r = await agent.session.post(list_page, data=[p for p in body if p[0] != "parts"])
    assert r.status == 422 and ticked(await r.text(), "parts") == set()
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT created_by, verified_at, language FROM draw_entries WHERE phone IS NOT NULL"
        )
        assert await conn.fetchval("SELECT count(*) FROM draw_entries") == 3
    assert row["created_by"].startswith("staff:") and row["verified_at"] is not None
    assert row["language"] == "ar"
