"""A request in a draw in a real Chromium without JavaScript, at 320 px, in
French and Arabic: the service's page leads to the request form, the code
step, the receipt with the entry id and the seed's hash; after the draw the
receipt says a seat is offered, and the offer is accepted. Screenshots of
each step land in tests/artifacts/."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from service import draw
from tests.browser.test_citizen_browser import (
    NARROW,
    narrow_problems,
    new_context,
    run_axe,
    watch_csp,
)
from tests.codesink import code_for
from tests.fixtures.app import LiveServer
from tests.integration.test_draw_flow import (
    FIRST,
    OFFICE,
    SERVICE,
    STAFF,
    draw_service,
    offer_token,
    offers,
    person,
)

FLOWS = {
    "fr": {
        "locale": "fr-FR",
        "heading": "Demander une place au tirage au sort",
        "name": ("Nom et prénom", "Youssef Benali"),
        "contact": ("Numéro de téléphone mobile", "06 11 22 33 44"),
        "to": "+33611223344",
        "send": "Envoyer ma demande",
        "code": "Code",
        "confirm": "Confirmer ma demande",
        "receipt": "Votre demande est dans le tirage au sort",
        "offered": "Une place vous est proposée",
        "accept": "Accepter ce rendez-vous",
        "confirmed": "Votre rendez-vous est confirmé",
    },
    "ar": {
        "locale": "ar-MA",
        "heading": "طلب مكان في القرعة",
        "name": ("الاسم الكامل", "أمينة الإدريسي"),
        "contact": ("عنوان البريد الإلكتروني", "amina@example.org"),
        "to": "amina@example.org",
        "send": "إرسال طلبي",
        "code": "الرمز",
        "confirm": "تأكيد طلبي",
        "receipt": "طلبكم في القرعة",
        "offered": "موعد مقترح عليكم",
        "accept": "قبول هذا الموعد",
        "confirmed": "تم تأكيد موعدكم",
    },
}


@pytest.mark.parametrize("language", ["fr", "ar"])
async def test_a_request_its_receipt_and_the_offer_without_javascript(
    browser: Browser, live_server: LiveServer, artifacts: Path, language: str
) -> None:
    flow = FLOWS[language]
    server = live_server
    shot = f"draw-{language}"
    window_id = await draw_service(server.pool, server.clock, capacity=1)
    seed_hash = str((await draw.published(server.pool, window_id))["seed_sha256"])
    context = await new_context(
        browser, javascript=False, viewport=NARROW, locale=flow["locale"]
    )
    page = await context.new_page()
    blocked = watch_csp(page)
    await page.goto(f"{server.url}/offices/{OFFICE}/{SERVICE}?lang={language}")
    await expect(page.get_by_role("heading", level=1)).to_have_text(flow["heading"])
    assert await page.get_attribute("html", "dir") == ("rtl" if language == "ar" else "ltr")
    await expect(page.locator("main")).to_contain_text(seed_hash)
    await page.locator("input[name=days]").first.check()
    await page.get_by_label(flow["name"][0]).fill(flow["name"][1])
    await page.get_by_label(flow["contact"][0]).fill(flow["contact"][1])
    await page.screenshot(path=artifacts / f"{shot}-1-form.png", full_page=True)
    # Nothing scrolls sideways at 320 px.
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 320
    await page.get_by_role("button", name=flow["send"]).click()

    # The code step of a held booking, for the request.
    await expect(page.get_by_label(flow["code"], exact=True)).to_be_visible()
    await page.screenshot(path=artifacts / f"{shot}-2-code.png", full_page=True)
    code = await code_for(server.pool, server.settings, server.clock, flow["to"])
    await page.get_by_label(flow["code"], exact=True).fill(code)
    await page.get_by_role("button", name=flow["confirm"]).click()

    # The receipt: the entry id and the seed's hash.
    await expect(page.get_by_role("heading", level=1)).to_have_text(flow["receipt"])
    entry_id = page.url.split("/")[4]
    main = page.locator("main")
    await expect(main).to_contain_text(entry_id)
    await expect(main).to_contain_text(seed_hash)
    await page.screenshot(path=artifacts / f"{shot}-3-receipt.png", full_page=True)
    receipt = page.url

    # The draw: the only request gets the only seat; the receipt says so.
    server.clock.advance(timedelta(days=7))
    await draw.tick(server.pool, server.clock(), offer_hours=48, secret_key=server.secret_key)
    await page.goto(receipt)
    await expect(page.get_by_role("heading", level=1)).to_have_text(flow["offered"])
    reference = (await offers(server.pool, window_id))[entry_id]
    token = await offer_token(server.pool, server.settings, reference)
    await page.goto(f"{server.url}/d/{reference}/{token}")
    await page.screenshot(path=artifacts / f"{shot}-4-offer.png", full_page=True)
    await page.get_by_role("button", name=flow["accept"]).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(flow["confirmed"])
    await page.screenshot(path=artifacts / f"{shot}-5-confirmed.png", full_page=True)
    assert blocked == []
    await context.close()


@pytest.mark.parametrize("language", ["ar", "fr"])
async def test_the_request_form_and_receipt_pass_axe(
    browser: Browser, live_server: LiveServer, axe_source: str, language: str
) -> None:
    server = live_server
    window_id = await draw_service(server.pool, server.clock)
    receipt = await draw.request(
        server.pool, window_id, person(7, language), [FIRST], ["morning"],
        secret_key=server.secret_key, now=server.clock(), actor=STAFF,
    )  # fmt: skip
    # axe runs as a script: this context has JavaScript.
    context = await new_context(browser, javascript=True, viewport=NARROW)
    page = await context.new_page()
    problems: dict[str, object] = {}
    for name, path in (
        ("form", f"/offices/{OFFICE}/{SERVICE}/draw?lang={language}"),
        ("receipt", f"{draw.receipt_url(receipt.entry_id, receipt.token)}?lang={language}"),
        ("record", f"/draws/{window_id}?lang={language}"),
    ):
        await page.goto(server.url + path)
        violations = await run_axe(page, axe_source)
        if violations:
            problems[name] = violations
        problems.update(await narrow_problems(page, name))
    await context.close()
    assert not problems, problems
