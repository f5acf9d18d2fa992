"""The citizen pages in a real Chromium: booking flows, accessibility, weight, small screens.

Flows run with JavaScript turned off (the pages need none) and with the CSP
enforced. The audit pass runs axe-core in every language, measures each
page's HTML + CSS + JS, checks 320 px has no horizontal scrolling, and saves
screenshots at 320 and 1280 px under tests/artifacts/.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from service import bookings
from service.domain.validation import RawDetails
from service.store import offices as office_store
from service.store import slots as slot_store
from service.web import i18n
from tests.fixtures.app import LiveServer, prove_contacts

PAGE_BUDGET = 50 * 1024
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 320, "height": 640}


async def new_context(
    browser: Browser, *, javascript: bool, viewport: dict[str, int] = WIDE, locale: str = "fr-FR"
) -> BrowserContext:
    return await browser.new_context(
        java_script_enabled=javascript,
        viewport=viewport,
        locale=locale,  # type: ignore[arg-type]
    )


def watch_csp(page: Page) -> list[str]:
    """Console reports of anything the Content-Security-Policy blocked."""
    blocked: list[str] = []
    page.on(
        "console",
        lambda message: (
            blocked.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return blocked


async def fill_slot(server: LiveServer, slot_id: int, service: str) -> None:
    async with server.pool.acquire() as conn:
        free = await conn.fetchval("SELECT capacity - taken FROM slots WHERE id = $1", slot_id)
    for n in range(free):
        await bookings.book(
            server.pool,
            slot_id=slot_id,
            service_id=service,
            details=RawDetails(
                name=f"Other {'ABCDEFGHIJ'[n]}",
                email=f"other{n}@example.com",
                language="fr",
                document_number=f"ZZ{slot_id}X{n}",
            ),
            secret_key=server.secret_key,
            now=server.clock(),
        )


async def booking_row(pool: asyncpg.Pool, reference: str) -> asyncpg.Record:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT status, slot_id, starts_at FROM bookings WHERE reference = $1", reference
        )
    assert row is not None
    return row


# --------------------------------------------------------------------------- flows


async def test_book_reschedule_and_cancel_in_french(
    browser: Browser, live_server: LiveServer
) -> None:
    # A returning citizen: the phone was proved before, so no code step here
    # (test_abuse_browser.py goes through it).
    await prove_contacts(live_server.pool, "+33612345678")
    context = await new_context(browser, javascript=False)
    page = await context.new_page()
    blocked = watch_csp(page)
    await page.goto(live_server.url + "/?lang=fr")
    await page.get_by_role("link", name="Consulat général du Royaume du Maroc à Paris").click()
    await page.get_by_role("link", name="Légalisation de signature").click()
    await expect(page.locator("main")).to_contain_text("heure de Paris")
    first = page.locator(".times a").first
    chosen_time = (await first.inner_text()).strip()
    await first.click()

    await expect(page.get_by_role("heading", level=1)).to_have_text("Vos coordonnées")
    await page.get_by_label("Nom et prénom").fill("Amina El Idrissi")
    await page.get_by_label("Numéro de téléphone mobile").fill("06 12 34 56 78")
    await page.get_by_role("button", name="Réserver ce rendez-vous").click()

    await expect(page.get_by_role("heading", level=1)).to_have_text("Votre rendez-vous est réservé")
    main = page.locator("main")
    await expect(main).to_contain_text(f"{chosen_time} (heure de Paris)")
    await expect(main).to_contain_text("+33 6 •• •• •• 78")
    reference = (await page.locator(".reference bdi").inner_text()).strip()
    row = await booking_row(live_server.pool, reference)
    assert i18n.time_short(row["starts_at"], "Europe/Paris", "fr") == chosen_time
    await expect(main).to_contain_text(i18n.date_long(row["starts_at"], "Europe/Paris", "fr"))
    assert await page.locator(".qr svg[role=img] title").count() == 1

    # Reschedule from the manage page.
    await page.get_by_role("link", name="Modifier ou annuler").click()
    await page.get_by_role("link", name="Choisir un autre horaire").click()
    target = page.locator(".times a").nth(1)
    new_time = (await target.inner_text()).strip()
    await target.click()
    await expect(page.locator(".move")).to_contain_text(new_time)
    await page.get_by_role("button", name="Oui, déplacer mon rendez-vous").click()
    await expect(page.get_by_role("status")).to_have_text("Votre rendez-vous a été déplacé.")
    moved = await booking_row(live_server.pool, reference)
    assert moved["slot_id"] != row["slot_id"] and moved["status"] == "confirmed"
    await expect(main).to_contain_text(new_time)

    # Cancel, with the confirmation step.
    await page.get_by_role("link", name="Annuler ce rendez-vous").click()
    await page.get_by_role("button", name="Oui, annuler ce rendez-vous").click()
    await expect(page.get_by_role("status")).to_have_text("Votre rendez-vous est annulé.")
    assert (await booking_row(live_server.pool, reference))["status"] == "cancelled"
    assert blocked == []
    await context.close()


async def test_book_in_arabic_with_moroccan_month_and_cancel_by_link(
    browser: Browser, live_server: LiveServer
) -> None:
    # August, so that the Moroccan month name (غشت, not أغسطس) shows.
    live_server.clock.set(datetime(2027, 8, 2, 7, 0, tzinfo=UTC))
    async with live_server.pool.acquire() as conn:
        office = await office_store.get_office(conn, "prefecture-tiznit")
        assert office is not None
        await slot_store.regenerate_office(conn, office, live_server.clock(), 84)
    await prove_contacts(live_server.pool, "+212612345678", at=live_server.clock())
    context = await new_context(browser, javascript=False, viewport=NARROW, locale="ar-MA")
    page = await context.new_page()
    blocked = watch_csp(page)
    await page.goto(live_server.url + "/")
    assert await page.get_attribute("html", "dir") == "rtl"
    await page.get_by_role("link", name="عمالة إقليم تيزنيت").click()
    await page.get_by_role("link", name="مكتب استقبال مغاربة العالم").click()
    await expect(page.locator("main")).to_contain_text("توقيت المغرب")
    first = page.locator(".times a").first
    chosen_time = (await first.inner_text()).strip()
    await first.click()

    await page.get_by_label("الاسم الكامل").fill("أمينة الإدريسي")
    await page.get_by_label("رقم الهاتف المحمول").fill("0612345678")
    await page.get_by_role("button", name="احجز هذا الموعد").click()

    await expect(page.get_by_role("heading", level=1)).to_have_text("تم حجز موعدك")
    main = page.locator("main")
    await expect(main).to_contain_text("غشت")
    await expect(main).not_to_contain_text("أغسطس")
    await expect(main).to_contain_text(f"{chosen_time} (توقيت المغرب)")
    await expect(main).to_contain_text("+212 6 •• •• •• 78")
    reference = (await page.locator(".reference bdi").inner_text()).strip()
    row = await booking_row(live_server.pool, reference)
    await expect(main).to_contain_text(i18n.date_long(row["starts_at"], "Africa/Casablanca", "ar"))

    # The manage link as a message would carry it, opened in a fresh browser.
    link = await page.locator(".manage-link a").get_attribute("href") or ""
    assert link.startswith(live_server.url + f"/b/{reference}/")
    await context.close()
    context = await new_context(browser, javascript=False, viewport=NARROW, locale="fr-FR")
    page = await context.new_page()
    await page.goto(link)
    # No language chosen in this browser: the booking's language (Arabic) wins.
    assert await page.get_attribute("html", "lang") == "ar"
    await page.get_by_role("link", name="إلغاء هذا الموعد").click()
    await page.get_by_role("button", name="نعم، ألغِ هذا الموعد").click()
    await expect(page.get_by_role("status")).to_have_text("تم إلغاء موعدك.")
    assert (await booking_row(live_server.pool, reference))["status"] == "cancelled"
    assert blocked == []
    await context.close()


async def test_slot_filled_between_choosing_and_submitting(
    browser: Browser, live_server: LiveServer
) -> None:
    await prove_contacts(live_server.pool, "youssef@example.com")
    context = await new_context(browser, javascript=False, viewport=NARROW)
    page = await context.new_page()
    await page.goto(live_server.url + "/offices/consulate-paris/legalization?lang=fr")
    await page.locator(".times a").first.click()
    slot_id = int(await page.locator("input[name=slot]").get_attribute("value") or 0)
    await page.get_by_label("Nom et prénom").fill("Youssef Benali")
    await page.get_by_label("Adresse e-mail").fill("youssef@example.com")
    await fill_slot(live_server, slot_id, "legalization")
    await page.get_by_role("button", name="Réserver ce rendez-vous").click()

    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("Cet horaire n’est plus disponible")
    await expect(page.get_by_label("Nom et prénom")).to_have_value("Youssef Benali")
    choices = page.get_by_role("radio").and_(page.locator("[name=slot]"))
    assert 1 <= await choices.count() <= 6
    await choices.first.check()
    await page.get_by_role("button", name="Réserver ce rendez-vous").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Votre rendez-vous est réservé")
    await context.close()


async def test_keyboard_reaches_a_time_with_visible_focus(
    browser: Browser, live_server: LiveServer
) -> None:
    context = await new_context(browser, javascript=True)
    page = await context.new_page()
    await page.goto(live_server.url + "/offices/consulate-paris/legalization?lang=en")
    # Each time is announced with its day, not as a bare "09:00".
    await expect(page.locator(".times a").first).to_have_accessible_description(
        "Monday, 1 February 2027"
    )
    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    await expect(skip).to_be_focused()
    box = await skip.bounding_box()
    assert box is not None and box["y"] >= 0  # shown on focus, not left off-screen
    for _ in range(40):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            "() => [document.activeElement.closest('.times') !== null,"
            " getComputedStyle(document.activeElement).outlineStyle]"
        )
        if focused[0]:
            assert focused[1] != "none"
            break
    else:
        pytest.fail("no time reachable with Tab")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"/book\?slot=\d+$"))
    await context.close()


# --------------------------------------------------------------------------- audit

Visit = Callable[[Page], Awaitable[None]]


async def audit_pages(server: LiveServer, language: str) -> list[tuple[str, Visit]]:
    """Every citizen page, in `language`, reached the way a citizen would."""
    base = server.url
    token = secrets.token_urlsafe(32)
    async with server.pool.acquire() as conn:
        slots = await conn.fetch(
            """SELECT id FROM slots WHERE office_id = 'consulate-paris'
               AND service_id = 'passport' AND starts_at > $1::timestamptz + interval '1 day'
               ORDER BY starts_at LIMIT 3""",
            server.clock(),
        )
    # An address longer than a 320 px line: the summaries must wrap it.
    email = "fatima.zahra.aitlahcen@famille-example.org"
    await prove_contacts(server.pool, "+33612345678", email)
    booked = await bookings.book(
        server.pool,
        slot_id=slots[0]["id"],
        service_id="passport",
        details=RawDetails(
            name="Fatima Zahra Ait Lahcen",
            phone="06 12 34 56 78",
            email=email,
            language=language,
            document_number=f"AB{secrets.randbelow(10**6):06d}",
        ),
        secret_key=server.secret_key,
        now=server.clock(),
        manage_token=token,
    )
    full_slot = slots[1]["id"]
    await fill_slot(server, full_slot, "passport")
    manage = f"{base}/b/{booked.booking.reference}/{token}"
    q = f"?lang={language}"
    # A booking waiting for its code, and one whose hold ran out.
    held, ended = [
        await bookings.book(
            server.pool,
            slot_id=slots[2]["id"],
            service_id="passport",
            details=RawDetails(
                name="Youssef Benali",
                phone=f"06 98 76 54 {n}{n}",
                language=language,
                document_number=f"CD{secrets.randbelow(10**6):06d}",
            ),
            secret_key=server.secret_key,
            now=server.clock(),
        )
        for n in (1, 2)
    ]
    await server.pool.execute(
        "UPDATE bookings SET hold_expires_at = $2 WHERE id = $1",
        ended.booking.id,
        server.clock() - timedelta(seconds=1),
    )

    def goto(url: str) -> Visit:
        async def visit(page: Page) -> None:
            await page.goto(url)

        return visit

    async def form_errors(page: Page) -> None:
        await page.goto(f"{base}/offices/consulate-paris/passport{q}")
        await page.locator(".times a").first.click()
        await page.locator("button[type=submit]").click()
        await page.wait_for_selector(".error-summary")

    async def reschedule_confirm(page: Page) -> None:
        await page.goto(f"{manage}/reschedule{q}")
        await page.locator(".times a").first.click()
        await page.wait_for_selector(".move")

    return [
        ("start", goto(f"{base}/{q}")),
        ("office", goto(f"{base}/offices/consulate-paris{q}")),
        ("slots", goto(f"{base}/offices/prefecture-tiznit/mre-desk{q}&week=2027-03-08")),
        # The first page: the first free time, and its day opened.
        ("slots-first", goto(f"{base}/offices/consulate-paris/passport{q}")),
        ("form", goto(f"{base}/offices/consulate-paris/passport/book{q}&slot={slots[2]['id']}")),
        ("form-errors", form_errors),
        (
            "form-slot-full",
            goto(f"{base}/offices/consulate-paris/passport/book{q}&slot={full_slot}"),
        ),
        ("confirmation", goto(f"{manage}/confirmation{q}")),
        ("manage", goto(f"{manage}{q}")),
        ("cancel", goto(f"{manage}/cancel{q}")),
        ("reschedule", goto(f"{manage}/reschedule{q}")),
        ("reschedule-confirm", reschedule_confirm),
        ("code", goto(f"{base}/b/{held.booking.reference}/{held.manage_token}/code{q}")),
        ("code-expired", goto(f"{base}/b/{ended.booking.reference}/{ended.manage_token}/code{q}")),
        ("not-found", goto(f"{base}/b/PAR-ZZZZZZ/{'x' * 43}{q}")),
    ]


async def narrow_problems(page: Page, name: str) -> dict[str, object]:
    """What is wrong with a page as a 320 px screen shows it: it scrolls
    sideways, a summary's values are squeezed into a column a word wide, a
    week link, a choice's row or a link alone is too small for a thumb (44
    px), a phone number breaks in two."""
    problems: dict[str, object] = {}
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    if overflow > 0:
        problems[f"{name}@320"] = f"scrolls sideways by {overflow}px"
    for value in await page.locator("dl.summary dd").all():
        box = await value.bounding_box()
        if box is not None and box["width"] < 150:
            problems[f"{name}:dd"] = f"a summary value {box['width']:.0f}px wide"
    for what, selector in (
        ("pager", ".pager a"),
        ("choice", "label.choice"),
        ("link", "main p > a:only-child:not(.button)"),
    ):
        for target in await page.locator(selector).all():
            box = await target.bounding_box()
            if box is not None and box["height"] < 44:
                problems[f"{name}:{what}"] = f"{selector} {box['height']:.0f}px tall"
    broken = await page.evaluate(
        "() => [...document.querySelectorAll('bdi')]"
        ".filter(e => /^[+][0-9 ]+$/.test(e.textContent) && e.getClientRects().length > 1)"
        ".map(e => e.textContent)"
    )
    if broken:
        problems[f"{name}:wrapped"] = broken
    return problems


async def run_axe(page: Page, axe_source: str) -> list[dict[str, Any]]:
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated over the DevTools protocol, so the page's CSP stays on.
        await page.evaluate(axe_source)
    violations: list[dict[str, Any]] = await page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ['violations']});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ')),
            }));
        }"""
    )
    return violations


