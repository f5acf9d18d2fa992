"""SQL for bookings. Functions take a connection; callers own the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from service.domain.models import Booking


def _booking(r: asyncpg.Record) -> Booking:
    return Booking(
        id=r["id"],
        reference=r["reference"],
        office_id=r["office_id"],
        service_id=r["service_id"],
        slot_id=r["slot_id"],
        starts_at=r["starts_at"],
        ends_at=r["ends_at"],
        status=r["status"],
        citizen_name=r["citizen_name"],
        phone=r["phone"],
        email=r["email"],
        language=r["language"],
        document_number=r["document_number"],
        created_at=r["created_at"],
        cancel_reason=r["cancel_reason"],
        anonymised_at=r.get("anonymised_at"),
        hold_expires_at=r["hold_expires_at"],
        notify_phone=r["notify_phone"],
        notify_email=r["notify_email"],
        citizen_reschedules=r["citizen_reschedules"],
        message_channel=r["message_channel"],
        message_channel_reason=r.get("message_channel_reason"),
    )


@dataclass(frozen=True, slots=True)
class NewBooking:
    reference: str
    office_id: str
    service_id: str
    slot_id: int
    starts_at: datetime
    ends_at: datetime
    status: str
    citizen_name: str
    phone: str | None
    email: str | None
    language: str
    document_number: str | None
    manage_token_hash: bytes
    created_by: str
    email_key: str | None = None
    hold_expires_at: datetime | None = None
    notify_phone: bool = True
    notify_email: bool = True
    message_channel: str = "sms"


# The household cap trigger (0010) raises under these constraint names.
HOUSEHOLD_CAP = {"household_cap_phone": "phone", "household_cap_email": "email"}


def household_cap_field(exc: BaseException) -> str | None:
    """The contact ("phone" or "email") whose household cap refused an
    insert, or None when `exc` is something else."""
    if not isinstance(exc, asyncpg.CheckViolationError):
        return None
    return HOUSEHOLD_CAP.get(getattr(exc, "constraint_name", None) or "")


async def insert(conn: asyncpg.Connection, new: NewBooking, now: datetime) -> Booking | None:
    """Insert a booking; None when the reference is already taken (caller retries).

    A second active booking for the same document and service raises
    asyncpg.UniqueViolationError from the partial unique index; a public
    booking past the household cap raises asyncpg.CheckViolationError
    (household_cap_field tells which contact).
    """
    row = await conn.fetchrow(
        """INSERT INTO bookings (reference, office_id, service_id, slot_id, starts_at, ends_at,
                                 status, citizen_name, phone, email, language, document_number,
                                 manage_token_hash, created_by, created_at, updated_at,
                                 email_key, hold_expires_at, notify_phone, notify_email,
                                 message_channel)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15,
                   $16, $17, $18, $19, $20)
           ON CONFLICT (reference) DO NOTHING
           RETURNING *""",
        new.reference,
        new.office_id,
        new.service_id,
        new.slot_id,
        new.starts_at,
        new.ends_at,
        new.status,
        new.citizen_name,
        new.phone,
        new.email,
        new.language,
        new.document_number,
        new.manage_token_hash,
        new.created_by,
        now,
        new.email_key,
        new.hold_expires_at,
        new.notify_phone,
        new.notify_email,
        new.message_channel,
    )
    return _booking(row) if row else None


async def by_reference(conn: asyncpg.Connection, reference: str) -> Booking | None:
    row = await conn.fetchrow("SELECT * FROM bookings WHERE reference = $1", reference)
    return _booking(row) if row else None


async def token_opens(conn: asyncpg.Connection, reference: str, token_hash: bytes) -> bool:
    """Whether a token hash is the booking's own or one issued with a message."""
    found = await conn.fetchval(
        """SELECT true FROM bookings b WHERE b.reference = $1
             AND (b.manage_token_hash = $2 OR EXISTS (
                  SELECT 1 FROM manage_tokens t
                  WHERE t.booking_id = b.id AND t.token_hash = $2))""",
        reference,
        token_hash,
    )
    return bool(found)


async def add_manage_token(
    conn: asyncpg.Connection, booking_id: int, token_hash: bytes, outbox_id: int | None = None
) -> None:
    await conn.execute(
        "INSERT INTO manage_tokens (token_hash, booking_id, outbox_id) VALUES ($1, $2, $3)",
        token_hash,
        booking_id,
        outbox_id,
    )


async def lock(conn: asyncpg.Connection, reference: str) -> Booking | None:
    """The booking row, locked until the end of the caller's transaction."""
    row = await conn.fetchrow("SELECT * FROM bookings WHERE reference = $1 FOR UPDATE", reference)
    return _booking(row) if row else None


