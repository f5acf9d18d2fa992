"""`mawid worker` and arq's CLI run the same worker: `create_worker` is built
from `WorkerSettings`, changing only the Redis address, the signals and the
context."""

from __future__ import annotations

from arq.connections import RedisSettings

from service.config import Settings
from service.worker import jobs
from service.worker.settings import FUNCTIONS, WorkerSettings, create_worker


async def test_create_worker_runs_what_worker_settings_define() -> None:
    settings = Settings(redis_url="redis://127.0.0.1:6390/3")
    worker = create_worker(settings, {"extra": 1})
    assert worker.queue_name == WorkerSettings.queue_name == jobs.QUEUE_NAME
    assert worker.max_jobs == WorkerSettings.max_jobs
    assert worker.job_timeout_s == WorkerSettings.job_timeout
    assert worker.keep_result_s == WorkerSettings.keep_result
    assert worker.max_tries == WorkerSettings.max_tries
    assert worker.health_check_interval == WorkerSettings.health_check_interval
    assert worker.poll_delay_s == WorkerSettings.poll_delay
    assert worker.on_startup is jobs.startup
    assert worker.on_shutdown is jobs.shutdown
    expected = {f.name for f in FUNCTIONS} | {c.name for c in WorkerSettings.cron_jobs or []}
    assert expected == {
        "send_message",
        "sweep_outbox",
        "expire_holds",
        "extend_slots",
        "anonymise_expired",
        "purge_expired",
        "draw_tick",
        "remind_uncollected",
    }
    assert set(worker.functions) == expected
    # What differs: the Redis of `settings`, no signal handlers, the context.
    assert worker.redis_settings == RedisSettings(host="127.0.0.1", port=6390, database=3)
    assert not worker._handle_signals
    assert worker.ctx == {"settings": settings, "extra": 1}


async def test_overrides_win() -> None:
    worker = create_worker(Settings(), max_jobs=2, poll_delay=0.5)
    assert (worker.max_jobs, worker.poll_delay_s) == (2, 0.5)
