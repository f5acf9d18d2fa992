"""arq settings for `mawid worker` and `arq service.worker.settings.WorkerSettings`."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from typing import Any

from arq import cron, func
from arq.connections import RedisSettings
from arq.cron import CronJob
from arq.typing import StartupShutdown, WorkerCoroutine
from arq.worker import Function, Worker
from arq.worker import create_worker as arq_create_worker
from redis.exceptions import RedisError

from service.config import Settings
from service.worker import draws, jobs

log = logging.getLogger(__name__)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
MAX_JOBS = 50
REDIS_RETRY_SECONDS = 1.0


def redis_settings(settings: Settings) -> RedisSettings:
    return RedisSettings.from_dsn(settings.redis_url or DEFAULT_REDIS_URL)


FUNCTIONS: list[Function] = [
    func(
        jobs.send_message,
        name="send_message",
        timeout=jobs.SEND_TIMEOUT,
        # Only a worker crash makes arq run a job again; the row's lease and
        # status decide whether anything is sent.
        max_tries=3,
        keep_result=0,
    ),
]
CRON_JOBS: list[CronJob] = [
    cron(
        jobs.sweep_outbox,
        name="sweep_outbox",
        second=set(range(60)),
        run_at_startup=True,
        timeout=jobs.SWEEP_TIMEOUT,
        max_tries=1,
        keep_result=0,
    ),
    cron(
        jobs.expire_holds,
        name="expire_holds",
        second=set(range(0, 60, 10)),
        run_at_startup=True,
        timeout=jobs.SWEEP_TIMEOUT,
        max_tries=1,
        keep_result=0,
    ),
    cron(
        draws.draw_tick,
        name="draw_tick",
        second={5, 35},
        run_at_startup=True,
        timeout=600,
        max_tries=1,
        keep_result=0,
    ),
    cron(
        jobs.extend_slots,
        name="extend_slots",
        hour={3},
        minute={17},
        second={0},
        run_at_startup=False,
        timeout=600,
        max_tries=3,
        keep_result=0,
    ),
    cron(
        jobs.purge_expired,
        name="purge_expired",
        hour={3},
        minute={37},
        second={0},
        run_at_startup=False,
        timeout=120,
        max_tries=3,
        keep_result=0,
    ),
]


class WorkerSettings:
    """The worker's one definition, read by arq's CLI and by `create_worker`.
    arq wants class attributes, so the Redis address is read from the
    environment when this module is imported."""

    functions: Sequence[WorkerCoroutine | Function] = FUNCTIONS
    cron_jobs: Sequence[CronJob] | None = CRON_JOBS
    on_startup: StartupShutdown | None = jobs.startup
    on_shutdown: StartupShutdown | None = jobs.shutdown
    redis_settings: RedisSettings = redis_settings(Settings.from_env())
    queue_name = jobs.QUEUE_NAME
    max_jobs = MAX_JOBS
    job_timeout = jobs.SEND_TIMEOUT
    keep_result = 0
    max_tries = 3
    health_check_interval = 60
    poll_delay = 0.05


def create_worker(
    settings: Settings, ctx: dict[str, Any] | None = None, **overrides: Any
) -> Worker:
    """A worker as `WorkerSettings` defines it, on `settings`' Redis, with
    signals left to the caller (`run_worker`)."""
    return arq_create_worker(
        WorkerSettings,
        **{
            "redis_settings": redis_settings(settings),
            "handle_signals": False,
            "ctx": {"settings": settings, **(ctx or {})},
            **overrides,
        },
    )


async def serve(settings: Settings, ctx: dict[str, Any] | None = None, **overrides: Any) -> None:
    """Run the worker until cancelled, riding out Redis outages.

    arq's worker stops at the first Redis error; the outbox in Postgres keeps
    everything that is due, so we start a fresh worker once Redis answers.
    """
    shared: dict[str, Any] = dict(ctx or {})
    state = shared.get(jobs.STATE) or await jobs.build_state(settings)
    shared[jobs.STATE] = state
    shared["keep_state"] = True
    try:
        while True:
            worker = create_worker(settings, shared, **overrides)
            try:
                await worker.async_run()
                return
            # Any Redis error: an outage surfaces as ConnectionError, TimeoutError
            # or, when it cuts a WATCH in arq's job pick-up, as WatchError.
            except (RedisError, ConnectionError, OSError) as exc:
                log.warning("worker: Redis unavailable (%s); retrying", type(exc).__name__)
            finally:
                await _abandon(worker)
                shared[jobs.STATE] = state
            await asyncio.sleep(REDIS_RETRY_SECONDS)
    finally:
        if not (ctx or {}).get(jobs.STATE):
            await jobs.close_state(state)


async def _abandon(worker: Worker) -> None:
    """Let running jobs finish, then drop the worker without touching Redis."""
    tasks = list(worker.tasks.values())
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    pool = worker._pool
    worker._pool = None
    if pool is not None:
        try:
            await pool.aclose(close_connection_pool=True)
        except Exception:  # Redis is gone; there is nothing to release cleanly.
            log.debug("worker: Redis pool close failed", exc_info=True)


class _QuietSweeps(logging.Filter):
    """arq logs every job at INFO; the sweeper runs every second and would
    bury everything else. Its failures still come through (WARNING and up)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or "sweep_outbox" not in record.getMessage()


def run_worker(settings: Settings) -> None:
    """Entry point of `mawid worker`: runs until SIGINT or SIGTERM."""
    logging.getLogger("arq.worker").addFilter(_QuietSweeps())

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await serve(settings)
        except asyncio.CancelledError:
            log.info("worker: stopped")

    asyncio.run(main())
