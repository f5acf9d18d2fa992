"""Production mode, tried: `mawid migrate`, `mawid seed --demo`, `mawid serve`
and `mawid worker` as separate processes with MAWID_ENV=production and real
settings from the environment, against the throwaway Postgres and Redis, a
local SMTP server and the fake Twilio. The path docker-compose.yml takes,
without Docker.

The processes run on the real clock (production refuses MAWID_CLOCK_START),
so the demo data is seeded by `mawid seed` in a database of its own and the
test picks a slot by its rank among those seeded, never reading a clock.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from service.devstack import free_port
from tests.faketwilio import FakeTwilio
from tests.fixtures.notify import wait_for
from tests.fixtures.servers import _database, _unique
from tests.smtpcapture import SmtpCapture

PHONE = "+33612345678"
EMAIL = "amina.production@example.org"
METRICS_TOKEN = "metrics-token-for-the-production-run"
# Variables of the developer's shell that would change what is tried here.
_OURS = ("MAWID_", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "LOG_", "METRICS_", "TWILIO_",
         "SMTP_", "HOST", "PORT", "BASE_URL", "EMAIL_FROM", "SMS_", "DB_POOL", "PROMETHEUS_")


def mawid() -> list[str]:
    """The installed console script, as an operator runs it."""
    script = shutil.which("mawid", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "service.cli"]


def clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}


@dataclass
class Stack:
    env: dict[str, str]
    web_url: str
    worker_metrics_url: str
    dsn: str


@pytest.fixture
async def production_db(pg_dsn: str) -> AsyncIterator[str]:
    async with _database(pg_dsn, _unique("mawid_production")) as dsn:
        yield dsn


@pytest.fixture
def smtp_server() -> Iterator[SmtpCapture]:
    capture = SmtpCapture().start()
    yield capture
    capture.stop()


@pytest.fixture
async def twilio_server() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def stack(
    production_db: str, fresh_redis_url: str, smtp_server: SmtpCapture, twilio_server: FakeTwilio
) -> Stack:
    port, metrics_port = free_port(), free_port()
    env = {
        **clean_environ(),
        "MAWID_ENV": "production",
        "SECRET_KEY": "a-production-secret-key-of-reasonable-length",
        "DATABASE_URL": production_db,
        "REDIS_URL": fresh_redis_url,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "BASE_URL": f"http://127.0.0.1:{port}",
        "SMTP_HOST": smtp_server.host,
        "SMTP_PORT": str(smtp_server.port),
        "TWILIO_ACCOUNT_SID": twilio_server.account_sid,
        "TWILIO_AUTH_TOKEN": twilio_server.auth_token,
        "TWILIO_FROM": "+15005550006",
        "TWILIO_BASE_URL": twilio_server.url,
        "METRICS_TOKEN": METRICS_TOKEN,
        "METRICS_PORT": str(metrics_port),
    }
    return Stack(
        env, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}", production_db
    )


def run_once(stack: Stack, *args: str) -> str:
    done = subprocess.run(
        [*mawid(), *args], env=stack.env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_migrate_serve_and_work_as_separate_production_processes(
    stack: Stack, smtp_server: SmtpCapture, twilio_server: FakeTwilio, tmp_path: Path
) -> None:
    assert "0001_init" in run_once(stack, "migrate")
    assert "none (up to date)" in run_once(stack, "migrate")
    run_once(stack, "seed", "--demo")
    logs = {name: tmp_path / f"{name}.log" for name in ("serve", "worker")}
    children = [
        subprocess.Popen(  # noqa: ASYNC220 - started once, waited for below
            [*mawid(), name], env=stack.env, stderr=logs[name].open("w")
        )
        for name in ("serve", "worker")
    ]
    try:
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                assert all(child.poll() is None for child in children), "a process stopped"
                try:
                    async with http.get(f"{stack.web_url}/readyz") as web_ready, http.get(
                        f"{stack.worker_metrics_url}/healthz"
                    ) as worker_alive:
                        return web_ready.status == 200 and worker_alive.status == 200
                except aiohttp.ClientConnectionError:
                    return False

            await wait_for(ready, limit=60, what="web and worker listening")
            conn = await asyncpg.connect(stack.dsn)
            try:
                # A third of the way into the 12 weeks `seed` materialised
                # from its start: some four weeks ahead, inside the booking
                # window, without the test reading any clock.
                slot = await conn.fetchval(
                    """SELECT id FROM slots
                       WHERE office_id = 'consulate-paris' AND service_id = 'passport'
                       ORDER BY starts_at
                       OFFSET (SELECT count(*) / 3 FROM slots
                               WHERE office_id = 'consulate-paris' AND service_id = 'passport')
                       LIMIT 1"""
                )
            finally:
                await conn.close()
            async def book_and_verify(contact: dict[str, str], document: str) -> tuple[str, str]:
                """Book through the API; the hold's code arrives by SMS or
                e-mail and goes back through the API. (reference, request id)"""
                async with http.post(
                    f"{stack.web_url}/api/v1/bookings",
                    json={
                        "slot_id": slot,
                        "service": "passport",
                        "name": "Amina El Idrissi",
                        "language": "fr",
                        "document_number": document,
                        **contact,
                    },
                ) as resp:
                    assert resp.status == 201, await resp.text()
                    booked = await resp.json()
                assert booked["status"] == "held"
                codes: list[str] = []

                async def code_arrived() -> bool:
                    if "phone" in contact:
                        texts = twilio_server.bodies_to(contact["phone"])
                    else:
                        texts = [
                            str(m.get_body(("plain",)).get_content())  # type: ignore[union-attr]
                            for m in smtp_server.to(contact["email"])
                        ]
                    codes[:] = [c for t in texts for c in re.findall(r"\b\d{6}\b", t)]
                    return bool(codes)

                await wait_for(code_arrived, limit=60, what="the code")
                async with http.post(
                    f"{stack.web_url}/api/v1/bookings/{booked['reference']}/verify",
                    json={"code": codes[0]},
                    headers={"Authorization": f"Bearer {booked['manage_token']}"},
                ) as resp:
                    assert resp.status == 200, await resp.text()
                    return booked["reference"], resp.headers["X-Request-Id"]

            by_sms, request_id = await book_and_verify({"phone": PHONE}, "PROD123456")
            by_email, _ = await book_and_verify({"email": EMAIL}, "PROD654321")

            async def delivered() -> bool:
                return len(smtp_server.to(EMAIL)) == 2 and len(twilio_server.bodies_to(PHONE)) == 2

            await wait_for(delivered, limit=60, what="confirmation by e-mail and SMS")
            assert by_sms in twilio_server.bodies_to(PHONE)[1]
            assert by_email in smtp_server.to(EMAIL)[1]["Subject"]

            bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
            async with http.get(f"{stack.web_url}/metrics") as refused:
                assert refused.status == 404
            async with http.get(f"{stack.web_url}/metrics", headers=bearer) as web_metrics:
                assert web_metrics.status == 200
                assert 'mawid_bookings_total{outcome="booked"} 2.0' in await web_metrics.text()
            async with http.get(f"{stack.worker_metrics_url}/metrics", headers=bearer) as worker:
                assert worker.status == 200
                text = await worker.text()
                # Each: the code, then the confirmation.
                assert 'mawid_outbox_outcomes_total{channel="sms",outcome="sent"} 2.0' in text
                assert 'mawid_outbox_outcomes_total{channel="email",outcome="sent"} 2.0' in text
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                await asyncio.to_thread(child.wait, 20)
            except subprocess.TimeoutExpired:
                child.kill()
    assert [child.returncode for child in children] == [0, 0]
    # Production logs are JSON lines; the worker's lines about the
    # confirmation carry the id of the request that confirmed the booking.
    worker_lines = [json.loads(line) for line in logs["worker"].read_text().splitlines()]
    web_lines = [json.loads(line) for line in logs["serve"].read_text().splitlines()]
    assert any(
        line["request_id"] == request_id and line["message"].endswith(" sent")
        for line in worker_lines
    )
    assert any(line["request_id"] == request_id for line in web_lines)


@pytest.mark.parametrize("command", ["serve", "worker", "migrate"])
@pytest.mark.parametrize("missing", ["SECRET_KEY", "DATABASE_URL", "REDIS_URL"])
def test_a_missing_setting_stops_start_up_with_one_line(command: str, missing: str) -> None:
    env = {
        **clean_environ(),
        "MAWID_ENV": "production",
        "SECRET_KEY": "s" * 40,
        "DATABASE_URL": "postgresql://db.invalid/mawid",
        "REDIS_URL": "redis://redis.invalid:6379/0",
    }
    del env[missing]
    done = subprocess.run(
        [*mawid(), command], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"mawid: {missing} is required when MAWID_ENV=production"]
