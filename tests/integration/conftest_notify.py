"""Fixtures for the notification tests: real Postgres, Redis, SMTP (aiosmtpd),
the real twilio client against tests/faketwilio.py, the real web app for
callbacks, and the real arq worker (in-process or as a subprocess).

Imported by tests/integration/test_notify*.py / test_worker*.py with
`from tests.integration.conftest_notify import *`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import web
from redis.asyncio import Redis

from service import bookings
from service.config import Settings
from service.db import migrate
from service.devstack import RunningPostgres, RunningRedis, free_port, start_postgres, start_redis
from service.domain.validation import RawDetails
from service.worker import jobs
from service.worker.settings import serve
from tests.faketwilio import FakeTwilio
from tests.smtpcapture import SmtpCapture

SECRET = "test-secret-key"
TEMPLATE_DB = "notify_template"

__all__ = [
    "Env",
    "book",
    "fake_twilio",
    "notify_env",
    "notify_pg",
    "notify_redis",
    "outbox_rows",
    "smtp",
    "wait_for",
]


@pytest.fixture(scope="session")
def notify_pg() -> Iterator[RunningPostgres]:
    with tempfile.TemporaryDirectory(prefix="mawid-notify-pg-") as tmp:
        server = start_postgres(Path(tmp) / "pg", durable=False)
        try:
            dsn = server.ensure_database(TEMPLATE_DB)
            asyncio.run(migrate(dsn))
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def notify_redis() -> Iterator[RunningRedis]:
    with tempfile.TemporaryDirectory(prefix="mawid-notify-redis-") as tmp:
        server = start_redis(Path(tmp) / "redis", persistent=False)
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
async def fake_twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpCapture]:
    capture = SmtpCapture().start()
    yield capture
    capture.stop()


async def fresh_database(pg: RunningPostgres) -> str:
    name = f"notify_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(pg.dsn_for("postgres"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    finally:
        await conn.close()
    return pg.dsn_for(name)


@dataclass
class Env:
    settings: Settings
    pool: asyncpg.Pool
    redis: Redis
    twilio: FakeTwilio
    smtp: SmtpCapture
    office_id: str = "consulate-paris"
    service_id: str = "passport"
    worker_task: asyncio.Task[None] | None = None
    worker_state: jobs.WorkerState | None = None

    async def start_worker(self, state: jobs.WorkerState | None = None) -> None:
        self.worker_state = state or await jobs.build_state(self.settings, pool=self.pool)
        self.worker_task = asyncio.create_task(
            serve(self.worker_state.settings, {jobs.STATE: self.worker_state})
        )

    async def stop_worker(self) -> None:
        if self.worker_task is not None:
            self.worker_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.worker_task
            self.worker_task = None
        if self.worker_state is not None:
            await jobs.close_state(self.worker_state)
            self.worker_state = None

    async def add_slot(self, starts_at: datetime, capacity: int = 5) -> int:
        slot_id: int = await self.pool.fetchval(
            # Seats of its own (not pooled): these tests need a slot at an
            # exact time, outside the office's generated counters.
            """INSERT INTO slots (office_id, service_id, starts_at, ends_at, capacity, pooled)
               VALUES ($1, $2, $3, $4, $5, false) RETURNING id""",
            self.office_id,
            self.service_id,
            starts_at,
            starts_at + timedelta(minutes=15),
            capacity,
        )
        return slot_id


OFFICE_SQL = """
INSERT INTO offices (id, kind, name_ar, name_fr, name_en, city_ar, city_fr, city_en, country,
                     timezone, address, reference_prefix, holiday_countries, email_from,
                     email_reply_to)
