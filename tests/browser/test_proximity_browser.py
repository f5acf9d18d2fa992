"""Issue 16 in a real Chromium, without JavaScript, at 320 px in Arabic and
French: the "document ready" notice on the manage page, the feedback form
(answered once), and the office's list of uncollected documents; with
screenshots."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from service import bookings
from service.bookings import set_status_by_office
from service.domain.booking import Status
from service.domain.documents import FileState
from service.domain.staff import Role, StaffMember
from service.domain.validation import RawDetails
from service.office.documents import move_file
from service.store.audit import Actor
from tests.browser.test_citizen_browser import NARROW, new_context
from tests.fixtures.app import LiveServer, any_document, prove_contacts
from tests.fixtures.office import AGENT, START, free_slot

pytestmark = pytest.mark.browser


async def no_sideways_scroll(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= NARROW["width"], width


async def test_ready_notice_feedback_form_and_uncollected_list_at_320_px(
    browser: Browser, live_server: LiveServer, artifacts: Path
) -> None:
    pool = live_server.pool
    slot = await free_slot(pool, "consulate-paris", "passport", START + timedelta(hours=3))
    # At the counter, during the appointment.
    at = slot["starts_at"] + timedelta(minutes=5)
    token = secrets.token_urlsafe(32)
    await prove_contacts(pool, "amina@example.org", secret_key=live_server.secret_key, at=START)
    booked = await bookings.book(
        pool, slot_id=slot["id"], service_id="passport",
        details=RawDetails(name="Amina El Idrissi", email="amina@example.org", language="ar",
                           document_number=any_document()),
        secret_key=live_server.secret_key, now=START, manage_token=token,
    )  # fmt: skip
    reference = booked.booking.reference
    async with pool.acquire() as conn:
        for status in (Status.CHECKED_IN, Status.DONE):
            await set_status_by_office(
                conn, reference, "consulate-paris", status, Actor("staff", "1"), at
            )
        staff_id = await conn.fetchval("SELECT id FROM staff WHERE email = $1", AGENT.email)
    member = StaffMember(staff_id, AGENT.email, Role.AGENT, frozenset({"consulate-paris"}))
    for state in (FileState.RECEIVED, FileState.IN_PRODUCTION, FileState.READY):
        await move_file(pool, "consulate-paris", reference, state, None, member, at)

    manage = f"{live_server.url}/b/{reference}/{token}"
    ready = {"ar": "جاهز للسحب", "fr": "Prêt au retrait"}
    for language in ("ar", "fr"):
        context = await new_context(
            browser, javascript=False, viewport=NARROW, locale=f"{language}-MA"
        )
        page = await context.new_page()
        await page.goto(f"{manage}?lang={language}")
        notice = page.locator("#document")
        await expect(notice).to_be_visible()
        await expect(notice).to_contain_text(ready[language])
        await expect(notice).to_contain_text("14:00")
        await no_sideways_scroll(page)
        await page.screenshot(path=artifacts / f"{language}-manage-document-ready-320.png")
        await context.close()

    form = f"{live_server.url}/f/{reference}/{token}"
    for language in ("ar", "fr"):
        context = await new_context(
            browser, javascript=False, viewport=NARROW, locale=f"{language}-MA"
        )
        page = await context.new_page()
        await page.goto(f"{form}?lang={language}")
        await expect(page.locator("form.feedback-form")).to_be_visible()
        await no_sideways_scroll(page)
        await page.screenshot(path=artifacts / f"{language}-feedback-form-320.png", full_page=True)
        await context.close()

    # Answered without JavaScript, in French; recorded once.
    context = await new_context(browser, javascript=False, viewport=NARROW, locale="fr-FR")
    page = await context.new_page()
    await page.goto(f"{form}?lang=fr")
    await page.get_by_label("4 – satisfait(e)").check()
    await page.get_by_label("Non, une fois a suffi").check()
    await page.get_by_label("Un commentaire (facultatif, dans la langue de votre choix)").fill(
        "Accueil rapide"
    )
    await page.get_by_role("button", name="Envoyer mon avis").click()
    await expect(page.locator(".notice")).to_contain_text("Merci : votre avis est enregistré.")
    assert await page.locator("form.feedback-form").count() == 0
    await page.screenshot(path=artifacts / "fr-feedback-thanks-320.png")
    await context.close()
    assert await pool.fetchval("SELECT count(*) FROM feedback") == 1

    # The office's list of documents waiting for pickup, in both languages.
    for language in ("ar", "fr"):
        context = await browser.new_context(
            base_url=live_server.url, viewport=NARROW, locale=f"{language}-MA",
            java_script_enabled=False,
        )  # fmt: skip
        page = await context.new_page()
        await page.goto(f"/office/login?lang={language}")
        await page.locator("#email").fill(AGENT.email)
        await page.locator("#password").fill(AGENT.password)
        await page.locator("form button[type=submit]").first.click()
        await page.goto(f"/office/consulate-paris/documents?lang={language}")
        row = page.locator(f'tr[data-reference="{reference}"]')
        await expect(row).to_be_visible()
        await page.screenshot(
            path=artifacts / f"{language}-office-uncollected-320.png", full_page=True
        )
        await context.close()
