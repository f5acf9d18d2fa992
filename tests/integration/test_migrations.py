"""Migrations: in order, each once, under an advisory lock; idempotent."""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg

from service.db import migrate, migration_files


async def _empty_database(admin_dsn: str, name: str) -> str:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = admin_dsn.rpartition("/")
    return f"{base}/{name}"


async def test_two_processes_migrating_at_once_apply_each_file_once(pg_dsn: str) -> None:
    dsn = await _empty_database(pg_dsn, "migrate_race")
    env = dict(os.environ, DATABASE_URL=dsn, MAWID_ENV="test")
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service.cli",
            "migrate",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [await p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    printed = [out.decode() for out, _ in outputs]
    # Exactly one of them applied the files; the other found nothing to do.
    assert sum("none (up to date)" in line for line in printed) == 1
    conn = await asyncpg.connect(dsn)
    try:
        names = [
            r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations ORDER BY name")
        ]
    finally:
        await conn.close()
    assert names == [p.name for p in migration_files()]
    assert await migrate(dsn) == []


async def test_a_failing_migration_leaves_nothing_behind(pg_dsn: str, tmp_path: object) -> None:
    from pathlib import Path

    directory = Path(str(tmp_path))
    (directory / "0001_ok.sql").write_text("CREATE TABLE ok_table (id int);")
    (directory / "0002_broken.sql").write_text(
        "CREATE TABLE half_table (id int); SELECT no_such_function();"
    )
    dsn = await _empty_database(pg_dsn, "migrate_broken")
    try:
        await migrate(dsn, directory)
    except asyncpg.PostgresError:
        pass
    else:
        raise AssertionError("the broken migration must fail")
    conn = await asyncpg.connect(dsn)
    try:
        applied = [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")]
        half = await conn.fetchval("SELECT to_regclass('half_table')")
    finally:
        await conn.close()
    assert applied == ["0001_ok.sql"] and half is None


async def test_an_applied_migration_edited_later_is_refused(pg_dsn: str, tmp_path: object) -> None:
    from pathlib import Path

    from service.db import MigrationChanged

    directory = Path(str(tmp_path))
    first = directory / "0001_first.sql"
    first.write_text("CREATE TABLE t (id int);")
    dsn = await _empty_database(pg_dsn, "migrate_edited")
    assert await migrate(dsn, directory) == ["0001_first.sql"]
    first.write_text("CREATE TABLE t (id bigint);")
    try:
        await migrate(dsn, directory)
    except MigrationChanged as refused:
        assert "0001_first.sql" in str(refused)
    else:
        raise AssertionError("an edited migration must be refused")