async def page_weight(page: Page, sizes: dict[str, int]) -> int:
    """Bytes of the HTML plus every stylesheet and script it loads, uncompressed."""
    html = len((await page.content()).encode())
    urls: list[str] = await page.evaluate(
        """() => [...document.querySelectorAll('link[rel=stylesheet][href], script[src]')]
                 .map(e => e.href || e.src)"""
    )
    total = html
    for url in urls:
        if url not in sizes:
            response = await page.request.get(url)
            sizes[url] = len(await response.body())
        total += sizes[url]
    return total


async def tifinagh_fonts(page: Page) -> dict[str, int]:
    """The fonts Chromium drew the page's Tifinagh text with: family -> glyphs.

    Asks the browser (DevTools CSS.getPlatformFontsForNode) for the fonts of
    the switch's Tamazight name and of the first element of the main content
    whose own text is Tifinagh: a box (.notdef) would come from a font
    without Tifinagh, which this names.
    """
    await page.evaluate(
        """() => {
            const tifinagh = /[\u2D30-\u2D7F]/;
            const own = e => [...e.childNodes].some(
                n => n.nodeType === 3 && tifinagh.test(n.textContent));
            const first = [...document.querySelectorAll('main *')].find(own);
            if (first) first.setAttribute('data-tifinagh-probe', '');
            document.querySelector('nav.langs [lang=zgh]')
                .setAttribute('data-tifinagh-probe', '');
        }"""
    )
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("DOM.enable")
    await cdp.send("CSS.enable")
    root = await cdp.send("DOM.getDocument", {"depth": -1})
    found = await cdp.send(
        "DOM.querySelectorAll",
        {"nodeId": root["root"]["nodeId"], "selector": "[data-tifinagh-probe]"},
    )
    fonts: dict[str, int] = {}
    for node_id in found["nodeIds"]:
        used = await cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node_id})
        for font in used["fonts"]:
            fonts[font["familyName"]] = fonts.get(font["familyName"], 0) + font["glyphCount"]
    await cdp.detach()
    return fonts


