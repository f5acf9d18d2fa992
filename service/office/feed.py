"""The office's calendar feed: a secret ICS address for the office's own
calendar app, and the rotation that replaces it."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg
from icalendar import Calendar, Event

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
    calendar = Calendar()
    calendar.add("prodid", "-//Mawid//office feed//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"Mawid · {office.name['fr']}")
    calendar.add("x-wr-timezone", office.timezone)
    for row in rows:
        event = Event()
        event.add("uid", f"{row['reference']}@mawid")
        event.add("dtstamp", row["updated_at"])
        event.add("dtstart", row["starts_at"])
        event.add("dtend", row["ends_at"])
        event.add("summary", f"{row['name_fr']} · {row['reference']}")
        event.add("status", "CONFIRMED")
        event.add("description", f"Status: {row['status']}")
        calendar.add_component(event)
    ical: bytes = calendar.to_ical()
    return ical


async def feed_created_at(pool: asyncpg.Pool, office_id: str) -> datetime | None:
    async with pool.acquire() as conn:
        return await staff_store.feed_created_at(conn, office_id)
