"""SQL for document files (migrations/0085_documents.sql). Functions take a
connection; callers own the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from service.store.languages import by_language

# What the transition trigger raises under, for a move raced by another.
TRANSITION_CONSTRAINT = "document_transition"


@dataclass(frozen=True, slots=True)
class DocumentFile:
    booking_id: int
    state: str
    refusal_reason: str | None
    received_at: datetime
    ready_at: datetime | None
    collected_at: datetime | None
    reminded_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DocumentService:
    produces_document: bool
    pickup_by_appointment: bool


@dataclass(frozen=True, slots=True)
class Uncollected:
    reference: str
    citizen_name: str
    service_id: str
    service_name: dict[str, str]
    ready_at: datetime
    reminded_at: datetime | None


def _file(r: asyncpg.Record) -> DocumentFile:
    return DocumentFile(
        booking_id=r["booking_id"],
        state=r["state"],
        refusal_reason=r["refusal_reason"],
        received_at=r["received_at"],
        ready_at=r["ready_at"],
        collected_at=r["collected_at"],
        reminded_at=r["reminded_at"],
        updated_at=r["updated_at"],
    )


async def service_settings(
    conn: asyncpg.Connection, office_id: str, service_id: str
) -> DocumentService | None:
    row = await conn.fetchrow(
        """SELECT produces_document, pickup_by_appointment FROM services
           WHERE office_id = $1 AND id = $2""",
        office_id,
        service_id,
    )
    if row is None:
        return None
    return DocumentService(row["produces_document"], row["pickup_by_appointment"])


async def set_service_settings(
    conn: asyncpg.Connection,
    office_id: str,
    service_id: str,
    *,
    produces_document: bool,
    pickup_by_appointment: bool,
) -> bool:
    status = await conn.execute(
        """UPDATE services SET produces_document = $3, pickup_by_appointment = $4
           WHERE office_id = $1 AND id = $2""",
        office_id,
        service_id,
        produces_document,
        pickup_by_appointment,
    )
    return bool(status != "UPDATE 0")


async def file_of(
    conn: asyncpg.Connection, booking_id: int, *, lock: bool = False
) -> DocumentFile | None:
    row = await conn.fetchrow(
        "SELECT * FROM document_files WHERE booking_id = $1" + (" FOR UPDATE" if lock else ""),
        booking_id,
    )
    return _file(row) if row else None


async def open_file(
    conn: asyncpg.Connection, booking_id: int, office_id: str, now: datetime
) -> DocumentFile:
    row = await conn.fetchrow(
        """INSERT INTO document_files (booking_id, office_id, state, received_at, updated_at)
           VALUES ($1, $2, 'received', $3, $3) RETURNING *""",
        booking_id,
        office_id,
        now,
    )
    assert row is not None
    return _file(row)


async def move(
    conn: asyncpg.Connection,
    booking_id: int,
    state: str,
    reason: str | None,
    now: datetime,
) -> DocumentFile:
    """Move the file (the trigger refuses a jump); ready and collected stamp
    their instant, a refusal keeps its reason."""
    row = await conn.fetchrow(
        """UPDATE document_files
           SET state = $2,
               refusal_reason = $3,
               ready_at = CASE WHEN $2 = 'ready' THEN $4 ELSE ready_at END,
               collected_at = CASE WHEN $2 = 'collected' THEN $4 ELSE collected_at END,
               updated_at = $4
           WHERE booking_id = $1 RETURNING *""",
        booking_id,
        state,
        reason,
        now,
    )
    assert row is not None
    return _file(row)


async def states(conn: asyncpg.Connection, booking_ids: Sequence[int]) -> dict[int, str]:
    """The file state of each of these bookings that has a file."""
    rows = await conn.fetch(
        "SELECT booking_id, state FROM document_files WHERE booking_id = ANY($1::bigint[])",
        list(booking_ids),
    )
    return {r["booking_id"]: r["state"] for r in rows}


async def producing_services(conn: asyncpg.Connection, office_id: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT id FROM services WHERE office_id = $1 AND produces_document", office_id
    )
    return {r["id"] for r in rows}


async def uncollected(conn: asyncpg.Connection, office_id: str) -> list[Uncollected]:
    """Documents waiting for pickup at the office, the longest waiting first."""
    rows = await conn.fetch(
        """SELECT b.reference, b.citizen_name, b.service_id, s.name_ar, s.name_fr, s.name_en,
                  f.ready_at, f.reminded_at
           FROM document_files f
           JOIN bookings b ON b.id = f.booking_id
           JOIN services s ON s.office_id = b.office_id AND s.id = b.service_id
           WHERE f.office_id = $1 AND f.state = 'ready'
           ORDER BY f.ready_at, b.reference""",
        office_id,
    )
    return [
        Uncollected(
            reference=r["reference"],
            citizen_name=r["citizen_name"],
            service_id=r["service_id"],
            service_name=by_language(r, "name"),
            ready_at=r["ready_at"],
            reminded_at=r["reminded_at"],
        )
        for r in rows
    ]


async def lock_due_reminders(
    conn: asyncpg.Connection, ready_before: datetime, limit: int
) -> list[int]:
    """Bookings whose document has waited since before `ready_before` and
    has had no reminder, locked (SKIP LOCKED: two workers share the work)."""
    rows = await conn.fetch(
        """SELECT booking_id FROM document_files
           WHERE state = 'ready' AND reminded_at IS NULL AND ready_at <= $1
           ORDER BY ready_at
           LIMIT $2
           FOR UPDATE SKIP LOCKED""",
        ready_before,
        limit,
    )
    return [r["booking_id"] for r in rows]


async def mark_reminded(conn: asyncpg.Connection, booking_id: int, now: datetime) -> None:
    await conn.execute(
        "UPDATE document_files SET reminded_at = $2 WHERE booking_id = $1", booking_id, now
    )


@dataclass(frozen=True, slots=True)
class CitizenFile:
    """A booking's file as its manage page shows it, with where and when to
    collect the document."""

    state: str
    refusal_reason: str | None
    ready_at: datetime | None
    pickup_from: str
    pickup_until: str
    pickup_by_appointment: bool


async def citizen_file(conn: asyncpg.Connection, booking_id: int) -> CitizenFile | None:
    r = await conn.fetchrow(
        """SELECT f.state, f.refusal_reason, f.ready_at, o.pickup_from, o.pickup_until,
                  s.pickup_by_appointment
           FROM document_files f
           JOIN bookings b ON b.id = f.booking_id
           JOIN offices o ON o.id = b.office_id
           JOIN services s ON s.office_id = b.office_id AND s.id = b.service_id
           WHERE f.booking_id = $1""",
        booking_id,
    )
    if r is None:
        return None
    return CitizenFile(
        state=r["state"],
        refusal_reason=r["refusal_reason"],
        ready_at=r["ready_at"],
        pickup_from=r["pickup_from"].strftime("%H:%M"),
        pickup_until=r["pickup_until"].strftime("%H:%M"),
        pickup_by_appointment=r["pickup_by_appointment"],
    )
