"""Reminder dispatch benchmark.

1. N due SMS reminders (default 20,000) in the outbox, sent by W real worker
   processes (`run_worker`) through the real twilio client to the fake Twilio
   server, under a shared limit of R messages per second (default 200).
   Prints the achieved rate / R (target >= 0.95), duplicates and lost
   messages (both must be 0), next to the bare ceiling: the same fake server
   driven by the twilio client alone, no database, no queue, no limit.
2. The sweeper's due-row query with 10,000 and with 1,000,000 future rows in
   the table (it must stay flat), next to a bare `SELECT 1` round trip.

Throwaway embedded Postgres and Redis unless DATABASE_URL / REDIS_URL are set.

    .venv/bin/python bench/reminder_dispatch.py [--messages 20000] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.config import Settings  # noqa: E402
from service.db import migrate  # noqa: E402
from service.devstack import free_port, start_postgres, start_redis  # noqa: E402
from service.store import outbox  # noqa: E402
from service.worker.senders import TwilioSms  # noqa: E402
from tests.faketwilio import FakeTwilio  # noqa: E402

SETUP = """
INSERT INTO offices (id, kind, name_ar, name_fr, name_en, city_ar, city_fr, city_en, country,
                     timezone, address, reference_prefix)
VALUES ('consulate-paris', 'consulate', 'القنصلية العامة للمملكة المغربية بباريس',
        'Consulat général du Royaume du Maroc à Paris',
        'Consulate General of the Kingdom of Morocco in Paris', 'باريس', 'Paris', 'Paris',
        'FR', 'Europe/Paris', 'placeholder', 'PAR');
INSERT INTO services (office_id, id, name_ar, name_fr, name_en, duration_minutes)
VALUES ('consulate-paris', 'passport', 'جواز السفر البيومتري', 'Passeport biométrique',
        'Biometric passport', 15);
INSERT INTO slots (office_id, service_id, starts_at, ends_at, capacity, taken)
VALUES ('consulate-paris', 'passport', now() + interval '1 day',
        now() + interval '1 day 15 minutes', 1000000, 0);
"""

BOOKINGS = """
INSERT INTO bookings (reference, office_id, service_id, slot_id, starts_at, ends_at, status,
                      citizen_name, phone, language, manage_token_hash)
SELECT 'PAR-' || lpad(g::text, 7, '0'), 'consulate-paris', 'passport', s.id, s.starts_at,
       s.ends_at, 'confirmed', 'Bench', '+3360' || lpad(g::text, 7, '0'),
       (ARRAY['ar', 'fr', 'en'])[1 + g % 3], '\\x00'
FROM generate_series(1, $1) g, slots s
"""

DUE = """
INSERT INTO outbox (booking_id, kind, channel, recipient, language, send_at, appointment_at,
                    offset_minutes)
SELECT b.id, 'reminder', 'sms', b.phone, b.language, now() - interval '1 second', b.starts_at,
       180
FROM bookings b
"""

FUTURE = """
INSERT INTO outbox (booking_id, kind, channel, recipient, language, send_at, appointment_at,
                    offset_minutes)
SELECT b.id, 'reminder', 'sms', b.phone, 'fr', now() + (g || ' minutes')::interval,
       now() + interval '400 days', 180
