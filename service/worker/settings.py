"""arq settings for `mawid worker` and `arq service.worker.settings.WorkerSettings`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from arq import cron, func
from arq.connections import RedisSettings
from arq.cron import CronJob
from arq.typing import StartupShutdown, WorkerCoroutine
from arq.worker import Function, Worker
from arq.worker import create_worker as arq_create_worker
from redis.exceptions import RedisError

from service.config import Settings
from service.metrics import timed_job
from service.web.observe import metrics_app
from service.worker import draws, jobs

log = logging.getLogger(__name__)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
MAX_JOBS = 50
REDIS_RETRY_SECONDS = 1.0


def redis_settings(settings: Settings) -> RedisSettings:
    return RedisSettings.from_dsn(settings.redis_url or DEFAULT_REDIS_URL)


def _timed(name: str, job: Any) -> Any:
    return timed_job(name, job, lambda ctx: ctx[jobs.STATE].metrics)


FUNCTIONS: list[Function] = [
    func(
        _timed("send_message", jobs.send_message),
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
        _timed("sweep_outbox", jobs.sweep_outbox),
        name="sweep_outbox",
        second=set(range(60)),
        run_at_startup=True,
        timeout=jobs.SWEEP_TIMEOUT,
        max_tries=1,
        keep_result=0,
    ),
    cron(
        _timed("expire_holds", jobs.expire_holds),
        name="expire_holds",
        second=set(range(0, 60, 10)),
        run_at_startup=True,
        timeout=jobs.SWEEP_TIMEOUT,
        max_tries=1,
        keep_result=0,
    ),
    cron(
        _timed("draw_tick", draws.draw_tick),
        name="draw_tick",
        second={5, 35},
        run_at_startup=True,
        timeout=600,
        max_tries=1,
        keep_result=0,
    ),
    cron(
        _timed("remind_uncollected", jobs.remind_uncollected),
        name="remind_uncollected",
        minute={23},
        second={0},
        run_at_startup=True,
        timeout=300,
        max_tries=1,
        keep_result=0,
    ),
    cron(
        _timed("extend_slots", jobs.extend_slots),
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
        _timed("anonymise_expired", jobs.anonymise_expired),
        name="anonymise_expired",
        hour={4},
        minute={7},
        second={0},
        run_at_startup=False,
        timeout=1800,
        max_tries=3,
        keep_result=0,
    ),
    cron(
        _timed("purge_expired", jobs.purge_expired),
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


async def serve(
    settings: Settings,
    ctx: dict[str, Any] | None = None,
    *,
    stop: asyncio.Event | None = None,
    metrics_port: int | None = None,
    **overrides: Any,
) -> None:
    """Run the worker until `stop` is set or the task is cancelled, riding
    out Redis outages. With `metrics_port`, /metrics is served on
    METRICS_HOST at that port.

    arq's worker stops at the first Redis error; the outbox in Postgres keeps
    everything that is due, so we start a fresh worker once Redis answers.

    Every way out is a graceful stop: no new job is taken, and the jobs
    already running are waited for, however often we are cancelled
    meanwhile.  Cutting a send between the provider's answer and its record
    would leave its row `sending` until the lease runs out, and send it again.
    """
    shared: dict[str, Any] = dict(ctx or {})
    state = shared.get(jobs.STATE) or await jobs.build_state(settings)
    shared[jobs.STATE] = state
    shared["keep_state"] = True
    runner = None
    if metrics_port is not None:
        try:
            runner = await _serve_metrics(settings, state, metrics_port)
        except OSError as exc:
            # Sending matters more than being watched: a port in use (a
            # second worker on one machine) costs the metrics, not the worker.
            log.warning(
                "worker: metrics not served, %s:%d refused (%s)",
                settings.metrics_host,
                metrics_port,
                type(exc).__name__,
            )
    stop = stop or asyncio.Event()
    cancelled = False
    try:
        while not stop.is_set():
            worker = create_worker(settings, shared, **overrides)
            run = asyncio.ensure_future(worker.async_run())
            try:
                await _until(run, stop)
            # Any Redis error: an outage surfaces as ConnectionError, TimeoutError
            # or, when it cuts a WATCH in arq's job pick-up, as WatchError.
            except (RedisError, ConnectionError, OSError) as exc:
                log.warning("worker: Redis unavailable (%s); retrying", type(exc).__name__)
            except asyncio.CancelledError:
                cancelled = True
                stop.set()
            finally:
                cancelled |= await _wind_down(worker, run)
                shared[jobs.STATE] = state
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), REDIS_RETRY_SECONDS)
    finally:
        if runner is not None:
            await runner.cleanup()
        if not (ctx or {}).get(jobs.STATE):
            await jobs.close_state(state)
    if cancelled:
        raise asyncio.CancelledError


async def _serve_metrics(settings: Settings, state: jobs.WorkerState, port: int) -> web.AppRunner:
    runner = web.AppRunner(
        metrics_app(settings, state.metrics, state.pool, state.clock), access_log=None
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.metrics_host, port).start()
    except OSError:
        await runner.cleanup()
        raise
    log.info("worker: metrics on %s:%d", settings.metrics_host, port)
    return runner


async def _until(run: asyncio.Future[None], stop: asyncio.Event) -> None:
    """Wait for the worker's run to end (its error is raised here) or `stop`."""
    stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([run, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if run.done():
        run.result()
        stop.set()  # it ended by itself (burst mode): nothing more to run


async def _wait_through_cancel(tasks: Sequence[asyncio.Future[Any]]) -> bool:
    """Wait until every task is done, even when cancelled meanwhile (asyncio.wait
    never cancels what it waits for); returns whether we were cancelled."""
    cancelled = False
    while pending := [t for t in tasks if not t.done()]:
        try:
            await asyncio.wait(pending)
        except asyncio.CancelledError:
            cancelled = True
            log.info("worker: stopping; waiting for %d jobs in flight", len(pending))
    return cancelled


async def _wind_down(worker: Worker, run: asyncio.Future[None]) -> bool:
    """Take no new job, let the running ones finish, stop the worker's loop and
    drop it without touching Redis.  Returns whether we were cancelled meanwhile."""
    worker.allow_pick_jobs = False
    cancelled = False
    # A pick-up under way may still start a job while we wait: look again.
    while jobs_running := list(worker.tasks.values()):
        if all(t.done() for t in jobs_running):
            break
        cancelled |= await _wait_through_cancel(jobs_running)
    run.cancel()
    cancelled |= await _wait_through_cancel([run])
    if not run.cancelled() and run.exception() is not None:
        log.debug("worker: run ended with %r", run.exception())
    pool = worker._pool
    worker._pool = None
    if pool is not None:
        try:
            await pool.aclose(close_connection_pool=True)
        except Exception:  # Redis is gone; there is nothing to release cleanly.
            log.debug("worker: Redis pool close failed", exc_info=True)
    return cancelled


class _QuietSweeps(logging.Filter):
    """arq logs every job at INFO; the sweeper runs every second and would
    bury everything else. Its failures still come through (WARNING and up)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or "sweep_outbox" not in record.getMessage()


def run_worker(settings: Settings) -> None:
    """Entry point of `mawid worker`: runs until SIGINT or SIGTERM.

    The first signal stops it gracefully (see `serve`); later ones only say
    that it is still stopping.  A Ctrl-C under `mawid dev` brings two (the
    terminal's SIGINT, then `mawid dev`'s SIGTERM), and neither may cut a
    send short.  Only SIGKILL does, within the documented bound of one
    repeated message per job in flight.
    """
    logging.getLogger("arq.worker").addFilter(_QuietSweeps())

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(sig: signal.Signals) -> None:
            if stop.is_set():
                log.info("worker: %s; still finishing the jobs in flight", sig.name)
            else:
                log.info("worker: %s; finishing the jobs in flight, taking no new ones", sig.name)
                stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        await serve(settings, stop=stop, metrics_port=settings.metrics_port or None)
        # A signal still on its way (mawid dev's SIGTERM after the terminal's
        # SIGINT) must not kill the process on its way out with a signal's status.
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)
        log.info("worker: stopped")

    asyncio.run(main())
