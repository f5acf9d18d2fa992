"""The waiting list of an instant service in a real Chromium without
JavaScript, at 320 px, in French and Arabic: the times page leads to the
form, the code step, the receipt; a seat freed on a day the citizen asked
for is offered to them, and accepted on the offer's page. Screenshots of each
step land in tests/artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from service import draw
from tests.browser.test_citizen_browser import NARROW, new_context, run_axe, watch_csp
from tests.codesink import code_for
from tests.fixtures.app import LiveServer
from tests.integration.test_waitlist_flow import (
    OFFICE,
    SERVICE,
    WED,
    WED_MORNING,
    book,
    cancel,
    entry,
    join,
    offer_token,
    scarce,
)

FLOWS = {
    "fr": {
        "locale": "fr-FR",
        "link": "Aucun horaire ne vous convient ? Inscrivez-vous sur la liste d’attente",
        "heading": "S’inscrire sur la liste d’attente",
        "name": ("Nom et prénom", "Youssef Benali"),
        "contact": ("Numéro de téléphone mobile", "06 11 22 33 44"),
        "to": "+33611223344",
        "code": "Code",
        "confirm": "Confirmer mon inscription sur la liste",
        "receipt": "Vous êtes sur la liste d’attente",
        "offered": "Une place vous est proposée",
        "accept": "Accepter ce rendez-vous",
        "confirmed": "Votre rendez-vous est confirmé",
    },
    "ar": {
        "locale": "ar-MA",
        "link": "لا يناسبكم أي موعد؟ سجلوا في لائحة الانتظار",
        "heading": "التسجيل في لائحة الانتظار",
        "name": ("الاسم الكامل", "أمينة الإدريسي"),
        "contact": ("عنوان البريد الإلكتروني", "amina@example.org"),
        "to": "amina@example.org",
        "code": "الرمز",
        "confirm": "تأكيد تسجيلي في اللائحة",
        "receipt": "أنتم في لائحة الانتظار",
        "offered": "موعد مقترح عليكم",
        "accept": "قبول هذا الموعد",
        "confirmed": "تم تأكيد موعدكم",
    },
}


@pytest.mark.parametrize("language", ["fr", "ar"])
async def test_joining_the_list_and_taking_a_freed_seat_without_javascript(
    browser: Browser, live_server: LiveServer, artifacts: Path, language: str
) -> None:
    flow = FLOWS[language]
    server = live_server
    shot = f"waitlist-{language}"
    # One seat on Wednesday morning, booked: no time is free.
    [slot] = await scarce(server.pool, SERVICE, WED_MORNING)
    booked = await book(server.pool, server.settings, server.clock, slot, 0)
    context = await new_context(browser, javascript=False, viewport=NARROW, locale=flow["locale"])
    page = await context.new_page()
    blocked = watch_csp(page)
    await page.goto(f"{server.url}/offices/{OFFICE}/{SERVICE}?lang={language}")
    assert await page.get_attribute("html", "dir") == ("rtl" if language == "ar" else "ltr")
    await page.screenshot(path=artifacts / f"{shot}-1-times.png", full_page=True)
    await page.get_by_role("link", name=flow["link"]).first.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(flow["heading"])
    await page.locator(f"input[name=days][value='{WED.isoformat()}']").check()
    await page.get_by_label(flow["name"][0]).fill(flow["name"][1])
    await page.get_by_label(flow["contact"][0]).fill(flow["contact"][1])
    await page.screenshot(path=artifacts / f"{shot}-2-form.png", full_page=True)
    # Nothing scrolls sideways at 320 px.
    assert await page.evaluate("document.documentElement.scrollWidth") <= 320
    await page.get_by_role("button", name=flow["heading"]).click()

    # The code step of a held booking, for the place on the list.
    await expect(page.get_by_label(flow["code"], exact=True)).to_be_visible()
    await page.screenshot(path=artifacts / f"{shot}-3-code.png", full_page=True)
    code = await code_for(server.pool, server.settings, server.clock, flow["to"])
    await page.get_by_label(flow["code"], exact=True).fill(code)
    await page.get_by_role("button", name=flow["confirm"]).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(flow["receipt"])
    assert await page.evaluate("document.documentElement.scrollWidth") <= 320
    await page.screenshot(path=artifacts / f"{shot}-4-receipt.png", full_page=True)
    entry_id = page.url.split("/")[4]
    receipt = page.url

    # The booked seat is cancelled: it is offered to the list first.
    await cancel(server.pool, server.settings, server.clock, booked)
    await page.goto(receipt)
    await expect(page.get_by_role("heading", level=1)).to_have_text(flow["offered"])
    reference = (await entry(server.pool, entry_id))["reference"]
    token = await offer_token(server.pool, server.settings, reference)
    await page.goto(f"{server.url}/d/{reference}/{token}")
    await page.screenshot(path=artifacts / f"{shot}-5-offer.png", full_page=True)
    assert await page.evaluate("document.documentElement.scrollWidth") <= 320
    await page.get_by_role("button", name=flow["accept"]).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(flow["confirmed"])
    await page.screenshot(path=artifacts / f"{shot}-6-confirmed.png", full_page=True)
    assert blocked == []
    await context.close()


@pytest.mark.parametrize("language", ["ar", "fr"])
async def test_the_form_and_receipt_pass_axe(
    browser: Browser, live_server: LiveServer, axe_source: str, language: str
) -> None:
    server = live_server
    receipt = await join(server.pool, server.settings, server.clock, 7, [WED])
    # axe runs as a script: this context has JavaScript.
    context = await new_context(browser, javascript=True, viewport=NARROW)
    page = await context.new_page()
    problems: dict[str, object] = {}
    for name, path in (
        ("form", f"/offices/{OFFICE}/{SERVICE}/waitlist?lang={language}"),
        ("receipt", f"{draw.receipt_url(receipt.entry_id, receipt.token)}?lang={language}"),
    ):
        await page.goto(server.url + path)
        violations = await run_axe(page, axe_source)
        if violations:
            problems[name] = violations
    await context.close()
    assert not problems, problems
