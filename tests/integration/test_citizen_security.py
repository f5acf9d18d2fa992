"""Security headers, CSRF and cookies of the HTML side (service/web/security.py)."""

from __future__ import annotations

import re

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.config import Settings
from service.web.accesslog import answered_requests
from service.web.keys import METRICS_KEY
from service.web.security import CSRF_COOKIE, set_cookie
from tests.integration.test_observability import sample

Client = TestClient  # type: ignore[type-arg]


async def test_headers_on_every_kind_of_response(app_client: Client) -> None:
    for method, path in (
        ("GET", "/"),
        ("GET", "/static/site.css"),
        ("GET", "/no/such/page"),
        ("GET", "/api/v1/offices"),
        ("GET", "/healthz"),
        ("PUT", "/healthz"),  # aiohttp's own 405
        ("GET", "/offices/nowhere/nothing"),  # a refusal page
    ):
        resp = await app_client.request(method, path)
        csp = resp.headers.get("Content-Security-Policy", "")
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp, (method, path)
        assert "frame-ancestors 'none'" in csp, path
        assert resp.headers["X-Content-Type-Options"] == "nosniff", path
        assert resp.headers["Referrer-Policy"] in ("same-origin", "no-referrer"), path


async def test_versioned_static_files_are_cached_for_long(app_client: Client) -> None:
    page = await (await app_client.get("/")).text()
    href = re.search(r'href="(/static/site\.css\?v=[0-9a-f]+)"', page)
    assert href
    resp = await app_client.get(href.group(1))
    assert resp.status == 200
    assert "immutable" in resp.headers["Cache-Control"]
    # A file that is not there is not kept by anyone.
    for missing in ("/static/nothing.css?v=1", "/static/nothing.css"):
        resp = await app_client.get(missing)
        assert resp.status == 404
        assert "immutable" not in resp.headers.get("Cache-Control", "")
        assert '<header class="site">' in await resp.text(), "the site's own 404"
    # Counted as what they were, not as the 200 aiohttp had not yet turned into 404.
    answered_requests(app_client.app).flush()
    counted = app_client.app[METRICS_KEY].exposition().decode()
    assert (
        sample(counted, "mawid_http_requests_total", method="GET", route="/static", status="404")
        == 2
    )


async def test_csrf_cookie_is_httponly_lax_and_not_secure_in_test(app_client: Client) -> None:
    resp = await app_client.get("/offices/consulate-paris/legalization")
    page = await resp.text()
    slot = re.search(r"book\?slot=(\d+)", page)
    assert slot
    resp = await app_client.get(f"/offices/consulate-paris/legalization/book?slot={slot[1]}")
    cookie = resp.cookies[CSRF_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]
    assert len(cookie.value) >= 32


async def test_header_token_is_accepted_and_api_paths_are_exempt(
    app_client: Client, pool: asyncpg.Pool
) -> None:
    resp = await app_client.get("/offices/consulate-paris/legalization")
    slot = re.search(r"book\?slot=(\d+)", await resp.text())
    assert slot
    page = await (
        await app_client.get(f"/offices/consulate-paris/legalization/book?slot={slot[1]}")
    ).text()
    token = re.search(r'name="_csrf" value="([0-9a-f]+)"', page)
    assert token
    form_key = re.search(r'name="form_key" value="([^"]+)"', page)
    assert form_key
    data = {
        "slot": slot[1],
        "form_key": form_key[1],
        "name": "Karim Alaoui",
        "email": "karim@example.com",
        "language": "en",
    }
    resp = await app_client.post(
        "/offices/consulate-paris/legalization/book",
        data=data,
        headers={"X-CSRF-Token": token[1]},
        allow_redirects=False,
    )
    assert resp.status == 303
    # An unknown POST target is the site's 404: nothing there acts on a form.
    resp = await app_client.post("/anything", data={"a": "b"})
    assert resp.status == 404 and '<header class="site">' in await resp.text()
    # /api/ answers on its own terms (JSON), never with the CSRF refusal.
    resp = await app_client.post("/api/v1/bookings", json={})
    assert resp.status == 422


async def test_csrf_refusal_speaks_the_readers_language(app_client: Client) -> None:
    resp = await app_client.post(
        "/offices/consulate-paris/legalization/book",
        data={"name": "x"},
        headers={"Accept-Language": "ar"},
    )
    assert resp.status == 403
    assert "انتهت صلاحية هذه الاستمارة" in await resp.text()


async def test_manage_token_never_reaches_a_cookie(app_client: Client) -> None:
    resp = await app_client.get("/offices/consulate-paris/legalization")
    slot = re.search(r"book\?slot=(\d+)", await resp.text())
    assert slot
    page = await (
        await app_client.get(f"/offices/consulate-paris/legalization/book?slot={slot[1]}")
    ).text()
    data = {
        "_csrf": re.findall(r'name="_csrf" value="([^"]+)"', page)[0],
        "form_key": re.findall(r'name="form_key" value="([^"]+)"', page)[0],
        "slot": slot[1],
        "name": "Karim Alaoui",
        "email": "karim@example.com",
        "language": "en",
    }
    resp = await app_client.post(
        "/offices/consulate-paris/legalization/book", data=data, allow_redirects=False
    )
    token = resp.headers["Location"].split("/")[3]
    confirmation = await app_client.get(resp.headers["Location"])
    for answer in (resp, confirmation):
        assert token not in answer.headers.get("Set-Cookie", "")
        assert answer.headers["Referrer-Policy"] == "no-referrer"
    for cookie in app_client.session.cookie_jar:
        assert token not in cookie.value


def test_cookies_are_secure_outside_dev_and_test() -> None:
    for env, secure in (("dev", False), ("test", False), ("production", True)):
        response = web.Response()
        set_cookie(response, "lang", "ar", settings=Settings(env=env))
        morsel = response.cookies["lang"]
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "Lax"
        assert bool(morsel["secure"]) is secure, env
