"""Demo data: the offices and services of service/data/offices.json.

Idempotent: offices and services are upserted, weekly hours replaced, and
slots regenerated without touching existing bookings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from hijridate import Gregorian, Hijri

from service.domain.calendar import HoursRule
from service.domain.models import Office, Service
from service.office.accounts import seed_demo_staff
from service.store import offices as office_store
from service.store import slots as slot_store

DATA_FILE = Path(__file__).resolve().parent / "data" / "offices.json"

_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}

# What to bring, shown on confirmations and in the calendar invitation.
BRING: dict[str, dict[str, str]] = {
    "passport": {
        "ar": "البطاقة الوطنية، جواز السفر القديم، صورتان حديثتان",
        "fr": "CNIE, ancien passeport, deux photos récentes",
        "en": "National ID card, old passport, two recent photos",
    },
    "cnie": {
        "ar": "عقد الازدياد، البطاقة القديمة إن وجدت، إثبات السكن",
        "fr": "Acte de naissance, ancienne carte s'il y en a une, justificatif de domicile",
        "en": "Birth certificate, old card if any, proof of address",
    },
    "civil-status": {
        "ar": "الدفتر العائلي والوثائق المراد تسجيلها",
        "fr": "Livret de famille et actes à transcrire",
        "en": "Family record book and the certificates to record",
    },
    "consular-registration": {
        "ar": "البطاقة الوطنية أو جواز السفر، إثبات السكن",
        "fr": "CNIE ou passeport, justificatif de domicile",
        "en": "National ID card or passport, proof of address",
    },
    "legalization": {
        "ar": "الوثيقة غير موقعة وبطاقة التعريف",
        "fr": "Le document non signé et une pièce d'identité",
        "en": "The unsigned document and an identity document",
    },
    "power-of-attorney": {
        "ar": "بطاقة التعريف ومعلومات الوكيل",
        "fr": "Pièce d'identité et coordonnées du mandataire",
        "en": "Identity document and the attorney's details",
    },
    "mre-desk": {
        "ar": "بطاقة التعريف أو جواز السفر وكل وثيقة تخص ملفك",
        "fr": "CNIE ou passeport et les pièces de votre dossier",
        "en": "National ID card or passport and your file's papers",
    },
    "admin-certificate": {
        "ar": "البطاقة الوطنية والوثائق المثبتة",
        "fr": "CNIE et pièces justificatives",
        "en": "National ID card and supporting documents",
    },
}


# Where the host country's holidays differ by region, the office keeps its
# region's: Montreal closes for Quebec's Fête nationale and Patriots' Day.
HOLIDAY_REGIONS: dict[tuple[str, str], str] = {("consulate-montreal", "CA"): "CA-QC"}


@dataclass(frozen=True, slots=True)
class DemoOffice:
    office: Office
    services: list[Service]
    rules: list[HoursRule]


def load_demo(today: date, path: Path = DATA_FILE) -> list[DemoOffice]:
    """The demo offices, with Ramadan hours for the years around `today`."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    catalog: dict[str, Any] = data["services"]
    result = []
    for raw in data["offices"]:
        office = Office(
            id=raw["id"],
            kind=raw["kind"],
            name=dict(raw["name"]),
            city=dict(raw["city"]),
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
        )
        services = [
            Service(
                office_id=office.id,
                id=service_id,
                name=dict(catalog[service_id]["name"]),
                duration_minutes=int(catalog[service_id]["minutes"]),
                document_required=bool(catalog[service_id]["document_required"]),
                earliest_hours=2,
                latest_days=60,
                reschedule_cutoff_minutes=120,
                bring=BRING.get(service_id, {"ar": "", "fr": "", "en": ""}),
            )
            for service_id in raw["services"]
        ]
        hours = raw["hours"]
        rules = _weekly(hours, raw["counters"])
        if "ramadan" in hours:
            for first, last in ramadan_periods(today.year - 1, today.year + 2):
                rules += _weekly(hours["ramadan"], raw["counters"], first, last)
        result.append(DemoOffice(office, services, rules))
    return result


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


def ramadan_periods(first_year: int, last_year: int) -> list[tuple[date, date]]:
    """Gregorian [first day, last day] of each Ramadan starting in the given years.

    Umm al-Qura dates (hijridate); Morocco follows its own moon sighting, so a
    manager may still shift a day by hand.
    """
    periods = []
    start_h = Gregorian(first_year, 1, 1).to_hijri().year
    end_h = Gregorian(last_year, 12, 31).to_hijri().year
    for hijri_year in range(start_h, end_h + 1):
        begins = Hijri(hijri_year, 9, 1).to_gregorian()
        ends = Hijri(hijri_year, 10, 1).to_gregorian() - timedelta(days=1)
        periods.append(
            (date(begins.year, begins.month, begins.day), date(ends.year, ends.month, ends.day))
        )
    return periods


async def seed_demo(conn: asyncpg.Connection, now: datetime, horizon_days: int) -> int:
    """Load the demo offices and materialise their slots; returns slots planned."""
    total = 0
    for demo in load_demo(now.date()):
        async with conn.transaction():
            await office_store.upsert_office(conn, demo.office)
            for service in demo.services:
                await office_store.upsert_service(conn, service)
            await office_store.replace_hours(conn, demo.office.id, demo.rules)
            total += await slot_store.regenerate_office(conn, demo.office, now, horizon_days)
    await seed_demo_staff(conn, now)
    return total
