"""Office pages of issue 11 in a real Chromium: the call-in display live
(Server-Sent Events) and without JavaScript, the day's list on a 768 px
tablet, and the audit pass (axe-core, weight, screenshots at 320 and 1280 px
in Arabic and French) over the office pages this issue made or changed."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from playwright.async_api import Browser, BrowserContext, Page, expect

from service.bookings import set_status_by_office
from service.domain.booking import Status
from service.store.audit import Actor
from tests.browser.office.test_office_browser import sign_in
from tests.browser.test_citizen_browser import page_weight, run_axe, watch_csp
from tests.fixtures.app import LiveServer
from tests.fixtures.office import ADMIN, AGENT, MANAGER, START, make_booking
from tests.integration.test_draw_flow import draw_service

PAGE_BUDGET = 50 * 1024
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 320, "height": 640}
TABLET = {"width": 768, "height": 1024}


async def checked_in(server: LiveServer, count: int) -> list[str]:
    references = []
    for n in range(count):
        booking = await make_booking(server.pool, "consulate-paris", "passport", nth=n)
        async with server.pool.acquire() as conn:
            await set_status_by_office(
                conn, booking.reference, "consulate-paris", Status.CHECKED_IN,
                Actor("staff", "1"), START,
            )  # fmt: skip
        references.append(booking.reference)
    return references


async def test_the_display_follows_the_calls_live_and_refreshes_without_javascript(
    browser: Browser, live_server: LiveServer, artifacts: Path
) -> None:
    first, second = await checked_in(live_server, 2)
    screen = await browser.new_context(
        base_url=live_server.url, viewport={"width": 1920, "height": 1080}
    )
    display = await screen.new_page()
    blocked = watch_csp(display)
    await display.goto("/office/consulate-paris/display")
    await expect(display.locator(".now")).to_contain_text("Aucun appel")
    # Marked now: still there after the update means the page never reloaded.
    await display.evaluate("window.stayed = true")

    office = await browser.new_context(base_url=live_server.url, locale="en-GB")
    agent = await office.new_page()
    await sign_in(agent, AGENT)
    await agent.wait_for_url("**/day/2027-02-01")
    await agent.get_by_label("Your counter").select_option("3")
    await agent.get_by_role("button", name="Call next").click()
    await agent.wait_for_url(f"**called={first}**")
    await expect(display.locator(".now .ref")).to_have_text(first)
    await expect(display.locator(".now .num")).to_have_text("3")
    assert await display.evaluate("window.stayed === true")
    await display.screenshot(path=str(artifacts / "office-display-1920.png"))

    await agent.get_by_role("button", name="Call next").click()
    await expect(display.locator(".now .ref")).to_have_text(second)
    await expect(display.locator(".recent tbody")).to_contain_text(first)
    assert await display.evaluate("window.stayed === true")
    assert blocked == []
    await screen.close()

    # Without JavaScript the board is the same, and the page reloads itself.
    plain = await browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = await plain.new_page()
    await page.goto("/office/consulate-paris/display")
    await expect(page.locator(".now .ref")).to_have_text(second)
    refresh = page.locator('noscript meta[http-equiv="refresh"], meta[http-equiv="refresh"]')
    assert await refresh.count() == 1
    await plain.close()
    await office.close()


async def test_the_day_fits_a_tablet_with_references_on_one_line(
    browser: Browser, live_server: LiveServer, artifacts: Path
) -> None:
    for n in range(3):
        await make_booking(
            live_server.pool, "consulate-paris", "cnie", nth=n,
            name="Fatima Zahra Ait Lahcen El Alaoui", phone="+33612345678",
        )  # fmt: skip
    for language in ("fr", "ar"):
        context = await browser.new_context(
            base_url=live_server.url, viewport=TABLET, locale=f"{language}-FR"
        )
        page = await context.new_page()
        await page.goto(f"/office/login?lang={language}")
        await page.locator("#email").fill(AGENT.email)
        await page.locator("#password").fill(AGENT.password)
        await page.locator("form button[type=submit]").last.click()
        await page.wait_for_url("**/day/2027-02-01")
        overflow = await page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (language, overflow)
        heights = await page.evaluate(
            """() => [...document.querySelectorAll('td.ref bdi, .phone')].map(e => {
                 const r = e.getClientRects(); return r.length; })"""
        )
        assert heights and set(heights) == {1}, heights  # one line box each
        await page.screenshot(
            path=str(artifacts / f"office-day-{language}-768.png"), full_page=True
        )
        await context.close()


async def signed_in_on_a_phone(
    browser: Browser, live_server: LiveServer, who: Any, day: str = "**"
) -> tuple[BrowserContext, Page]:
    """A 320 px Arabic browser signed in as `who`, on its day page."""
    context = await browser.new_context(base_url=live_server.url, viewport=NARROW, locale="ar-MA")
    page = await context.new_page()
    await page.goto("/office/login?lang=ar")
    await page.locator("#email").fill(who.email)
    await page.locator("#password").fill(who.password)
    await page.locator("form button[type=submit]").last.click()
    await page.wait_for_url(f"**/day/{day}")
    return context, page


async def test_on_a_phone_the_bookings_a_closure_strands_keep_references_on_one_line(
    browser: Browser, live_server: LiveServer, artifacts: Path
) -> None:
    # "PAR-2AS7QW" broke after its dash in the Arabic list at 320 px.
    after = START + timedelta(days=8)
    made = [
        await make_booking(live_server.pool, "consulate-paris", "power-of-attorney", after=after)
        for _ in range(2)
    ]
    day = made[0].starts_at.astimezone(ZoneInfo("Europe/Paris")).date().isoformat()
    context, page = await signed_in_on_a_phone(browser, live_server, MANAGER)
    await page.goto("/office/consulate-paris/hours")
    await page.locator("#closure-day").fill(day)
    await page.locator("#reason_ar").fill("إغلاق استثنائي")
    await page.locator(".closure-form button[type=submit]").click()
    table = page.locator("table.stranded")
    await expect(table).to_contain_text(made[0].reference)
    await expect(table).to_contain_text("الوكالة")
    lines = await page.evaluate(
        """() => [...document.querySelectorAll('table.stranded tbody a bdi')]
             .map(e => e.getClientRects().length)"""
    )
    assert lines and set(lines) == {1}, lines  # one line box each
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, overflow
    await page.screenshot(
        path=str(artifacts / "office-closure-stranded-ar-320.png"), full_page=True
    )
    await context.close()


async def test_on_a_phone_the_notice_of_a_change_is_in_the_row_the_page_jumps_to(
    browser: Browser, live_server: LiveServer, artifacts: Path
) -> None:
    bookings = [
        await make_booking(live_server.pool, "consulate-paris", "passport", nth=n) for n in range(6)
    ]
    last = bookings[-1].reference
    context, page = await signed_in_on_a_phone(browser, live_server, AGENT, "2027-02-01")
    row = page.locator(f"#b-{last}")
    await row.locator("form:has(input[value=checked_in]) button").click()
    await page.wait_for_url("**done=checked_in**")
    # Six cards down a 320 px screen: the clerk sees it said where they are.
    notice = row.locator(".notice[role=status]")
    await expect(notice).to_contain_text(last)
    await expect(notice).to_be_in_viewport()
    assert await page.locator(".notice").count() == 1
    await page.screenshot(path=str(artifacts / "office-day-notice-ar-320.png"))
    await context.close()


# The office pages as an administrator reaches them. The print view is for
# A4 paper: at 320 px it may scroll sideways; every other page must not (a
# clerk at a mobile consular day may have only a phone).
OFFICE_PAGES = [
    ("home", "/office/", False),
    ("account", "/office/account", False),
    ("day", "/office/consulate-paris/day/2027-02-01", False),
    ("book", "/office/consulate-paris/book", False),
    ("documents", "/office/consulate-paris/documents", False),
    ("feed", "/office/consulate-paris/feed", False),
    ("mobile-days", "/office/consulate-paris/mobile-days", False),
    ("staff", "/office/consulate-paris/staff", False),
    ("waitlist", "/office/consulate-paris/services/passport/waitlist", False),
    ("draws", "/office/consulate-paris/services/legalization/draws", False),
    ("booking", "/office/consulate-paris/bookings/{reference}", False),
    ("print", "/office/consulate-paris/day/2027-02-01/print", True),
    ("display", "/office/consulate-paris/display", False),
    ("hours", "/office/consulate-paris/hours", False),
    ("stats", "/office/consulate-paris/stats", False),
    ("info", "/office/consulate-paris/info", False),
    ("services", "/office/consulate-paris/services", False),
    ("service", "/office/consulate-paris/services/cnie", False),
    ("hours-ramadan", "/office/prefecture-tiznit/hours", False),
    ("forbidden", "/office/consulate-paris/staff", False),
    ("office-page", "/offices/prefecture-tiznit", False),
]


async def test_office_pages_accessible_light_and_screenshot(
    browser: Browser, live_server: LiveServer, axe_source: str, artifacts: Path
) -> None:
    # One call in each language; a booking with its messages and history.
    reference, _ = await checked_in(live_server, 2)
    await draw_service(live_server.pool, live_server.clock)  # a window in the list
    problems: dict[str, Any] = {}
    weights: dict[str, int] = {}
    for language in ("ar", "fr"):
        context = await browser.new_context(
            base_url=live_server.url, viewport=WIDE, locale=f"{language}-MA"
        )
        page = await context.new_page()
        blocked = watch_csp(page)
        sizes: dict[str, int] = {}
        await page.goto(f"/office/login?lang={language}")
        await page.locator("#email").fill(ADMIN.email)
        await page.locator("#password").fill(ADMIN.password)
        await page.locator("form button[type=submit]").last.click()
        await page.wait_for_url("**/office/")
        await page.goto("/office/consulate-paris/day/2027-02-01")
        # A call, so that the display and the day's waiting room show one.
        await page.locator("#counter").select_option("2")
        await page.locator(".waiting-room button[type=submit]").click()
        await page.wait_for_url("**called=**")
        for name, path, wide_only in OFFICE_PAGES:
            if name == "forbidden":
                # An agent's 403, in the page language and the site's layout.
                await page.context.clear_cookies()
                await page.goto(f"/office/login?lang={language}")
                await page.locator("#email").fill(AGENT.email)
                await page.locator("#password").fill(AGENT.password)
                await page.locator("form button[type=submit]").last.click()
                await page.wait_for_url("**/day/**")
            await page.set_viewport_size(WIDE)  # type: ignore[arg-type]
            response = await page.goto(path.format(reference=reference))
            assert response is not None
            assert response.status == (403 if name == "forbidden" else 200), name
            key = f"{language}-{name}"
            if name != "display":
                assert await page.get_attribute("html", "lang") == language, key
            violations = await run_axe(page, axe_source)
            if violations:
                problems[key] = violations
            weights[key] = await page_weight(page, sizes)
            await page.screenshot(path=artifacts / f"office-{key}-1280.png", full_page=True)
            await page.set_viewport_size(NARROW)  # type: ignore[arg-type]
            overflow = await page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            if overflow > 0 and not wide_only:
                problems[f"{key}@320"] = f"scrolls sideways by {overflow}px"
                problems[f"{key}@320-what"] = await page.evaluate(
                    """() => [...document.querySelectorAll('body *')].filter(e => {
                        const r = e.getBoundingClientRect(); return r.right > 321 || r.left < -1; })
                        .slice(0, 8).map(e => e.tagName + '.' + e.className + '#' + e.id)"""
                )
            # A day of the hours page's slot table on one line, not "Wednesday 2 /
            # December" in two.
            wrapped = await page.evaluate(
                """() => [...document.querySelectorAll('table.slot-days td:first-child')]
                    .filter(td => {
                      const r = document.createRange(); r.selectNodeContents(td);
                      const tops = [...r.getClientRects()].map(x => Math.round(x.top));
                      return new Set(tops).size > 1; })
                    .map(td => td.textContent)"""
            )
            if wrapped:
                problems[f"{key}@320-wrapped"] = wrapped[:3]
            await page.screenshot(path=artifacts / f"office-{key}-320.png", full_page=True)
        assert blocked == [], blocked
        await context.close()
    (artifacts / "weights-office.json").write_text(json.dumps(weights, indent=1))
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)
    heaviest = max(weights, key=lambda n: weights[n])
    assert weights[heaviest] < PAGE_BUDGET, (heaviest, weights[heaviest])
