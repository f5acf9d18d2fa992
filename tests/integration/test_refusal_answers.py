"""Refusals answer in the reader's language: JSON under /api/, a page in the
site's layout elsewhere (service.web.errors), whatever raised them."""

from __future__ import annotations

import html
import re
from datetime import datetime

import asyncpg
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from service.app import create_app
from service.config import Settings
from service.office import accounts
from service.store import staff as staff_store
from service.web.i18n import gettext
from tests.clock import FakeClock

Client = TestClient  # type: ignore[type-arg]

AGENT = ("agent@mawid.test", "dev-agent-password")
MANAGER = ("manager@mawid.test", "dev-manager-password")
SCHEDULE = "/api/v1/offices/consulate-paris/schedule?date=2027-02-02"
STATS = "/api/v1/offices/consulate-paris/stats"

# The four API messages that were English in every language.
TEXTS = {
    "ar": {
        "unauthorized": "سجّل الدخول أو أرسل رمزًا للواجهة البرمجية.",
        "csrf": "يجب أن يتضمن كل طلب من متصفح مسجَّل الدخول الترويسة X-CSRF-Token.",
        "forbidden": "لا تسمح لك صفتك بالقيام بهذا.",
        "week": "أدخل الأسبوع بالصيغة YYYY-Www، مثل 2027-W05.",
        "not_allowed": "غير مسموح",
        "page_not_found": "الصفحة غير موجودة",
        "form_expired": "انتهت صلاحية هذه الاستمارة",
    },
    "fr": {
        "unauthorized": "Connectez-vous ou envoyez un jeton d’API.",
        "csrf": "Un appel depuis un navigateur connecté doit porter l’en-tête X-CSRF-Token.",
        "forbidden": "Votre rôle ne vous permet pas de faire ceci.",
        "week": "Saisissez une semaine au format AAAA-Wss, par exemple 2027-W05.",
        "not_allowed": "Action non autorisée",
        "page_not_found": "Page introuvable",
        "form_expired": "Ce formulaire a expiré ou ne vient pas de ce site.",
    },
    "es": {
        "unauthorized": "Inicie sesión o envíe un token de API.",
        "csrf": "Una llamada desde un navegador con sesión iniciada debe llevar la cabecera "
        "X-CSRF-Token.",
        "forbidden": "Su rol no permite hacer esto.",
        "week": "Escriba una semana como AAAA-Wss, por ejemplo 2027-W05.",
        "not_allowed": "No permitido",
        "page_not_found": "Página no encontrada",
        "form_expired": "Este formulario ha caducado o no procede de este sitio.",
    },
    "zgh": {
        "unauthorized": "ⴽⵛⵎ ⵏⵉⵖ ⴰⵣⵏ ⴰⵜⵓⴽⵏ ⵏ API.",
        "csrf": "ⵜⵉⵖⵔⵉ ⵣⵖ ⵓⵎⵙⴳⴷ ⵉⴽⵛⵎⵏ ⵉⵅⵚⵚ ⴰⴷ ⵜⴰⵡⵉ ⴰⵣⵡⵍ X-CSRF-Token.",
        "forbidden": "ⵜⴰⵡⵓⵔⵉ ⵏⴽ ⵓⵔ ⴰⵙ ⵉⵜⵜⵓⵡⵊⵊⴰⴱ ⴰⵢⴰⴷ.",
        "week": "ⴰⵔⵓ ⵉⵎⴰⵍⴰⵙ ⵣⵓⵏ ⴷ YYYY-Www, ⵣⵓⵏ ⴷ 2027-W05.",
        "not_allowed": "ⵓⵔ ⵉⵜⵜⵓⵡⵊⵊⴰⴱ",
        "page_not_found": "ⵓⵔ ⵜⵜⵡⴰⴼⴰ ⵜⴰⵙⵏⴰ",
        "form_expired": "ⵜⴰⵍⵖⴰ ⴰⴷ ⵉⵣⵔⵉ ⵓⴽⵓⴷ ⵏⵏⵙ ⵏⵉⵖ ⵓⵔ ⴷ ⵜⵓⵙⵉ ⵣⵖ ⵓⵙⵎⵉⵍ ⴰⴷ.",
    },
}
LANGUAGES = sorted(TEXTS)