VALUES ('consulate-paris', 'consulate', 'القنصلية العامة للمملكة المغربية بباريس',
        'Consulat général du Royaume du Maroc à Paris',
        'Consulate General of the Kingdom of Morocco in Paris', 'باريس', 'Paris', 'Paris', 'FR',
        'Europe/Paris', '19 rue Saint-Didier, 75116 Paris (placeholder)', 'PAR', '{MA,FR}',
        'Consulat Paris <paris@mawid.example>', 'accueil-paris@mawid.example'),
       ('prefecture-tiznit', 'prefecture', 'عمالة تيزنيت', 'Province de Tiznit',
        'Province of Tiznit', 'تيزنيت', 'Tiznit', 'Tiznit', 'MA', 'Africa/Casablanca',
        'placeholder address', 'TIZ', '{MA}', NULL, NULL);
INSERT INTO services (office_id, id, name_ar, name_fr, name_en, duration_minutes,
                      document_required, earliest_hours, bring_ar, bring_fr, bring_en)
VALUES ('consulate-paris', 'passport', 'جواز السفر البيومتري', 'Passeport biométrique',
        'Biometric passport', 15, false, 0, 'البطاقة الوطنية وصورتان',
        'CNIE et deux photos', 'National ID card and two photos'),
       ('prefecture-tiznit', 'legalization', 'تصحيح الإمضاء', 'Légalisation de signature',
        'Signature legalisation', 10, false, 0, '', '', '');
"""


@pytest.fixture
async def notify_env(
    notify_pg: RunningPostgres,
    notify_redis: RunningRedis,
    fake_twilio: FakeTwilio,
    smtp: SmtpCapture,
) -> AsyncIterator[Env]:
    dsn = await fresh_database(notify_pg)
    port = free_port()
    settings = Settings(
        env="test",
        secret_key=SECRET,
        database_url=dsn,
        redis_url=notify_redis.url,
        host="127.0.0.1",
        port=port,
        base_url=f"http://127.0.0.1:{port}",
        twilio_account_sid=fake_twilio.account_sid,
        twilio_auth_token=fake_twilio.auth_token,
        twilio_from="+15005550006",
        twilio_base_url=fake_twilio.url,
        sms_per_second=100.0,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        email_from="Mawid <no-reply@mawid.example>",
    )
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10)
    assert pool is not None
    await pool.execute(OFFICE_SQL)
    redis = Redis.from_url(notify_redis.url)
    await redis.flushdb()
    from service.app import create_app

    app = create_app(settings, pool=pool)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    env = Env(settings, pool, redis, fake_twilio, smtp)
    try:
        yield env
    finally:
        await env.stop_worker()
        await runner.cleanup()
        await redis.aclose()
        await pool.close()


async def book(
    env: Env,
    *,
    starts_at: datetime,
    phone: str | None = "+33612345678",
    email: str | None = "amina@example.org",
    language: str = "fr",
    now: datetime | None = None,
    slot_id: int | None = None,
) -> bookings.Booked:
    slot = slot_id or await env.add_slot(starts_at)
    return await bookings.book(
        env.pool,
        slot_id=slot,
        service_id=env.service_id,
        details=RawDetails(
            name="Amina El Idrissi",
            phone=phone,
            phone_country="FR",
            email=email,
            language=language,
        ),
        secret_key=SECRET,
        now=now or datetime.now(UTC),
    )


async def outbox_rows(pool: asyncpg.Pool, booking_id: int | None = None) -> list[dict[str, Any]]:
    if booking_id is None:
        rows = await pool.fetch("SELECT * FROM outbox ORDER BY id")
    else:
        rows = await pool.fetch(
            "SELECT * FROM outbox WHERE booking_id = $1 ORDER BY id", booking_id
        )
    return [dict(r) for r in rows]


async def wait_for(
    predicate: Callable[[], Awaitable[bool]], limit: float = 30.0, what: str = "condition"
) -> None:
    """Poll until predicate() holds; fails the test with `what` after `limit`
    seconds
    (a safety net for a hung test, not a speed assertion)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not await predicate():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo("Europe/Paris"))  # type: ignore[misc]


def env_for_subprocess(settings: Settings) -> dict[str, str]:
    return {**os.environ, **settings.as_environ()}
