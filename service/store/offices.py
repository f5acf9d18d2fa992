"""SQL for offices, services, opening hours and closures."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, time

import asyncpg

from service.domain.calendar import HoursRule
from service.domain.holidays import Holiday
from service.domain.messages import QuietHours
from service.domain.models import Office, Service
from service.domain.practical import OfficeInfo
from service.store.languages import by_language


def _office(r: asyncpg.Record) -> Office:
    return Office(
        id=r["id"],
        kind=r["kind"],
        name=by_language(r, "name"),
        city=by_language(r, "city"),
        country=r["country"],
        timezone=r["timezone"],
        address=r["address"],
        reference_prefix=r["reference_prefix"],
        holiday_countries=tuple(r["holiday_countries"]),
        reminder_offsets_minutes=tuple(r["reminder_offsets_minutes"]),
        household_cap=r["household_cap"],
        sms_countries=tuple(r["sms_countries"]),
        languages=tuple(r["languages"]),
    )


def _service(r: asyncpg.Record) -> Service:
    return Service(
        office_id=r["office_id"],
        id=r["id"],
        name=by_language(r, "name"),
        duration_minutes=r["duration_minutes"],
        document_required=r["document_required"],
        earliest_hours=r["earliest_hours"],
        latest_days=r["latest_days"],
        reschedule_cutoff_minutes=r["reschedule_cutoff_minutes"],
        bring=by_language(r, "bring"),
        description=by_language(r, "description"),
        fees=by_language(r, "fees"),
        late=by_language(r, "late"),
        arrive_early_minutes=r["arrive_early_minutes"],
        info_demo=r["info_demo"],
        verify_contact=r["verify_contact"],
        hold_minutes=r["hold_minutes"],
        allocation_mode=r["allocation_mode"],
    )


async def list_offices(conn: asyncpg.Connection) -> list[Office]:
    rows = await conn.fetch("SELECT * FROM offices ORDER BY kind, country, id")
    return [_office(r) for r in rows]


async def get_office(conn: asyncpg.Connection, office_id: str) -> Office | None:
    row = await conn.fetchrow("SELECT * FROM offices WHERE id = $1", office_id)
    return _office(row) if row else None


async def lock_for_change(conn: asyncpg.Connection, office_id: str) -> None:
    """Take the office's change lock until the transaction ends: changes that
    rewrite its slots (hours, closures, slot regeneration, mobile days) run
    one at a time. FOR NO KEY UPDATE, not FOR UPDATE: a booking's insert
    checks its foreign key to the office with FOR KEY SHARE, which FOR
    UPDATE blocks, and a booking holding its slot row while waiting for
    the office, with a change holding the office while waiting for that
    slot, is a deadlock (a citizen's 500)."""
    await conn.execute("SELECT 1 FROM offices WHERE id = $1 FOR NO KEY UPDATE", office_id)


async def get_office_by_prefix(conn: asyncpg.Connection, prefix: str) -> Office | None:
    row = await conn.fetchrow("SELECT * FROM offices WHERE reference_prefix = $1", prefix)
    return _office(row) if row else None


async def list_services(conn: asyncpg.Connection, office_id: str) -> list[Service]:
    rows = await conn.fetch(
        "SELECT * FROM services WHERE office_id = $1 AND active ORDER BY name_en", office_id
    )
    return [_service(r) for r in rows]


async def list_active_services(conn: asyncpg.Connection) -> list[Service]:
    """Every office's active services, each office's in list_services' order."""
    rows = await conn.fetch("SELECT * FROM services WHERE active ORDER BY office_id, name_en")
    return [_service(r) for r in rows]


async def get_service(conn: asyncpg.Connection, office_id: str, service_id: str) -> Service | None:
    row = await conn.fetchrow(
        "SELECT * FROM services WHERE office_id = $1 AND id = $2 AND active",
        office_id,
        service_id,
    )
    return _service(row) if row else None


async def upsert_office(conn: asyncpg.Connection, office: Office, email_from: str = "") -> None:
    await conn.execute(
        """INSERT INTO offices (id, kind, name_ar, name_fr, name_en, city_ar, city_fr, city_en,
                                country, timezone, address, reference_prefix,
                                holiday_countries, reminder_offsets_minutes, email_from,
                                household_cap, sms_countries, languages)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, NULLIF($15, ''),
                   $16, $17, $18)
           ON CONFLICT (id) DO UPDATE SET
               kind = EXCLUDED.kind, name_ar = EXCLUDED.name_ar, name_fr = EXCLUDED.name_fr,
               name_en = EXCLUDED.name_en, city_ar = EXCLUDED.city_ar,
               city_fr = EXCLUDED.city_fr, city_en = EXCLUDED.city_en,
               country = EXCLUDED.country, timezone = EXCLUDED.timezone,
               address = EXCLUDED.address, reference_prefix = EXCLUDED.reference_prefix,
               holiday_countries = EXCLUDED.holiday_countries,
               sms_countries = EXCLUDED.sms_countries, languages = EXCLUDED.languages""",
        office.id,
        office.kind,
        office.name["ar"],
        office.name["fr"],
        office.name["en"],
        office.city["ar"],
        office.city["fr"],
        office.city["en"],
        office.country,
        office.timezone,
        office.address,
        office.reference_prefix,
        list(office.holiday_countries),
        list(office.reminder_offsets_minutes),
        email_from,
        office.household_cap,
        list(office.sms_countries),
        list(office.languages),
    )


async def upsert_service(conn: asyncpg.Connection, service: Service) -> None:
    await conn.execute(
        """INSERT INTO services (office_id, id, name_ar, name_fr, name_en, duration_minutes,
                                 document_required, earliest_hours, latest_days,
                                 reschedule_cutoff_minutes, bring_ar, bring_fr, bring_en,
                                 description_ar, description_fr, description_en,
                                 fees_ar, fees_fr, fees_en, late_ar, late_fr, late_en,
                                 arrive_early_minutes, info_demo, verify_contact, hold_minutes)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                   $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)
           ON CONFLICT (office_id, id) DO UPDATE SET
               name_ar = EXCLUDED.name_ar, name_fr = EXCLUDED.name_fr,
               name_en = EXCLUDED.name_en, duration_minutes = EXCLUDED.duration_minutes,
               document_required = EXCLUDED.document_required,
               earliest_hours = EXCLUDED.earliest_hours, latest_days = EXCLUDED.latest_days,
               reschedule_cutoff_minutes = EXCLUDED.reschedule_cutoff_minutes,
               bring_ar = EXCLUDED.bring_ar, bring_fr = EXCLUDED.bring_fr,
               bring_en = EXCLUDED.bring_en, description_ar = EXCLUDED.description_ar,
               description_fr = EXCLUDED.description_fr,
               description_en = EXCLUDED.description_en, fees_ar = EXCLUDED.fees_ar,
               fees_fr = EXCLUDED.fees_fr, fees_en = EXCLUDED.fees_en,
               late_ar = EXCLUDED.late_ar, late_fr = EXCLUDED.late_fr,
               late_en = EXCLUDED.late_en,
               arrive_early_minutes = EXCLUDED.arrive_early_minutes,
               info_demo = EXCLUDED.info_demo""",
        service.office_id,
        service.id,
        service.name["ar"],
        service.name["fr"],
        service.name["en"],
        service.duration_minutes,
        service.document_required,
        service.earliest_hours,
        service.latest_days,
        service.reschedule_cutoff_minutes,
        service.bring["ar"],
        service.bring["fr"],
        service.bring["en"],
        *(
            texts[language]
            for texts in (service.description, service.fees, service.late)
            for language in ("ar", "fr", "en")
        ),
        service.arrive_early_minutes,
        service.info_demo,
        # Written for a new service only: a manager's choice survives a re-seed.
        service.verify_contact,
        service.hold_minutes,
    )


async def office_info(conn: asyncpg.Connection, office_id: str) -> OfficeInfo:
    row = await conn.fetchrow(
        """SELECT phone, public_email, directions_ar, directions_fr, directions_en,
                  access_ar, access_fr, access_en, info_demo FROM offices WHERE id = $1""",
        office_id,
    )
    if row is None:
        return OfficeInfo()
    return OfficeInfo(
        phone=row["phone"],
        email=row["public_email"],
        directions=by_language(row, "directions"),
        access=by_language(row, "access"),
        demo=row["info_demo"],
    )


async def set_office_info(conn: asyncpg.Connection, office_id: str, info: OfficeInfo) -> bool:
    """Write the practical information; False when nothing differed."""
    result: str = await conn.execute(
        """UPDATE offices SET phone = $2, public_email = $3, directions_ar = $4,
               directions_fr = $5, directions_en = $6, access_ar = $7, access_fr = $8,
               access_en = $9, info_demo = $10
           WHERE id = $1 AND (phone, public_email, directions_ar, directions_fr,
                              directions_en, access_ar, access_fr, access_en, info_demo)
                 IS DISTINCT FROM ($2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        office_id,
        info.phone,
        info.email,
        info.directions["ar"],
        info.directions["fr"],
        info.directions["en"],
        info.access["ar"],
        info.access["fr"],
        info.access["en"],
        info.demo,
    )
    return result == "UPDATE 1"


async def replace_hours(
    conn: asyncpg.Connection, office_id: str, rules: Iterable[HoursRule], label: str = ""
) -> None:
    await conn.execute("DELETE FROM opening_hours WHERE office_id = $1", office_id)
    await conn.executemany(
        """INSERT INTO opening_hours (office_id, service_id, weekday, opens_at, closes_at,
                                      counters, valid_from, valid_until, label)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        [
            (
                office_id,
                r.service_id,
                r.weekday,
                r.opens_at,
                r.closes_at,
                r.counters,
                r.valid_from,
                r.valid_until,
                label,
            )
            for r in rules
        ],
    )


async def hours_rules(conn: asyncpg.Connection, office_id: str) -> list[HoursRule]:
    rows = await conn.fetch(
        """SELECT weekday, opens_at, closes_at, counters, valid_from, valid_until, service_id
           FROM opening_hours WHERE office_id = $1 ORDER BY weekday, opens_at""",
        office_id,
    )
    return [
        HoursRule(
            weekday=r["weekday"],
            opens_at=r["opens_at"],
            closes_at=r["closes_at"],
            counters=r["counters"],
            valid_from=r["valid_from"],
            valid_until=r["valid_until"],
            service_id=r["service_id"],
        )
        for r in rows
    ]


async def closed_days(
    conn: asyncpg.Connection, office_id: str, first: date, last: date
) -> set[date]:
    rows = await conn.fetch(
        "SELECT day FROM closures WHERE office_id = $1 AND day BETWEEN $2 AND $3",
        office_id,
        first,
        last,
    )
    return {r["day"] for r in rows}


async def closures_between(
    conn: asyncpg.Connection, office_id: str, first: date, last: date
) -> dict[date, dict[str, str]]:
    """Closed days with their reason per language, for showing to citizens."""
    rows = await conn.fetch(
        """SELECT day, reason_ar, reason_fr, reason_en FROM closures
           WHERE office_id = $1 AND day BETWEEN $2 AND $3 ORDER BY day""",
        office_id,
        first,
        last,
    )
    return {r["day"]: by_language(r, "reason") for r in rows}


async def sync_holidays(
    conn: asyncpg.Connection, office_id: str, holidays: Iterable[Holiday], first: date, last: date
) -> None:
    """Make the 'holiday' closures of a date range match the holiday list.

    Manual closures are never touched, and days a manager reopened
    (reopened_days) stay open: a manager who moved an estimated Eid keeps
    their decision when holidays are recomputed.
    """
    wanted = list(holidays)
    await conn.execute(
        """DELETE FROM closures WHERE office_id = $1 AND source = 'holiday'
           AND day BETWEEN $2 AND $3 AND (NOT (day = ANY($4::date[]))
               OR day IN (SELECT day FROM reopened_days WHERE office_id = $1))""",
        office_id,
        first,
        last,
        [h.day for h in wanted],
    )
    await conn.executemany(
        """INSERT INTO closures (office_id, day, source, reason_ar, reason_fr, reason_en)
           SELECT $1, $2::date, 'holiday', $3, $4, $5
           WHERE NOT EXISTS (SELECT 1 FROM reopened_days WHERE office_id = $1 AND day = $2)
           ON CONFLICT (office_id, day) DO UPDATE SET
               reason_ar = EXCLUDED.reason_ar, reason_fr = EXCLUDED.reason_fr,
               reason_en = EXCLUDED.reason_en
           WHERE closures.source = 'holiday'""",
        [(office_id, h.day, h.names["ar"], h.names["fr"], h.names["en"]) for h in wanted],
    )


async def add_closure(
    conn: asyncpg.Connection, office_id: str, day: date, reasons: dict[str, str]
) -> bool:
    """Close a day, or give a day closed by hand its new reasons. False, with
    nothing written, when the day is already closed as a public holiday."""
    written: bool | None = await conn.fetchval(
        """INSERT INTO closures (office_id, day, source, reason_ar, reason_fr, reason_en)
           VALUES ($1, $2, 'manual', $3, $4, $5)
           ON CONFLICT (office_id, day) DO UPDATE SET
               reason_ar = EXCLUDED.reason_ar, reason_fr = EXCLUDED.reason_fr,
               reason_en = EXCLUDED.reason_en
           WHERE closures.source = 'manual'
           RETURNING true""",
        office_id,
        day,
        reasons.get("ar", ""),
        reasons.get("fr", ""),
        reasons.get("en", ""),
    )
    return bool(written)


async def remove_closure(conn: asyncpg.Connection, office_id: str, day: date) -> bool:
    """Open a closed day; False if it was not closed. A public holiday stays
    open: it is remembered in reopened_days, which sync_holidays respects."""
    source: str | None = await conn.fetchval(
        "DELETE FROM closures WHERE office_id = $1 AND day = $2 RETURNING source",
        office_id,
        day,
    )
    if source == "holiday":
        await conn.execute(
            "INSERT INTO reopened_days (office_id, day) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            office_id,
            day,
        )
    return source is not None


def wall(hhmm: str) -> time:
    hours, minutes = hhmm.split(":")
    return time(int(hours), int(minutes))


async def quiet_hours(conn: asyncpg.Connection, office_id: str) -> QuietHours:
    """The office's nightly window without messages (wall-clock, its zone)."""
    row = await conn.fetchrow(
        "SELECT quiet_hours_start, quiet_hours_end FROM offices WHERE id = $1", office_id
    )
    assert row is not None
    return QuietHours(row["quiet_hours_start"], row["quiet_hours_end"])
