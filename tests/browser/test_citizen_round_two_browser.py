"""Citizen pages of issue 11 in a real Chromium: invalid fields and focus
(GOV.UK's pattern), the Arabic error example on one line, the services list
with each duration by its service, the citizen's place in the waiting room;
with screenshots at 320 and 1280 px in Arabic and French."""

from __future__ import annotations

import secrets
from pathlib import Path

from playwright.async_api import Browser, expect

from service import bookings
from service.bookings import set_status_by_office
from service.domain.booking import Status
from service.domain.staff import Role, StaffMember
from service.domain.validation import RawDetails
from service.office.queue import call_next
from service.store.audit import Actor
from tests.browser.test_citizen_browser import NARROW, WIDE, new_context
from tests.fixtures.app import LiveServer, any_document, prove_contacts
from tests.fixtures.office import AGENT, START, free_slot, make_booking

RED = "rgb(179, 38, 30)"
YELLOW = "rgb(255, 221, 0)"


async def test_invalid_fields_turn_red_and_focus_is_yellow(
    browser: Browser, live_server: LiveServer
) -> None:
    context = await new_context(browser, javascript=True)
    page = await context.new_page()
    await page.goto(live_server.url + "/offices/consulate-paris/passport?lang=fr")
    await page.locator(".times a").first.click()
    await page.get_by_role("button", name="Réserver ce rendez-vous").click()
    await page.wait_for_selector(".error-summary")

    def style(selector: str, prop: str) -> str:
        return f"getComputedStyle(document.querySelector('{selector}')).{prop}"

    name = "#f-name"
    assert await page.evaluate(style(name, "borderTopColor")) == RED
    # The bar beside the field and its message, on the reading side.
    bar = await page.evaluate(
        "[...document.querySelectorAll('.field')].filter(f => f.querySelector('#f-name'))"
        ".map(f => [getComputedStyle(f).borderInlineStartWidth,"
        " getComputedStyle(f).borderInlineStartColor])[0]"
    )
    assert bar == ["5px", RED]
    # A valid field keeps its grey border and no bar.
    assert await page.evaluate(style("#f-phone_country", "borderTopColor")) != RED

    await page.locator(name).focus()
    assert await page.evaluate(style(name, "outlineColor")) == YELLOW
    assert await page.evaluate(style(name, "borderTopColor")) == RED  # still invalid
    # No error style shares the focus colour.
    await page.evaluate("document.activeElement.blur()")
    errors = await page.evaluate(
        """() => [...document.querySelectorAll('.error-summary, .field-error, [aria-invalid=true]')]
                 .flatMap(e => { const s = getComputedStyle(e);
                   return [s.color, s.borderTopColor, s.outlineColor, s.backgroundColor]; })"""
    )
    assert YELLOW not in errors
    # A link focused from the keyboard turns yellow, not red.
    await page.goto(live_server.url + "/?lang=fr")
    await page.keyboard.press("Tab")
    skip = "document.activeElement"
    assert await page.evaluate(f"getComputedStyle({skip}).backgroundColor") == YELLOW
    await context.close()


async def test_arabic_error_example_reads_left_to_right_on_one_line(
    browser: Browser, live_server: LiveServer, artifacts: Path
) -> None:
    """Issue 11 item 6: the example number of the phone error ran reversed and
    wrapped ("56 34 12 06" then "78.") at 320 px in Arabic."""
    context = await new_context(browser, javascript=False, viewport=NARROW, locale="ar-MA")
    page = await context.new_page()
    await page.goto(live_server.url + "/offices/consulate-paris/passport?lang=ar")
    await page.locator(".times a").first.click()
    await page.locator("#f-name").fill("عائشة بنعلي")
    await page.locator("#f-phone").fill("12")
    await page.locator("#f-document_number").fill("AB123456")
    await page.locator("form button[type=submit]").last.click()
    await page.wait_for_selector(".error-summary")
    examples = page.locator(".field-error bdi.ltr", has_text="06 12 34 56 78")
    assert await examples.count() == 1
    # Left to right inside, and one line box: never split across lines.
    assert await examples.evaluate("e => getComputedStyle(e).direction") == "ltr"
    assert await examples.evaluate("e => e.getClientRects().length") == 1
    await page.screenshot(path=artifacts / "ar-form-phone-error-320.png", full_page=True)
    await context.close()


async def test_each_duration_sits_with_its_service(
    browser: Browser, live_server: LiveServer, artifacts: Path
) -> None:
    """Issue 11 item 8: the duration sat on its own line and read as the next
    service's. Now it is inside its service's link, after its name, and the
    description (item 3) follows in the same item."""
    for language in ("ar", "fr"):
        for width, viewport in (("320", NARROW), ("1280", WIDE)):
            context = await new_context(
                browser, javascript=False, viewport=viewport, locale=f"{language}-MA"
            )
            page = await context.new_page()
            await page.goto(f"{live_server.url}/offices/prefecture-tiznit?lang={language}")
            items = page.locator(".service-list > li")
            assert await items.count() >= 2
            for n in range(await items.count()):
                item = items.nth(n)
                link = item.locator("a").first
                duration = link.locator(".duration")
                assert await duration.count() == 1
                # Below the name's first line is fine (wrapping), never outside the item.
                box = await item.bounding_box()
                inner = await duration.bounding_box()
                assert box and inner
                assert box["y"] <= inner["y"] and inner["y"] + inner["height"] <= (
                    box["y"] + box["height"]
                )
                assert await item.locator(".description").count() == 1
            await page.screenshot(
                path=artifacts / f"{language}-office-services-{width}.png", full_page=True
            )
            await context.close()


async def test_a_citizen_who_checked_in_sees_their_place_and_their_call(
    browser: Browser, live_server: LiveServer, artifacts: Path
) -> None:
    """Issue 11 item 10, the citizen's side: their place in the waiting room,
    then the counter they are called to, on their manage page."""
    pool = live_server.pool
    first = await make_booking(pool, "consulate-paris", "passport")
    slot = await free_slot(pool, "consulate-paris", "passport", first.starts_at, 1)
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
        for ref in (first.reference, reference):
            await set_status_by_office(
                conn, ref, "consulate-paris", Status.CHECKED_IN, Actor("staff", "1"), START
            )
        staff_id = await conn.fetchval("SELECT id FROM staff WHERE email = $1", AGENT.email)
    member = StaffMember(staff_id, AGENT.email, Role.AGENT, frozenset({"consulate-paris"}))
    manage = f"{live_server.url}/b/{reference}/{token}"
    for language in ("ar", "fr"):
        context = await new_context(
            browser, javascript=False, viewport=NARROW, locale=f"{language}-MA"
        )
        page = await context.new_page()
        await page.goto(f"{manage}?lang={language}")
        await expect(page.locator(".notice.queue")).to_be_visible()
        await page.screenshot(path=artifacts / f"{language}-manage-waiting-320.png")
        await context.close()
    await call_next(pool, "consulate-paris", "1", member, START)
    await call_next(pool, "consulate-paris", "2", member, START)
    for language in ("ar", "fr"):
        context = await new_context(
            browser, javascript=False, viewport=NARROW, locale=f"{language}-MA"
        )
        page = await context.new_page()
        await page.goto(f"{manage}?lang={language}")
        await expect(page.locator(".your-turn")).to_contain_text("2")
        assert await page.locator('meta[http-equiv="refresh"]').count() == 0
        await page.screenshot(path=artifacts / f"{language}-manage-called-320.png")
        await context.close()
