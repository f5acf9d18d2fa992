"""The daily housekeeping job: expired sessions and stale login failures go."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg

from service.config import Settings
from service.domain.staff import THROTTLE_WINDOW
from service.worker import jobs


async def test_purge_expired_keeps_live_sessions(
    settings: Settings, pool: asyncpg.Pool, clock: Any
) -> None:
    now = clock()
    async with pool.acquire() as conn:
        staff_id = await conn.fetchval("SELECT min(id) FROM staff")
        assert staff_id is not None, "the demo seed creates staff"
        for name, expires in (
            (b"old", now - timedelta(minutes=1)),
            (b"live", now + timedelta(hours=1)),
        ):
            await conn.execute(
                "INSERT INTO staff_sessions (id_hash, staff_id, created_at, last_seen_at,"
                " expires_at) VALUES ($1, $2, $3, $3, $4)",
                name,
                staff_id,
                now - timedelta(hours=3),
                expires,
            )
        await conn.execute(
            "INSERT INTO login_failures (key_hash, at) VALUES ('a', $1), ('b', $2)",
            now - THROTTLE_WINDOW - timedelta(minutes=1),
            now - THROTTLE_WINDOW + timedelta(minutes=1),
        )
        await conn.execute(
            "INSERT INTO form_keys (key_hash, created_at) VALUES ('old', $1), ('new', $2)",
            now - timedelta(days=8),
            now - timedelta(days=1),
        )
    state = await jobs.build_state(settings, pool=pool, clock=clock)
    assert await jobs.purge_expired({jobs.STATE: state}) == 1
    async with pool.acquire() as conn:
        sessions = [
            bytes(r["id_hash"]) for r in await conn.fetch("SELECT id_hash FROM staff_sessions")
        ]
        failures = [
            bytes(r["key_hash"]) for r in await conn.fetch("SELECT key_hash FROM login_failures")
        ]
        keys = [bytes(r["key_hash"]) for r in await conn.fetch("SELECT key_hash FROM form_keys")]
    assert sessions == [b"live"] and failures == [b"b"] and keys == [b"new"]
