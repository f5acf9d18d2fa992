"""The booking use cases: book, view, cancel, reschedule, change status.

One transaction each, shared by the JSON API, the citizen pages and the office
pages, so that every path obeys the same rules. Each one writes the booking,
its seat, its audit row and its outbox rows together, or nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from service.domain import errors
from service.domain.booking import (
    Status,
    booking_window,
    can_cancel,
    can_reschedule,
    can_transition,
    frees_seat,
    hash_token,
    new_manage_token,
    new_reference,
    takes_seat,
)
from service.domain.models import Booking, Office, Service, Slot
from service.domain.staff import action_refusal
from service.domain.validation import RawDetails, validate_details
from service.notify import events
from service.store import audit, form_keys
from service.store import bookings as booking_store
from service.store import offices as office_store
from service.store import slots as slot_store
from service.store.audit import Actor

_REFERENCE_TRIES = 8


@dataclass(frozen=True, slots=True)
class Booked:
    booking: Booking
    office: Office
    service: Service
    manage_token: str  # shown once, never stored


@dataclass(frozen=True, slots=True)
class BookingContext:
    booking: Booking
    office: Office
    service: Service


async def _office_and_service(
    conn: asyncpg.Connection, office_id: str, service_id: str
) -> tuple[Office, Service]:
    office = await office_store.get_office(conn, office_id)
    if office is None:
        raise errors.office_not_found()
    service = await office_store.get_service(conn, office_id, service_id)
    if service is None:
        raise errors.service_not_found()
    return office, service


async def _seat_refusal(
    conn: asyncpg.Connection, slot_id: int, service: Service, now: datetime
) -> errors.Refusal:
    """Why take_seat said no; read after the fact, only to pick the message."""
    slot = await slot_store.get_slot(conn, slot_id)
    if slot is None or slot.service_id != service.id or slot.office_id != service.office_id:
        return errors.slot_not_found()
    window = booking_window(now, service.earliest_hours, service.latest_days)
    if slot.starts_at < window.earliest:
        return errors.too_late()
    if slot.starts_at > window.latest:
        return errors.Conflict("not_open_yet", errors.N_("This time cannot be booked yet."))
    return errors.slot_full()


async def _take_seat(
    conn: asyncpg.Connection, slot_id: int, service: Service, now: datetime
) -> Slot:
    window = booking_window(now, service.earliest_hours, service.latest_days)
    slot = await slot_store.take_seat(
        conn, slot_id, service.office_id, service.id, window.earliest, window.latest
    )
    if slot is None:
        raise await _seat_refusal(conn, slot_id, service, now)
    return slot


@asynccontextmanager
async def _seat_refusals(
    conn: asyncpg.Connection, slot_id: int, service: Service, now: datetime
) -> AsyncIterator[None]:
    """Around a transaction that takes a seat: the oversell trigger's refusal
    (the guard in take_seat should have said no first) becomes the same
    refusal as the guard's, read once the transaction has rolled back."""
    try:
        yield
    except asyncpg.CheckViolationError as exc:
        if not slot_store.oversell_refused(exc):
            raise
        raise await _seat_refusal(conn, slot_id, service, now) from None


async def _take_seat_guarded(
    conn: asyncpg.Connection, slot_id: int, service: Service, now: datetime
) -> Slot:
    """_take_seat inside a savepoint, for a transaction that goes on after a
    refusal would have to be read (the caller's own transaction stays usable)."""
    try:
        async with conn.transaction():
            return await _take_seat(conn, slot_id, service, now)
    except asyncpg.CheckViolationError as exc:
        if not slot_store.oversell_refused(exc):
            raise
        raise await _seat_refusal(conn, slot_id, service, now) from None


