"""SQL for the services page: every service of an office, active or not, and
a manager's change to one. Callers own the transaction (a change goes through
the office change of service.office.changes, which regenerates slots)."""

from __future__ import annotations

import asyncpg

from service.domain.models import STORED_LANGUAGES, Service
from service.domain.service_settings import ServiceSettings
from service.store.offices import _service


async def all_of_office(conn: asyncpg.Connection, office_id: str) -> list[tuple[Service, bool]]:
    """(service, active) pairs, inactive ones included, so they can be turned back on."""
    rows = await conn.fetch(
        "SELECT * FROM services WHERE office_id = $1 ORDER BY active DESC, name_en", office_id
    )
    return [(_service(r), r["active"]) for r in rows]


async def update(
    conn: asyncpg.Connection, office_id: str, service_id: str, settings: ServiceSettings
) -> bool:
    """Write the settings; False when nothing differed (or no such service).
    Saved texts are the office's own: the demo mark goes."""
    result: str = await conn.execute(
        """UPDATE services SET duration_minutes = $3, document_required = $4,
               earliest_hours = $5, latest_days = $6, reschedule_cutoff_minutes = $7,
               bring_ar = $8, bring_fr = $9, bring_en = $10, active = $11,
               description_ar = $12, description_fr = $13, description_en = $14,
               fees_ar = $15, fees_fr = $16, fees_en = $17,
               late_ar = $18, late_fr = $19, late_en = $20, arrive_early_minutes = $21,
               verify_contact = $22, hold_minutes = $23, info_demo = false
           WHERE office_id = $1 AND id = $2
             AND (duration_minutes, document_required, earliest_hours, latest_days,
                  reschedule_cutoff_minutes, bring_ar, bring_fr, bring_en, active,
                  description_ar, description_fr, description_en, fees_ar, fees_fr, fees_en,
                  late_ar, late_fr, late_en, arrive_early_minutes, verify_contact, hold_minutes)
                 IS DISTINCT FROM ($3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                                   $15, $16, $17, $18, $19, $20, $21, $22, $23)""",
        office_id,
        service_id,
        settings.duration_minutes,
        settings.document_required,
        settings.earliest_hours,
        settings.latest_days,
        settings.reschedule_cutoff_minutes,
        *(settings.bring[language] for language in STORED_LANGUAGES),
        settings.active,
        *(settings.description[language] for language in STORED_LANGUAGES),
        *(settings.fees[language] for language in STORED_LANGUAGES),
        *(settings.late[language] for language in STORED_LANGUAGES),
        settings.arrive_early_minutes,
        settings.verify_contact,
        settings.hold_minutes,
    )
    return result == "UPDATE 1"
