"""Inputs that once answered 500, one request each: every one gets a 4xx with
the usual error body (JSON under /api/, a page elsewhere) in the request's
language, and nothing is written.

The causes they share are fixed once (service.web.inputs and
service.domain.fields): NUL and lone surrogates in any text, lengths checked
against the schema's limits, days bounded to what the calendar can turn into
instants, integers read with a range, JSON with a bounded depth.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from service.domain.fields import EMAIL_MAX
from service.web.accesslog import answered_requests
from service.web.i18n import gettext
from service.web.openapi import openapi_document
from service.web.templating import isolate_ltr
from tests.fixtures.app import LiveServer
from tests.fixtures.office import AGENT, MANAGER, Browser, free_slot

Client = TestClient  # type: ignore[type-arg]

# Hostile input, not abuse: a returning citizen (contacts proved, so a booking
# is confirmed at once) without per-address limits; test_abuse_*.py test those.
pytestmark = [pytest.mark.no_rate_limits, pytest.mark.usefixtures("returning_citizen")]

AVAILABILITY = "/api/v1/offices/consulate-paris/availability"
UNREADABLE = "Remove the invisible characters (NUL or half a character pair) from this."
BAD_DAY = "Enter a date as YYYY-MM-DD, between 2000-01-01 and 2199-12-31."
LONG_EMAIL = "a" * 64 + "@" + "b" * 189 + ".example"  # 262 characters, the regex's shape


async def written(pool: asyncpg.Pool) -> dict[str, int]:
    """What any accepted request would have added to."""
    async with pool.acquire() as conn:
        return {
            table: await conn.fetchval(f"SELECT count(*) FROM {table}")
            for table in ("bookings", "outbox", "audit_log", "form_keys", "manage_tokens")
        } | {"taken": await conn.fetchval("SELECT sum(taken) FROM slots")}


def booking_body(slot_id: int, **changes: Any) -> dict[str, Any]:
    body = {
        "slot_id": slot_id,
        "service": "legalization",
        "name": "Amina El Idrissi",
        "phone": "+33612345678",
        "language": "fr",
    }
    return body | changes


async def _api(
    client: Client, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
) -> ClientResponse:
    return await client.request(
        method, path, headers={"Accept-Language": "ar", **(headers or {})}, **kwargs
    )


async def _slot(pool: asyncpg.Pool, clock: Any) -> int:
    row = await free_slot(pool, "consulate-paris", "legalization", clock() + timedelta(days=2))
    return int(row["id"])


# JSON answers ----------------------------------------------------------------------------

Call = Callable[[Client, int], Awaitable[ClientResponse]]


def _post_json(body: Any) -> Call:
    return lambda c, slot: _api(c, "POST", "/api/v1/bookings", json=body(slot))


def _post_raw(raw: bytes, **headers: str) -> Call:
    return lambda c, slot: _api(
        c,
        "POST",
        "/api/v1/bookings",
        data=raw,
        headers={"Content-Type": "application/json", **headers},
    )


API_CASES: dict[str, tuple[Call, int, str, dict[str, str] | None]] = {
    "NUL in a path segment": (
        lambda c, s: _api(c, "GET", "/api/v1/offices/consulate%00-paris/services"),
        404, "not_found", None,
    ),
    "NUL in a query value": (
        lambda c, s: _api(
            c, "GET", f"{AVAILABILITY}?service=pass%00port&from=2027-02-02&to=2027-02-03"
        ),
        422, "validation", {"service": UNREADABLE},
    ),
    "the last days of the calendar": (
        lambda c, s: _api(
            c, "GET", f"{AVAILABILITY}?service=passport&from=9999-12-30&to=9999-12-31"
        ),
        422, "validation", {"from": BAD_DAY, "to": BAD_DAY},
    ),
    "the first day of the calendar": (
        lambda c, s: _api(
            c, "GET", f"{AVAILABILITY}?service=passport&from=0001-01-01&to=0001-01-02"
        ),
        422, "validation", {"from": BAD_DAY, "to": BAD_DAY},
    ),
    "NUL in a JSON string": (
        _post_json(lambda s: booking_body(s, email="a\u0000b@example.com")),
        422, "validation", {"email": UNREADABLE},
    ),
    "a lone surrogate as the service": (
        _post_json(lambda s: booking_body(s, service="\ud800")),
        422, "validation", {"service": UNREADABLE},
    ),
    "a lone surrogate in the name": (
        _post_json(lambda s: booking_body(s, name="Ali \ud800")),
        422, "validation", {"name": UNREADABLE},
    ),
    "a lone surrogate in a key": (
        _post_json(lambda s: booking_body(s) | {"\udc80": 1}),
        422, "validation", {"": UNREADABLE},
    ),
    "an e-mail longer than the column": (
        _post_json(lambda s: booking_body(s, email=LONG_EMAIL)),
        422, "validation", None,
    ),
    "JSON nested 10,000 deep": (
        _post_raw(b"[" * 10_000 + b"]" * 10_000), 400, "malformed_json", None
    ),
    "JSON nested 20 deep": (
        _post_raw(b'{"name": ' + b"[" * 20 + b"]" * 20 + b"}"), 400, "malformed_json", None
    ),
    "an integer of 5,000 digits": (
        _post_raw(b'{"slot_id": ' + b"7" * 5000 + b"}"), 400, "malformed_json", None
    ),
    "NaN": (_post_raw(b'{"slot_id": NaN}'), 400, "malformed_json", None),
    "bytes that are not UTF-8": (_post_raw(b'{"name": "\xff"}'), 400, "malformed_json", None),
    "a gzip body that does not inflate": (
        _post_raw(b"garbage", **{"Content-Encoding": "gzip"}), 400, "malformed_json", None
    ),
    "a slot id past bigint": (
        _post_json(lambda s: booking_body(2**63)), 422, "validation", None
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(API_CASES))
async def test_api_refuses_in_the_callers_language_and_writes_nothing(
    case: str, app_client: Client, pool: asyncpg.Pool, clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    call, status, code, fields = API_CASES[case]
    slot = await _slot(pool, clock)
    before = await written(pool)
    with caplog.at_level(logging.ERROR):
        r = await call(app_client, slot)
    assert not caplog.records  # what a 500 would have logged
    body = await r.json()
    assert (r.status, body["error"]) == (status, code), body
    assert r.headers["Content-Language"] == "ar"
    assert re.search("[\u0600-\u06ff]", body["message"]), body
    if fields is not None:
        assert body["fields"] == {k: gettext("ar", v) for k, v in fields.items()}
    assert await written(pool) == before


async def test_an_email_one_character_over_the_column_is_refused_on_its_field(
    app_client: Client, pool: asyncpg.Pool, clock: Any
) -> None:
    """The regex's shape allows 318 characters; the column 254."""
    # DNS labels are at most 63 characters: the domain is four of them.
    domain = "b" * 63 + "." + "c" * 63 + "." + "d" * (EMAIL_MAX - 64 - 1 - 63 - 1 - 63 - 1 - 4)
    at_limit = "a" * 64 + "@" + domain + ".org"
    assert len(at_limit) == EMAIL_MAX
    slot = await _slot(pool, clock)
    over = booking_body(slot, email="x" + at_limit)
    r = await _api(app_client, "POST", "/api/v1/bookings", json=over)
    assert r.status == 422
    assert set((await r.json())["fields"]) == {"email"}
    r = await _api(app_client, "POST", "/api/v1/bookings", json=booking_body(slot, email=at_limit))
    assert r.status == 201


