"""Demo data: the offices and services of service/data/offices.json, and
their practical information (demo text, marked so) from practical.json.

Idempotent: offices and services are upserted, weekly hours replaced, and
slots regenerated without touching existing bookings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import phonenumbers

from service.domain.calendar import HoursRule
from service.domain.holidays import ramadan_periods
from service.domain.mobile_day import MobileDay, MobileHours
from service.domain.models import LANGUAGES, STORED_LANGUAGES, Office, Service, in_every_language
from service.domain.practical import OfficeInfo
from service.office.accounts import seed_demo_staff
from service.store import documents as document_store
from service.store import mobile_days as mobile_day_store
from service.store import offices as office_store
from service.store import slots as slot_store

DATA_FILE = Path(__file__).resolve().parent / "data" / "offices.json"
PRACTICAL_FILE = DATA_FILE.with_name("practical.json")

_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}

# Where the host country's holidays differ by region, the office keeps its
# region's: Montreal closes for Quebec's Fête nationale and Patriots' Day.
HOLIDAY_REGIONS: dict[tuple[str, str], str] = {("consulate-montreal", "CA"): "CA-QC"}


@dataclass(frozen=True, slots=True)
class DemoOffice:
    office: Office
    services: list[Service]
    rules: list[HoursRule]
    info: OfficeInfo


def load_demo(today: date, path: Path = DATA_FILE) -> list[DemoOffice]:
    """The demo offices, with Ramadan hours for the years around `today`."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    catalog: dict[str, Any] = data["services"]
    practical: dict[str, Any] = json.loads(PRACTICAL_FILE.read_text(encoding="utf-8"))
    about = practical["services"]
    result = []
    for raw in data["offices"]:
        office = Office(
            id=raw["id"],
            kind=raw["kind"],
            name=in_every_language(raw["name"]),
            city=in_every_language(raw["city"]),
            country=raw["country"],
            timezone=raw["timezone"],
            address=raw["address"],
            reference_prefix=raw["reference_prefix"],
            holiday_countries=tuple(
                HOLIDAY_REGIONS.get((raw["id"], c), c) for c in raw["closed_on_holidays_of"]
            ),
            # Prefectures' desks serve Moroccans living abroad, who book
            # with the mobile of the country they live in.
            sms_countries=tuple(raw.get("sms_countries", ())),
            household_cap=int(raw.get("household_cap", 4)),
            languages=tuple(raw.get("languages", LANGUAGES)),
        )
        services = [
            Service(
                office_id=office.id,
                id=service_id,
                name=in_every_language(catalog[service_id]["name"]),
                duration_minutes=int(catalog[service_id]["minutes"]),
                document_required=bool(catalog[service_id]["document_required"]),
                earliest_hours=2,
                latest_days=60,
                reschedule_cutoff_minutes=120,
                bring=in_every_language(about[service_id]["bring"]),
                description=in_every_language(about[service_id]["description"]),
                fees=in_every_language(about[service_id]["fees"]),
                late=in_every_language(about[service_id]["late"]),
                info_demo=True,
            )
            for service_id in raw["services"]
        ]
        info = _office_info(office, practical["offices"][office.kind])
        hours = raw["hours"]
        rules = _weekly(hours, raw["counters"])
        if "ramadan" in hours:
            for first, last in ramadan_periods(today.year - 1, today.year + 2):
                rules += _weekly(hours["ramadan"], raw["counters"], first, last)
        result.append(DemoOffice(office, services, rules, info))
    return result


