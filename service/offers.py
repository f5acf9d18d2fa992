"""Offers: a seat held for an entry of a draw or of a waiting list, and the
waiting list of an instant service taking the seats freed on it.

An offer is a held booking whose hold ends at the offer's expiry: it takes
its seat through the same guarded statement as any booking, is refused by
the same constraints (one active booking per document and service, the
household cap for a citizen's, and one open offer per identity, 0050), and
its message is an outbox row like any other. Accepting it confirms the held
booking (service.draw.answer_offer); declining it or letting it expire ends
the hold, which frees the seat again.

`seat_freed` runs inside the transaction that frees a seat
(service.bookings), after the booking has left it: an open offer that ended
there records why, and a seat of an instant service that starts within the
list's horizon goes to the first suitable entry before anyone else can see
it free. Nobody suitable, or the list turned off: the seat is on sale as
soon as the transaction commits.

Nothing here imports service.bookings (which calls in).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import asyncpg

from service.domain import waitlist as list_rules
from service.domain.booking import Status, booking_window, new_reference
from service.domain.calendar import local_date
from service.domain.draw import Mode, Outcome, part_of_day
from service.domain.messages import WAITLIST_OFFER, Kind, plan_offer
from service.domain.models import Booking
from service.domain.verification import email_key
from service.notify import events
from service.store import audit, outbox
from service.store import bookings as booking_store
from service.store import draws as store
from service.store import offices as office_store
from service.store import slots as slot_store
from service.store.draws import Entry

_REFUSED_CHECKS = frozenset({*booking_store.HOUSEHOLD_CAP, slot_store.OVERSELL})


@dataclass(frozen=True, slots=True)
class ListRules:
    """The settings of instant services' waiting lists (service.config)."""

    # Seats freed this many days ahead or fewer go to the list; 0: no list.
    days: int
    # Hours an entry has to accept a seat offered to it.
    offer_hours: int


class Hold(StrEnum):
    """What came of holding a seat for an entry."""

    HELD = "held"
    # The seat is not there to take (full, out of bounds, a closed day):
    # nobody else can have it either.
    SEAT_GONE = "seat_gone"
    # This entry may not hold it now; the next one may.
    REFUSED = "refused"


async def hold(
    conn: asyncpg.Connection,
    entry: Entry,
    slot_id: int,
    *,
    earliest: datetime,
    latest: datetime,
    expires_at: datetime,
    kind: Kind,
    created_by: str,
    now: datetime,
    send_at: datetime | None = None,
) -> Hold:
    """Hold a seat of `slot_id` (starting between `earliest` and `latest`)
    for `entry` until `expires_at` and write its offer message. Nothing is
    written when the seat is gone, or when the entry may not hold it now: an
    open offer for its identity elsewhere, an active booking of this service
    for its document, its household's cap."""
    office = await office_store.get_office(conn, entry.office_id)
    assert office is not None
    try:
        async with conn.transaction():
            taken = await slot_store.take_seat(
                conn, slot_id, entry.office_id, entry.service_id, earliest, latest
            )
            if taken is None:
                return Hold.SEAT_GONE
            booking = await booking_store.insert(
                conn,
                booking_store.NewBooking(
                    reference=new_reference(office.reference_prefix),
                    office_id=entry.office_id,
                    service_id=entry.service_id,
                    slot_id=taken.id,
                    starts_at=taken.starts_at,
                    ends_at=taken.ends_at,
                    status=Status.HELD,
                    citizen_name=entry.citizen_name,
                    phone=entry.phone,
                    email=entry.email,
                    language=entry.language,
                    document_number=entry.document_number,
                    # No token opens it: each offer message carries one of its own.
                    manage_token_hash=secrets.token_bytes(32),
                    created_by=created_by,
                    email_key=email_key(entry.email) if entry.email else None,
                    hold_expires_at=expires_at,
                    message_channel=entry.message_channel,
                ),
                now,
            )
            if booking is None or not await store.set_offer(conn, entry.id, booking.id, expires_at):
                raise _NotHeld
            await audit.record(conn, booking.id, audit.SYSTEM, "offer", None, Status.HELD)
            planned = plan_offer(
                kind,
                phone=entry.phone,
                email=entry.email,
                phone_channel=events.message_channel(entry.message_channel),
                appointment_at=taken.starts_at,
                expires_at=expires_at,
                send_at=send_at or now,
            )
            await outbox.add_planned(
                conn, booking.id, language=entry.language, planned=planned, now=now
            )
    except (asyncpg.UniqueViolationError, _NotHeld):
        return Hold.REFUSED
    except asyncpg.CheckViolationError as exc:
        if store.draw_only_refused(exc):
            # The service switched to a draw after its mode was read: the
            # seat is the draw's, for no entry of this list.
            return Hold.SEAT_GONE
        if store.constraint_of(exc) not in _REFUSED_CHECKS:
            raise
        return Hold.REFUSED
    return Hold.HELD


class _NotHeld(Exception):
    """Rolls an offer back: a reference drawn twice, or the entry no longer waits."""


async def seat_freed(
    conn: asyncpg.Connection, booking: Booking, ended: Status, now: datetime, rules: ListRules
) -> bool:
    """In the transaction that freed `booking`'s seat (it is now `ended`):
    the offer it was, if any, ends; a seat of an instant service goes to its
    waiting list (see the module's docstring). True when it was offered."""
    await store.end_offer(
        conn,
        booking.id,
        Outcome.EXPIRED if ended is Status.EXPIRED else Outcome.DECLINED,
    )
    if rules.days <= 0 or booking.starts_at > list_rules.horizon(now, rules.days):
        return False
    service = await office_store.get_service(conn, booking.office_id, booking.service_id)
    office = await office_store.get_office(conn, booking.office_id)
    if service is None or office is None or service.allocation_mode != Mode.INSTANT:
        return False
    window = booking_window(now, service.earliest_hours, service.latest_days)
    if not list_rules.goes_to_list(
        booking.starts_at, now, window.earliest, window.latest, rules.days
    ):
        return False
    day = local_date(booking.starts_at, office.zone)
    part = part_of_day(booking.starts_at.astimezone(office.zone).time())
    timing = list_rules.offer_timing(
        now,
        rules.offer_hours,
        booking.starts_at,
        await office_store.quiet_hours(conn, office.id),
        office.zone,
    )
    tried: list[str] = []
    while entry := await store.next_waiting(conn, office.id, service.id, day, part, tried):
        held = await hold(
            conn,
            entry,
            booking.slot_id,
            earliest=window.earliest,
            latest=min(window.latest, list_rules.horizon(now, rules.days)),
            expires_at=timing.expires_at,
            kind=WAITLIST_OFFER,
            # The entry's author books: a citizen's offer counts in their
            # household's cap, as their own booking would.
            created_by=entry.created_by,
            now=now,
            send_at=timing.send_at,
        )
        if held is not Hold.REFUSED:
            return held is Hold.HELD
        tried.append(entry.id)
    return False
