"""Events: plans the outbox rows a booking change produces (the event's
message on each channel now, reminders at the office's offsets, pending
reminders a move or a cancellation voids), inside the booking's transaction.

The rules themselves are pure and live in `service.domain.messages`:
`plan_event` (which messages), `reminder_times` (whether a reminder is
created, and when it falls due), `voided_reminders`; when a row falls due,
`skip_reason` decides whether it still goes (the worker's re-check).  The rows
are written by `service.store.outbox`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from service.domain.feedback import DEFAULT_DELAY, plan_feedback
from service.domain.messages import (
    EVENTS,
    Channel,
    MessageChannel,
    plan_code,
    plan_event,
    voided_reminders,
)
from service.store import draws as draw_store
from service.store import outbox
from service.store.verification import Owner


async def record_booking_event(
    conn: asyncpg.Connection,
    booking_id: int,
    event: str,
    *,
    now: datetime,
    reason: str | None = None,
) -> None:
    """Write the outbox rows for `event` inside the caller's transaction.

    Events: confirmed, rescheduled, cancelled_by_citizen, cancelled_by_office.
    Reads the booking as the caller has just written it (new start for a
    reschedule).  Touches Postgres only: the worker finds the rows by polling.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown booking event {event!r}")
    booking = await outbox.booking_contacts(conn, booking_id)
    if booking is None:
        raise LookupError(f"booking {booking_id} not found")
    voided = voided_reminders(event)
    if voided is not None:
        await outbox.skip_pending_reminders(conn, booking_id, voided, now)
    planned = plan_event(
        event,
        phone=booking.phone,
        email=booking.email,
        appointment_at=booking.starts_at,
        now=now,
        offsets_minutes=booking.reminder_offsets_minutes,
        quiet=booking.quiet,
        zone=ZoneInfo(booking.timezone),
        reason=reason,
        phone_channel=message_channel(booking.message_channel),
    )
    await outbox.add_planned(conn, booking_id, language=booking.language, planned=planned, now=now)


def message_channel(text: str) -> MessageChannel:
    """A stored channel (a booking's, an entry's) as the planners take it."""
    return "whatsapp" if text == "whatsapp" else "email" if text == "email" else "sms"


async def record_code(
    conn: asyncpg.Connection,
    subject: Owner,
    channel: Channel,
    recipient: str,
    *,
    language: str,
    appointment_at: datetime,
    now: datetime,
) -> None:
    """Write the code message of a held booking (its id), a draw request
    (its entry id) or a mobile day subscription inside the caller's
    transaction. The code itself is drawn by the worker when it sends. The
    code for the phone goes by WhatsApp when the booking (or the request, or
    the subscription) chose it."""
    if channel == "sms" and await _phone_channel(conn, subject) == "whatsapp":
        channel = "whatsapp"
    planned = plan_code(channel, recipient, appointment_at=appointment_at, now=now)
    await outbox.add_planned(conn, subject, language=language, planned=[planned], now=now)


async def _phone_channel(conn: asyncpg.Connection, subject: Owner) -> str | None:
    """Where the phone messages of a booking (its id) or a draw request
    (its entry id) go, as chosen; a subscription's code goes as sent."""
    if isinstance(subject, int):
        booking = await outbox.booking_contacts(conn, subject)
        return booking.message_channel if booking is not None else None
    if isinstance(subject, str):
        entry = await draw_store.get_entry(conn, subject)
        return entry.message_channel if entry is not None else None
    return None


async def record_feedback_request(
    conn: asyncpg.Connection,
    booking_id: int,
    *,
    now: datetime,
    delay: timedelta = DEFAULT_DELAY,
) -> None:
    """Write the feedback message of a booking just marked done, inside the
    caller's transaction: one row, due `delay` later outside quiet hours
    (a unique index keeps it to one per booking)."""
    booking = await outbox.booking_contacts(conn, booking_id)
    if booking is None:
        raise LookupError(f"booking {booking_id} not found")
    planned = plan_feedback(
        phone=booking.phone,
        email=booking.email,
        done_at=now,
        delay=delay,
        quiet=booking.quiet,
        zone=ZoneInfo(booking.timezone),
        phone_channel=booking.message_channel,
    )
    await outbox.add_planned(conn, booking_id, language=booking.language, planned=planned, now=now)