async def _get_as(
    client: Client, pool: asyncpg.Pool, settings: Settings, now: datetime, email: str, path: str,
    language: str,
) -> ClientResponse:
    """GET `path` with an API token of `email`, read in `language`."""
    async with pool.acquire() as conn:
        found = await staff_store.credentials(conn, email)
    assert found is not None
    token = await accounts.create_api_token(
        pool, found.member, "tests", secret_key=settings.secret_key, now=now
    )
    return await client.get(
        path, headers={"Authorization": f"Bearer {token}", "Accept-Language": language}
    )


async def _csrf(client: Client, path: str = "/office/login") -> str:
    page = await (await client.get(path)).text()
    found = re.search(r'name="_csrf" value="([0-9a-f]+)"', page)
    assert found, page
    return found[1]


async def _sign_in(client: Client, who: tuple[str, str]) -> None:
    token = await _csrf(client)
    r = await client.post(
        "/office/login",
        data={"email": who[0], "password": who[1], "_csrf": token},
        allow_redirects=False,
    )
    assert r.status == 303


def _speaks(page: str, language: str) -> bool:
    direction = "rtl" if language == "ar" else "ltr"
    return f'<html lang="{language}" dir="{direction}">' in page


@pytest.mark.parametrize("language", LANGUAGES)
async def test_no_credentials(app_client: Client, language: str) -> None:
    r = await app_client.get(SCHEDULE, headers={"Accept-Language": language})
    assert r.status == 401
    assert r.headers["Content-Language"] == language
    assert await r.json() == {"error": "unauthorized", "message": TEXTS[language]["unauthorized"]}


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_role_that_may_not(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock, language: str
) -> None:
    r = await _get_as(app_client, pool, settings, clock(), AGENT[0], STATS, language)
    assert r.status == 403
    assert await r.json() == {"error": "forbidden", "message": TEXTS[language]["forbidden"]}


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_week_that_is_no_week(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock, language: str
) -> None:
    path = STATS + "?week=soon"
    r = await _get_as(app_client, pool, settings, clock(), MANAGER[0], path, language)
    assert r.status == 422
    body = await r.json()
    assert body["error"] == "validation"
    assert body["fields"] == {"week": TEXTS[language]["week"]}


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_signed_in_browser_call_without_the_csrf_header(
    app_client: Client, pool: asyncpg.Pool, language: str
) -> None:
    await _sign_in(app_client, AGENT)
    async with pool.acquire() as conn:
        before = await conn.fetchval("SELECT count(*) FROM audit_log")
    r = await app_client.post(
        "/api/v1/offices/consulate-paris/bookings/PAR-AAAAAA/status",
        json={"status": "checked_in"},
        headers={"Accept-Language": language},
    )
    assert r.status == 403
    assert await r.json() == {"error": "csrf", "message": TEXTS[language]["csrf"]}
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == before


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_role_that_may_not_gets_a_page_in_the_layout(
    app_client: Client, language: str
) -> None:
    await _sign_in(app_client, AGENT)
    r = await app_client.get(f"/office/consulate-paris/hours?lang={language}")
    page = await r.text()
    assert r.status == 403
    assert _speaks(page, language) and '<header class="site">' in page
    assert f"<h1>{TEXTS[language]['not_allowed']}</h1>" in page
    assert TEXTS[language]["forbidden"] in page
    assert 'href="/office/"' in page
    assert r.headers["Content-Language"] == language
    assert r.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("language", LANGUAGES)