async def book(
    pool: asyncpg.Pool,
    *,
    slot_id: int,
    service_id: str,
    details: RawDetails,
    secret_key: str,
    now: datetime,
    actor: Actor = audit.CITIZEN,
    form_key_hash: bytes | None = None,
    manage_token: str | None = None,
) -> Booked:
    """Book a seat. `form_key_hash` (citizen form) makes a resubmission raise
    errors.already_submitted() instead of booking twice; `manage_token` lets the
    form derive the token from its key so that the resubmission can be shown
    the first booking."""
    async with pool.acquire() as conn:
        slot = await slot_store.get_slot(conn, slot_id)
        if slot is None:
            raise errors.slot_not_found()
        office, service = await _office_and_service(conn, slot.office_id, service_id)
        if slot.service_id != service.id:
            raise errors.slot_not_found()
        citizen = validate_details(details, service, office.country)
        token = manage_token or new_manage_token()
        async with _seat_refusals(conn, slot.id, service, now), conn.transaction():
            if form_key_hash is not None and not await form_keys.claim(
                conn, form_key_hash, now
            ):
                raise errors.already_submitted()
            taken = await _take_seat(conn, slot.id, service, now)
            booking: Booking | None = None
            for _ in range(_REFERENCE_TRIES):
                try:
                    booking = await booking_store.insert(
                        conn,
                        booking_store.NewBooking(
                            reference=new_reference(office.reference_prefix),
                            office_id=office.id,
                            service_id=service.id,
                            slot_id=taken.id,
                            starts_at=taken.starts_at,
                            ends_at=taken.ends_at,
                            status=Status.CONFIRMED,
                            citizen_name=citizen.name,
                            phone=citizen.phone,
                            email=citizen.email,
                            language=citizen.language,
                            document_number=citizen.document_number,
                            manage_token_hash=hash_token(token, secret_key),
                            created_by=actor.kind if actor.id is None else f"staff:{actor.id}",
                        ),
                        now,
                    )
                except asyncpg.UniqueViolationError:
                    raise errors.already_booked() from None
                if booking is not None:
                    break
            if booking is None:  # pragma: no cover - 30**6 references per prefix
                raise RuntimeError("could not draw a free reference")
            if form_key_hash is not None:
                await form_keys.attach(conn, form_key_hash, booking.id)
            await audit.record(conn, booking.id, actor, "book", None, booking.status)
            await events.record_booking_event(conn, booking.id, "confirmed", now=now)
    return Booked(booking, office, service, token)


async def authorise(
    conn: asyncpg.Connection, reference: str, token: str | None, secret_key: str
) -> None:
    """Raise the same Unauthorized for a missing token, a wrong one and an
    unknown reference: the pair is the credential, and it does not open."""
    # The hash is keyed by the secret, so looking it up reveals nothing a
    # constant-time comparison would hide.
    if not token or not await booking_store.token_opens(
        conn, reference, hash_token(token, secret_key)
    ):
        raise errors.manage_link_refused()


async def _context(conn: asyncpg.Connection, booking: Booking) -> BookingContext:
    office, service = await _office_and_service(conn, booking.office_id, booking.service_id)
    return BookingContext(booking, office, service)


async def view(
    pool: asyncpg.Pool, reference: str, token: str | None, secret_key: str
) -> BookingContext:
    async with pool.acquire() as conn:
        await authorise(conn, reference, token, secret_key)
        booking = await booking_store.by_reference(conn, reference)
        assert booking is not None
        return await _context(conn, booking)


async def cancel(
    pool: asyncpg.Pool,
    reference: str,
    token: str | None,
    secret_key: str,
    now: datetime,
) -> BookingContext:
    """A citizen cancels, any time before the appointment starts."""
    async with pool.acquire() as conn:
        await authorise(conn, reference, token, secret_key)
        async with conn.transaction():
            booking = await booking_store.lock(conn, reference)
            assert booking is not None
            if Status(booking.status) not in (Status.HELD, Status.CONFIRMED):
                raise errors.not_active()
            if not can_cancel(now, booking.starts_at):
                raise errors.too_late()
            changed = await _change_status(
                conn, booking, Status.CANCELLED, audit.CITIZEN, now, event="cancelled_by_citizen"
            )
        return await _context(conn, changed)


