"""asyncpg pool and the migration runner."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Any constant works; it only has to be the same for every process.
_MIGRATION_LOCK = 0x6D617769  # "mawi"


class MigrationChanged(RuntimeError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"migration {name} was edited after it was applied; "
            "add a new migration instead (in dev: remove the dev data directory)"
        )


class DatabaseUnavailable(ConnectionError):
    """No connection to Postgres could be made (refused, reset, timed out).

    A ConnectionError, so code that already treats OSError as a passing
    outage keeps doing so; `unavailable` tells it from other OSErrors."""


# What asyncpg raises when the server goes away or cannot take us: a lost
# connection (08xxx, ConnectionDoesNotExistError among them), a server
# starting up or shutting down (57P01-57P03), no connection slot left (53300).
_OUTAGES = (
    DatabaseUnavailable,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


def unavailable(exc: BaseException | None) -> bool:
    """Whether `exc` says Postgres does not answer, rather than that a query
    or the code is wrong: the first passes with time, the second does not.

    A connection lost between two statements of a transaction surfaces as
    an InterfaceError: the next statement, or leaving the transaction, finds
    it closed (and only the server going away closes a connection that the
    pool handed out).  What such an error interrupted may say so too.  A
    connection whose protocol broke when the server died mid-statement, and
    that the pool handed out again before it noticed, refuses the next
    statement with an InternalClientError (the protocol failed, or still
    busy with what was cut): only a connection broken under asyncpg, never
    a query, gives one, since each request holds its connection alone."""
    if isinstance(exc, asyncpg.InterfaceError):
        return "connection is closed" in str(exc) or unavailable(exc.__cause__ or exc.__context__)
    if isinstance(exc, asyncpg.InternalClientError):
        return True
    return isinstance(exc, _OUTAGES)


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, connect=_connect
    )
    assert pool is not None
    return pool


async def _connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(*args, **kwargs)
    except (OSError, TimeoutError) as exc:
        raise DatabaseUnavailable(type(exc).__name__) from exc


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Sessions run in UTC so that nothing ever depends on the server's zone.
    await conn.execute("SET TIME ZONE 'UTC'")


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    return sorted(p for p in directory.glob("*.sql") if p.name[:4].isdigit())


async def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations in order, each once, each in its own transaction.

    A session-level advisory lock serialises concurrent runners: the second one
    waits, then finds every file recorded and applies nothing. Returns the names
    applied by this call.
    """
    conn = await asyncpg.connect(dsn)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       name       text PRIMARY KEY,
                       checksum   text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = {
                r["name"]: r["checksum"]
                for r in await conn.fetch("SELECT name, checksum FROM schema_migrations")
            }
            for path in migration_files(directory):
                sql = path.read_text(encoding="utf-8")
                if path.name in done:
                    # An applied migration that changed since would leave this
                    # database unlike a fresh one; say so rather than drift.
                    if done[path.name] != hashlib.sha256(sql.encode()).hexdigest():
                        raise MigrationChanged(path.name)
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                        path.name,
                        hashlib.sha256(sql.encode()).hexdigest(),
                    )
                log.info("applied migration %s", path.name)
                applied.append(path.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    finally:
        await conn.close()
    return applied