FROM generate_series(1, $1) g, (SELECT id, phone FROM bookings ORDER BY id LIMIT 1) b
"""


async def bare_ceiling(fake: FakeTwilio, settings: Settings, n: int, concurrency: int) -> float:
    """Messages per second through the twilio client alone: no DB, no queue."""
    sender = TwilioSms(settings)
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await sender.send_sms(f"+3369{i:08d}", "bench", status_callback=None)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - start
    await sender.close()
    fake.sent.clear()
    fake.requests.clear()
    return n / elapsed


def worker_env(settings: Settings) -> dict[str, str]:
    quiet = settings.with_(env="test", log_level="WARNING", db_pool_max=10)
    return {**os.environ, **quiet.as_environ()}


async def dispatch(settings: Settings, fake: FakeTwilio, n: int, workers: int) -> None:
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(SETUP)
        await conn.execute(BOOKINGS, n)
        await conn.execute(DUE)
    finally:
        await conn.close()
    code = (
        "import logging; logging.basicConfig(level=logging.WARNING); "
        "from service.config import Settings; from service.worker.settings import run_worker; "
        "run_worker(Settings.from_env())"
    )
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, env=worker_env(settings), start_new_session=True
        )
        for _ in range(workers)
    ]
    deadline = time.monotonic() + n / settings.sms_per_second * 3 + 60
    try:
        # Polls a counter the fake server bumps; no event to wait on.
        while len(fake.sent) < n and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # let stragglers (duplicates, if any) arrive
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                await asyncio.wait_for(p.wait(), 20)
            except TimeoutError:
                os.killpg(p.pid, signal.SIGKILL)
    conn = await asyncpg.connect(settings.database_url)
    try:
        by_status = {
            r["status"]: r["n"]
            for r in await conn.fetch("SELECT status, count(*) AS n FROM outbox GROUP BY status")
        }
        ids = {r["id"] for r in await conn.fetch("SELECT id FROM outbox")}
    finally:
        await conn.close()
    counts = fake.per_outbox_id()
    times = sorted(s.at for s in fake.sent)
    rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    lost = len(ids - set(counts))
    print(f"messages            {n} due, {len(fake.sent)} received by the fake Twilio")
    print(f"worker processes    {workers}, limit R = {settings.sms_per_second:g}/s shared")
    print(f"achieved rate       {rate:.1f}/s   ratio to R: {rate / settings.sms_per_second:.3f}")
    print(f"duplicates          {duplicates}")
    print(f"lost                {lost}   (outbox: {by_status})")


async def due_query_timing(settings: Settings, future_rows: int, due_rows: int = 100) -> None:
    conn = await asyncpg.connect(settings.database_url)
    try:
        # Sent messages left manage tokens that point at their rows.
        await conn.execute("TRUNCATE manage_tokens, outbox")
        await conn.execute(FUTURE, future_rows)
        await conn.execute(
            """INSERT INTO outbox (booking_id, kind, channel, recipient, language, send_at,
                                   appointment_at)
               SELECT id, 'reminder', 'sms', phone, 'fr', now() - interval '1 minute',
                      now() + interval '1 day'
               FROM bookings ORDER BY id LIMIT $1""",
            due_rows,
        )
        # A few rows finished long ago, as a live table has: not in the index.
        await conn.execute("ANALYZE outbox")
        now = datetime.now(UTC)

        async def timed(fn: object) -> float:
            samples = []
            for _ in range(60):
                tx = conn.transaction()
                await tx.start()
                t0 = time.perf_counter()
                await fn()  # type: ignore[operator]
                samples.append(time.perf_counter() - t0)
                await tx.rollback()
            return statistics.median(samples[10:]) * 1000

        async def due_q() -> None:
            rows = await outbox.due(conn, now, 100, timedelta(minutes=2))
            assert len(rows) == min(due_rows, 100)

        async def bare() -> None:
            await conn.fetchval("SELECT 1")

        t_due = await timed(due_q)
        t_bare = await timed(bare)
        plan = await conn.fetch(
            """EXPLAIN SELECT id FROM outbox WHERE status = 'pending' AND send_at <= $1
               ORDER BY send_at LIMIT 100""",
            now,
        )
        uses_index = any("outbox_due" in r[0] for r in plan)
        print(
            f"due query  {future_rows:>9,} future rows: {t_due:6.2f} ms "
            f"(bare SELECT 1: {t_bare:.2f} ms, ratio {t_due / t_bare:5.1f}) "
            f"index outbox_due used: {uses_index}"
        )
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-dispatch", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mawid-bench-") as tmp:
        pg = redis = None
        dsn = os.environ.get("DATABASE_URL", "")
        redis_url = os.environ.get("REDIS_URL", "")
        if not dsn:
            pg = start_postgres(Path(tmp) / "pg", durable=False)
            dsn = pg.ensure_database("bench")
        if not redis_url:
            redis = start_redis(Path(tmp) / "redis", persistent=False)
            redis_url = redis.url
        fake = FakeTwilio()
        try:
            await migrate(dsn)
            await fake.start()
            port = free_port()
            settings = Settings(
                env="test",
                database_url=dsn,
                redis_url=redis_url,
                base_url=f"http://127.0.0.1:{port}",
                twilio_account_sid=fake.account_sid,
                twilio_auth_token=fake.auth_token,
                twilio_from="+15005550006",
                twilio_base_url=fake.url,
                sms_per_second=args.rate,
            )
            ceiling = await bare_ceiling(fake, settings, 2000, 40)
            print(f"bare ceiling        {ceiling:.0f}/s (twilio client -> fake server, no DB)")
            if not args.skip_dispatch:
                await dispatch(settings, fake, args.messages, args.workers)
            else:
                conn = await asyncpg.connect(dsn)
                await conn.execute(SETUP)
                await conn.execute(BOOKINGS, 1000)
                await conn.close()
            for future in (10_000, 1_000_000):
                await due_query_timing(settings, future)
        finally:
            await fake.stop()
            if redis is not None:
                redis.stop()
            if pg is not None:
                pg.stop()


if __name__ == "__main__":
    asyncio.run(main())
