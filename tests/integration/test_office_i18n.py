"""The office pages in French and Arabic: the same language choice as the
citizen pages (?lang=, then the lang cookie, then Accept-Language, else
French), right-to-left Arabic, Latin data isolated in <bdi>."""

from __future__ import annotations

import re
from collections.abc import Callable
from zoneinfo import ZoneInfo

import asyncpg

from tests.fixtures.office import AGENT, MANAGER, Browser, make_booking

PARIS = ZoneInfo("Europe/Paris")


def reading(browser: Browser, accept_language: str | None) -> Browser:
    """The browser with this Accept-Language, or none at all (the office test
    browsers ask for English by default)."""
    browser.session.headers.popall("Accept-Language", None)
    if accept_language is not None:
        browser.session.headers["Accept-Language"] = accept_language
    return browser


def html_attributes(page: str) -> tuple[str, str]:
    found = re.search(r'<html lang="([^"]+)" dir="([^"]+)">', page)
    assert found, page[:200]
    return found[1], found[2]


async def test_login_page_is_french_without_a_choice_and_arabic_when_the_browser_asks(
    browsers: Callable[[], Browser],
) -> None:
    page = await (await reading(browsers(), None).get("/office/login")).text()
    assert html_attributes(page) == ("fr", "ltr")
    assert "Connexion du personnel" in page and "Mot de passe" in page
    assert "Staff sign-in" not in page

    page = await (await reading(browsers(), "ar-MA,fr;q=0.8").get("/office/login")).text()
    assert html_attributes(page) == ("ar", "rtl")
    assert "دخول الموظفين" in page and "كلمة المرور" in page


async def test_a_wrong_password_is_refused_in_the_readers_language(
    browsers: Callable[[], Browser],
) -> None:
    browser = reading(browsers(), "fr-FR")
    await browser.fetch_csrf()
    r = await browser.post_form(
        "/office/login", {"email": AGENT.email, "password": "not-the-password"}
    )
    page = await r.text()
    assert r.status == 401
    assert "L’adresse e-mail ou le mot de passe est incorrect." in page
    # The language switch of this answer to a post leads to the login page.
    assert 'href="/office/login?next=/office/&amp;lang=ar"' in page


async def test_day_schedule_in_french_and_arabic(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    booking = await make_booking(pool, "consulate-paris", "passport", phone="+33612345678")
    day = booking.starts_at.astimezone(PARIS).date().isoformat()
    browser = reading(browsers(), None)
    await browser.login(AGENT)

    page = await (await browser.get(f"/office/consulate-paris/day/{day}?lang=fr")).text()
    assert html_attributes(page) == ("fr", "ltr")
    assert "Tableau de service" in page
    # Not started yet: arrived or cancel, never absent.
    assert ">Arrivé</button>" in page and ">Absent</button>" not in page
    assert "<summary>Annuler…</summary>" in page and "Motif de l’annulation" in page
    assert ">Annuler ce rendez-vous</button>" in page
    assert "Confirmé" in page  # the status column
    assert "Schedule" not in page and "Arrived" not in page

    # ?lang= is remembered in a cookie: the next page needs no parameter.
    page = await (await browser.get(f"/office/consulate-paris/day/{day}?lang=ar")).text()
    again = await (await browser.get(f"/office/consulate-paris/day/{day}")).text()
    for arabic in (page, again):
        assert html_attributes(arabic) == ("ar", "rtl")
        assert "جدول المواعيد" in arabic
        assert ">حضر</button>" in arabic and ">تغيب</button>" not in arabic
        assert f"<bdi>{booking.reference}</bdi>" in arabic
        assert '<bdi dir="ltr" class="phone">+33 6 12 34 56 78</bdi>' in arabic
    # The switch offers the other languages for the same page.
    assert f'href="/office/consulate-paris/day/{day}?lang=fr"' in page


async def test_hours_page_and_its_problems_in_arabic(browsers: Callable[[], Browser]) -> None:
    browser = reading(browsers(), "ar")
    await browser.login(MANAGER)
    page = await (await browser.get("/office/consulate-paris/hours")).text()
    assert html_attributes(page) == ("ar", "rtl")
    assert "أوقات العمل وأيام الإغلاق" in page and "أوقات العمل الأسبوعية" in page
    assert "إغلاق هذا اليوم" in page

    form = {"sets": "1", "s0-d0-p0-opens": "12:00", "s0-d0-p0-closes": "09:00",
            "s0-d0-p0-counters": "2", "action": "save"}  # fmt: skip
    r = await browser.post_form("/office/consulate-paris/hours", form)
    page = await r.text()
    assert r.status == 422
    assert "حدّد وقت الفتح ووقت الإغلاق، الفتح أولًا." in page
    assert 'href="/office/consulate-paris/hours?lang=fr"' in page

    page = await (await browser.get("/office/consulate-paris/hours?lang=fr")).text()
    assert "Horaires et fermetures" in page and "Fermer ce jour" in page


async def test_account_refusals_are_translated(browsers: Callable[[], Browser]) -> None:
    browser = reading(browsers(), "fr")
    await browser.login(MANAGER)
    r = await browser.post_form(
        "/office/consulate-paris/staff", {"email": AGENT.email, "role": "agent"}
    )
    page = await r.text()
    assert r.status == 422
    assert "Un compte existe déjà avec cette adresse e-mail." in page
    assert "Personnel" in page and "Responsable" in page  # the manager's role label


async def test_every_office_page_renders_in_french_and_arabic(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    booking = await make_booking(pool, "consulate-paris", "passport")
    day = booking.starts_at.astimezone(PARIS).date().isoformat()
    pages = (
        "/office/account",
        f"/office/consulate-paris/day/{day}/print",
        f"/office/consulate-paris/bookings/{booking.reference}",
        f"/office/consulate-paris/book?service=passport&date={day}",
        "/office/consulate-paris/services",
        "/office/consulate-paris/staff",
        "/office/consulate-paris/stats?week=2027-W05",
        "/office/consulate-paris/feed",
    )
    expected = {
        "fr": ("Jetons d’API", "Rendez-vous", "Statistiques", "Flux d’agenda", "Personnel"),
        "ar": ("رموز الواجهة البرمجية", "الموعد", "الإحصائيات", "رابط التقويم", "الموظفون"),
    }
    for language, words in expected.items():
        browser = reading(browsers(), language)
        await browser.login(MANAGER)
        seen = ""
        for path in pages:
            r = await browser.get(path)
            page = await r.text()
            assert r.status == 200, (language, path)
            assert html_attributes(page) == (language, "rtl" if language == "ar" else "ltr")
            seen += page
        assert all(word in seen for word in words), language
