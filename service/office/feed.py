"""The office's calendar feed: a secret ICS address for the office's own
calendar app, and the rotation that replaces it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from service.domain.ics import OFFICE_FEED, CalendarEvent, write_calendar
from service.domain.models import Office
from service.domain.staff import StaffMember, new_feed_secret
from service.office.accounts import secret_hash
from service.office.common import office_or_404
from service.store import schedule as schedule_store
from service.store import staff as staff_store

FEED_PAST = timedelta(days=7)
FEED_AHEAD = timedelta(days=62)


async def rotate_feed(
    pool: asyncpg.Pool, office_id: str, member: StaffMember, *, secret_key: str, now: datetime
) -> str:
    secret = new_feed_secret()
    async with pool.acquire() as conn:
        await office_or_404(conn, office_id)
        await staff_store.set_feed(
            conn, office_id, secret_hash("feed", secret, secret_key), member.id, now
        )
    return secret


async def feed_ics(
    pool: asyncpg.Pool, secret: str, *, secret_key: str, now: datetime
) -> bytes | None:
    """The office's appointments as iCalendar, or None for an unknown secret.

    Events carry the reference, service and status but no citizen name,
    phone or document: calendar apps copy feeds to third-party clouds.
    """
    if not 20 <= len(secret) <= 100:
        return None
    async with pool.acquire() as conn:
        office_id = await staff_store.feed_office(conn, secret_hash("feed", secret, secret_key))
        if office_id is None:
            return None
        office = await office_or_404(conn, office_id)
        rows = await schedule_store.feed_bookings(
            conn, office.id, now - FEED_PAST, now + FEED_AHEAD
        )
    return feed_file(office, rows)


def feed_file(office: Office, rows: Iterable[Mapping[str, Any]]) -> bytes:
    """The feed's iCalendar: one event per appointment, named in French."""
    events = [
        CalendarEvent(
            uid=f"{row['reference']}@mawid",
            stamp=row["updated_at"],
            start=row["starts_at"],
            end=row["ends_at"],
            summary=f"{row['name_fr']} · {row['reference']}"
            # A mobile day's appointment names its town, at the venue.
            + (f" · {row['site']}" if row.get("site") else ""),
            location=row.get("site_address"),
            status="CONFIRMED",
            description=f"Status: {row['status']}",
        )
        for row in rows
    ]
    return write_calendar(
        events, prodid=OFFICE_FEED, name=f"Mawid · {office.name['fr']}", timezone=office.timezone
    )


async def feed_created_at(pool: asyncpg.Pool, office_id: str) -> datetime | None:
    async with pool.acquire() as conn:
        return await staff_store.feed_created_at(conn, office_id)
