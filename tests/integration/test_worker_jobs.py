"""The worker's parts against real Redis and Postgres: the shared rate limit,
the sweeper's bounded batches, and arq's health check."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
from datetime import timedelta

import asyncpg
from arq import func
from arq.connections import RedisSettings, create_pool

from service.domain.messages import PlannedMessage
from service.store import outbox
from service.worker import jobs
from service.worker.ratelimit import RateLimiter
from service.worker.settings import serve
from tests.fixtures.notify import Env, book, book_sms, env_for_subprocess, wait_for


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


async def test_rate_limit_books_only_within_the_horizon(notify_env: Env) -> None:
    limiter = RateLimiter(notify_env.redis, per_second=1, key="test:horizon")
    assert await limiter.free_within(3.0, 100) == 4
    assert await limiter.reserve_within(100, 3.0) == [0.0, 1.0, 2.0, 3.0]
    # Booked up to the horizon: nobody gets a turn further out, and nothing
    # is booked for them (the timeline does not drift).
    tat = await notify_env.redis.get("test:horizon")
    assert await limiter.free_within(3.0, 100) == 0
    assert await limiter.reserve_within(5, 3.0) == []
    assert await notify_env.redis.get("test:horizon") == tat


async def queued_by_channel(env: Env) -> dict[str, int]:
    rows = await env.pool.fetch(
        "SELECT channel, count(*) AS n FROM outbox WHERE enqueued_at IS NOT NULL GROUP BY channel"
    )
    return {r["channel"]: r["n"] for r in rows}


async def test_sweeper_queues_sms_only_as_far_as_the_rate_serves(notify_env: Env) -> None:
    env = notify_env
    starts = env.clock() + timedelta(days=9)
    slot = await env.add_slot(starts, capacity=70)
    for i in range(70):
        await book(
            env, starts_at=starts, slot_id=slot, phone=f"+3361234{i:04d}", email=f"a{i}@example.org"
        )
    # 140 due confirmations (sms + email) at one SMS a second.
    settings = env.settings.with_(sms_per_second=1.0)
    horizon = jobs.SMS_HORIZON.total_seconds()
    state = await env.worker_state_for(settings)
    redis = await create_pool(RedisSettings.from_dsn(env.settings.redis_url))
    try:
        ctx = {jobs.STATE: state, "redis": redis}
        first = await jobs.sweep_outbox(ctx)
        queued = await queued_by_channel(env)
        # Every email; only the SMS whose turn falls within the horizon.
        assert queued["email"] == 70
        assert 1 <= queued["sms"] <= horizon + 1
        assert first == 70 + queued["sms"] == await redis.zcard(jobs.QUEUE_NAME)
        # Each SMS job starts shortly before its turn, the turns one second
        # apart (and the headroom), none beyond the horizon.
        scores = sorted(
            score for _, score in await redis.zrange(jobs.QUEUE_NAME, 0, -1, withscores=True)
        )
        sms_scores = scores[-queued["sms"] :]
        gaps = [b - a for a, b in itertools.pairwise(sms_scores)]
        interval = 1000 * (1 + jobs.SMS_TURN_HEADROOM)
        assert all(interval - 10 <= g <= interval + 10 for g in gaps), gaps
        # The queue holds a horizon's worth of SMS: nothing more for now.
        assert await jobs.sweep_outbox(ctx) == 0
        # Redis lost every job (and the rate's timeline): the rows still
        # pending are queued again.
        await redis.flushdb()
        # The next sweep, a second later on the test's clock.
        env.clock.advance(timedelta(seconds=1))
        again = await jobs.sweep_outbox(ctx)
        assert 71 <= again <= 70 + horizon + 1
    finally:
        await redis.aclose()


async def test_a_code_takes_the_next_sms_turn_ahead_of_offers_and_a_backlog(
    notify_env: Env,
) -> None:
    env = notify_env
    # Twenty confirmations due since an hour, at one SMS a second: more than
    # the horizon books at once.
    env.clock.advance(timedelta(hours=-1))
    booking_ids = await book_sms(env, 20)
    env.clock.advance(timedelta(minutes=59))
    held = await env.pool.fetch(
        "SELECT id, phone, starts_at FROM bookings WHERE id = ANY($1) ORDER BY id", booking_ids
    )

    async def plan(kind: str, one: asyncpg.Record) -> None:
        async with env.pool.acquire() as conn:
            await outbox.add_planned(
                conn, one["id"], language="fr", now=env.clock(),
                planned=[PlannedMessage(kind, "sms", one["phone"], env.clock(), one["starts_at"])],
            )  # fmt: skip

    # A minute ago a batch of offers (hours to answer each), more than the
    # horizon too; then a citizen holds a seat: its code's hold is minutes.
    for one in held[:8]:
        await plan("waitlist_offer", one)
    env.clock.advance(timedelta(minutes=1))
    await plan("code", held[0])
    kinds = dict(await env.pool.fetch("SELECT id, kind FROM outbox"))
    settings = env.settings.with_(sms_per_second=1.0)
    state = await env.worker_state_for(settings)
    redis = await create_pool(RedisSettings.from_dsn(env.settings.redis_url))
    try:
        await jobs.sweep_outbox({jobs.STATE: state, "redis": redis})
        queued = await redis.zrange(jobs.QUEUE_NAME, 0, -1, withscores=True)
        turns = [int(m.decode().split(":")[1]) for m, _ in sorted(queued, key=lambda q: q[1])]
        assert 3 <= len(turns) <= jobs.SMS_HORIZON.total_seconds() + 1
        # The code at the first turn, then the offers; the backlog waits.
        assert [kinds[t] for t in turns] == ["code"] + ["waitlist_offer"] * (len(turns) - 1)
    finally:
        await redis.aclose()


async def test_sms_waiting_for_the_rate_never_outlive_the_job_timeout(notify_env: Env) -> None:
    """Scaled down from 2 workers x 50 jobs at 1 SMS/s under a 60 s timeout:
    100 jobs at once at 20 SMS/s under a 3 s timeout.  A job that waited for
    its turn inside the timeout was cut (row stuck until its lease ran out,
    turn never given back); every SMS must go out once, each on its first
    claim."""
    env = notify_env
    n = 200
    starts = env.clock() + timedelta(days=9)
    slot = await env.add_slot(starts, capacity=n)
    for i in range(n):
        await book(env, starts_at=starts, slot_id=slot, phone=f"+3361234{i:04d}", email=None)
    settings = env.settings.with_(sms_per_second=20.0)
    state = await env.worker_state_for(settings)
    send = func(jobs.send_message, name="send_message", timeout=3, max_tries=3, keep_result=0)
    task = asyncio.create_task(serve(settings, {jobs.STATE: state}, functions=[send], max_jobs=100))
    try:

        async def all_sent() -> bool:
            sent = await env.pool.fetchval(
                "SELECT count(*) FROM outbox WHERE kind = 'confirmation' AND status = 'sent'"
            )
            return bool(sent == n)

        await wait_for(all_sent, 90, "every confirmation sent")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await jobs.close_state(state)
    attempts = await env.pool.fetch(
        "SELECT attempts, count(*) AS n FROM outbox WHERE kind = 'confirmation' GROUP BY 1"
    )
    assert {r["attempts"]: r["n"] for r in attempts} == {1: n}
    assert len(env.twilio.sent) == n and env.twilio.duplicates() == {}


async def test_expired_lease_is_taken_back(notify_env: Env) -> None:
    env = notify_env
    booked = await book(env, starts_at=env.clock() + timedelta(days=9), email=None)
    await env.pool.execute(
        """UPDATE outbox SET status = 'sending', claimed_until = $2, attempts = 1
           WHERE booking_id = $1 AND kind = 'confirmation'""",
        booked.booking.id,
        env.clock() - timedelta(seconds=1),
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
        env=env_for_subprocess(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
