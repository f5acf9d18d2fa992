"""SQL of the waiting room: the queue of citizens who checked in, calling
the next one to a counter, and the last calls an office's display shows.
Functions take a connection; callers own the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

# Who waits: checked in for an appointment of the day, not called yet; in the
# order of their appointments (then of booking, for the same time).
_WAITING = """
    FROM bookings b
    WHERE b.office_id = $1 AND b.status = 'checked_in'
      AND b.starts_at >= $2 AND b.starts_at < $3
      AND NOT EXISTS (SELECT 1 FROM calls c WHERE c.booking_id = b.id)"""


@dataclass(frozen=True, slots=True)
class Call:
    id: int
    booking_id: int
    reference: str
    counter: int
    called_at: datetime


async def waiting(
    conn: asyncpg.Connection, office_id: str, start: datetime, end: datetime
) -> list[str]:
    """References waiting in [start, end) (the office's day), first called first."""
    rows = await conn.fetch(
        f"SELECT b.reference {_WAITING} ORDER BY b.starts_at, b.id",
        office_id,
        start,
        end,
    )
    return [r["reference"] for r in rows]


async def take_next(
    conn: asyncpg.Connection, office_id: str, start: datetime, end: datetime
) -> asyncpg.Record | None:
    """Lock the first citizen waiting; an agent calling at the same moment
    skips them and takes the one after."""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"""SELECT b.id, b.reference {_WAITING}
            ORDER BY b.starts_at, b.id LIMIT 1 FOR UPDATE OF b SKIP LOCKED""",
        office_id,
        start,
        end,
    )
    return row


async def record(
    conn: asyncpg.Connection,
    office_id: str,
    booking_id: int,
    counter: int,
    now: datetime,
    staff_id: int | None,
) -> int | None:
    """The call's id, or None if someone called this citizen first."""
    call_id: int | None = await conn.fetchval(
        """INSERT INTO calls (office_id, booking_id, counter, called_at, called_by)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (booking_id) DO NOTHING RETURNING id""",
        office_id,
        booking_id,
        counter,
        now,
        staff_id,
    )
    return call_id


async def recent(
    conn: asyncpg.Connection, office_id: str, since: datetime, limit: int
) -> list[Call]:
    rows = await conn.fetch(
        """SELECT c.id, c.booking_id, b.reference, c.counter, c.called_at
           FROM calls c JOIN bookings b ON b.id = c.booking_id
           WHERE c.office_id = $1 AND c.called_at >= $2
           ORDER BY c.called_at DESC, c.id DESC LIMIT $3""",
        office_id,
        since,
        limit,
    )
    return [Call(r["id"], r["booking_id"], r["reference"], r["counter"], r["called_at"])
            for r in rows]  # fmt: skip


async def of_booking(conn: asyncpg.Connection, booking_id: int) -> Call | None:
    r = await conn.fetchrow(
        """SELECT c.id, c.booking_id, b.reference, c.counter, c.called_at
           FROM calls c JOIN bookings b ON b.id = c.booking_id WHERE c.booking_id = $1""",
        booking_id,
    )
    if r is None:
        return None
    return Call(r["id"], r["booking_id"], r["reference"], r["counter"], r["called_at"])
