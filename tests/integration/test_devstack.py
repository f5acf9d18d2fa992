"""The embedded servers behind `make run` and the test-suite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from service import devstack
from service.devstack import run_dev_services, start_postgres, start_redis
from service.devstack.process import pid_alive


async def test_postgres_starts_answers_and_stops(tmp_path: Path) -> None:
    server = start_postgres(tmp_path / "pg", durable=False)
    try:
        conn = await asyncpg.connect(server.dsn)
        try:
            assert await conn.fetchval("SELECT 40 + 2") == 42
            assert await conn.fetchval("SHOW max_connections") == str(devstack.PG_MAX_CONNECTIONS)
            assert await conn.fetchval("SHOW TimeZone") == "UTC"
            assert await conn.fetchval("SHOW server_encoding") == "UTF8"
            assert await conn.fetchval("SHOW fsync") == "off"
        finally:
            await conn.close()
    finally:
        server.stop()
    assert not server.is_running()
    with pytest.raises(OSError):
        await asyncpg.connect(server.dsn, timeout=2)


async def test_postgres_data_survives_a_restart(tmp_path: Path) -> None:
    with start_postgres(tmp_path / "pg", durable=True) as server:
        dsn = server.ensure_database("mawid")
        conn = await asyncpg.connect(dsn)
        await conn.execute("CREATE TABLE kept (note text)")
        await conn.execute("INSERT INTO kept VALUES ('still here')")
        await conn.close()
        port = server.port
    assert not server.is_running()

    with start_postgres(tmp_path / "pg", port=port) as again:
        assert again.ensure_database("mawid") == dsn
        conn = await asyncpg.connect(dsn)
        assert await conn.fetchval("SELECT note FROM kept") == "still here"
        await conn.close()


async def test_redis_stops_and_restarts_on_the_same_port(tmp_path: Path) -> None:
    server = start_redis(tmp_path / "redis", persistent=False)
    url = server.url
    client = Redis.from_url(url)
    try:
        assert await client.ping()
        server.stop()
        assert not server.ping()
        other = Redis.from_url(url)
        with pytest.raises(RedisConnectionError):
            await other.ping()
        await other.aclose()
        server.start()
        assert server.url == url
        assert await client.ping()  # the client reconnects to the same address
    finally:
        await client.aclose()
        server.stop()


def test_redis_server_fixture_is_stoppable(redis_server: devstack.RunningRedis) -> None:
    port = redis_server.port
    redis_server.stop()
    assert not redis_server.ping()
    redis_server.restart()
    assert redis_server.ping() and redis_server.port == port


async def test_persistent_redis_keeps_data_across_restart(tmp_path: Path) -> None:
    with start_redis(tmp_path / "redis", persistent=True) as server:
        client = Redis.from_url(server.url)
        await client.set("k", "v")
        await client.aclose()
        server.restart()
        client = Redis.from_url(server.url)
        assert await client.get("k") == b"v"
        await client.aclose()


def test_dev_services_keep_ports_and_data(tmp_path: Path) -> None:
    pg, redis = run_dev_services(tmp_path / "dev")
    try:
        first = (pg.dsn_for(devstack.DEV_DATABASE), redis.url)
        pg.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (7)", devstack.DEV_DATABASE)
    finally:
        redis.stop()
        pg.stop()
    ports = json.loads((tmp_path / "dev" / "ports.json").read_text())
    assert ports == {"postgres": pg.port, "redis": redis.port}

    pg, redis = run_dev_services(tmp_path / "dev")
    try:
        assert (pg.dsn_for(devstack.DEV_DATABASE), redis.url) == first
        assert pg.psql("SELECT x FROM t", devstack.DEV_DATABASE) == "7"
    finally:
        redis.stop()
        pg.stop()


def test_orphans_of_a_killed_dev_process_are_reclaimed(tmp_path: Path) -> None:
    """`mawid dev` killed with SIGKILL leaves its servers; the next run stops them."""
    dev_dir = tmp_path / "dev"
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from service.devstack import run_dev_services\n"
        "run_dev_services(Path(sys.argv[1]))\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(dev_dir)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"up"
    orphan_pg = json.loads((dev_dir / "postgres" / "mawid-owner.json").read_text())["server"]
    orphan_redis = json.loads((dev_dir / "redis" / "mawid-owner.json").read_text())["server"]
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    pg, redis = run_dev_services(dev_dir)
    try:
        assert pg.process is not None and pg.process.pid != orphan_pg
        assert redis.ping()
        for pid in (orphan_pg, orphan_redis):
            deadline = time.monotonic() + 5
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not pid_alive(pid)
    finally:
        redis.stop()
        pg.stop()


def test_second_dev_process_on_the_same_data_is_refused(tmp_path: Path) -> None:
    dev_dir = tmp_path / "dev"
    pg, redis = run_dev_services(dev_dir)
    try:
        # Pretend the servers belong to another live process (our parent).
        record = dev_dir / "postgres" / "mawid-owner.json"
        data = json.loads(record.read_text())
        record.write_text(json.dumps({**data, "owner": os.getppid()}))
        with pytest.raises(devstack.DevStackError, match="already running"):
            run_dev_services(dev_dir)
        assert pg.is_running() and redis.is_running()
    finally:
        redis.stop()
        pg.stop()


async def test_a_postgres_killed_outright_starts_again_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGKILL of the postmaster: reaped, its stray backend cleared, and
    the server started again on its data and port."""
    monkeypatch.setattr(devstack.postgres, "LEFTOVER_GRACE", 0.5)
    pg = devstack.start_dev_postgres(tmp_path / "dev")
    port, dsn = pg.port, pg.dev_dsn
    pg.psql("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('kept')", "mawid")
    conn = await asyncpg.connect(dsn)
    backend = await conn.fetchval("SELECT pg_backend_pid()")
    try:
        # A backend that cannot notice its postmaster die keeps the shared
        # memory: a new postmaster refuses to start while it lives.
        os.kill(backend, signal.SIGSTOP)
        assert pg.process is not None
        os.kill(pg.process.pid, signal.SIGKILL)
        pg.process.wait()
        assert not pg.is_running()
        pg.start()
        assert pg.port == port and pg.is_running()
        assert not pid_alive(backend)
        assert pg.psql("SELECT note FROM kept", "mawid") == "kept"
    finally:
        conn.terminate()
        pg.stop()


def test_a_server_left_running_without_its_record_keeps_its_port(tmp_path: Path) -> None:
    """After a crash someone starts Postgres by hand on the dev data, and the
    ownership record is gone: the next `mawid dev` finds it by its own pid
    file, stops it, and starts Postgres on the same port (same DSN)."""
    dev_dir = tmp_path / "dev"
    pg = devstack.start_dev_postgres(dev_dir)
    port = pg.port
    assert pg.process is not None
    pg.process.send_signal(signal.SIGKILL)
    pg.process.wait()
    by_hand = subprocess.Popen(
        pg._command(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        **pg._prepare(),
    )
    try:
        deadline = time.monotonic() + 30
        while not pg._ready():
            assert by_hand.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        # Stopping ours (already dead) leaves the record of a server still
        # running on the data; even without it the next start finds the server.
        pg.stop()
        assert (dev_dir / "postgres" / "mawid-owner.json").exists()
        (dev_dir / "postgres" / "mawid-owner.json").unlink()
        again = devstack.start_dev_postgres(dev_dir)
        try:
            assert again.port == port
            assert by_hand.wait(timeout=30) is not None
        finally:
            again.stop()
    finally:
        if by_hand.poll() is None:
            by_hand.kill()
            by_hand.wait()