async def test_office_pages_that_do_not_exist_get_the_one_404_page(
    app_client: Client, language: str
) -> None:
    await _sign_in(app_client, MANAGER)
    for path in (
        "/office/consulate-paris/day/not-a-date",
        "/office/consulate-paris/bookings/PAR-ZZZZZZ",
        "/office/prefecture-tiznit/day/2027-02-02",  # not theirs: the same answer
        "/office/consulate-paris/services/no-such-service",
    ):
        if path.endswith("no-such-service"):
            token = await _csrf(app_client, "/office/consulate-paris/services")
            r = await app_client.post(f"{path}?lang={language}", data={"_csrf": token})
        else:
            r = await app_client.get(f"{path}?lang={language}")
        page = await r.text()
        assert r.status == 404, path
        assert _speaks(page, language), path
        assert f"<h1>{TEXTS[language]['page_not_found']}</h1>" in page, path
        assert r.headers["Referrer-Policy"] == "no-referrer", path


@pytest.mark.parametrize("language", LANGUAGES)
async def test_a_form_without_its_csrf_token_gets_a_page_in_the_layout(
    app_client: Client, language: str
) -> None:
    r = await app_client.post(
        "/offices/consulate-paris/legalization/book",
        data={"name": "x"},
        headers={"Accept-Language": language},
    )
    page = await r.text()
    assert r.status == 403
    assert _speaks(page, language)
    assert TEXTS[language]["form_expired"] in page


def _said(language: str, message: str) -> str:
    """`message` in `language`, proven translated (not the English source)."""
    text = gettext(language, message)
    assert text != message, (language, message)
    return text


def _shown(page: str) -> str:
    """The page's text as read: without tags (Latin runs sit in <bdi>)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


@pytest.mark.parametrize("language", LANGUAGES)
async def test_aiohttps_own_refusals_on_a_page_get_the_sites_page_in_the_readers_language(
    settings: Settings, pool: asyncpg.Pool, clock: FakeClock, language: str
) -> None:
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    app = create_app(settings, pool=pool, clock=clock)
    app.router.add_get("/boom", boom)
    heard = {"Accept-Language": language}
    async with TestClient(TestServer(app)) as client:
        # A method no page has.
        r = await client.options("/offices/consulate-paris/passport", headers=heard)
        assert r.status == 405 and set(r.headers["Allow"].split(", ")) == {"GET", "HEAD"}
        page = await r.text()
        assert _speaks(page, language) and '<header class="site">' in page
        assert _said(language, "Method not allowed.") in _shown(page)
        # A form posted where no form goes: the address's 405 or 404, not
        # the CSRF check's 403 (nothing there would act on it).
        r = await client.post("/offices/consulate-paris/passport", data={"x": "1"}, headers=heard)
        assert r.status == 405 and set(r.headers["Allow"].split(", ")) == {"GET", "HEAD"}
        assert _said(language, "Method not allowed.") in _shown(await r.text())
        r = await client.post("/nowhere/at/all", data={"x": "1"}, headers=heard)
        assert r.status == 404 and _speaks(await r.text(), language)
        # The static files' directory (aiohttp forbids listing it): no such page.
        for path in ("/static", "/static/"):
            r = await client.get(path, headers=heard)
            assert r.status == 404 and _speaks(await r.text(), language), path
        # A form larger than any of ours: refused before the handler.
        r = await client.post(
            "/offices/consulate-paris/passport/book", data={"name": "x" * 70_000}, headers=heard
        )
        assert r.status == 413 and _speaks(page := await r.text(), language)
        assert _said(language, "The request body is larger than 64 KiB.") in _shown(page)
        # A failure of ours: logged (test_privacy), answered in the layout too.
        r = await client.get("/boom", headers=heard)
        assert r.status == 500 and _speaks(page := await r.text(), language)
        assert _said(language, "Something went wrong on our side.") in _shown(page)
        assert r.headers["Content-Language"] == language and r.headers["X-Request-Id"]
        assert "a bug" not in page
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM bookings") == 0
