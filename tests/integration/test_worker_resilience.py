"""The worker killed mid-batch, and Redis down while bookings are made."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest

from service.devstack import RunningRedis
from service.worker.jobs import QUEUE_NAME
from service.worker.settings import MAX_JOBS
from tests.faketwilio import Reply
from tests.fixtures.notify import Env, book, env_for_subprocess, wait_for

WORKER_CMD = [
    sys.executable,
    "-c",
    "from service.config import Settings; from service.worker.settings import run_worker; "
    "run_worker(Settings.from_env())",
]


@pytest.fixture
def fresh_redis_url(redis_server: RunningRedis) -> str:
    # These tests kill a worker and stop Redis: a private Redis, not the
    # session's, so that nothing of theirs outlives them.
    return redis_server.url


async def make_bookings(env: Env, n: int, *, phone_base: int = 33600000000) -> list[int]:
    starts = env.clock().replace(microsecond=0) + timedelta(days=10)
    slot = await env.add_slot(starts, capacity=n)
    ids = []
    for i in range(n):
        booked = await book(
            env, starts_at=starts, slot_id=slot, phone=f"+{phone_base + i}", email=None
        )
        ids.append(booked.booking.id)
    return ids


async def confirmations_by_status(env: Env) -> dict[str, int]:
    rows = await env.pool.fetch(
        "SELECT status, count(*) AS n FROM outbox WHERE kind = 'confirmation' GROUP BY status"
    )
    return {r["status"]: r["n"] for r in rows}


def start_worker_process(env: Env) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        WORKER_CMD,
        env=env_for_subprocess(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


async def test_worker_killed_mid_batch_loses_nothing(notify_env: Env) -> None:
    env = notify_env
    n = 200
    # Slow enough replies that the kill lands with sends in flight.
    env.twilio.default = Reply(delay=0.02)
    await make_bookings(env, n)
    loop = asyncio.get_running_loop()
    started = loop.time()
    proc = start_worker_process(env)
    try:
        await wait_for(lambda: _sent_at_least(env, 60), 60, "the first sends")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    # The child's clock ran on from the test's while it lived; the test's
    # catches up, so that the next worker does not start in the past of the
    # first one (it would queue rows under the job ids the first one used).
    env.clock.advance(timedelta(seconds=loop.time() - started))
    # Requests already inside the fake server complete after the kill.
    await asyncio.sleep(0.3)
    in_flight = {
        r["id"]
        for r in await env.pool.fetch(
            "SELECT id FROM outbox WHERE kind = 'confirmation' AND status = 'sending'"
        )
    }
    answered_before_restart = {s.outbox_id for s in env.twilio.sent}
    sent_before = len(env.twilio.sent)
    assert 0 < sent_before < n, "the kill should land mid-batch"
    assert len(in_flight) <= MAX_JOBS

    # Two minutes later the leases have run out (we move the clock of the rows,
    # not the test's: no sleeping).
    await env.pool.execute(
        "UPDATE outbox SET claimed_until = $1 WHERE status = 'sending'",
        env.clock() - timedelta(seconds=1),
    )
    # Jobs the dead worker had started stay blocked in arq for its in-progress
    # timeout; two minutes on, the sweeper queues their rows again.
    await env.pool.execute(
        "UPDATE outbox SET enqueued_at = enqueued_at - interval '3 minutes'"
        " WHERE enqueued_at IS NOT NULL AND status IN ('pending', 'sending')"
    )
    proc = start_worker_process(env)
    try:

        async def all_sent() -> bool:
            return (await confirmations_by_status(env)).get("sent", 0) == n

        await wait_for(all_sent, 90, "every confirmation sent after the restart")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    counts = env.twilio.per_outbox_id()
    rows = await env.pool.fetch("SELECT id FROM outbox WHERE kind = 'confirmation'")
    ids = {r["id"] for r in rows}
    # Nothing lost: every row reached the provider.
    assert set(counts) == ids
    duplicates = {i for i, c in counts.items() if c > 1}
    # The promised bound: a second copy only for a row whose send was in
    # flight at the kill (claimed, and answered by the provider, but not yet
    # recorded), so at most one per concurrent job.
    assert duplicates <= in_flight & answered_before_restart
    assert len(duplicates) <= MAX_JOBS
    assert max(counts.values()) <= 2
    print(f"in flight at kill: {len(in_flight)}, duplicates: {len(duplicates)}")


async def _sent_at_least(env: Env, k: int) -> bool:
    return len(env.twilio.sent) >= k


async def test_redis_down_bookings_succeed_and_messages_follow(
    notify_env: Env, redis_server: RunningRedis
) -> None:
    env = notify_env
    await env.start_worker()

    async def worker_up() -> bool:
        return bool(await env.redis.exists(f"{QUEUE_NAME}:health-check"))

    await wait_for(worker_up, 30, "the worker")
    redis_server.stop()
    try:
        # Bookings only need Postgres: the outbox rows are written with them.
        ids = await make_bookings(env, 10)
        assert (await confirmations_by_status(env)) == {"pending": 10}
    finally:
        redis_server.start()

    async def all_sent() -> bool:
        return (await confirmations_by_status(env)).get("sent", 0) == 10

    await wait_for(all_sent, 60, "the messages once Redis is back")
    assert len(env.twilio.sent) == 10
    assert len(ids) == 10