def load_mobile_days(now: datetime, path: Path = DATA_FILE) -> list[MobileDay]:
    """The demo mobile days, dated from `now` (ids are the database's)."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    result = []
    for raw in data.get("mobile_days", []):
        zone_today = now.astimezone(ZoneInfo(raw["timezone"])).date()
        ahead = zone_today + timedelta(weeks=int(raw["weeks_ahead"]))
        first = ahead + timedelta(days=(5 - ahead.weekday()) % 7)  # a Saturday
        opens = datetime.combine(
            first - timedelta(days=int(raw["opens_days_before"])), time(9),
            ZoneInfo(raw["timezone"]),
        )  # fmt: skip
        result.append(
            MobileDay(
                id=0,
                office_id=raw["office"],
                town=dict(raw["town"]),
                country=raw["country"],
                address=raw["address"],
                timezone=raw["timezone"],
                holiday_countries=tuple(raw["closed_on_holidays_of"]),
                booking_opens_at=opens.astimezone(UTC),
                hours=tuple(
                    MobileHours(
                        first + timedelta(days=n),
                        office_store.wall(opens_at),
                        office_store.wall(closes_at),
                        int(raw["counters"]),
                    )
                    for n in range(int(raw["days"]))
                    for opens_at, closes_at in raw["hours"]
                ),
                service_ids=tuple(raw["services"]),
                place=(float(raw["place"][0]), float(raw["place"][1])) if "place" in raw else None,
                alert_km=raw.get("alert_km"),
            )
        )
    return result


async def seed_mobile_days(conn: asyncpg.Connection, now: datetime) -> int:
    """Add each demo mobile day unless its office already has an upcoming one
    in that town, then plan every upcoming one's slots; returns slots planned."""
    total = 0
    for demo in load_mobile_days(now):
        office = await office_store.get_office(conn, demo.office_id)
        if office is None:
            continue
        async with conn.transaction():
            held = await mobile_day_store.upcoming(conn, now, office.id)
            if not any(m.town["en"] == demo.town["en"] for m in held):
                made = await mobile_day_store.create(conn, demo)
                total += await mobile_day_store.regenerate(conn, office, made, now)
    return total


def _office_info(office: Office, texts: dict[str, dict[str, str]]) -> OfficeInfo:
    """Demo contact details: the example number phonenumbers gives for the
    office's country (a placeholder, like the address) and a reserved domain."""
    example = phonenumbers.example_number_for_type(
        office.country, phonenumbers.PhoneNumberType.FIXED_LINE
    )
    phone = (
        phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164) if example else ""
    )

    def filled(kind: str) -> dict[str, str]:
        return in_every_language(
            {lang: texts[kind][lang].format(city=office.city[lang]) for lang in STORED_LANGUAGES}
        )

    return OfficeInfo(
        phone=phone,
        email=f"contact@{office.id}.example",
        directions=filled("directions"),
        access=filled("access"),
        demo=True,
    )


def _weekly(
    spec: dict[str, Any], counters: int, first: date | None = None, last: date | None = None
) -> list[HoursRule]:
    rules = []
    for days_spec, intervals in spec.items():
        if days_spec == "ramadan":
            continue
        for weekday in _weekday_range(days_spec):
            for opens, closes in intervals:
                rules.append(
                    HoursRule(
                        weekday=weekday,
                        opens_at=office_store.wall(opens),
                        closes_at=office_store.wall(closes),
                        counters=counters,
                        valid_from=first,
                        valid_until=last,
                    )
                )
    return rules


def _weekday_range(spec: str) -> list[int]:
    first, _, last = spec.partition("-")
    start = _WEEKDAYS[first]
    end = _WEEKDAYS[last or first]
    return list(range(start, end + 1))


async def seed_demo(conn: asyncpg.Connection, now: datetime, horizon_days: int) -> int:
    """Load the demo offices and materialise their slots; returns slots planned."""
    total = 0
    catalog: dict[str, Any] = json.loads(DATA_FILE.read_text(encoding="utf-8"))["services"]
    for demo in load_demo(now.date()):
        async with conn.transaction():
            await office_store.upsert_office(conn, demo.office)
            for service in demo.services:
                await office_store.upsert_service(conn, service)
                about = catalog[service.id]
                await document_store.set_service_settings(
                    conn,
                    service.office_id,
                    service.id,
                    produces_document=bool(about.get("produces_document", False)),
                    pickup_by_appointment=bool(about.get("pickup_by_appointment", False)),
                )
            await office_store.replace_hours(conn, demo.office.id, demo.rules)
            await office_store.set_office_info(conn, demo.office.id, demo.info)
            total += await slot_store.regenerate_office(conn, demo.office, now, horizon_days)
    total += await seed_mobile_days(conn, now)
    await seed_demo_staff(conn, now)
    return total
