"""The dev servers of `mawid dev` / `make run`: a durable Postgres and an
append-only Redis under one dev dir (.devdata/ by default), each on the port
it had last time, so that the URLs printed stay the same from run to run."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from service.devstack.postgres import DEV_DATABASE, RunningPostgres
from service.devstack.process import ChildServer, free_port, port_is_free
from service.devstack.redis import RunningRedis

# Fixed default ports for `make run`: unusual enough not to clash with a system
# Postgres (5432) or Redis (6379), stable so DATABASE_URL-style URLs printed by
# `mawid dev` stay the same from one run to the next.
DEFAULT_DEV_PG_PORT = 54329
DEFAULT_DEV_REDIS_PORT = 63799


def dev_dir_from_env(default: Path | None = None) -> Path:
    """The directory holding dev data: $MAWID_DEV_DIR or ./.devdata."""
    value = os.environ.get("MAWID_DEV_DIR")
    if value:
        return Path(value).expanduser().resolve()
    return (default or Path.cwd() / ".devdata").resolve()


def _choose_port(remembered: int | None, default: int) -> int:
    for candidate in (remembered, default):
        if candidate and port_is_free(candidate):
            return candidate
    return free_port()


def _load_ports(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): int(v) for k, v in data.items() if isinstance(v, int)}


def _dev_port(dev_dir: Path, key: str, server: ChildServer, default: int) -> int:
    """The port for one dev server: last run's, else the default, else any free one.

    Remembered in dev_dir/ports.json so the URLs stay the same from run to
    run.  An orphan of a killed run still holding the port is stopped first
    (or we refuse, if its owner is alive), so the remembered port is free.
    """
    server.reclaim()
    ports_file = dev_dir / "ports.json"
    ports = _load_ports(ports_file)
    port = _choose_port(ports.get(key), default)
    ports[key] = port
    ports_file.write_text(json.dumps(ports, sort_keys=True) + "\n")
    return port


def start_dev_postgres(dev_dir: Path) -> RunningPostgres:
    """The durable dev Postgres in dev_dir/postgres, with database `mawid`.

    `.dsn_for(DEV_DATABASE)` (== `.dev_dsn`) is the DATABASE_URL to use.
    """
    dev_dir = Path(dev_dir).resolve()
    dev_dir.mkdir(parents=True, exist_ok=True)
    server = RunningPostgres(dev_dir / "postgres", 0, durable=True)
    server.port = _dev_port(dev_dir, "postgres", server, DEFAULT_DEV_PG_PORT)
    server.start()
    try:
        server.ensure_database(DEV_DATABASE)
    except BaseException:
        server.stop()
        raise
    return server


def start_dev_redis(dev_dir: Path) -> RunningRedis:
    """The persistent (append-only file) dev Redis in dev_dir/redis."""
    dev_dir = Path(dev_dir).resolve()
    dev_dir.mkdir(parents=True, exist_ok=True)
    server = RunningRedis(dev_dir / "redis", 0, persistent=True)
    server.port = _dev_port(dev_dir, "redis", server, DEFAULT_DEV_REDIS_PORT)
    return server.start()


def run_dev_services(dev_dir: Path) -> tuple[RunningPostgres, RunningRedis]:
    """Start the dev Postgres and Redis under dev_dir (e.g. .devdata/).

    Data lives in dev_dir/postgres and dev_dir/redis and survives restarts;
    ports are remembered (defaults 54329 / 63799).  DATABASE_URL is
    `pg.dev_dsn`, REDIS_URL is `redis.url`.  The caller stops both.
    """
    pg = start_dev_postgres(dev_dir)
    try:
        redis = start_dev_redis(dev_dir)
    except BaseException:
        pg.stop()
        raise
    return pg, redis


@contextlib.contextmanager
def dev_services(dev_dir: Path) -> Iterator[tuple[RunningPostgres, RunningRedis]]:
    """run_dev_services() as a context manager that stops both on exit."""
    pg, redis = run_dev_services(dev_dir)
    try:
        yield pg, redis
    finally:
        redis.stop()
        pg.stop()


def main(argv: list[str] | None = None) -> int:
    """`python -m service.devstack [DIR]`: run the dev servers until Ctrl-C."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    directory = Path(args[0]) if args else dev_dir_from_env()
    # Handlers, not a blocked signal mask + sigwait: children inherit the
    # mask, and a Postgres with SIGINT blocked cannot be stopped gracefully.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with dev_services(directory) as (pg, redis):
        print(f"DATABASE_URL={pg.dsn_for(DEV_DATABASE)}")
        print(f"REDIS_URL={redis.url}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0
