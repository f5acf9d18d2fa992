"""SQL behind the office pages: the day's bookings, slot capacities, a
booking's messages, the feed, and the figures of the weekly statistics.
Functions take a connection; callers own the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from service.domain.booking import ACTIVE
from service.domain.models import Booking
from service.domain.office_day import BookedSeat, BookingFacts, Closure
from service.store.bookings import _booking
from service.store.languages import by_language


@dataclass(frozen=True, slots=True)
class DayEntry:
    booking: Booking
    service_name: dict[str, str]
    # Held at a mobile day: its town (by language) and the venue's zone.
    site: dict[str, str] | None = None
    site_timezone: str | None = None


async def day_entries(
    conn: asyncpg.Connection, office_id: str, start: datetime, end: datetime
) -> list[DayEntry]:
    """Bookings starting in [start, end), expired holds left out, in time order."""
    rows = await conn.fetch(
        """SELECT b.*, s.name_ar AS s_ar, s.name_fr AS s_fr, s.name_en AS s_en,
                  m.town_ar AS m_ar, m.town_fr AS m_fr, m.town_en AS m_en, m.timezone AS m_zone
           FROM bookings b JOIN services s ON s.office_id = b.office_id AND s.id = b.service_id
           JOIN slots sl ON sl.id = b.slot_id
           LEFT JOIN mobile_days m ON m.id = sl.mobile_day_id
           WHERE b.office_id = $1 AND b.starts_at >= $2 AND b.starts_at < $3
             AND b.status <> 'expired'
           ORDER BY b.starts_at, s.name_en, b.reference""",
        office_id,
        start,
        end,
    )
    return [
        DayEntry(
            _booking(r),
            by_language(r, "s"),
            by_language(r, "m") if r["m_zone"] else None,
            r["m_zone"],
        )
        for r in rows
    ]


async def capacities(
    conn: asyncpg.Connection, office_id: str, start: datetime, end: datetime
) -> list[tuple[datetime, int]]:
    rows = await conn.fetch(
        """SELECT starts_at, capacity FROM slots
           WHERE office_id = $1 AND mobile_day_id IS NULL AND starts_at >= $2 AND starts_at < $3""",
        office_id,
        start,
        end,
    )
    return [(r["starts_at"], r["capacity"]) for r in rows]


async def slot_days(
    conn: asyncpg.Connection, office_id: str, start: datetime, end: datetime, zone: str
) -> list[asyncpg.Record]:
    """Per local day: slots offered, seats, seats taken; for the hours page."""
    return list(
        await conn.fetch(
            """SELECT (starts_at AT TIME ZONE $4)::date AS day,
                      count(*) FILTER (WHERE capacity > 0) AS slots,
                      COALESCE(sum(capacity), 0) AS seats, COALESCE(sum(taken), 0) AS taken
               FROM slots WHERE office_id = $1 AND mobile_day_id IS NULL
                 AND starts_at >= $2 AND starts_at < $3
               GROUP BY 1 ORDER BY 1""",
            office_id,
            start,
            end,
            zone,
        )
    )


async def closures_from(
    conn: asyncpg.Connection, office_id: str, first: date, limit: int = 200
) -> list[Closure]:
    rows = await conn.fetch(
        """SELECT day, source, reason_fr, reason_en, reason_ar FROM closures
           WHERE office_id = $1 AND day >= $2 ORDER BY day LIMIT $3""",
        office_id,
        first,
        limit,
    )
    return [Closure(r["day"], r["source"], by_language(r, "reason")) for r in rows]


async def active_seats_after(
    conn: asyncpg.Connection, office_id: str, after: datetime
) -> list[BookedSeat]:
    rows = await conn.fetch(
        """SELECT id, reference, service_id, starts_at, status, created_at FROM bookings
           WHERE office_id = $1 AND starts_at > $2 AND status = ANY($3::text[])
           ORDER BY starts_at, reference""",
        office_id,
        after,
        [s.value for s in ACTIVE],
    )
    return [
        BookedSeat(
            r["reference"], r["service_id"], r["starts_at"], r["status"], r["created_at"], r["id"]
        )
        for r in rows
    ]


async def messages(conn: asyncpg.Connection, booking_id: int) -> list[asyncpg.Record]:
    """Every outbox row of a booking, without the recipient or the body."""
    return list(
        await conn.fetch(
            """SELECT id, channel, kind, status, error_code, status_reason, segments, attempts,
                      send_at, sent_at, delivered_at, created_at, updated_at
               FROM outbox WHERE booking_id = $1 ORDER BY send_at, id""",
            booking_id,
        )
    )


async def feed_bookings(
    conn: asyncpg.Connection, office_id: str, start: datetime, end: datetime
) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            """SELECT b.reference, b.status, b.starts_at, b.ends_at, b.updated_at,
                      s.name_fr, s.name_en, s.name_ar,
                      -- Held at a mobile day: its town and venue.
                      m.town_fr AS site, m.address AS site_address
               FROM bookings b JOIN services s ON s.office_id = b.office_id AND s.id = b.service_id
               JOIN slots sl ON sl.id = b.slot_id
               LEFT JOIN mobile_days m ON m.id = sl.mobile_day_id
               WHERE b.office_id = $1 AND b.starts_at >= $2 AND b.starts_at < $3
                 AND b.status IN ('confirmed', 'checked_in', 'done', 'no_show')
               ORDER BY b.starts_at, b.reference""",
            office_id,
            start,
            end,
        )
    )


# Weekly statistics -------------------------------------------------------------------


async def appointment_facts(
    conn: asyncpg.Connection, office_id: str, start: datetime, end: datetime
) -> list[BookingFacts]:
    rows = await conn.fetch(
        """SELECT status, created_at, starts_at FROM bookings
           WHERE office_id = $1 AND starts_at >= $2 AND starts_at < $3""",
        office_id,
        start,
        end,
    )
    return [BookingFacts(r["status"], r["created_at"], r["starts_at"]) for r in rows]


async def bookings_made(
    conn: asyncpg.Connection, office_id: str, start: datetime, end: datetime
) -> int:
    count: int = await conn.fetchval(
        """SELECT count(*) FROM bookings
           WHERE office_id = $1 AND created_at >= $2 AND created_at < $3
             AND status <> 'expired'""",
        office_id,
        start,
        end,
    )
    return count


# An office's messages: its bookings', its draw requests' and waiting-list
# places', and its mobile-day alerts' (codes and announcements).
_OFFICE_MESSAGES = """FROM outbox o
           LEFT JOIN bookings b ON b.id = o.booking_id
           LEFT JOIN draw_entries e ON e.id = o.draw_entry_id
           LEFT JOIN mobile_day_subscriptions m ON m.id = o.subscription_id
           WHERE COALESCE(b.office_id, e.office_id, m.office_id) = $1"""


async def sms_segments_sent(
    conn: asyncpg.Connection, office_id: str, start: datetime, end: datetime
) -> int:
    """Segments of SMS handed to the provider in [start, end): those are billed,
    whether or not the handset later confirmed delivery."""
    total: int = await conn.fetchval(
        f"""SELECT COALESCE(sum(o.segments), 0) {_OFFICE_MESSAGES}
             AND o.channel = 'sms'
             AND o.status IN ('sent', 'delivered', 'undelivered')
             AND o.sent_at >= $2 AND o.sent_at < $3""",
        office_id,
        start,
        end,
    )
    return int(total)


async def whatsapp_by_status(
    conn: asyncpg.Connection, office_id: str, start: datetime, end: datetime
) -> dict[str, int]:
    """WhatsApp messages sent (or refused for good) in [start, end), by their
    status now: sent, delivered, read, undelivered, failed. WhatsApp bills
    per message, not per segment."""
    rows = await conn.fetch(
        f"""SELECT o.status, count(*) AS n {_OFFICE_MESSAGES}
             AND o.channel = 'whatsapp'
             AND o.status IN ('sent', 'delivered', 'read', 'undelivered', 'failed')
             AND COALESCE(o.sent_at, o.updated_at) >= $2
             AND COALESCE(o.sent_at, o.updated_at) < $3
           GROUP BY o.status""",
        office_id,
        start,
        end,
    )
    return {r["status"]: int(r["n"]) for r in rows}
