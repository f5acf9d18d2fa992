"""SQL for mobile consular days: the day, its hours and services, its slots.

Its slots and counter cells are the office's tables' rows marked with the
mobile day (see migrations/0100); they are written by the same statements
as the office's (service.store.slots.apply_plan / apply_counters).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import asyncpg

from service.domain.calendar import local_date, local_day_bounds
from service.domain.holidays import holidays_for
from service.domain.mobile_day import MobileDay, MobileHours, at_venue, plan_mobile_day
from service.domain.models import Office
from service.store import offices as office_store
from service.store import slots as slot_store
from service.store.languages import by_language

_SELECT = """SELECT m.*,
       COALESCE((SELECT array_agg(service_id ORDER BY service_id) FROM mobile_day_services x
                 WHERE x.mobile_day_id = m.id), '{}') AS service_ids,
       COALESCE((SELECT array_agg(ARRAY[h.day::text, h.opens_at::text, h.closes_at::text,
                                        h.counters::text] ORDER BY h.day, h.opens_at)
                 FROM mobile_day_hours h WHERE h.mobile_day_id = m.id), '{}') AS hours
FROM mobile_days m"""


def _mobile_day(r: asyncpg.Record) -> MobileDay:
    return MobileDay(
        id=r["id"],
        office_id=r["office_id"],
        town=by_language(r, "town"),
        country=r["country"],
        address=r["address"],
        timezone=r["timezone"],
        holiday_countries=tuple(r["holiday_countries"]),
        booking_opens_at=r["booking_opens_at"],
        hours=tuple(
            MobileHours(
                datetime.fromisoformat(day).date(),
                datetime.strptime(opens, "%H:%M:%S").time(),
                datetime.strptime(closes, "%H:%M:%S").time(),
                int(counters),
            )
            for day, opens, closes, counters in r["hours"]
        ),
        service_ids=tuple(r["service_ids"]),
        place=None if r["latitude"] is None else (r["latitude"], r["longitude"]),
        alert_km=r["alert_km"],
    )


async def create(conn: asyncpg.Connection, mobile_day: MobileDay) -> MobileDay:
    """Insert a mobile day with its hours and services (its id is the
    database's); call in a transaction, then regenerate."""
    new_id: int = await conn.fetchval(
        """INSERT INTO mobile_days (office_id, town_ar, town_fr, town_en, country, address,
                                    timezone, holiday_countries, booking_opens_at, latitude,
                                    longitude, alert_km)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id""",
        mobile_day.office_id,
        mobile_day.town["ar"],
        mobile_day.town["fr"],
        mobile_day.town["en"],
        mobile_day.country,
        mobile_day.address,
        mobile_day.timezone,
        list(mobile_day.holiday_countries),
        mobile_day.booking_opens_at,
        mobile_day.place[0] if mobile_day.place else None,
        mobile_day.place[1] if mobile_day.place else None,
        mobile_day.alert_km,
    )
    await conn.executemany(
        """INSERT INTO mobile_day_hours (mobile_day_id, day, opens_at, closes_at, counters)
           VALUES ($1, $2, $3, $4, $5)""",
        [(new_id, h.day, h.opens_at, h.closes_at, h.counters) for h in mobile_day.hours],
    )
    await conn.executemany(
        """INSERT INTO mobile_day_services (mobile_day_id, office_id, service_id)
           VALUES ($1, $2, $3)""",
        [(new_id, mobile_day.office_id, s) for s in mobile_day.service_ids],
    )
    return replace(mobile_day, id=new_id)


async def get(conn: asyncpg.Connection, mobile_day_id: int) -> MobileDay | None:
    row = await conn.fetchrow(f"{_SELECT} WHERE m.id = $1", mobile_day_id)
    return _mobile_day(row) if row else None


async def site_of(
    conn: asyncpg.Connection, office: Office, slot_id: int
) -> tuple[Office, MobileDay | None]:
    """The office as seen by a booking on `slot_id` (for a mobile day's slot,
    with the venue's town, address and zone in place of the consulate's),
    and the mobile day, if any."""
    mobile_day_id = await conn.fetchval("SELECT mobile_day_id FROM slots WHERE id = $1", slot_id)
    mobile_day = await get(conn, mobile_day_id) if mobile_day_id is not None else None
    return (office if mobile_day is None else at_venue(office, mobile_day)), mobile_day


async def at_site(conn: asyncpg.Connection, office: Office, slot_id: int) -> Office:
    return (await site_of(conn, office, slot_id))[0]


async def open_for_booking(conn: asyncpg.Connection, mobile_day_id: int, now: datetime) -> bool:
    opens: datetime | None = await conn.fetchval(
        "SELECT booking_opens_at FROM mobile_days WHERE id = $1", mobile_day_id
    )
    return opens is not None and now >= opens


async def upcoming(
    conn: asyncpg.Connection, now: datetime, office_id: str | None = None
) -> list[MobileDay]:
    """Mobile days with a date still to come (in the venue's zone), soonest
    first, withdrawn ones left out; every office's, or one office's."""
    rows = await conn.fetch(
        f"""{_SELECT}
            WHERE ($2::text IS NULL OR m.office_id = $2) AND m.withdrawn_at IS NULL
              AND EXISTS (SELECT 1 FROM mobile_day_hours h WHERE h.mobile_day_id = m.id
                          AND h.day >= ($1::timestamptz AT TIME ZONE m.timezone)::date)
            ORDER BY (SELECT min(day) FROM mobile_day_hours h WHERE h.mobile_day_id = m.id),
                     m.id""",
        now,
        office_id,
    )
    return [_mobile_day(r) for r in rows]


async def regenerate(
    conn: asyncpg.Connection, office: Office, mobile_day: MobileDay, now: datetime
) -> int:
    """Plan a mobile day's slots and counters from today (venue's zone) on,
    its venue's holidays left out; returns the number of slots planned.
    Past slots are left as they are."""
    # Serialised with the office's own regeneration and a manager's changes.
    await office_store.lock_for_change(conn, office.id)
    zone = mobile_day.zone
    first = local_date(now, zone)
    dates = mobile_day.dates
    last = max([first, *dates])
    holidays = [h.day for h in holidays_for(mobile_day.holiday_countries, first, last)]
    services = await office_store.list_services(conn, office.id)
    plans, cells = plan_mobile_day(
        mobile_day,
        {s.id: timedelta(minutes=s.duration_minutes) for s in services},
        holidays,
        first,
    )
    end = local_day_bounds(last + timedelta(days=1), zone)[0]
    upcoming_plans = [p for p in plans if p.starts_at > now]
    await slot_store.apply_plan(conn, office.id, upcoming_plans, now, end, mobile_day.id)
    await slot_store.apply_counters(
        conn, office.id, [c for c in cells if c.starts_at > now], now, end, mobile_day.id
    )
    return len(upcoming_plans)


async def regenerate_office(conn: asyncpg.Connection, office: Office, now: datetime) -> int:
    """Every upcoming mobile day of an office; called by the office's own
    regeneration (service.store.slots.regenerate_office), so the daily job
    and every change of the office's services reach them."""
    total = 0
    for mobile_day in await upcoming(conn, now, office.id):
        total += await regenerate(conn, office, mobile_day, now)
    return total



async def close_for_withdrawal(
    conn: asyncpg.Connection, office_id: str, mobile_day_id: int
) -> list[int] | None:
    """Lock what a withdrawal changes (the office's row, as a regeneration
    does; the mobile day) and set its seats to none, waiting for any booking
    under way on them; None when the office has no such day still listed.
    Returns its slots that still have seats taken (holds included)."""
    await office_store.lock_for_change(conn, office_id)
    found = await conn.fetchval(
        """SELECT id FROM mobile_days WHERE id = $1 AND office_id = $2 AND withdrawn_at IS NULL
           FOR UPDATE""",
        mobile_day_id,
        office_id,
    )
    if found is None:
        return None
    await conn.execute("UPDATE slots SET capacity = 0 WHERE mobile_day_id = $1", mobile_day_id)
    await conn.execute(
        "UPDATE counter_cells SET capacity = 0 WHERE mobile_day_id = $1", mobile_day_id
    )
    rows = await conn.fetch(
        "SELECT id FROM slots WHERE mobile_day_id = $1 AND taken > 0", mobile_day_id
    )
    return [r["id"] for r in rows]


async def mark_withdrawn(conn: asyncpg.Connection, mobile_day_id: int, now: datetime) -> None:
    await conn.execute(
        "UPDATE mobile_days SET withdrawn_at = $2 WHERE id = $1", mobile_day_id, now
    )


async def seats_taken(conn: asyncpg.Connection, mobile_day_id: int) -> bool:
    taken: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM slots WHERE mobile_day_id = $1 AND taken > 0)",
        mobile_day_id,
    )
    return taken
