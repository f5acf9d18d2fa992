"""SQL for the audit log: one row per booking state change."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True, slots=True)
class Actor:
    kind: str  # citizen | staff | system
    id: str | None = None


CITIZEN = Actor("citizen")
SYSTEM = Actor("system")


async def record(
    conn: asyncpg.Connection,
    booking_id: int,
    actor: Actor,
    action: str,
    before: str | None,
    after: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        """INSERT INTO audit_log (booking_id, actor_kind, actor_id, action,
                                  before_status, after_status, detail)
           VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)""",
        booking_id,
        actor.kind,
        actor.id,
        action,
        before,
        after,
        json.dumps(detail or {}),
    )


async def for_booking(conn: asyncpg.Connection, booking_id: int) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT * FROM audit_log WHERE booking_id = $1 ORDER BY at, id", booking_id
        )
    )
