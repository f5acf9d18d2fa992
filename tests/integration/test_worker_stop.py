"""A normal stop of the worker sends nothing twice.

A Ctrl-C of `mawid dev` reaches the worker twice: SIGINT from the terminal
(the whole foreground process group), then SIGTERM from `mawid dev` itself.
Neither may cut a send between the provider's answer and its record: such a
row stays `sending` until its lease runs out and goes again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest

from service.worker.settings import MAX_JOBS
from tests.faketwilio import Reply
from tests.fixtures.notify import Env, book_sms, env_for_subprocess, wait_for

WORKER_CMD = [
    sys.executable,
    "-c",
    "from service.config import Settings; from service.worker.settings import run_worker; "
    "run_worker(Settings.from_env())",
]


async def by_status(env: Env) -> dict[str, int]:
    rows = await env.pool.fetch(
        "SELECT status, count(*) AS n FROM outbox WHERE kind = 'confirmation' GROUP BY status"
    )
    return {r["status"]: r["n"] for r in rows}


def start_worker(env: Env) -> subprocess.Popen[bytes]:
    # Its own process group, like `mawid dev` and its children in a terminal:
    # a Ctrl-C there is a SIGINT to every process of the group.
    return subprocess.Popen(
        WORKER_CMD,
        env=env_for_subprocess(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


@pytest.mark.parametrize(
    "signals",
    [
        pytest.param((signal.SIGINT, signal.SIGTERM), id="ctrl-c-then-mawid-dev"),
        pytest.param((signal.SIGINT, signal.SIGINT, signal.SIGINT), id="ctrl-c-thrice"),
    ],
)
async def test_a_normal_stop_with_sends_in_flight_sends_nothing_twice(
    notify_env: Env, signals: tuple[signal.Signals, ...]
) -> None:
    env = notify_env
    n = 150
    # A slow provider: a few dozen sends are always waiting for its answer.
    env.twilio.default = Reply(delay=0.4)
    await book_sms(env, n)
    loop = asyncio.get_running_loop()
    started = loop.time()
    proc = start_worker(env)
    try:

        async def some_sent() -> bool:
            return len(env.twilio.sent) >= 20

        await wait_for(some_sent, 60, "the first sends")
        in_flight = await env.pool.fetchval("SELECT count(*) FROM outbox WHERE status = 'sending'")
        for sig in signals:
            os.killpg(proc.pid, sig)
            await asyncio.sleep(0.05)
        code = await asyncio.to_thread(proc.wait, 90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert in_flight > 0, "the stop should land with sends in flight"
    assert code == 0, (code, proc.stderr.read().decode() if proc.stderr else "")
    # Every send that reached the provider was recorded before the worker
    # left, and none is left half-done.
    await asyncio.sleep(0.5)  # requests already inside the fake server
    statuses = await by_status(env)
    assert statuses.get("sending", 0) == 0, statuses
    assert statuses.get("sent", 0) == len(env.twilio.sent) < n

    # The next worker sends the rest. Were a row left `sending`, its lease
    # running out would send it again; we run the leases out at once (and
    # the queue's presumption of lost jobs) rather than wait two minutes.
    env.clock.advance(timedelta(seconds=loop.time() - started))
    await env.pool.execute(
        "UPDATE outbox SET claimed_until = $1 WHERE status = 'sending'",
        env.clock() - timedelta(seconds=1),
    )
    await env.pool.execute(
        "UPDATE outbox SET enqueued_at = enqueued_at - interval '3 minutes'"
        " WHERE enqueued_at IS NOT NULL AND status IN ('pending', 'sending')"
    )
    env.twilio.default = Reply()
    proc = start_worker(env)
    try:

        async def all_sent() -> bool:
            return (await by_status(env)).get("sent", 0) == n

        await wait_for(all_sent, 90, "every confirmation sent by the next worker")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    print(f"in flight at the stop: {in_flight}, duplicates: {len(env.twilio.duplicates())}")
    assert env.twilio.duplicates() == {}
    assert len(env.twilio.sent) == n
    assert in_flight <= MAX_JOBS
