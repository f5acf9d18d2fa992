"""Request ids from the web request to the worker's job, JSON log lines
without personal data, and /metrics (issue 14)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from service import logs
from service.app import create_app
from service.config import Settings
from service.devstack import free_port
from service.metrics import MULTIPROC_ENV
from service.web.accesslog import answered_requests
from service.web.keys import POOL_KEY
from service.worker import jobs
from service.worker.settings import serve
from tests.clock import FakeClock
from tests.fixtures.app import prove_contacts
from tests.fixtures.notify import Env, book, in_days, outbox_rows, wait_for

NAME = "Zineb Benjelloun-Traced"
PHONE = "+33698765432"
EMAIL = "zineb.traced@example.org"
DOCUMENT = "TRACE998877"


S = TypeVar("S", bound=io.StringIO)


@contextlib.contextmanager
def logged_as_json(stream: S) -> Iterator[S]:
    """Every record of the process into `stream`, as `LOG_FORMAT=json` writes it."""
    handler = logs.handler("json", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    with logged_as_json(io.StringIO()) as stream:
        yield stream


def lines(stream: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_one_request_id_follows_a_booking_into_its_messages_in_json_lines(
    notify_env: Env, json_log: io.StringIO
) -> None:
    env = notify_env
    slot = await env.add_slot(in_days(10))
    # A returning citizen: confirmed at once, messages to both contacts.
    await prove_contacts(env.pool, PHONE, EMAIL)
    async with aiohttp.ClientSession(env.settings.base_url) as http:
        resp = await http.post(
            "/api/v1/bookings",
            json={
                "slot_id": slot,
                "service": env.service_id,
                "name": NAME,
                "phone": PHONE,
                "email": EMAIL,
                "language": "fr",
                "document_number": DOCUMENT,
            },
        )
        assert resp.status == 201, await resp.text()
        request_id = resp.headers["X-Request-Id"]
        booking_id = await env.pool.fetchval(
            "SELECT id FROM bookings WHERE reference = $1", (await resp.json())["reference"]
        )
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    rows = await outbox_rows(env.pool, booking_id)
    assert rows and {r["request_id"] for r in rows} == {request_id}

    await env.start_worker()

    async def confirmations_sent() -> bool:
        return all(
            r["status"] == "sent"
            for r in await outbox_rows(env.pool, booking_id)
            if r["kind"] == "confirmation"
        )

    await wait_for(confirmations_sent, what="confirmations sent")
    assert env.worker_state is not None
    counted = env.worker_state.metrics.exposition().decode()
    await env.stop_worker()
    assert sample(counted, "mawid_outbox_outcomes_total", channel="sms", outcome="sent") == 1
    assert sample(counted, "mawid_outbox_outcomes_total", channel="email", outcome="sent") == 1
    assert (sample(counted, "mawid_sms_segments_total") or 0) >= 1
    assert sample(counted, "mawid_job_duration_seconds_count", job="send_message") == 2

    async def access_line_written() -> bool:
        # Access lines are written in batches (service.web.accesslog).
        return "POST /api/v1/bookings" in json_log.getvalue()

    await wait_for(access_line_written, what="the access line")
    logged = lines(json_log)
    assert all(set(line) >= {"time", "level", "logger", "message", "request_id"} for line in logged)
    sent = [
        line
        for line in logged
        if line["logger"] == "service.worker.jobs" and "sent" in line["message"]
    ]
    assert len(sent) == 2 and {line["request_id"] for line in sent} == {request_id}
    access = [line for line in logged if "POST /api/v1/bookings" in line["message"]]
    assert [line["request_id"] for line in access] == [request_id]
    # aiosmtpd's "mail.log" is the test's SMTP server echoing what it got,
    # not a line of Mawid's.
    text = "\n".join(json.dumps(line) for line in logged if line["logger"] != "mail.log")
    for secret in (NAME, PHONE, PHONE[3:], EMAIL, DOCUMENT):
        assert secret not in text


async def test_a_callers_request_id_is_kept_only_when_it_is_a_plain_token(
    app_client: TestClient,  # type: ignore[type-arg]
) -> None:
    resp = await app_client.get("/healthz", headers={"X-Request-Id": "edge-1234abcd"})
    assert resp.headers["X-Request-Id"] == "edge-1234abcd"
    resp = await app_client.get("/healthz", headers={"X-Request-Id": "name Zineb <x@y>"})
    assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["X-Request-Id"])
    resp = await app_client.get("/no/such/page")
    assert resp.status == 404 and resp.headers["X-Request-Id"]


class CountedWrites(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


async def test_access_lines_are_json_with_their_request_id_and_written_in_batches(
    app_client: TestClient,  # type: ignore[type-arg]
) -> None:
    with logged_as_json(CountedWrites()) as stream:
        ids = []
        for n in range(3):
            resp = await app_client.get(f"/b/PAR-ABC12{n}/secret-token-{n}?phone=0611223344")
            ids.append(resp.headers["X-Request-Id"])
        lines_waiting = answered_requests(app_client.app)
        assert len(lines_waiting) == 3 and stream.writes == 0
        lines_waiting.flush()
    assert stream.writes == 1, "one write for the batch"
    logged = lines(stream)
    assert [line["request_id"] for line in logged] == ids
    assert {line["logger"] for line in logged} == {"aiohttp.access"}
    assert all(
        re.fullmatch(r"GET /b/\{reference\}/\{token\} \d{3} [\d.]+ms", line["message"])
        for line in logged
    ), logged
    assert "secret-token" not in stream.getvalue() and "0611223344" not in stream.getvalue()


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the text format, or None."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name + (f"{{{wanted}}}" if labels else "")) + r" (\S+)"
    found = re.search(r"^" + pattern + "$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


async def test_metrics_count_requests_bookings_and_the_outbox_lag(
    app_client: TestClient,  # type: ignore[type-arg]
    clock: FakeClock,
) -> None:
    await prove_contacts(app_client.app[POOL_KEY], PHONE, EMAIL)
    resp = await app_client.get(
        "/api/v1/offices/consulate-paris/availability",
        params={"service": "passport", "from": "2027-02-03", "to": "2027-02-03"},
    )
    slot = (await resp.json())["slots"][0]["id"]
    details = {
        "slot_id": slot,
        "service": "passport",
        "name": NAME,
        "phone": PHONE,
        "email": EMAIL,
        "language": "fr",
        "document_number": DOCUMENT,
    }
    assert (await app_client.post("/api/v1/bookings", json=details)).status == 201
    assert (await app_client.post("/api/v1/bookings", json=details)).status == 409
    # Methods are anyone's to invent: they are not labels of their own.
    for invented in ("PROPFIND", "MKCOL"):
        assert (await app_client.request(invented, "/healthz")).status == 405
    clock.advance(timedelta(minutes=7))
    resp = await app_client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    text = await resp.text()
    availability = "/api/v1/offices/{office}/availability"
    assert (
        sample(text, "mawid_http_requests_total", method="GET", route=availability, status="200")
        == 1
    )
    assert (
        sample(
            text, "mawid_http_requests_total", method="POST", route="/api/v1/bookings", status="409"
        )
        == 1
    )
    assert (
        sample(text, "mawid_http_request_duration_seconds_count", method="GET", route=availability)
        == 1
    )
    # (a 405 matched no route: its pattern is "-")
    assert sample(text, "mawid_http_requests_total", method="other", route="-", status="405") == 2
    assert "PROPFIND" not in text and "MKCOL" not in text
    assert sample(text, "mawid_bookings_total", outcome="booked") == 1
    assert sample(text, "mawid_bookings_total", outcome="already_booked") == 1
    # The confirmations (SMS and e-mail) fell due 7 minutes ago; nothing sent them.
    pending_sms = await app_client.app[POOL_KEY].fetchval(
        "SELECT count(*) FROM outbox WHERE channel = 'sms' AND status = 'pending'"
    )
    assert pending_sms >= 1
    assert sample(text, "mawid_outbox_rows", channel="sms", status="pending") == pending_sms
    assert sample(text, "mawid_outbox_lag_seconds") == 420
    for secret in (NAME, PHONE, EMAIL, DOCUMENT, "consulate-paris"):
        assert secret not in text


@pytest.mark.parametrize(
    ("env", "token", "authorization", "status"),
    [
        ("production", "", None, 404),
        ("production", "s3cret-metrics", None, 404),
        ("production", "s3cret-metrics", "Bearer wrong", 404),
        ("production", "s3cret-metrics", "Bearer s3cret-metrics", 200),
        ("dev", "", None, 200),
        ("dev", "s3cret-metrics", None, 404),
    ],
)
async def test_metrics_need_the_token_or_dev_mode(
    settings: Settings,
    pool: object,
    clock: FakeClock,
    env: str,
    token: str,
    authorization: str | None,
    status: int,
) -> None:
    app = create_app(settings.with_(env=env, metrics_token=token), pool=pool, clock=clock)  # type: ignore[arg-type]
    headers = {"Authorization": authorization} if authorization else {}
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/metrics", headers=headers)
        assert resp.status == status


async def test_the_worker_serves_its_metrics_and_works_on_when_its_port_is_taken(
    notify_env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    env = notify_env
    caplog.set_level(logging.WARNING, logger="service.worker.settings")
    taken = socket.socket()
    taken.bind((env.settings.metrics_host, 0))
    taken.listen()
    busy_port = taken.getsockname()[1]
    free = free_port()
    try:
        for port in (busy_port, free):
            state = await env.worker_state_for(env.settings.with_(metrics_token="tok-12345"))
            task = asyncio.create_task(
                serve(state.settings, {jobs.STATE: state}, metrics_port=port)
            )
            booked = await book(env, starts_at=in_days(10), email=None)

            async def sent(booking_id: int = booked.booking.id) -> bool:
                rows = await outbox_rows(env.pool, booking_id)
                return any(r["status"] == "sent" for r in rows)

            try:
                await wait_for(sent, what="the worker sends")
                refused = [r for r in caplog.records if "metrics not served" in r.getMessage()]
                assert len(refused) == 1
                if port == free:
                    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
                        assert (await http.get("/healthz")).status == 200
                        assert (await http.get("/metrics")).status == 404
                        resp = await http.get(
                            "/metrics", headers={"Authorization": "Bearer tok-12345"}
                        )
                        text = await resp.text()
                        assert sample(text, "mawid_outbox_lag_seconds") == 0
                        assert sample(text, "mawid_dependency_up", dependency="postgres") == 1
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await jobs.close_state(state)
    finally:
        taken.close()


MULTIPROCESS_CHILD = """
import sys
from service.metrics import Metrics
m = Metrics()
m.bookings.labels(sys.argv[1]).inc()
m.count_http([(0.0, "GET", "/healthz", 200, 0.003, "-")])
print(m.exposition().decode())
"""


def test_multiprocess_mode_adds_up_every_process(tmp_path: Path) -> None:
    env = {**os.environ, MULTIPROC_ENV: str(tmp_path)}
    outputs = [
        subprocess.run(
            [sys.executable, "-c", MULTIPROCESS_CHILD, outcome],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        for outcome in ("booked", "booked", "slot_full")
    ]
    last = outputs[-1]
    assert sample(last, "mawid_bookings_total", outcome="booked") == 2
    assert sample(last, "mawid_bookings_total", outcome="slot_full") == 1
    assert (
        sample(last, "mawid_http_requests_total", method="GET", route="/healthz", status="200") == 3
    )
    for bucket in ("0.005", "+Inf"):
        assert (
            sample(
                last,
                "mawid_http_request_duration_seconds_bucket",
                le=bucket,
                method="GET",
                route="/healthz",
            )
            == 3
        )
