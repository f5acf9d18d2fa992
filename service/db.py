"""asyncpg pool and the migration runner."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

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


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection
    )
    assert pool is not None
    return pool


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
