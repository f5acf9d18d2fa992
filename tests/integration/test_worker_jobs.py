"""The worker's parts against real Redis and Postgres: the shared rate limit,
the sweeper's bounded batches, and arq's health check."""

from __future__ import annotations

import asyncio
import itertools
import sys
from datetime import UTC, datetime, timedelta

from arq.connections import RedisSettings, create_pool

from service.worker import jobs
from service.worker.ratelimit import RateLimiter
from tests.integration.conftest_notify import *  # noqa: F403
from tests.integration.conftest_notify import Env, book, env_for_subprocess, wait_for


async def test_rate_limit_is_shared_between_processes(notify_env: Env) -> None:
    env = notify_env
    # Two limiters on one Redis key stand for two worker processes.
    a = RateLimiter(env.redis, per_second=10, key="test:rate")
    b = RateLimiter(env.redis, per_second=10, key="test:rate")
    waits = [await (a if i % 2 else b).reserve() for i in range(10)]
    # Each reservation is one interval (0.1 s) after the previous one, whoever
    # asked; the small slack is the time the calls themselves took.
    for earlier, later in itertools.pairwise(waits):
        assert 0.09 <= later - earlier <= 0.1 + 1e-6
    assert waits[0] == 0


async def test_rate_limit_key_is_released_when_idle(notify_env: Env) -> None:
    limiter = RateLimiter(notify_env.redis, per_second=1000, key="test:idle")
    await limiter.reserve()
    ttl = await notify_env.redis.pttl("test:idle")
    assert 0 < ttl <= 1100


async def test_sweeper_queues_a_bounded_batch_once(notify_env: Env) -> None:
    env = notify_env
    starts = datetime.now(UTC) + timedelta(days=9)
    slot = await env.add_slot(starts, capacity=70)
    for i in range(70):
        await book(env, starts_at=starts, slot_id=slot, phone=f"+3361234{i:04d}")
    # 140 due confirmations (sms + email), target backlog 100.
    settings = env.settings.with_(sms_per_second=1.0)
    state = await jobs.build_state(settings, pool=env.pool)
    redis = await create_pool(RedisSettings.from_dsn(env.settings.redis_url))
    try:
        ctx = {jobs.STATE: state, "redis": redis}
        assert await jobs.sweep_outbox(ctx) == jobs.enqueue_target(settings) == 100
        assert await redis.zcard(jobs.QUEUE_NAME) == 100
        # The queue is full: nothing more until the worker drains it.
        assert await jobs.sweep_outbox(ctx) == 0
        # The worker took 30 jobs off the queue: the next rows are queued, not
        # the ones still waiting.
        await redis.zpopmin(jobs.QUEUE_NAME, 30)
        assert await jobs.sweep_outbox(ctx) == 30
        assert await jobs.sweep_outbox(ctx) == 0
        # Redis lost every job: the rows still pending are queued again.
        await redis.flushdb()
        assert await jobs.sweep_outbox(ctx) == 100
    finally:
        await redis.aclose()


async def test_expired_lease_is_taken_back(notify_env: Env) -> None:
    env = notify_env
    booked = await book(env, starts_at=datetime.now(UTC) + timedelta(days=9), email=None)
    await env.pool.execute(
        """UPDATE outbox SET status = 'sending', claimed_until = now() - interval '1 s',
                             attempts = 1
           WHERE booking_id = $1 AND kind = 'confirmation'""",
        booked.booking.id,
    )
    await env.start_worker()

    async def sent() -> bool:
        status = await env.pool.fetchval(
            "SELECT status FROM outbox WHERE booking_id = $1 AND kind = 'confirmation'",
            booked.booking.id,
        )
        return bool(status == "sent")

    await wait_for(sent, what="the recovered row")
    assert len(env.twilio.sent) == 1


async def test_arq_check_sees_the_running_worker(notify_env: Env) -> None:
    env = notify_env
    await env.start_worker()

    async def healthy() -> bool:
        return bool(await env.redis.exists(f"{jobs.QUEUE_NAME}:health-check"))

    await wait_for(healthy, what="the health check key")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "arq",
        "--check",
        "service.worker.settings.WorkerSettings",
        env=env_for_subprocess(env.settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