async def test_a_header_that_is_not_text_is_refused(app_client: Client, pool: asyncpg.Pool) -> None:
    """Undecodable header bytes (a bearer token here) are refused before any
    handler hashes or looks them up."""
    before = await written(pool)
    server = app_client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(
        b"GET /api/v1/bookings/PAR-7KX3QM HTTP/1.1\r\nHost: x\r\nAccept-Language: fr\r\n"
        b"Authorization: Bearer \xed\xa0\x80\xff\r\nConnection: close\r\n\r\n"
    )
    await writer.drain()
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer
    assert b'"error": "malformed_header"' in body
    assert b"Content-Language: fr" in head
    assert await written(pool) == before


async def cut_short(host: str, port: int, path: str) -> None:
    """A POST whose client hangs up after a few bytes of its body."""
    _, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
        "\r\nContent-Length: 1000\r\n\r\nname=Amina".encode()
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()


BODY_PATHS = ["/api/v1/bookings", "/offices/consulate-paris/passport/book"]


@pytest.mark.parametrize("path", BODY_PATHS)
async def test_a_body_cut_short_by_the_client_is_no_error_of_ours(
    app_client: Client, pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    """A client that hangs up halfway through its body: nothing written, no
    error line (anyone could fill the log and the 500 rate so), counted as
    closed by the client. Here aiohttp cancels the handler (its test server
    does); below it reads on and finds the connection reset (mawid serve)."""
    caplog.set_level(logging.INFO)
    before = await written(pool)
    await cut_short(app_client.server.host, app_client.server.port, path)
    answered = answered_requests(app_client.app)
    for _ in range(100):
        if len(answered):
            break
        await asyncio.sleep(0.02)
    answered.flush()
    # Its access line: the route pattern and 499.
    assert re.search(r"POST /[\w/{}]+ 499 ", caplog.text), caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert await written(pool) == before


@pytest.mark.parametrize("path", BODY_PATHS)
async def test_a_body_cut_short_is_no_error_where_handlers_read_on(
    live_server: LiveServer, pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    caplog.set_level(logging.INFO)
    before = await written(pool)
    host, port = live_server.url.removeprefix("http://").split(":")
    await cut_short(host, int(port), path)
    for _ in range(100):
        if "client closed the connection during POST" in caplog.text:
            break
        await asyncio.sleep(0.02)
    assert "client closed the connection during POST" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert await written(pool) == before


@pytest.mark.parametrize(
    "request_head",
    [
        b"GET /?q=" + b"x" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"x" * 10_000 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    ],
    ids=["request-line", "header", "content-length"],
)
async def test_a_request_aiohttp_cannot_read_is_an_info_line_without_the_address(
    live_server: LiveServer, caplog: pytest.LogCaptureFixture, request_head: bytes
) -> None:
    """Anyone can send these by the thousand: each was an ERROR with a
    traceback and the client's address (personal data)."""
    caplog.set_level(logging.DEBUG)
    host, port = live_server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request_head)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.partition(b"\r\n")[0].endswith(b" 400 Bad Request"), answer[:200]
    for _ in range(100):
        if "request not read" in caplog.text:
            break
        await asyncio.sleep(0.02)
    refused = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert refused, caplog.text
    assert all(r.levelno == logging.INFO and not r.exc_info for r in refused), caplog.text
    assert all(r.getMessage().startswith("request not read: ") for r in refused), caplog.text
    assert host not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


async def test_every_405_names_the_methods_its_resource_has(app_client: Client) -> None:
    """RFC 9110: each API path, asked with a method it lacks, lists its own."""
    for path, operations in openapi_document()["paths"].items():
        url = path.replace("{office}", "consulate-paris").replace("{reference}", "PAR-7KX3QM")
        url = url.replace("{service}", "passport").replace("{id}", "1")
        r = await app_client.delete(url, headers={"Accept-Language": "fr"})
        assert r.status == 405, path
        methods = {m.upper() for m in operations} | ({"HEAD"} if "get" in operations else set())
        assert set(r.headers["Allow"].split(", ")) == methods, path
        assert (await r.json())["error"] == "method_not_allowed"


# Pages -----------------------------------------------------------------------------------


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden field {name}"
    return html.unescape(found[1])


def in_arabic(page: str) -> bool:
    return '<html lang="ar" dir="rtl">' in page


async def _book_form(client: Client, slot: int) -> dict[str, str]:
    r = await client.get(f"/offices/consulate-paris/legalization/book?slot={slot}&lang=ar")
    page = await r.text()
    assert r.status == 200, page
    return {
        "_csrf": hidden(page, "_csrf"),
        "form_key": hidden(page, "form_key"),
        "slot": str(slot),
        "name": "Amina El Idrissi",
        "phone_country": "FR",
        "phone": "06 12 34 56 78",
        "email": "",
        "language": "fr",
    }


BOOK = "/offices/consulate-paris/legalization/book?lang=ar"

PAGE_CASES: dict[str, tuple[dict[str, str], int, str]] = {
    # The form's own answer: the details form again, the problem shown on it.
    "a slot written ²": ({"slot": "\u00b2"}, 422, "Choose a time slot."),
    "a slot past bigint": ({"slot": "99999999999999999999"}, 422, "Choose a time slot."),
    "an e-mail longer than the column": (
        {"email": LONG_EMAIL}, 422, "Enter one valid email address, like name@example.com."
    ),
    # Refused before the handler: a page in the site's layout.
    "NUL in the name": ({"name": "Ali\u0000"}, 422, "Some fields need your attention."),
    # Undecodable bytes in a url-encoded form are read as U+FFFD, never as
    # surrogates: here the phone number is wrong, and says so.
    "undecodable bytes in the phone": (
        {"phone": "06\udc80"}, 422, "Enter a valid phone number, like 06 12 34 56 78."
    ),
}  # fmt: skip


def _form_body(fields: dict[str, str]) -> bytes:
    """Url-encoded byte for byte, lone surrogates included (as a browser
    never would, and a script might)."""
    return "&".join(f"{_quote(k)}={_quote(v)}" for k, v in fields.items()).encode()


def _quote(text: str) -> str:
    return "".join(
        chr(b) if chr(b).isalnum() and b < 128 else f"%{b:02X}"
        for b in text.encode("utf-8", "surrogatepass")
    )


async def _post_form(
    client: Client, path: str, fields: dict[str, str], **kwargs: Any
) -> ClientResponse:
    return await client.post(
        path,
        data=_form_body(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        allow_redirects=False,
        **kwargs,
    )


@pytest.mark.parametrize("case", list(PAGE_CASES))
async def test_the_booking_form_refuses_in_the_page_language_and_writes_nothing(
    case: str, app_client: Client, pool: asyncpg.Pool, clock: Any
) -> None:
    changes, status, message = PAGE_CASES[case]
    form = await _book_form(app_client, await _slot(pool, clock))
    before = await written(pool)
    r = await _post_form(app_client, BOOK, form | changes)
    page = await r.text()
    assert r.status == status, page
    assert in_arabic(page)
    # As the page shows it: Latin runs isolated left to right in Arabic.
    assert isolate_ltr(gettext("ar", message)) in page
    assert await written(pool) == before


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/x-www-form-urlencoded; charset=nope"},
        {"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "deflate"},
    ],
)
async def test_a_form_that_cannot_be_read_is_refused(
    app_client: Client,
    pool: asyncpg.Pool,
    clock: Any,
    headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _book_form(app_client, await _slot(pool, clock))
    before = await written(pool)
    with caplog.at_level(logging.ERROR):
        r = await app_client.post(BOOK, data=b"name=x", headers=headers)
        page = await r.text()
    assert r.status == 400
    assert in_arabic(page) and gettext("ar", "The form could not be read.") in page
    assert not caplog.records  # what a 500 would have logged
    assert await written(pool) == before


@pytest.mark.parametrize(
    "path", ["/offices/consulate%00-paris", "/static/" + "a" * 256, "/static/x/" + "é" * 128]
)
async def test_a_path_no_page_or_file_could_have_is_a_missing_page(
    app_client: Client, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        r = await app_client.get(path, headers={"Accept-Language": "ar"})
        assert r.status == 404
        assert in_arabic(await r.text())
    assert not caplog.records  # what a 500 would have logged


async def test_reschedule_to_a_slot_written_superscript(
    app_client: Client, pool: asyncpg.Pool, clock: Any
) -> None:
    form = await _book_form(app_client, await _slot(pool, clock))
    r = await _post_form(app_client, BOOK, form)
    assert r.status == 303
    manage = r.headers["Location"].removesuffix("/confirmation")
    page = await (await app_client.get(manage + "/reschedule?lang=ar")).text()
    # The form that moves is on the confirmation step a chosen time opens.
    ask = re.findall(r'href="([^"]+/reschedule/confirm\?slot=\d+)"', page)[0]
    page = await (await app_client.get(ask + "&lang=ar")).text()
    before = await written(pool)
    for slot in ("\u00b2", "99999999999999999999", "-1"):
        r = await _post_form(
            app_client,
            manage + "/reschedule?lang=ar",
            {"_csrf": hidden(page, "_csrf"), "slot": slot},
        )
        assert r.status == 422
        assert html.escape(gettext("ar", "Choose a time slot."), quote=False) in await r.text()
    assert await written(pool) == before


async def test_staff_forms_read_their_numbers_with_a_range(
    browsers: Callable[[], Browser], pool: asyncpg.Pool
) -> None:
    agent = browsers()
    await agent.login(AGENT)
    before = await written(pool)
    r = await agent.post_form(
        "/office/consulate-paris/book",
        {"slot_id": "99999999999999999999", "service": "passport", "name": "Ali"},
    )
    assert r.status == 422
    for slot_id in ("\u00b2", "\u0663"):
        r = await agent.post_form(
            "/office/consulate-paris/book", {"slot_id": slot_id, "service": "passport"}
        )
        assert r.status == 422
    r = await agent.post_form("/office/account/tokens/99999999999999999999/revoke")
    assert r.status == 404
    manager = browsers()
    await manager.login(MANAGER)
    r = await manager.get("/office/consulate-paris/hours?cancelled=%C2%B2&kept=%D9%A3")
    assert r.status == 200
    r = await manager.post_form(
        "/office/consulate-paris/services/passport",
        {"duration_minutes": "\u00b2\u00b2", "earliest_hours": "2", "latest_days": "60",
         "reschedule_cutoff_minutes": "120"},
    )  # fmt: skip
    assert r.status == 422
    assert await written(pool) == before
