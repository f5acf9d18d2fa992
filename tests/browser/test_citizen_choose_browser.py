"""Issue 11 items 1, 2 and 7 in a real Chromium, in Arabic and French at
320 px, with screenshots under tests/artifacts/: the week page opens a day
(days with their free times or why none, times by morning and afternoon, the
first free time at the top), a reschedule asks before it moves, and the
confirmation page's panel, masked contacts and copy button."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import asyncpg
from playwright.async_api import Browser, expect

from service import bookings
from service.bookings import Booked
from service.domain.validation import RawDetails
from tests.browser.test_citizen_browser import NARROW, booking_row, new_context
from tests.fixtures.app import LiveServer, any_document, prove_contacts

WORDS = {
    "fr": {
        "closed": "Fermé",
        "full": "Complet",
        "morning": "Matin",
        "afternoon": "Après-midi",
        "choose": "Choisir cet horaire",
        "yes": "Oui, déplacer mon rendez-vous",
        "keep": "Non, garder mon horaire actuel",
        "moved": "Votre rendez-vous a été déplacé.",
        "cancel": "Annuler ce rendez-vous",
        "confirm_cancel": "Oui, annuler ce rendez-vous",
        "again": "Prendre un nouveau rendez-vous",
        "calendar": "Ajouter à mon agenda",
    },
    "ar": {
        "closed": "مغلق",
        "full": "ممتلئ",
        "morning": "الصباح",
        "afternoon": "بعد الزوال",
        "choose": "اختر هذا الوقت",
        "yes": "نعم، انقل موعدي",
        "keep": "لا، احتفظ بموعدي الحالي",
        "moved": "تم تغيير وقت موعدك.",
        "cancel": "إلغاء هذا الموعد",
        "confirm_cancel": "نعم، ألغِ هذا الموعد",
        "again": "احجز موعدًا جديدًا",
        "calendar": "أضف إلى تقويمي",
    },
}
LANGUAGES = ("ar", "fr")


async def book(server: LiveServer, language: str, slot_id: int) -> tuple[Booked, str]:
    token = secrets.token_urlsafe(32)
    await prove_contacts(server.pool, "+33612345678", "fatima@example.com")
    booked = await bookings.book(
        server.pool, slot_id=slot_id, service_id="passport",
        details=RawDetails(name="Fatima Zahra Ait Lahcen", phone="06 12 34 56 78",
                           email="fatima@example.com", language=language,
                           document_number=any_document()),
        secret_key=server.secret_key, now=server.clock(), manage_token=token,
    )  # fmt: skip
    return booked, f"{server.url}/b/{booked.booking.reference}/{token}"


async def passport_slots(pool: asyncpg.Pool, day: str) -> list[int]:
    """The Paris passport times of one local day (YYYY-MM-DD)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT id FROM slots WHERE office_id = 'consulate-paris' AND service_id = 'passport'
               AND (starts_at AT TIME ZONE 'Europe/Paris')::date = $1::text::date
               ORDER BY starts_at""",
            day,
        )
    return [r["id"] for r in rows]


async def test_the_week_page_opens_one_day_by_morning_and_afternoon(
    browser: Browser, live_server: LiveServer, artifacts: Path
) -> None:
    # Wednesday 3 February is booked out: its day says so instead of a link.
    async with live_server.pool.acquire() as conn:
        await conn.execute(
            "UPDATE slots SET taken = capacity WHERE id = ANY($1::bigint[])",
            await passport_slots(live_server.pool, "2027-02-03"),
        )
    url = f"{live_server.url}/offices/consulate-paris/passport"
    for language in LANGUAGES:
        words = WORDS[language]
        context = await new_context(
            browser, javascript=False, viewport=NARROW, locale=f"{language}-MA"
        )
        page = await context.new_page()
        await page.goto(f"{url}?lang={language}")
        days = page.locator("ul.days > li")
        await expect(days).to_have_count(7)
        # Saturday and Sunday are closed, Wednesday full: said, not linked.
        for index, reason in ((2, words["full"]), (5, words["closed"]), (6, words["closed"])):
            await expect(days.nth(index)).to_contain_text(reason)
            await expect(days.nth(index).locator("a")).to_have_count(0)
        # The first day with a free time is open, and only its times are links.
        opened = page.locator('ul.days a[aria-current="date"]')
        await expect(opened).to_have_count(1)
        count = int(re.findall(r"\d+", await opened.locator(".count").inner_text())[0])
        await expect(page.locator(".times a")).to_have_count(count)
        assert count < 30
        await expect(page.locator("#times h4")).to_have_text([words["afternoon"]])

        # Another day, by a plain link: its mornings and afternoons.
        await days.nth(1).locator("a").click()
        await expect(page).to_have_url(re.compile(r"\?day=2027-02-02#times$"))
        await expect(page.locator("#times h4")).to_have_text(
            [words["morning"], words["afternoon"]]
        )
        height = await page.evaluate("document.documentElement.scrollHeight")
        assert height < 2200, height  # a day's times, not a week's (4,030 px before)
        await page.screenshot(path=artifacts / f"{language}-slots-day-320.png", full_page=True)

        # The first free time, one tap away from its form: the first time of
        # the day opened, no day before it having any.
        await page.goto(f"{url}?lang={language}")
        shortcut = page.get_by_role("link", name=words["choose"])
        href = await shortcut.get_attribute("href")
        assert href == await page.locator(".times a").first.get_attribute("href")
        assert await days.nth(0).locator('a[aria-current="date"]').count() == 1
        await page.screenshot(path=artifacts / f"{language}-slots-first-free-320.png")
        await shortcut.click()
        await expect(page).to_have_url(re.compile(r"/book\?slot=\d+$"))
        await context.close()


async def test_a_reschedule_asks_before_it_moves(
    browser: Browser, live_server: LiveServer, artifacts: Path
) -> None:
    slots = await passport_slots(live_server.pool, "2027-02-02")
    for language in LANGUAGES:
        words = WORDS[language]
        booked, manage = await book(live_server, language, slots[0])
        context = await new_context(
            browser, javascript=False, viewport=NARROW, locale=f"{language}-MA"
        )
        page = await context.new_page()
        await page.goto(f"{manage}/reschedule?lang={language}&day=2027-02-04")
        target = page.locator(".times a").nth(2)
        new_time = (await target.inner_text()).strip()
        await target.click()
        move = page.locator(".move")
        await expect(move).to_contain_text(new_time)
        await expect(move.locator("time")).to_have_count(2)
        await page.screenshot(path=artifacts / f"{language}-reschedule-ask-320.png", full_page=True)
        # Keep: back to the appointment, nothing moved.
        await page.get_by_role("link", name=words["keep"]).click()
        assert (await booking_row(live_server.pool, booked.booking.reference))[
            "slot_id"
        ] == booked.booking.slot_id
        await page.goto(f"{manage}/reschedule?lang={language}&day=2027-02-04")
        await page.locator(".times a").nth(2).click()
        await page.get_by_role("button", name=words["yes"]).click()
        await expect(page.get_by_role("status")).to_have_text(words["moved"])
        row = await booking_row(live_server.pool, booked.booking.reference)
        assert row["slot_id"] != booked.booking.slot_id
        await context.close()
        # The next language's booking takes the next slot of the day.
        slots = slots[1:]


async def test_the_confirmation_page_panel_masks_contacts_and_copies_the_link(
    browser: Browser, live_server: LiveServer, artifacts: Path
) -> None:
    slots = await passport_slots(live_server.pool, "2027-02-02")
    for n, language in enumerate(LANGUAGES):
        words = WORDS[language]
        booked, manage = await book(live_server, language, slots[n])
        reference = booked.booking.reference
        # Without JavaScript: the link as a button, no copy button.
        context = await new_context(
            browser, javascript=False, viewport=NARROW, locale=f"{language}-MA"
        )
        page = await context.new_page()
        await page.goto(f"{manage}/confirmation?lang={language}")
        main = page.locator("main")
        panel = page.locator(".panel")
        await expect(panel.locator(".reference")).to_have_text(reference)
        assert (await main.inner_text()).count(reference) == 1
        await expect(main).to_contain_text("+33 6 •• •• •• 78")
        await expect(main).to_contain_text("f•••@example.com")
        await expect(main).not_to_contain_text("12 34 56")
        await expect(main).not_to_contain_text("fatima@")
        await expect(main).not_to_contain_text(".ics")
        await expect(page.get_by_role("link", name=words["calendar"])).to_be_visible()
        await expect(page.locator(".manage-link a")).to_have_attribute("href", manage)
        await expect(page.locator("button[data-copy]")).to_be_hidden()
        await page.screenshot(path=artifacts / f"{language}-confirmation-panel-320.png",
                              full_page=True)  # fmt: skip
        # After a cancellation, a way to book again.
        await page.goto(f"{manage}?lang={language}")
        await page.get_by_role("link", name=words["cancel"]).click()
        await page.get_by_role("button", name=words["confirm_cancel"]).click()
        again = page.get_by_role("link", name=words["again"])
        await expect(again).to_have_attribute("href", "/offices/consulate-paris/passport")
        await page.screenshot(path=artifacts / f"{language}-manage-cancelled-320.png",
                              full_page=True)  # fmt: skip
        await context.close()

    # With JavaScript: the copy button puts the manage link on the clipboard.
    booked, manage = await book(live_server, "fr", slots[len(LANGUAGES)])
    context = await new_context(browser, javascript=True, viewport=NARROW)
    await context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=live_server.url
    )
    page = await context.new_page()
    await page.goto(f"{manage}/confirmation?lang=fr")
    copy = page.get_by_role("button", name="Copier le lien")
    await expect(copy).to_be_visible()
    await copy.click()
    await expect(page.locator("#copy-status")).to_have_text("Lien copié.")
    assert await page.evaluate("navigator.clipboard.readText()") == manage
    await context.close()
