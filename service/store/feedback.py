"""SQL for feedback after the visit (migrations/0086_feedback.sql).
Functions take a connection; callers own the transaction."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg

from service.domain.feedback import Answer, Response


async def opted_out(conn: asyncpg.Connection, contact_hash: bytes) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM feedback_opt_outs WHERE contact_hash = $1)",
            contact_hash,
        )
    )


async def opt_out(conn: asyncpg.Connection, contact_hashes: list[bytes], now: datetime) -> None:
    await conn.execute(
        """INSERT INTO feedback_opt_outs (contact_hash, created_at)
           SELECT h, $2 FROM unnest($1::bytea[]) AS h
           ON CONFLICT (contact_hash) DO NOTHING""",
        contact_hashes,
        now,
    )


async def given(conn: asyncpg.Connection, booking_id: int) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM feedback WHERE booking_id = $1)", booking_id
        )
    )


async def record(
    conn: asyncpg.Connection,
    booking_id: int,
    answer: Answer,
    *,
    language: str,
    now: datetime,
) -> bool:
    """Record the answer; False when the booking already has one (the
    primary key decides, not a read before the write)."""
    status = await conn.execute(
        """INSERT INTO feedback (booking_id, office_id, service_id, visit_at, rating,
                                 came_back, comment, language, created_at)
           SELECT id, office_id, service_id, starts_at, $2, $3, $4, $5, $6
           FROM bookings WHERE id = $1
           ON CONFLICT (booking_id) DO NOTHING""",
        booking_id,
        answer.rating,
        answer.came_back,
        answer.comment,
        language,
        now,
    )
    return bool(status == "INSERT 0 1")


async def responses(
    conn: asyncpg.Connection, office_id: str, start: datetime, end: datetime, zone: ZoneInfo
) -> list[Response]:
    """The answers about the office's visits in [start, end): no name, no
    contact, no reference, only what the statistics show."""
    rows = await conn.fetch(
        """SELECT service_id, visit_at, rating, came_back, comment FROM feedback
           WHERE office_id = $1 AND visit_at >= $2 AND visit_at < $3
           ORDER BY visit_at, booking_id""",
        office_id,
        start,
        end,
    )
    return [
        Response(
            service_id=r["service_id"],
            visit_day=r["visit_at"].astimezone(zone).date(),
            rating=r["rating"],
            came_back=r["came_back"],
            comment=r["comment"],
        )
        for r in rows
    ]
