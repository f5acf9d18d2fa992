"""Mobile days in a real Chromium at 320 px, in Arabic and French: the
start page with a mobile day open for booking and the way to be told of the
next ones, the subscription form (refusing an unknown town), its code step
and the subscription's page, without JavaScript; axe-core finds nothing on
them. Screenshots are kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.test_citizen_browser import NARROW, new_context, run_axe, watch_csp
from tests.codesink import code_for
from tests.fixtures.app import LiveServer

pytestmark = pytest.mark.browser

TEXT = {
    "ar": {
        "open": "الأيام القنصلية المتنقلة",
        "day": "يوم قنصلي متنقل في أورليان",
        "alert": "أخبروني عند برمجة يوم متنقل قرب مسكني",
        "town": "مدينتكم",
        "phone": "رقم الهاتف المحمول",
        "unknown": "لا نعرف هذه المدينة في بلدان هذه القنصلية.",
        "send": "أخبروني",
        "code": "الرمز",
        "sent_to": "تُرسل إلى",
    },
    "fr": {
        "open": "Journées consulaires mobiles",
        "day": "Journée consulaire mobile à Orléans",
        "alert": "Me prévenir d’une journée mobile près de chez moi",
        "town": "Votre ville",
        "phone": "Numéro de téléphone mobile",
        "unknown": "Nous ne connaissons pas cette ville dans les pays de ce consulat.",
        "send": "Me prévenir",
        "code": "Code",
        "sent_to": "Envoyé à",
    },
}
PHONE = {"ar": ("06 11 22 33 44", "+33611223344"), "fr": ("06 55 66 77 88", "+33655667788")}


async def no_sideways_scroll(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= NARROW["width"], width


@pytest.mark.parametrize("language", ["ar", "fr"])
async def test_a_citizen_asks_to_be_told_of_mobile_days_at_320_px(
    browser: Browser, live_server: LiveServer, artifacts: Path, language: str
) -> None:
    server, text = live_server, TEXT[language]
    context = await new_context(
        browser, javascript=False, viewport=NARROW, locale=f"{language}-MA"
    )
    page = await context.new_page()
    blocked = watch_csp(page)
    await page.goto(f"{server.url}/?lang={language}")
    block = page.locator("section.mobile-days")
    await expect(block).to_contain_text(text["day"])
    await expect(block.get_by_role("link", name=text["alert"])).to_be_visible()
    await no_sideways_scroll(page)
    await page.screenshot(path=artifacts / f"{language}-start-mobile-day-320.png", full_page=True)

    # From the consulate's page, the form has the consulate chosen.
    await page.goto(f"{server.url}/offices/consulate-paris?lang={language}")
    await page.get_by_role("link", name=text["alert"]).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(text["alert"])
    await no_sideways_scroll(page)
    await page.screenshot(path=artifacts / f"{language}-alert-form-320.png", full_page=True)
    # An unknown town: the field says so, in the page's language.
    await page.get_by_label(text["town"]).fill("Xyzzyville")
    await page.get_by_label(text["phone"]).fill(PHONE[language][0])
    await page.get_by_role("button", name=text["send"], exact=True).click()
    await expect(page.locator("#f-town-error")).to_contain_text(text["unknown"])
    await no_sideways_scroll(page)
    await page.screenshot(path=artifacts / f"{language}-alert-form-error-320.png", full_page=True)
    assert await server.pool.fetchval("SELECT count(*) FROM mobile_day_subscriptions") == 0

    # A known town: the code step, then the subscription's page.
    await page.get_by_label(text["town"]).fill("Orléans" if language == "fr" else "أورليان")
    await page.get_by_role("button", name=text["send"], exact=True).click()
    await expect(page.get_by_label(text["code"], exact=True)).to_be_visible()
    await no_sideways_scroll(page)
    await page.screenshot(path=artifacts / f"{language}-alert-code-320.png", full_page=True)
    code = await code_for(server.pool, server.settings, server.clock, PHONE[language][1])
    await page.get_by_label(text["code"], exact=True).fill(code)
    await page.locator("form button[type=submit]").first.click()
    await expect(page.locator("dl.summary")).to_contain_text(text["sent_to"])
    await no_sideways_scroll(page)
    await page.screenshot(path=artifacts / f"{language}-alert-standing-320.png", full_page=True)
    assert blocked == []
    await context.close()
    assert await server.pool.fetchval(
        "SELECT count(*) FROM mobile_day_subscriptions WHERE verified_at IS NOT NULL"
    ) == 1


@pytest.mark.parametrize("language", ["ar", "fr"])
async def test_the_start_page_form_and_subscription_pass_axe(
    browser: Browser, live_server: LiveServer, axe_source: str, language: str
) -> None:
    server = live_server
    # axe runs as a script: this context has JavaScript.
    context = await new_context(browser, javascript=True, viewport=NARROW)
    page = await context.new_page()
    problems: dict[str, object] = {}

    async def check(name: str) -> None:
        violations = await run_axe(page, axe_source)
        if violations:
            problems[name] = violations

    await page.goto(f"{server.url}/?lang={language}")
    await check("start")
    await page.goto(f"{server.url}/mobile-days/alerts?office=consulate-paris&lang={language}")
    await check("form")
    await page.get_by_label(TEXT[language]["town"]).fill("Xyzzyville")
    await page.get_by_role("button", name=TEXT[language]["send"], exact=True).click()
    await expect(page.locator(".error-summary")).to_be_visible()
    await check("form with errors")
    await page.get_by_label(TEXT[language]["town"]).fill("Tours")
    await page.get_by_label(TEXT[language]["phone"]).fill(PHONE[language][0])
    await page.get_by_role("button", name=TEXT[language]["send"], exact=True).click()
    await expect(page.get_by_label(TEXT[language]["code"], exact=True)).to_be_visible()
    await check("code step")
    code = await code_for(server.pool, server.settings, server.clock, PHONE[language][1])
    await page.get_by_label(TEXT[language]["code"], exact=True).fill(code)
    await page.locator("form button[type=submit]").first.click()
    await expect(page.locator("dl.summary")).to_contain_text(TEXT[language]["sent_to"])
    await check("subscription")
    await context.close()
    assert not problems, problems
