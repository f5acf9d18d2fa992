"""Session-wide throwaway Postgres and Redis, and a fresh migrated database per test.

Fixtures (all real servers, no mocks):

pg_dsn           session   DSN of a database on a server we may CREATE/DROP
                           databases on: the embedded server's `postgres`
                           database, or, when DATABASE_URL is set, a uniquely
                           named database created on that server (dropped at
                           the end).
template_db      session   name of a database migrated once with
                           service.db.migrate; the source of every db_dsn.
db_dsn           function  DSN of a fresh copy of the template
                           (CREATE DATABASE ... TEMPLATE), dropped after the test.
redis_url        session   REDIS_URL, or an embedded redis-server for the session.
fresh_redis_url  function  redis_url after FLUSHDB, for tests that need an empty Redis.
redis_server     function  a private embedded Redis (devstack.RunningRedis) the
                           test may .stop() / .start() / .restart() on the same
                           port without disturbing anyone else; stopped after.
pg_server        session   the embedded devstack.RunningPostgres, or None when
                           DATABASE_URL is set.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.config import Settings
from service.devstack import RunningPostgres, RunningRedis, start_postgres, start_redis
from tests.clock import FIXED_NOW, FakeClock

# The office side's fixtures (prefixed office_), shared by its integration and
# browser tests; plugins may only be declared here, in the top conftest.
pytest_plugins = ["tests.office_fixtures"]


def _with_database(dsn: str, database: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


def _unique(prefix: str) -> str:
    # Several runs (CI jobs, two engineers) may share one DATABASE_URL server.
    return f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"


async def _drop_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        # WITH (FORCE) ends connections a test forgot to close (pools of an
        # app that crashed mid-test); without it the DROP would fail.
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPostgres | None]:
    if os.environ.get("DATABASE_URL"):
        yield None
        return
    data_dir = tmp_path_factory.mktemp("pg") / "data"
    server = start_postgres(data_dir, durable=False)
    try:
        yield server
    finally:
        server.stop()
        # ~40 MB per cluster; pytest keeps the last three temp roots otherwise.
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
async def pg_dsn(pg_server: RunningPostgres | None) -> AsyncIterator[str]:
    if pg_server is not None:
        yield pg_server.dsn
        return
    server_dsn = os.environ["DATABASE_URL"]
    name = _unique("mawid_test")
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield _with_database(server_dsn, name)
    finally:
        await _drop_database(server_dsn, name)


@pytest.fixture(scope="session")
async def template_db(pg_dsn: str) -> AsyncIterator[str]:
    # Imported here so that tests not touching the database (and the devstack
    # tests) still run when the migration code is broken.
    from service.db import migrate

    name = _unique("mawid_template")
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        # migrate() must close its connections: CREATE DATABASE ... TEMPLATE
        # refuses a template that anyone is connected to.
        await migrate(_with_database(pg_dsn, name))
        await _seed_demo(_with_database(pg_dsn, name))
        yield name
    finally:
        await _drop_database(pg_dsn, name)


@pytest.fixture
async def db_dsn(pg_dsn: str, template_db: str) -> AsyncIterator[str]:
    name = _unique("test")
    conn = await asyncpg.connect(pg_dsn)
    try:
        # A file-level copy of the migrated template: a few ms, versus
        # re-running every migration for each test.
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    finally:
        await conn.close()
    try:
        yield _with_database(pg_dsn, name)
    finally:
        await _drop_database(pg_dsn, name)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    server = start_redis(tmp_path_factory.mktemp("redis"), persistent=False)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def fresh_redis_url(redis_url: str) -> str:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
    return redis_url


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RunningRedis]:
    # Always embedded, even with REDIS_URL: a test that stops Redis must not
    # stop a server other tests (or other people) rely on.
    server = start_redis(tmp_path / "redis", persistent=False)
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------- app fixtures

TEST_SECRET = "test-secret-key"


async def _seed_demo(dsn: str) -> None:
    from service.seed import seed_demo

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET TIME ZONE 'UTC'")
        await seed_demo(conn, FIXED_NOW, 84)
    finally:
        await conn.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(db_dsn: str, redis_url: str) -> Settings:
    return Settings(
        env="test",
        secret_key=TEST_SECRET,
        database_url=db_dsn,
        redis_url=redis_url,
        base_url="http://mawid.test",
    )


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    from service.db import create_pool

    # Large enough for the 300-request rush without queueing forever.
    pool = await create_pool(db_dsn, min_size=2, max_size=40)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def app_client(
    settings: Settings, pool: asyncpg.Pool, clock: FakeClock
) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    from service.app import create_app

    app = create_app(settings, pool=pool, clock=clock)
    async with TestClient(TestServer(app)) as client:
        yield client
