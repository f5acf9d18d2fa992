"""The booking flow with its code step in a real Chromium, with and without
JavaScript, in French and Arabic: the form, the code page (a wrong code, a
new code asked too soon then in time, the code typed as a person types it),
the confirmation; and a hold that runs out. The code is read where the
citizen reads it, in the message the worker sends (tests/codesink.py).
Screenshots of every step land in tests/artifacts/.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.browser.test_citizen_browser import NARROW, WIDE, new_context, watch_csp
from tests.codesink import code_for
from tests.fixtures.app import LiveServer

# What each language's flow books, and the words it reads and clicks.
FLOWS = {
    "fr": {
        "office": "consulate-paris",
        "service": "legalization",
        "locale": "fr-FR",
        "contact": ("Numéro de téléphone mobile", "06 11 22 33 44"),
        "to": "+33611223344",
        "shown": "+33 6 11 22 33 44",
        "name": ("Nom et prénom", "Youssef Benali"),
        "book": "Réserver ce rendez-vous",
        "title": "Saisissez le code que nous vous avons envoyé",
        "code": "Code",
        "confirm": "Confirmer mon rendez-vous",
        "resend": "Envoyer un nouveau code",
        "wrong": "Ce code n’est pas le bon",
        "too_soon": "Patientez un peu",
        "sent": "Un nouveau code est en route.",
        "booked": "Votre rendez-vous est réservé",
        "released": "L’horaire retenu pour vous a été libéré",
        "again": "Réserver à nouveau",
    },
    "ar": {
        "office": "prefecture-tiznit",
        "service": "mre-desk",
        "locale": "ar-MA",
        "contact": ("عنوان البريد الإلكتروني", "amina@example.org"),
        "to": "amina@example.org",
        "shown": "amina@example.org",
        "name": ("الاسم الكامل", "أمينة الإدريسي"),
        "book": "احجز هذا الموعد",
        "title": "أدخل الرمز الذي أرسلناه إليك",
        "code": "الرمز",
        "confirm": "أكّد موعدي",
        "resend": "أرسل رمزا جديدا",
        "wrong": "هذا الرمز غير صحيح",
        "too_soon": "انتظر قليلا",
        "sent": "رمز جديد في الطريق إليكم.",
        "booked": "تم حجز موعدك",
        "released": "تم تحرير الموعد الذي احتُفظ به لك",
        "again": "احجز من جديد",
    },
}
ARABIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


async def status_of(server: LiveServer, reference: str) -> str:
    status: str = await server.pool.fetchval(
        "SELECT status FROM bookings WHERE reference = $1", reference
    )
    return status


@pytest.mark.parametrize("javascript", [False, True], ids=["no-js", "js"])
@pytest.mark.parametrize("language", ["fr", "ar"])
async def test_booking_with_the_code_step(
    browser: Browser, live_server: LiveServer, artifacts: Path, language: str, javascript: bool
) -> None:
    flow = FLOWS[language]
    shot = f"code-flow-{language}-{'js' if javascript else 'nojs'}"
    viewport = NARROW if language == "ar" else WIDE
    context = await new_context(
        browser, javascript=javascript, viewport=viewport, locale=flow["locale"]
    )
    page = await context.new_page()
    blocked = watch_csp(page)
    await page.goto(f"{live_server.url}/offices/{flow['office']}/{flow['service']}?lang={language}")
    await page.locator(".times a").first.click()
    await page.get_by_label(flow["name"][0]).fill(flow["name"][1])
    await page.get_by_label(flow["contact"][0]).fill(flow["contact"][1])
    await page.get_by_role("button", name=flow["book"]).click()

    # The code page: where the code went, and until when the time is kept.
    await expect(page.get_by_role("heading", level=1)).to_have_text(flow["title"])
    main = page.locator("main")
    await expect(main).to_contain_text(flow["shown"])
    assert await page.get_attribute("html", "dir") == ("rtl" if language == "ar" else "ltr")
    await page.screenshot(path=artifacts / f"{shot}-1-code.png", full_page=True)
    reference = page.url.split("/")[4]
    assert await status_of(live_server, reference) == "held"
    server = live_server
    first = await code_for(server.pool, server.settings, server.clock, flow["to"])

    # A wrong code: said on the field, the time still kept.
    wrong = "000000" if first != "000000" else "111111"
    await page.get_by_label(flow["code"], exact=True).fill(wrong)
    await page.get_by_role("button", name=flow["confirm"]).click()
    await expect(page.locator(".error-summary")).to_contain_text(flow["wrong"])
    await expect(page.get_by_label(flow["code"], exact=True)).to_have_attribute(
        "aria-invalid", "true"
    )
    await page.screenshot(path=artifacts / f"{shot}-2-wrong.png", full_page=True)

    # Another code: too soon, then a minute later.
    await page.get_by_role("button", name=flow["resend"]).click()
    await expect(page.get_by_role("alert")).to_contain_text(flow["too_soon"])
    live_server.clock.advance(timedelta(seconds=60))
    await page.get_by_role("button", name=flow["resend"]).click()
    await expect(page.get_by_role("status")).to_have_text(flow["sent"])
    second = await code_for(server.pool, server.settings, server.clock, flow["to"])
    await page.screenshot(path=artifacts / f"{shot}-3-resent.png", full_page=True)

    # Typed as a person types it: with a space, in Arabic digits in Arabic.
    typed = f"{second[:3]} {second[3:]}"
    if language == "ar":
        typed = typed.translate(ARABIC_DIGITS)
    await page.get_by_label(flow["code"], exact=True).fill(typed)
    await page.get_by_role("button", name=flow["confirm"]).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(flow["booked"])
    await page.screenshot(path=artifacts / f"{shot}-4-booked.png", full_page=True)
    assert await status_of(live_server, reference) == "confirmed"
    assert blocked == []
    await context.close()


@pytest.mark.parametrize("language", ["fr", "ar"])
async def test_a_hold_that_runs_out_sends_the_citizen_back_to_the_times(
    browser: Browser, live_server: LiveServer, artifacts: Path, language: str
) -> None:
    flow = FLOWS[language]
    context = await new_context(browser, javascript=False, locale=flow["locale"])
    page = await context.new_page()
    await page.goto(f"{live_server.url}/offices/{flow['office']}/{flow['service']}?lang={language}")
    first = page.locator(".times a").first
    chosen = await first.get_attribute("href")
    await first.click()
    await page.get_by_label(flow["name"][0]).fill(flow["name"][1])
    await page.get_by_label(flow["contact"][0]).fill(flow["contact"][1])
    await page.get_by_role("button", name=flow["book"]).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(flow["title"])
    reference = page.url.split("/")[4]

    live_server.clock.advance(timedelta(minutes=10))
    await page.reload()
    await expect(page.get_by_role("heading", level=1)).to_have_text(flow["released"])
    await page.screenshot(path=artifacts / f"code-expired-{language}.png", full_page=True)
    assert await status_of(live_server, reference) == "expired"
    await page.get_by_role("link", name=flow["again"]).click()
    # The time is on sale again.
    await expect(page.locator(f'.times a[href="{chosen}"]')).to_have_count(1)
    await context.close()
