"""Document files: staff move a booking's file along its states (day view and
office API), the citizen is told when it is ready, and reminded once when it
waits too long; the office lists what waits for pickup.

Each move is one transaction: the booking locked, the file moved (a trigger
refuses a jump whatever the statement), its audit row, and at `ready` the
message's outbox rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg

from service.domain import errors
from service.domain.documents import (
    OPENS_FILE,
    FileState,
    file_refusal,
    next_states,
    plan_document_message,
    remind_before,
)
from service.domain.messages import DOCUMENT_READY, DOCUMENT_UNCOLLECTED, Kind
from service.domain.models import Booking, Office
from service.domain.staff import StaffMember
from service.office.common import actor_of, office_or_404
from service.store import audit, outbox
from service.store import bookings as booking_store
from service.store import documents as document_store
from service.store.audit import Actor

# Reminders written per run of the job; the rest wait for the next run.
REMINDER_BATCH = 500


@dataclass(frozen=True, slots=True)
class Moved:
    reference: str
    file: document_store.DocumentFile


@dataclass(frozen=True, slots=True)
class DayFile:
    """A booking's file as the day view shows it: its state (None before it
    is received) and the moves staff are offered."""

    state: str | None
    moves: list[str]


async def day_files(
    pool: asyncpg.Pool, office_id: str, day_bookings: Sequence[Booking]
) -> dict[int, DayFile]:
    """The files of a day's bookings whose service produces a document and
    whose citizen came (or whose file is already open)."""
    async with pool.acquire() as conn:
        producing = await document_store.producing_services(conn, office_id)
        wanted = [b for b in day_bookings if b.service_id in producing]
        states = await document_store.states(conn, [b.id for b in wanted])
    out: dict[int, DayFile] = {}
    for b in wanted:
        state = states.get(b.id)
        if state is None and b.status not in OPENS_FILE:
            continue
        current = FileState(state) if state else None
        out[b.id] = DayFile(state, [s.value for s in next_states(current)])
    return out


def _bad_move() -> errors.Conflict:
    return errors.Conflict(
        "bad_file_transition", errors.N_("The file cannot move to this state from where it is.")
    )


async def move_file(
    pool: asyncpg.Pool,
    office_id: str,
    reference: str,
    target: FileState,
    reason: str | None,
    member: StaffMember,
    now: datetime,
) -> Moved:
    """Open or move a booking's file; refused (409) off the machine."""
    async with pool.acquire() as conn:
        office = await office_or_404(conn, office_id)
        try:
            async with conn.transaction():
                return await _move(conn, office, reference, target, reason, actor_of(member), now)
        except asyncpg.CheckViolationError as exc:
            # Another clerk moved it first; the trigger has the last word.
            if exc.constraint_name != document_store.TRANSITION_CONSTRAINT:
                raise
            raise _bad_move() from None


async def _move(
    conn: asyncpg.Connection,
    office: Office,
    reference: str,
    target: FileState,
    reason: str | None,
    actor: Actor,
    now: datetime,
) -> Moved:
    booking = await booking_store.lock(conn, reference)
    if booking is None or booking.office_id != office.id:
        raise errors.NotFound()
    settings = await document_store.service_settings(conn, office.id, booking.service_id)
    current_file = await document_store.file_of(conn, booking.id, lock=True)
    current = FileState(current_file.state) if current_file else None
    refused = file_refusal(
        current,
        target,
        produces_document=settings is not None and settings.produces_document,
        booking_status=booking.status,
    )
    if refused is not None:
        raise refused
    if current is None:
        moved = await document_store.open_file(conn, booking.id, office.id, now)
    else:
        moved = await document_store.move(conn, booking.id, target.value, reason, now)
    await audit.record(
        conn,
        booking.id,
        actor,
        "document",
        current.value if current else None,
        target.value,
        {"reason": reason} if reason else None,
    )
    if target is FileState.READY:
        await _plan(conn, booking.id, DOCUMENT_READY, now)
    return Moved(booking.reference, moved)


async def _plan(conn: asyncpg.Connection, booking_id: int, kind: Kind, now: datetime) -> None:
    contacts = await outbox.booking_contacts(conn, booking_id)
    assert contacts is not None
    planned = plan_document_message(
        kind,
        phone=contacts.phone,
        email=contacts.email,
        appointment_at=contacts.starts_at,
        now=now,
        quiet=contacts.quiet,
        zone=ZoneInfo(contacts.timezone),
        phone_channel=contacts.message_channel,
    )
    await outbox.add_planned(conn, booking_id, language=contacts.language, planned=planned, now=now)


async def remind_uncollected(pool: asyncpg.Pool, now: datetime, days: int) -> int:
    """Write the one reminder of each document ready for `days` days and not
    collected; returns how many.  The file's `reminded_at` and a unique index
    on the outbox keep it to one, however often and wherever this runs."""
    async with pool.acquire() as conn, conn.transaction():
        due = await document_store.lock_due_reminders(
            conn, remind_before(now, days), REMINDER_BATCH
        )
        for booking_id in due:
            await _plan(conn, booking_id, DOCUMENT_UNCOLLECTED, now)
            await document_store.mark_reminded(conn, booking_id, now)
            await audit.record(
                conn, booking_id, audit.SYSTEM, "document_reminder", "ready", "ready"
            )
    return len(due)


@dataclass(frozen=True, slots=True)
class UncollectedList:
    office: Office
    documents: list[document_store.Uncollected]


async def uncollected(pool: asyncpg.Pool, office_id: str) -> UncollectedList:
    async with pool.acquire() as conn:
        office = await office_or_404(conn, office_id)
        return UncollectedList(office, await document_store.uncollected(conn, office.id))


async def citizen_file(pool: asyncpg.Pool, booking_id: int) -> document_store.CitizenFile | None:
    """The file of the citizen's booking, for their manage page."""
    async with pool.acquire() as conn:
        return await document_store.citizen_file(conn, booking_id)


async def document_settings(
    pool: asyncpg.Pool, office_id: str, service_id: str
) -> document_store.DocumentService:
    async with pool.acquire() as conn:
        found = await document_store.service_settings(conn, office_id, service_id)
    if found is None:
        raise errors.service_not_found()
    return found


async def set_document_settings(
    pool: asyncpg.Pool,
    office_id: str,
    service_id: str,
    *,
    produces_document: bool,
    pickup_by_appointment: bool,
) -> None:
    """A manager's choice for one service: whether its bookings have a
    document file to follow, and whether collecting it takes an appointment."""
    async with pool.acquire() as conn:
        office = await office_or_404(conn, office_id)
        if not await document_store.set_service_settings(
            conn,
            office.id,
            service_id,
            produces_document=produces_document,
            pickup_by_appointment=pickup_by_appointment,
        ):
            raise errors.service_not_found()
