"""The SMS rate at the provider: the gate that spaces the sends themselves,
and SMS whose turns passed while the worker was down, which are booked again
on the shared rate rather than all sent in the first second."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool

from service.worker import jobs
from service.worker.ratelimit import RateLimiter
from tests.fixtures.notify import Env, book_sms, wait_for


@pytest.fixture
async def job_ctx(notify_env: Env) -> AsyncIterator[dict[str, Any]]:
    """What arq hands a job: the worker's state and its Redis."""
    state = await notify_env.worker_state_for(notify_env.settings)
    redis = await create_pool(RedisSettings.from_dsn(notify_env.settings.redis_url))
    yield {jobs.STATE: state, "redis": redis}
    await redis.aclose()
    await jobs.close_state(state)


async def test_the_gate_lets_one_caller_through_per_interval(notify_env: Env) -> None:
    # Two gates on one key stand for two worker processes.
    a = RateLimiter(notify_env.redis, per_second=20, key="test:gate")
    b = RateLimiter(notify_env.redis, per_second=20, key="test:gate")
    assert await a.pass_now() == 0
    # Within the interval (50 ms) nobody else goes, and each is told how
    # long is left.
    left = await b.pass_now()
    assert 0 < left <= 0.05
    assert 0 < await a.pass_now() <= left
    await asyncio.sleep(left)
    assert await b.pass_now() == 0
    # Callers that keep asking, from both gates, get through one interval
    # apart, never sooner, on Redis's clock (the time the gate records for
    # each one let through), however busy the machine is.  How many get
    # through in a given time is not asserted: that would be a timed test.
    passed: list[int] = []
    for gate in itertools.cycle((a, b)):
        if len(passed) == 10:
            break
        if await gate.pass_now() == 0:
            passed.append(int(await notify_env.redis.get("test:gate")))
        await asyncio.sleep(0.002)
    assert all(later - earlier >= 50_000 for earlier, later in itertools.pairwise(passed))


async def sms_row(env: Env) -> tuple[int, datetime]:
    """One due confirmation SMS, marked queued as the sweeper would."""
    [booking] = await book_sms(env, 1)
    queued_at = env.clock()
    row: int = await env.pool.fetchval(
        "UPDATE outbox SET enqueued_at = $2 WHERE booking_id = $1 AND kind = 'confirmation'"
        " RETURNING id",
        booking,
        queued_at,
    )
    return row, queued_at


async def row_state(env: Env, row: int) -> tuple[str, int, datetime | None]:
    r = await env.pool.fetchrow(
        "SELECT status, attempts, enqueued_at FROM outbox WHERE id = $1", row
    )
    return r["status"], r["attempts"], r["enqueued_at"]


async def test_a_job_whose_turn_went_stale_gives_its_row_back_unclaimed(
    notify_env: Env, job_ctx: dict[str, Any]
) -> None:
    env, ctx = notify_env, job_ctx
    row, queued_at = await sms_row(env)
    # A turn long gone (the worker was down): nothing is sent, the row is
    # pending as before, and no longer marked queued, for the next sweep.
    assert await jobs.send_message(ctx, row, turn=0.0, queued_at=queued_at) == "late"
    assert await row_state(env, row) == ("pending", 0, None)
    assert env.twilio.sent == []

    # Queued again meanwhile (a newer job for a new turn): a stale job of the
    # old queueing leaves the newer one in place.
    later = queued_at + timedelta(minutes=3)
    await env.pool.execute("UPDATE outbox SET enqueued_at = $2 WHERE id = $1", row, later)
    assert await jobs.send_message(ctx, row, turn=0.0, queued_at=queued_at) == "late"
    assert await row_state(env, row) == ("pending", 0, later)


async def test_a_job_held_back_by_the_gate_gives_its_claim_back(
    notify_env: Env, job_ctx: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    env, ctx = notify_env, job_ctx
    monkeypatch.setattr(jobs, "GATE_PATIENCE", 0.3)
    arq_redis: ArqRedis = ctx["redis"]
    row, queued_at = await sms_row(env)
    # Another sender has just gone through the gate, and will for an hour.
    seconds, micros = await arq_redis.time()
    now = seconds + micros / 1e6
    await arq_redis.set(jobs.SENT_KEY, str(int((now + 3600) * 1e6)))
    assert await jobs.send_message(ctx, row, turn=now, queued_at=queued_at) == "late"
    # Claimed, rendered, then given back whole: pending, the attempt not
    # counted, for the next sweep to book a new turn.
    assert await row_state(env, row) == ("pending", 0, None)
    assert env.twilio.sent == []
    # With the gate open it goes at its turn.
    await arq_redis.delete(jobs.SENT_KEY)
    await env.pool.execute("UPDATE outbox SET enqueued_at = $2 WHERE id = $1", row, queued_at)
    seconds, micros = await arq_redis.time()
    turn = seconds + micros / 1e6 + 0.05
    assert await jobs.send_message(ctx, row, turn=turn, queued_at=queued_at) == "sent"
    assert len(env.twilio.sent) == 1


async def test_a_restart_after_a_backlog_sends_no_faster_than_the_rate(notify_env: Env) -> None:
    """SMS jobs queued for their turns stay in Redis while the worker is
    down; when it comes back, the turns that passed must be booked again on
    the shared rate, not all sent in the first second."""
    env = notify_env
    rate = 20.0
    n = 120
    settings = env.settings.with_(sms_per_second=rate)
    await book_sms(env, n)
    await env.start_worker(await env.worker_state_for(settings))

    async def sent(k: int) -> bool:
        return len(env.twilio.sent) >= k

    await wait_for(lambda: sent(20), 60, "the first sends")
    await env.stop_worker()
    queued = await env.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE status = 'pending' AND enqueued_at IS NOT NULL"
    )
    assert queued > 2 * rate, "jobs for a few seconds of turns wait in Redis"
    # Down long enough for every turn booked to pass.
    await asyncio.sleep(6)
    await env.start_worker(await env.worker_state_for(settings))
    try:
        await wait_for(lambda: sent(n), 90, "every SMS after the restart")
    finally:
        await env.stop_worker()
    print(f"worst second: {env.twilio.most_in_one_second()} SMS at a rate of {rate:g}/s")
    assert env.twilio.duplicates() == {}
    assert env.twilio.most_in_one_second() <= rate