async def reschedule(
    pool: asyncpg.Pool,
    reference: str,
    token: str | None,
    secret_key: str,
    new_slot_id: int,
    now: datetime,
    actor: Actor = audit.CITIZEN,
) -> BookingContext:
    """Take the new seat and free the old one in one transaction, or change nothing."""
    async with pool.acquire() as conn:
        if actor.kind == "citizen":
            await authorise(conn, reference, token, secret_key)
        async with conn.transaction():
            booking = await booking_store.lock(conn, reference)
            if booking is None:
                raise errors.NotFound()
            office, service = await _office_and_service(conn, booking.office_id, booking.service_id)
            if Status(booking.status) is not Status.CONFIRMED:
                raise errors.not_active()
            if not can_reschedule(now, booking.starts_at, service.reschedule_cutoff_minutes):
                raise errors.too_late()
            if new_slot_id == booking.slot_id:
                raise errors.ValidationFailed(
                    {"slot_id": errors.N_("Choose a time other than your current one.")}
                )
            await slot_store.lock_for_move(conn, [booking.slot_id, new_slot_id])
            taken = await _take_seat_guarded(conn, new_slot_id, service, now)
            await slot_store.release_seat(conn, booking)
            moved = await booking_store.move(
                conn, booking.id, taken.id, taken.starts_at, taken.ends_at, now
            )
            await audit.record(
                conn,
                booking.id,
                actor,
                "reschedule",
                booking.status,
                moved.status,
                {"from": booking.starts_at.isoformat(), "to": moved.starts_at.isoformat()},
            )
            await events.record_booking_event(conn, booking.id, "rescheduled", now=now)
        return BookingContext(moved, office, service)


async def _change_status(
    conn: asyncpg.Connection,
    booking: Booking,
    target: Status,
    actor: Actor,
    now: datetime,
    *,
    event: str | None = None,
    reason: str | None = None,
) -> Booking:
    current = Status(booking.status)
    if not can_transition(current, target):
        raise errors.Conflict(
            "bad_transition", errors.N_("This change is not possible for this appointment.")
        )
    if frees_seat(current, target):
        await slot_store.release_seat(conn, booking)
    elif takes_seat(current, target):
        # no_show -> checked_in: the citizen came late. Their seat is free
        # unless capacity was lowered since; never oversell to undo.
        try:
            async with conn.transaction():
                retaken = await slot_store.retake_seat(conn, booking)
        except asyncpg.CheckViolationError as exc:
            if not slot_store.oversell_refused(exc):
                raise
            retaken = False
        if not retaken:
            raise errors.slot_full()
    try:
        await booking_store.set_status(conn, booking.id, target, now, reason)
    except asyncpg.UniqueViolationError:
        # Undoing a no-show after the citizen booked the service again.
        raise errors.already_booked() from None
    await audit.record(
        conn,
        booking.id,
        actor,
        target.value,
        current.value,
        target.value,
        {"reason": reason} if reason else None,
    )
    if event is not None:
        await events.record_booking_event(conn, booking.id, event, now=now, reason=reason)
    changed = await booking_store.by_reference(conn, booking.reference)
    assert changed is not None
    return changed


async def set_status_by_office(
    conn: asyncpg.Connection,
    reference: str,
    office_id: str,
    target: Status,
    actor: Actor,
    now: datetime,
    reason: str | None = None,
) -> Booking:
    """Check-in, done, no-show or cancellation by staff; caller owns no transaction.
    Refused with the reason when staff may not do it now (action_refusal)."""
    async with conn.transaction():
        booking = await booking_store.lock(conn, reference)
        office = await office_store.get_office(conn, office_id)
        if booking is None or office is None or booking.office_id != office_id:
            raise errors.NotFound()
        current = Status(booking.status)
        refused = action_refusal(target, current, booking.starts_at, now, office.zone)
        if refused is not None:
            raise refused
        event = "cancelled_by_office" if target is Status.CANCELLED else None
        return await _change_status(conn, booking, target, actor, now, event=event, reason=reason)
