"""Outbox rows: the messages a booking change causes (filled in by issue 3)."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def record_booking_event(
    conn: asyncpg.Connection,
    booking_id: int,
    event: str,
    *,
    now: datetime,
    reason: str | None = None,
) -> None:
    """Write the outbox rows for `event` inside the caller's transaction.

    Events: confirmed, rescheduled, cancelled_by_citizen, cancelled_by_office.
    """
    return None