async def lock_of_office(conn: asyncpg.Connection, office_id: str, references: list[str]) -> None:
    """Lock an office's bookings by reference, in id order, until the end of
    the caller's transaction: for a change that will cancel them after
    rewriting their slots, so that it holds them before it holds any seat."""
    await conn.execute(
        """SELECT 1 FROM bookings WHERE office_id = $1 AND reference = ANY($2::text[])
           ORDER BY id FOR UPDATE""",
        office_id,
        references,
    )


async def set_status(
    conn: asyncpg.Connection,
    booking_id: int,
    status: str,
    now: datetime,
    reason: str | None = None,
) -> None:
    await conn.execute(
        """UPDATE bookings SET status = $2, updated_at = $3,
               cancel_reason = COALESCE($4, cancel_reason)
           WHERE id = $1""",
        booking_id,
        status,
        now,
        reason,
    )


async def set_message_channel(
    conn: asyncpg.Connection,
    booking_id: int,
    channel: str,
    now: datetime,
    *,
    reason: str | None = None,
) -> str | None:
    """Change where a booking's phone messages go, and why when the service
    did it (`reason`; None: the citizen's choice); returns the previous
    channel, or None when the booking is not found."""
    previous: str | None = await conn.fetchval(
        """UPDATE bookings b SET message_channel = $2, message_channel_reason = $4,
                                 updated_at = $3
           FROM (SELECT id, message_channel FROM bookings WHERE id = $1 FOR UPDATE) old
           WHERE b.id = old.id
           RETURNING old.message_channel""",
        booking_id,
        channel,
        now,
        reason,
    )
    return previous


async def confirm_hold(
    conn: asyncpg.Connection, booking_id: int, channel: str, now: datetime
) -> None:
    """A held booking whose code was right: confirmed, and the proved contact
    may now get messages."""
    await conn.execute(
        """UPDATE bookings SET status = 'confirmed', hold_expires_at = NULL, updated_at = $3,
               notify_phone = notify_phone OR $2 = 'sms',
               notify_email = notify_email OR $2 = 'email'
           WHERE id = $1 AND status = 'held'""",
        booking_id,
        channel,
        now,
    )


async def count_citizen_reschedule(conn: asyncpg.Connection, booking_id: int, limit: int) -> bool:
    """One more move by the citizen, unless `limit` are made already."""
    done: str = await conn.execute(
        """UPDATE bookings SET citizen_reschedules = citizen_reschedules + 1
           WHERE id = $1 AND citizen_reschedules < $2""",
        booking_id,
        limit,
    )
    return done == "UPDATE 1"


async def due_holds(
    conn: asyncpg.Connection,
    now: datetime,
    *,
    slot_id: int | None = None,
    office_id: str | None = None,
    service_id: str | None = None,
    limit: int = 500,
) -> list[int]:
    """Ids of held bookings whose time is up (of a slot, an office, a
    service, or any), the longest-expired first."""
    rows = await conn.fetch(
        """SELECT id FROM bookings
           WHERE status = 'held' AND hold_expires_at <= $1
             AND ($2::bigint IS NULL OR slot_id = $2)
             AND ($3::text IS NULL OR office_id = $3)
             AND ($4::text IS NULL OR service_id = $4)
           ORDER BY hold_expires_at LIMIT $5""",
        now,
        slot_id,
        office_id,
        service_id,
        limit,
    )
    return [r["id"] for r in rows]


async def lock_due_hold(conn: asyncpg.Connection, booking_id: int, now: datetime) -> Booking | None:
    """The held booking, locked, if its time is still up and nobody else
    holds it (a code being checked, another expirer): then it is theirs."""
    row = await conn.fetchrow(
        """SELECT * FROM bookings WHERE id = $1 AND status = 'held' AND hold_expires_at <= $2
           FOR UPDATE SKIP LOCKED""",
        booking_id,
        now,
    )
    return _booking(row) if row else None


async def move(
    conn: asyncpg.Connection,
    booking_id: int,
    slot_id: int,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime,
) -> Booking:
    row = await conn.fetchrow(
        """UPDATE bookings SET slot_id = $2, starts_at = $3, ends_at = $4, updated_at = $5
           WHERE id = $1 RETURNING *""",
        booking_id,
        slot_id,
        starts_at,
        ends_at,
        now,
    )
    assert row is not None
    return _booking(row)


async def for_office_between(
    conn: asyncpg.Connection, office_id: str, start: datetime, end: datetime
) -> list[Booking]:
    rows = await conn.fetch(
        """SELECT * FROM bookings WHERE office_id = $1 AND starts_at >= $2 AND starts_at < $3
           ORDER BY starts_at, reference""",
        office_id,
        start,
        end,
    )
    return [_booking(r) for r in rows]