async def tofu_free(page: Page) -> bool:
    """Each Tifinagh letter of the page is wider or narrower than the box a
    font draws for a character it lacks (a private-use one), in the page's font."""
    return bool(
        await page.evaluate(
            """() => {
                const font = getComputedStyle(document.querySelector('nav.langs [lang=zgh]')).font;
                const ctx = document.createElement('canvas').getContext('2d');
                ctx.font = font;
                const box = ctx.measureText('\uE000').width;
                const letters = 'ⴰⴱⴳⴷⴹⴻⴼⴽⵀⵃⵄⵅⵇⵉⵊⵍⵎⵏⵓⵔⵕⵖⵙⵚⵛⵜⵟⵡⵢⵣⵥ';
                const widths = [...letters].map(c => ctx.measureText(c).width);
                return new Set(widths).size > 3 && widths.filter(w => w === box).length < 3;
            }"""
        )
    )


@pytest.mark.parametrize("language", ["ar", "fr", "en", "es", "zgh"])
async def test_every_page_accessible_light_and_fit_for_320px(
    browser: Browser, live_server: LiveServer, axe_source: str, artifacts: Path, language: str
) -> None:
    context = await new_context(browser, javascript=True)
    page = await context.new_page()
    blocked = watch_csp(page)
    sizes: dict[str, int] = {}
    problems: dict[str, Any] = {}
    weights: dict[str, int] = {}
    for name, visit in await audit_pages(live_server, language):
        await page.set_viewport_size(WIDE)  # type: ignore[arg-type]
        await visit(page)
        assert await page.get_attribute("html", "lang") == language, name
        violations = await run_axe(page, axe_source)
        if violations:
            problems[name] = violations
        weights[name] = await page_weight(page, sizes)
        await page.screenshot(path=artifacts / f"{language}-{name}-1280.png", full_page=True)
        await page.set_viewport_size(NARROW)  # type: ignore[arg-type]
        problems.update(await narrow_problems(page, name))
        await page.screenshot(path=artifacts / f"{language}-{name}-320.png", full_page=True)
        # Tifinagh drawn with a Tifinagh font (the system's Noto Sans
        # Tifinagh; no web font), never as boxes: every page has the switch.
        fonts = await tifinagh_fonts(page)
        if not any("Tifinagh" in family and glyphs for family, glyphs in fonts.items()):
            problems[f"{name}:tifinagh"] = fonts
        if not await tofu_free(page):
            problems[f"{name}:tofu"] = "Tifinagh letters drawn as boxes"
    (artifacts / f"weights-{language}.json").write_text(json.dumps(weights, indent=1))
    await context.close()
    assert not problems, json.dumps(problems, ensure_ascii=False, indent=1)
    heaviest = max(weights, key=lambda n: weights[n])
    assert weights[heaviest] < PAGE_BUDGET, (heaviest, weights[heaviest])
    assert blocked == []
