"""Personal data and secrets never reach the logs."""

from __future__ import annotations

import asyncio
import io
import logging
import secrets
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from service.app import create_app
from service.config import Settings
from service.devstack import RunningPostgres
from service.web.accesslog import answered_requests
from tests.clock import FakeClock
from tests.codesink import code_for
from tests.integration.test_observability import lines, logged_as_json

NAME = "Zineb Benjelloun-Privacy"
PHONE_RAW = "06 98 76 54 32"
EMAIL = "zineb.privacy@example.org"
DOCUMENT = "PRIV998877"


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {r.stack_info or ''}" for r in caplog.records
    )


async def test_a_booking_life_leaves_no_personal_data_in_logs(
    app_client: TestClient,  # type: ignore[type-arg]
    caplog: pytest.LogCaptureFixture,
    pool: asyncpg.Pool,
    settings: Settings,
    clock: FakeClock,
) -> None:
    caplog.set_level(logging.DEBUG)
    resp = await app_client.get(
        "/api/v1/offices/consulate-paris/availability",
        params={"service": "passport", "from": "2027-02-03", "to": "2027-02-03"},
    )
    slots = (await resp.json())["slots"]
    resp = await app_client.post(
        "/api/v1/bookings",
        json={
            "slot_id": slots[0]["id"],
            "service": "passport",
            "name": NAME,
            "phone": PHONE_RAW,
            "email": EMAIL,
            "language": "ar",
            "document_number": DOCUMENT,
        },
    )
    assert resp.status == 201
    booked = await resp.json()
    token = booked["manage_token"]
    headers = {"Authorization": f"Bearer {token}"}
    url = f"/api/v1/bookings/{booked['reference']}"
    assert (await app_client.get(url, headers=headers)).status == 200
    # The code step: a wrong code, then the right one (sent by the worker).
    assert booked["status"] == "held"
    code = await code_for(pool, settings, clock, "+33698765432")
    wrong = "000000" if code != "000000" else "111111"
    resp = await app_client.post(f"{url}/verify", json={"code": wrong}, headers=headers)
    assert resp.status == 422
    resp = await app_client.post(f"{url}/verify", json={"code": code}, headers=headers)
    assert resp.status == 200
    resp = await app_client.post(
        f"{url}/reschedule", json={"slot_id": slots[1]["id"]}, headers=headers
    )
    assert resp.status == 200
    assert (await app_client.post(f"{url}/cancel", headers=headers)).status == 200
    # The same document refused, and a validation error that echoes nothing.
    resp = await app_client.post(
        "/api/v1/bookings",
        json={
            "slot_id": slots[2]["id"],
            "service": "passport",
            "name": NAME,
            "email": "not-an-email " + EMAIL,
            "language": "ar",
            "document_number": DOCUMENT,
        },
    )
    assert resp.status == 422
    answered_requests(app_client.app).flush()
    logged = everything_logged(caplog)
    assert caplog.records, "the capture works"
    assert "POST /api/v1/bookings/{reference}/verify 422" in logged, "access lines included"
    for secret in (NAME, EMAIL, DOCUMENT, "+33698765432", "698765432", token, code):
        assert secret not in logged


async def test_a_refused_duplicate_leaves_no_document_number_in_the_postgres_log(
    app_client: TestClient,  # type: ignore[type-arg]
    pg_server: RunningPostgres | None,
) -> None:
    if pg_server is None:
        pytest.skip("a Postgres of the caller's (DATABASE_URL): its log is not ours")
    resp = await app_client.get(
        "/api/v1/offices/consulate-paris/availability",
        params={"service": "passport", "from": "2027-02-03", "to": "2027-02-03"},
    )
    slots = (await resp.json())["slots"]
    document = "DUPE" + secrets.token_hex(4).upper()
    statuses = []
    for slot in slots[:2]:
        resp = await app_client.post(
            "/api/v1/bookings",
            json={"slot_id": slot["id"], "service": "passport", "name": NAME,
                  "phone": PHONE_RAW, "language": "fr", "document_number": document},
        )  # fmt: skip
        statuses.append(resp.status)
    # The second is refused by the database's unique index, which Postgres
    # logs as an error: the error, not the row's values.
    assert statuses == [201, 409]
    logged = pg_server.log_path.read_text(errors="replace")
    assert "bookings_one_active_per_document" in logged
    assert document not in logged


@pytest.mark.parametrize("path", ["/api/v1/boom", "/boom"])
async def test_unexpected_errors_are_logged_without_their_message(
    path: str,
    settings: Settings,
    pool: asyncpg.Pool,
    clock: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError(f"duplicate key (email)=({EMAIL})")

    app = create_app(settings, pool=pool, clock=clock)
    app.router.add_get(path, boom)
    caplog.set_level(logging.DEBUG)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get(path)
        assert resp.status == 500
    logged = everything_logged(caplog)
    assert "RuntimeError" in logged and path in logged, "the failure itself is logged"
    assert EMAIL not in logged


async def test_an_unreadable_request_line_is_logged_without_its_address(
    app_client: TestClient,  # type: ignore[type-arg]
) -> None:
    # A manage link with a byte no text has: aiohttp cannot read the line,
    # and its own error message quotes it, token and all.
    with logged_as_json(io.StringIO()) as stream:
        assert app_client.server.port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", app_client.server.port)
        writer.write(b"GET /b/PAR-ABC123/secret-manage-token\xff/code HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await reader.read(4096)
        writer.close()
        await writer.wait_closed()
        answered_requests(app_client.app).flush()
    assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request")
    logged = lines(stream)
    text = stream.getvalue()
    assert "secret-manage-token" not in text and "PAR-ABC123" not in text
    # One access line, unrouted, and no error of our own logging.
    [access] = [x["message"] for x in logged if x["logger"] == "aiohttp.access"]
    assert " - 400 " in access
    assert "AssertionError" not in text
