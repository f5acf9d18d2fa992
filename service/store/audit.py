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
    """The booking's trail, each staff row with the email of its clerk
    (actor_email): a clerk reading it knows a colleague by address, not by
    number. Rows of a staff account since deleted keep their number only."""
    return list(
        await conn.fetch(
            """SELECT a.*, s.email AS actor_email
                 FROM audit_log a
                 LEFT JOIN staff s ON a.actor_kind = 'staff' AND a.actor_id = s.id::text
                WHERE a.booking_id = $1
                ORDER BY a.at, a.id""",
            booking_id,
        )
    )
