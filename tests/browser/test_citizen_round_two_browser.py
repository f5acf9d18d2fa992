"""Citizen pages of issue 11 in a real Chromium: invalid fields and focus
(GOV.UK's pattern), the services list with practical information, and their
screenshots at 320 and 1280 px in Arabic and French."""

from __future__ import annotations

from playwright.async_api import Browser

from tests.browser.test_citizen_browser import new_context
from tests.fixtures.app import LiveServer

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
