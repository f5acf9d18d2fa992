"""SQL for the notification outbox.  Functions take a connection; callers own
the transaction.  Status moves: pending -> sending -> sent -> delivered |
undelivered | failed, or pending/sending -> skipped | failed | cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from service.domain.messages import URGENT_KINDS, URGENT_TIERS, PlannedMessage, QuietHours
from service.logs import current_request_id
from service.store.languages import by_language
from service.store.verification import Owner, owner_column


@dataclass(frozen=True, slots=True)
class BookingContacts:
    """What planning a booking's messages reads: where to send, in which
    language, for which start, and the office's reminder settings."""

    phone: str | None
    email: str | None
    language: str
    starts_at: datetime
    timezone: str
    reminder_offsets_minutes: list[int]
    quiet: QuietHours
    # Where the phone's messages go (bookings.message_channel).
    message_channel: str = "sms"


async def booking_contacts(conn: asyncpg.Connection, booking_id: int) -> BookingContacts | None:
    # Only the contacts messages may go to: proved by a code, remembered, or
    # typed by staff (bookings.notify_phone / notify_email).
    row = await conn.fetchrow(
        """SELECT CASE WHEN b.notify_phone THEN b.phone END AS phone,
                  CASE WHEN b.notify_email THEN b.email END AS email,
                  b.language, b.starts_at, w.timezone, b.message_channel,
                  o.reminder_offsets_minutes, o.quiet_hours_start, o.quiet_hours_end
           FROM bookings b JOIN offices o ON o.id = b.office_id
           JOIN booking_sites w ON w.booking_id = b.id
           WHERE b.id = $1""",
        booking_id,
    )
    if row is None:
        return None
    return BookingContacts(
        phone=row["phone"],
        email=row["email"],
        language=row["language"],
        starts_at=row["starts_at"],
        timezone=row["timezone"],
        reminder_offsets_minutes=list(row["reminder_offsets_minutes"]),
        quiet=QuietHours(row["quiet_hours_start"], row["quiet_hours_end"]),
        message_channel=row["message_channel"],
    )


async def follow_channel(
    conn: asyncpg.Connection,
    subject: int | str,
    channel: str,
    now: datetime,
    *,
    reason: str | None = None,
) -> None:
    """A booking's (its id) or a draw request's (its entry id) phone channel
    changed: its phone messages still pending go by `channel`, or are
    skipped when it is "email" (e-mail only). A `reason` (the service's
    own switch, not the citizen's) is written on the rows it moves."""
    column = "booking_id" if isinstance(subject, int) else "draw_entry_id"
    if channel == "email":
        await conn.execute(
            f"""UPDATE outbox SET status = 'skipped',
                                  status_reason = COALESCE($3, 'channel_changed'),
                                  updated_at = $2
               WHERE {column} = $1 AND status = 'pending'
                 AND channel IN ('sms', 'whatsapp')""",
            subject,
            now,
            reason,
        )
        return
    await conn.execute(
        f"""UPDATE outbox SET channel = $2, enqueued_at = NULL, updated_at = $3,
                              status_reason = COALESCE($4, status_reason)
           WHERE {column} = $1 AND status = 'pending'
             AND channel IN ('sms', 'whatsapp') AND channel <> $2""",
        subject,
        channel,
        now,
        reason,
    )


async def skip_pending_reminders(
    conn: asyncpg.Connection, booking_id: int, reason: str, now: datetime
) -> None:
    await conn.execute(
        """UPDATE outbox SET status = 'skipped', status_reason = $2, updated_at = $3
           WHERE booking_id = $1 AND kind = 'reminder' AND status = 'pending'""",
        booking_id,
        reason,
        now,
    )


async def add_planned(
    conn: asyncpg.Connection,
    subject: Owner,
    *,
    language: str,
    planned: Sequence[PlannedMessage],
    now: datetime,
) -> None:
    """Insert the planned messages of a booking (its id), of a draw request
    (its entry id) or of a mobile day subscription as pending rows."""
    if not planned:
        return
    column, value = owner_column(subject)
    # One round trip for all rows: this runs inside the booking transaction.
    await conn.execute(
        f"""INSERT INTO outbox ({column}, kind, channel, recipient, language, send_at,
                               appointment_at, offset_minutes, reason, created_at, updated_at,
                               request_id)
           SELECT $1, k, c, r, $2, s, a, o, x, $3, $3, $11
           FROM unnest($4::text[], $5::text[], $6::text[], $7::timestamptz[],
                       $8::timestamptz[], $9::int[], $10::text[])
                AS t(k, c, r, s, a, o, x)""",
        value,
        language,
        now,
        [m.kind for m in planned],
        [m.channel for m in planned],
        [m.recipient for m in planned],
        [m.send_at for m in planned],
        [m.appointment_at for m in planned],
        [m.offset_minutes for m in planned],
        [m.reason for m in planned],
        # The request (or job) writing the rows: the worker logs under it.
        current_request_id(),
    )


# The worker's side -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Due:
    id: int
    attempts: int
    rate_limit_waits: int


@dataclass(frozen=True, slots=True)
class Expired:
    """A row whose worker died or hung while sending, with what deciding
    when it goes again takes."""

    id: int
    kind: str
    appointment_at: datetime
    timezone: str
    quiet: QuietHours


# The office (f) and the zone of an outbox row (o), whatever its subject: a
# booking (at its site), a draw request, a subscription (at the mobile day
# its announcement names).
_SUBJECT_OFFICE = """
           LEFT JOIN bookings b ON b.id = o.booking_id
           LEFT JOIN booking_sites site ON site.booking_id = b.id
           LEFT JOIN draw_entries e ON e.id = o.draw_entry_id
           LEFT JOIN draw_windows w ON w.id = e.window_id
           LEFT JOIN mobile_day_subscriptions sub ON sub.id = o.subscription_id
           LEFT JOIN mobile_days md ON md.id = o.mobile_day_id
           JOIN offices f
             ON f.id = COALESCE(b.office_id, e.office_id, w.office_id, sub.office_id)"""
_ZONE = "COALESCE(site.timezone, md.timezone, f.timezone)"


async def lock_expired_leases(conn: asyncpg.Connection, now: datetime) -> list[Expired]:
    """Rows still `sending` past their lease, locked; run it in the
    transaction that gives them back (`requeue` or `mark_skipped`)."""
    rows = await conn.fetch(
        f"""SELECT o.id, o.kind, o.appointment_at, f.quiet_hours_start, f.quiet_hours_end,
                   {_ZONE} AS timezone
            FROM outbox o {_SUBJECT_OFFICE}
            WHERE o.status = 'sending' AND o.claimed_until < $1
            FOR UPDATE OF o SKIP LOCKED""",
        now,
    )
    return [
        Expired(
            id=r["id"],
            kind=r["kind"],
            appointment_at=r["appointment_at"],
            timezone=r["timezone"],
            quiet=QuietHours(r["quiet_hours_start"], r["quiet_hours_end"]),
        )
        for r in rows
    ]


async def requeue(
    conn: asyncpg.Connection, again: Sequence[tuple[int, datetime]], now: datetime
) -> None:
    """Back to pending, each (id, send_at), for rows still `sending`."""
    if not again:
        return
    await conn.execute(
        """UPDATE outbox o SET status = 'pending', claimed_until = NULL, send_at = t.at,
                               enqueued_at = NULL, updated_at = $1
           FROM unnest($2::bigint[], $3::timestamptz[]) AS t(id, at)
           WHERE o.id = t.id AND o.status = 'sending'""",
        now,
        [i for i, _ in again],
        [at for _, at in again],
    )


# A queued job that has not claimed its row after this long is presumed lost
# (Redis restarted without its data); the row is queued again.
REQUEUE_AFTER = timedelta(minutes=2)


# Due pending rows (of channel $4, or any) not already waiting in the queue,
# earliest first, locked: $1 now, $2 limit, $3 requeue_after; of one tier of
# the urgent kinds (URGENT_TIERS, spelt out for their partial index,
# migration 0151), or of the others.  SKIP LOCKED so concurrent sweepers
# never wait on each other.
_DUE = """SELECT id, attempts, rate_limit_waits, send_at FROM outbox
           WHERE status = 'pending' AND send_at <= $1
             AND (enqueued_at IS NULL OR enqueued_at < $1::timestamptz - $3::interval)
             AND ($4::text IS NULL OR channel = $4::text)
             AND {}
           ORDER BY send_at
           LIMIT $2
           FOR UPDATE SKIP LOCKED"""


def _kind_in(kinds: tuple[str, ...]) -> str:
    return "kind IN ({})".format(", ".join(f"'{kind}'" for kind in kinds))


_DUE_IN_TURN = (
    *(_DUE.format(_kind_in(tier)) for tier in URGENT_TIERS),
    _DUE.format(f"NOT {_kind_in(URGENT_KINDS)}"),
)


async def _lock_due(
    conn: asyncpg.Connection,
    now: datetime,
    limit: int,
    requeue_after: timedelta,
    channel: str | None,
) -> list[Due]:
    """Codes first, then offers, then the rest, each part earliest first: a
    code made now goes before a batch of offers drawn a minute ago, and both
    before a backlog of reminders due since an hour."""
    found: list[Due] = []
    for query in _DUE_IN_TURN:
        if len(found) >= limit:
            break
        found += _in_order(await conn.fetch(query, now, limit - len(found), requeue_after, channel))
    return found


async def due(
    conn: asyncpg.Connection,
    now: datetime,
    limit: int,
    requeue_after: timedelta = REQUEUE_AFTER,
    *,
    channel: str | None = None,
) -> list[Due]:
    """Due pending rows (of `channel`, or any) not already waiting in the
    queue, urgent kinds first, each part earliest first, and marks them
    queued.  Run it in the transaction that enqueues, for the locks to hold."""
    rows = await _lock_due(conn, now, limit, requeue_after, channel)
    await mark_enqueued(conn, [r.id for r in rows], now)
    return rows


async def lock_due(
    conn: asyncpg.Connection,
    now: datetime,
    limit: int,
    requeue_after: timedelta,
    *,
    channel: str,
) -> list[Due]:
    """Like `due`, but only locks the rows: the caller marks the ones it
    does queue (`mark_enqueued`), in the same transaction."""
    return await _lock_due(conn, now, limit, requeue_after, channel)


async def mark_enqueued(conn: asyncpg.Connection, ids: list[int], now: datetime) -> None:
    await conn.execute("UPDATE outbox SET enqueued_at = $2 WHERE id = ANY($1::bigint[])", ids, now)


async def hand_back(conn: asyncpg.Connection, outbox_id: int, queued_at: datetime | None) -> None:
    """Unqueue a pending row whose job did not send it, for the next sweep to
    queue again; only if it is still that job's queueing (`queued_at`), so
    that a row queued again meanwhile keeps its newer job."""
    await conn.execute(
        """UPDATE outbox SET enqueued_at = NULL
           WHERE id = $1 AND status = 'pending' AND enqueued_at IS NOT DISTINCT FROM $2""",
        outbox_id,
        queued_at,
    )


async def release(conn: asyncpg.Connection, outbox_id: int, now: datetime) -> None:
    """Give back a row claimed but not sent: pending, the attempt not counted,
    and unqueued, for the next sweep to queue again."""
    await conn.execute(
        """UPDATE outbox SET status = 'pending', claimed_until = NULL, enqueued_at = NULL,
                             attempts = attempts - 1, updated_at = $2
           WHERE id = $1 AND status = 'sending'""",
        outbox_id,
        now,
    )


def _in_order(rows: list[asyncpg.Record]) -> list[Due]:
    rows = sorted(rows, key=lambda r: (r["send_at"], r["id"]))
    return [Due(r["id"], r["attempts"], r["rate_limit_waits"]) for r in rows]


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row claimed for sending, with what it takes to re-check and render it."""

    id: int
    kind: str
    channel: str
    recipient: str
    language: str
    appointment_at: datetime
    reason: str | None
    attempts: int
    rate_limit_waits: int
    # A booking's message, or a draw request's (its code, "not served"), or
    # a subscription's (subscription_id below).
    booking_id: int | None
    draw_entry_id: str | None
    reference: str
    booking_status: str
    booking_starts_at: datetime
    booking_ends_at: datetime
    citizen_name: str
    office_id: str
    office_kind: str
    office_country: str
    office_prefix: str
    office_name: dict[str, str]
    office_city: dict[str, str]
    office_address: str
    timezone: str
    quiet: QuietHours
    email_from: str | None
    email_reply_to: str | None
    service_name: dict[str, str]
    service_duration_minutes: int
    bring: dict[str, str]
    opted_out: bool
    # Whether the booking's messages also go to an e-mail address.
    has_email: bool
    request_id: str | None = None
    # The booking's document file, for the messages about it.
    file_state: str | None = None
    pickup_from: str = ""
    pickup_until: str = ""
    pickup_by_appointment: bool = False
    # A message of an entry of an instant service's waiting list (its code).
    on_waitlist: bool = False
    # A mobile day subscription's message (its code, an announcement), and
    # for an announcement the day it announces: its dates and opening.
    subscription_id: int | None = None
    mobile_day_id: int | None = None
    days: tuple[date, ...] = ()
    booking_opens_at: datetime | None = None


async def claim(
    conn: asyncpg.Connection, outbox_id: int, now: datetime, lease: timedelta
) -> Claimed | None:
    """Take a due pending row for sending; None if someone else has it, it is
    not due, or it is no longer pending."""
    r = await conn.fetchrow(
        """WITH c AS (
               UPDATE outbox SET status = 'sending', claimed_until = $2::timestamptz + $3,
                                 attempts = attempts + 1, updated_at = $2
               WHERE id = $1 AND status = 'pending' AND send_at <= $2
               RETURNING *)
           SELECT c.id, c.kind, c.channel, c.recipient, c.language, c.appointment_at,
                  c.reason, c.attempts, c.rate_limit_waits, c.request_id,
                  b.id AS booking_id, c.draw_entry_id, c.subscription_id, c.mobile_day_id,
                  COALESCE(b.reference, e.id, c.subscription_id::text) AS reference,
                  COALESCE(b.status,
                      -- A draw request's messages go while it waits on the list
                      -- (its code: while its contact is unproved), as a held
                      -- booking's code does.
                      CASE WHEN e.id IS NOT NULL THEN
                          CASE WHEN e.outcome = 'waiting'
                               AND (c.kind <> 'code' OR e.verified_at IS NULL)
                               THEN 'held' ELSE 'cancelled' END END,
                      -- A subscription's code goes while it waits for it, an
                      -- announcement while it stands and its day is on.
                      CASE WHEN sub.anonymised_at IS NULL AND sub.stopped_at IS NULL
                                AND sub.expires_at > $2
                                AND CASE WHEN c.kind = 'code' THEN sub.verified_at IS NULL
                                         ELSE sub.verified_at IS NOT NULL
                                              AND md.withdrawn_at IS NULL END
                           THEN 'held' ELSE 'cancelled' END) AS booking_status,
                  COALESCE(b.starts_at, c.appointment_at) AS booking_starts_at,
                  COALESCE(b.ends_at, c.appointment_at) AS booking_ends_at,
                  COALESCE(b.citizen_name, e.citizen_name, '') AS citizen_name,
                  o.id AS office_id, o.kind AS office_kind,
                  COALESCE(site.country, md.country, o.country) AS country, o.reference_prefix,
                  o.name_ar, o.name_fr, o.name_en,
                  -- The venue's town, address and zone for a mobile day's
                  -- booking, and for a mobile day's announcement.
                  COALESCE(site.city_ar, md.town_ar, o.city_ar) AS city_ar,
                  COALESCE(site.city_fr, md.town_fr, o.city_fr) AS city_fr,
                  COALESCE(site.city_en, md.town_en, o.city_en) AS city_en,
                  COALESCE(site.address, md.address, o.address) AS address,
                  COALESCE(site.timezone, md.timezone, o.timezone) AS timezone,
                  o.quiet_hours_start, o.quiet_hours_end, o.email_from, o.email_reply_to,
                  COALESCE(s.name_ar, '') AS s_ar, COALESCE(s.name_fr, '') AS s_fr,
                  COALESCE(s.name_en, '') AS s_en, COALESCE(s.duration_minutes, 0) AS duration,
                  COALESCE(s.bring_ar, '') AS bring_ar, COALESCE(s.bring_fr, '') AS bring_fr,
                  COALESCE(s.bring_en, '') AS bring_en,
                  (c.channel = 'sms' AND EXISTS (
                      SELECT 1 FROM sms_opt_outs x WHERE x.phone = c.recipient)) AS opted_out,
                  COALESCE(b.email IS NOT NULL AND b.notify_email, e.email IS NOT NULL, false)
                      AS has_email,
                  (SELECT f.state FROM document_files f WHERE f.booking_id = b.id) AS file_state,
                  o.pickup_from, o.pickup_until,
                  COALESCE(s.pickup_by_appointment, false) AS pickup_by_appointment,
                  (SELECT array_agg(DISTINCT h.day ORDER BY h.day) FROM mobile_day_hours h
                   WHERE h.mobile_day_id = md.id) AS days,
                  -- Said only while bookings are still to open.
                  CASE WHEN md.booking_opens_at > $2 THEN md.booking_opens_at END
                      AS booking_opens_at,
                  (e.id IS NOT NULL AND e.window_id IS NULL) AS on_waitlist
           FROM c
           LEFT JOIN bookings b ON b.id = c.booking_id
           LEFT JOIN booking_sites site ON site.booking_id = b.id
           LEFT JOIN draw_entries e ON e.id = c.draw_entry_id
           LEFT JOIN draw_windows w ON w.id = e.window_id
           LEFT JOIN mobile_day_subscriptions sub ON sub.id = c.subscription_id
           LEFT JOIN mobile_days md ON md.id = c.mobile_day_id
           JOIN offices o ON o.id = COALESCE(b.office_id, e.office_id, w.office_id, sub.office_id)
           LEFT JOIN services s ON s.office_id = o.id
                                AND s.id = COALESCE(b.service_id, e.service_id, w.service_id)""",
        outbox_id,
        now,
        lease,
    )
    if r is None:
        return None
    return Claimed(
        id=r["id"],
        kind=r["kind"],
        channel=r["channel"],
        recipient=r["recipient"],
        language=r["language"],
        appointment_at=r["appointment_at"],
        reason=r["reason"],
        attempts=r["attempts"],
        rate_limit_waits=r["rate_limit_waits"],
        booking_id=r["booking_id"],
        draw_entry_id=r["draw_entry_id"],
        reference=r["reference"],
        booking_status=r["booking_status"],
        booking_starts_at=r["booking_starts_at"],
        booking_ends_at=r["booking_ends_at"],
        citizen_name=r["citizen_name"],
        office_id=r["office_id"],
        office_kind=r["office_kind"],
        office_country=r["country"],
        office_prefix=r["reference_prefix"],
        office_name=by_language(r, "name"),
        office_city=by_language(r, "city"),
        office_address=r["address"],
        timezone=r["timezone"],
        quiet=QuietHours(r["quiet_hours_start"], r["quiet_hours_end"]),
        email_from=r["email_from"],
        email_reply_to=r["email_reply_to"],
        service_name=by_language(r, "s"),
        service_duration_minutes=r["duration"],
        bring=by_language(r, "bring"),
        opted_out=r["opted_out"],
        request_id=r["request_id"],
        has_email=r["has_email"],
        file_state=r["file_state"],
        pickup_from=r["pickup_from"].strftime("%H:%M"),
        pickup_until=r["pickup_until"].strftime("%H:%M"),
        pickup_by_appointment=r["pickup_by_appointment"],
        on_waitlist=r["on_waitlist"],
        subscription_id=r["subscription_id"],
        mobile_day_id=r["mobile_day_id"],
        days=tuple(r["days"] or ()),
        booking_opens_at=r["booking_opens_at"],
    )


async def mark_sent(
    conn: asyncpg.Connection,
    outbox_id: int,
    *,
    provider_id: str | None,
    body: str,
    segments: int | None,
    encoding: str | None,
    now: datetime,
) -> None:
    # A delivery callback may have beaten us here (it finds the row by the id
    # in its URL): keep its later status, add what only we know.
    await conn.execute(
        """UPDATE outbox SET
               status = CASE WHEN status IN ('pending', 'sending') THEN 'sent' ELSE status END,
               provider_id = COALESCE(provider_id, $2), body = $3, segments = $4,
               encoding = $5, claimed_until = NULL, error_code = NULL,
               sent_at = COALESCE(sent_at, $6), updated_at = $6
           WHERE id = $1""",
        outbox_id,
        provider_id,
        body,
        segments,
        encoding,
        now,
    )


async def mark_skipped(
    conn: asyncpg.Connection, outbox_id: int, reason: str, now: datetime
) -> None:
    await conn.execute(
        """UPDATE outbox SET status = 'skipped', status_reason = $2, claimed_until = NULL,
                             updated_at = $3
           WHERE id = $1 AND status IN ('pending', 'sending')""",
        outbox_id,
        reason,
        now,
    )


async def mark_failed(
    conn: asyncpg.Connection,
    outbox_id: int,
    *,
    code: str | None,
    reason: str,
    now: datetime,
    body: str | None = None,
    segments: int | None = None,
) -> None:
    await conn.execute(
        """UPDATE outbox SET status = 'failed', error_code = $2, status_reason = $3,
                             claimed_until = NULL, updated_at = $4,
                             body = COALESCE($5, body), segments = COALESCE($6, segments)
           WHERE id = $1 AND status IN ('pending', 'sending')""",
        outbox_id,
        code,
        reason,
        now,
        body,
        segments,
    )


async def retry_later(
    conn: asyncpg.Connection,
    outbox_id: int,
    *,
    send_at: datetime,
    code: str | None,
    reason: str,
    rate_limited: bool,
    now: datetime,
) -> None:
    """Back to pending for another try.  A rate-limit refusal hands the
    attempt back: it counts as a wait, not as a failure."""
    await conn.execute(
        """UPDATE outbox SET status = 'pending', send_at = $2, claimed_until = NULL,
                             enqueued_at = NULL, error_code = $3, status_reason = $4,
                             updated_at = $6,
                             attempts = attempts - CASE WHEN $5 THEN 1 ELSE 0 END,
                             rate_limit_waits = rate_limit_waits + CASE WHEN $5 THEN 1 ELSE 0 END
           WHERE id = $1 AND status = 'sending'""",
        outbox_id,
        send_at,
        code,
        reason,
        rate_limited,
        now,
    )


@dataclass(frozen=True, slots=True)
class MessageBooking:
    """An outbox row's kind and appointment, with its booking (or draw
    request) as it is now."""

    kind: str
    channel: str
    appointment_at: datetime
    booking_status: str
    booking_starts_at: datetime
    email: str | None
    # The row's recipient, and what decides whether an SMS may go to it: the
    # booking's choice of channel and the countries its office serves.
    recipient: str = ""
    message_channel: str = "sms"
    office_country: str = ""
    sms_countries: tuple[str, ...] = ()
    # Whose message it is: a booking's, or a draw request's.
    booking_id: int | None = None
    draw_entry_id: str | None = None
    # The owner's phone number (which the row's recipient is, for a phone
    # channel).
    phone: str | None = None


# A draw request stands where a booking would: "held" while it waits on
# the list (its code: while its contact is unproved), as in `claim`.
_ENTRY_STATUS = """CASE WHEN e.outcome = 'waiting'
                        AND (s.kind <> 'code' OR e.verified_at IS NULL)
                   THEN 'held' ELSE 'cancelled' END"""


async def message_booking(
    conn: asyncpg.Connection, outbox_id: int, *, lock: str = "SHARE"
) -> MessageBooking | None:
    """Reads the row and its booking or draw request, locking that one
    (FOR SHARE, or FOR UPDATE with `lock="UPDATE"`) so that a cancellation
    or a change of channel cannot slip in before the caller's write; run it
    in a transaction."""
    assert lock in ("SHARE", "UPDATE")
    owner = await conn.fetchrow(
        "SELECT booking_id, draw_entry_id FROM outbox WHERE id = $1", outbox_id
    )
    if owner is None:
        return None
    if owner["booking_id"] is not None:
        r = await conn.fetchrow(
            f"""SELECT s.kind, s.channel, s.appointment_at, b.status, b.starts_at,
                      CASE WHEN b.notify_email THEN b.email END AS email,
                      s.recipient, b.message_channel, o.country, o.sms_countries,
                      s.booking_id, s.draw_entry_id, b.phone
               FROM outbox s JOIN bookings b ON b.id = s.booking_id
               JOIN offices o ON o.id = b.office_id
               WHERE s.id = $1
               FOR {lock} OF b""",
            outbox_id,
        )
    else:
        r = await conn.fetchrow(
            f"""SELECT s.kind, s.channel, s.appointment_at, {_ENTRY_STATUS} AS status,
                      s.appointment_at AS starts_at, e.email,
                      s.recipient, e.message_channel, o.country, o.sms_countries,
                      s.booking_id, s.draw_entry_id, e.phone
               FROM outbox s JOIN draw_entries e ON e.id = s.draw_entry_id
               JOIN draw_windows w ON w.id = e.window_id
               JOIN offices o ON o.id = w.office_id
               WHERE s.id = $1
               FOR {lock} OF e""",
            outbox_id,
        )
    if r is None:
        return None
    return MessageBooking(
        kind=r["kind"],
        channel=r["channel"],
        appointment_at=r["appointment_at"],
        booking_status=r["status"],
        booking_starts_at=r["starts_at"],
        email=r["email"],
        recipient=r["recipient"],
        message_channel=r["message_channel"],
        office_country=r["country"],
        sms_countries=tuple(r["sms_countries"]),
        booking_id=r["booking_id"],
        draw_entry_id=r["draw_entry_id"],
        phone=r["phone"],
    )


async def message_subscription(
    conn: asyncpg.Connection, outbox_id: int, now: datetime
) -> MessageBooking | None:
    """message_booking() for a subscription's row: "held" while the
    subscription stands (share-locked, so that a stop waits for the
    caller's write), its phone messages by the channel it chose."""
    r = await conn.fetchrow(
        """SELECT s.kind, s.channel, s.appointment_at, s.recipient, sub.channel AS chosen,
                  (sub.verified_at IS NOT NULL AND sub.stopped_at IS NULL
                   AND sub.anonymised_at IS NULL AND sub.expires_at > $2) AS stands,
                  o.country, o.sms_countries
           FROM outbox s JOIN mobile_day_subscriptions sub ON sub.id = s.subscription_id
           JOIN offices o ON o.id = sub.office_id
           WHERE s.id = $1
           FOR SHARE OF sub""",
        outbox_id,
        now,
    )
    if r is None:
        return None
    return MessageBooking(
        kind=r["kind"],
        channel=r["channel"],
        appointment_at=r["appointment_at"],
        booking_status="held" if r["stands"] else "cancelled",
        booking_starts_at=r["appointment_at"],
        email=None,
        recipient=r["recipient"],
        message_channel=r["chosen"],
        office_country=r["country"],
        sms_countries=tuple(r["sms_countries"]),
    )


async def add_sms_fallback(
    conn: asyncpg.Connection, whatsapp_id: int, now: datetime, reason: str
) -> int | None:
    """Queue the SMS that stands in for WhatsApp message `whatsapp_id`: the
    same kind to the same number, due now, saying why (`reason`); at most
    once (unique index).  Returns the new id, or None when it exists already."""
    return await _follow_up(
        conn, whatsapp_id, channel="sms", send_at=now, code=None, reason=reason,
        carry_tries=False, rate_limited=False, now=now,
    )  # fmt: skip


async def _follow_up(
    conn: asyncpg.Connection,
    source_id: int,
    *,
    channel: str | None,
    send_at: datetime,
    code: str | None,
    reason: str,
    carry_tries: bool,
    rate_limited: bool,
    now: datetime,
) -> int | None:
    """A new pending row with the content of `source_id` (on `channel`, or
    its own), pointing at it (`fallback_of`: at most one per row); with
    `carry_tries` it keeps the tries used so far, a rate-limit report
    counting as a wait rather than a try (as in `retry_later`)."""
    new_id: int | None = await conn.fetchval(
        """INSERT INTO outbox (booking_id, draw_entry_id, subscription_id, mobile_day_id, kind,
                               channel, recipient, language, send_at,
                               appointment_at, offset_minutes, reason, fallback_of,
                               attempts, rate_limit_waits, error_code, status_reason,
                               created_at, updated_at, request_id)
           SELECT o.booking_id, o.draw_entry_id, o.subscription_id, o.mobile_day_id, o.kind,
                  COALESCE($7, o.channel), o.recipient, o.language, $2,
                  o.appointment_at, o.offset_minutes, o.reason, o.id,
                  CASE WHEN $8 THEN o.attempts - CASE WHEN $5 THEN 1 ELSE 0 END ELSE 0 END,
                  CASE WHEN $8 THEN o.rate_limit_waits + CASE WHEN $5 THEN 1 ELSE 0 END
                       ELSE 0 END,
                  $3, $4, $6, $6, o.request_id
           FROM outbox o
           WHERE o.id = $1
           ON CONFLICT (fallback_of) WHERE fallback_of IS NOT NULL DO NOTHING
           RETURNING id""",
        source_id,
        send_at,
        code,
        reason,
        rate_limited,
        now,
        channel,
        carry_tries,
    )
    return new_id


@dataclass(frozen=True, slots=True)
class RetryFacts:
    """What deciding when a sent message that failed goes again takes."""

    kind: str
    attempts: int
    rate_limit_waits: int
    appointment_at: datetime
    timezone: str
    quiet: QuietHours


async def retry_facts(conn: asyncpg.Connection, outbox_id: int) -> RetryFacts:
    r = await conn.fetchrow(
        f"""SELECT o.kind, o.attempts, o.rate_limit_waits, o.appointment_at,
                   {_ZONE} AS timezone, f.quiet_hours_start, f.quiet_hours_end
            FROM outbox o {_SUBJECT_OFFICE}
            WHERE o.id = $1""",
        outbox_id,
    )
    assert r is not None
    return RetryFacts(
        kind=r["kind"],
        attempts=r["attempts"],
        rate_limit_waits=r["rate_limit_waits"],
        appointment_at=r["appointment_at"],
        timezone=r["timezone"],
        quiet=QuietHours(r["quiet_hours_start"], r["quiet_hours_end"]),
    )


async def add_retry(
    conn: asyncpg.Connection,
    outbox_id: int,
    *,
    send_at: datetime,
    code: str,
    reason: str,
    rate_limited: bool,
    now: datetime,
) -> int | None:
    """Another try of a message that was sent and then reported failed for a
    reason that passes: a new row (the sent one only moves forward) with the
    same content, carrying the tries used so far; at most once per row."""
    return await _follow_up(
        conn, outbox_id, channel=None, send_at=send_at, code=code, reason=reason,
        carry_tries=True, rate_limited=rate_limited, now=now,
    )  # fmt: skip


async def add_email_fallback(conn: asyncpg.Connection, sms_id: int, now: datetime) -> int | None:
    """Queue the email that stands in for SMS `sms_id`, to its booking's
    address; at most once per SMS (unique index), so repeated callbacks are
    harmless.  Returns the new id, or None when it exists already."""
    new_id: int | None = await conn.fetchval(
        """INSERT INTO outbox (booking_id, kind, channel, recipient, language, send_at,
                               appointment_at, fallback_of, created_at, updated_at,
                               request_id)
           SELECT s.booking_id, 'sms_fallback', 'email', b.email, s.language, $2,
                  s.appointment_at, s.id, $2, $2, s.request_id
           FROM outbox s JOIN bookings b ON b.id = s.booking_id
           WHERE s.id = $1
           ON CONFLICT (fallback_of) WHERE fallback_of IS NOT NULL DO NOTHING
           RETURNING id""",
        sms_id,
        now,
    )
    return new_id


async def lock_for_receipt(
    conn: asyncpg.Connection, *, provider_id: str, outbox_id: int | None
) -> tuple[int, str, str] | None:
    """The SMS or WhatsApp row a status callback speaks of, locked, as
    (id, status, channel).

    Found by provider id, or, when the worker has not written the provider id
    yet (it died or is slow right after Twilio answered), by the outbox id
    carried in the callback URL.
    """
    r = await conn.fetchrow(
        """SELECT id, status, channel FROM outbox
           WHERE channel IN ('sms', 'whatsapp')
             AND (provider_id = $1 OR (provider_id IS NULL AND id = $2))
           ORDER BY provider_id IS NULL
           LIMIT 1
           FOR UPDATE""",
        provider_id,
        outbox_id,
    )
    return None if r is None else (r["id"], r["status"], r["channel"])


async def set_delivery_status(
    conn: asyncpg.Connection,
    outbox_id: int,
    status: str,
    *,
    provider_id: str,
    error_code: str | None,
    now: datetime,
) -> None:
    await conn.execute(
        """UPDATE outbox SET status = $2, provider_id = COALESCE(provider_id, $3),
                             error_code = COALESCE($4, error_code), claimed_until = NULL,
                             sent_at = COALESCE(sent_at, $5),
                             delivered_at = CASE WHEN $2 = 'delivered' THEN $5
                                                 WHEN $2 = 'read'
                                                 THEN COALESCE(delivered_at, $5)
                                                 ELSE delivered_at END,
                             read_at = CASE WHEN $2 = 'read' THEN $5 ELSE read_at END,
                             updated_at = $5
           WHERE id = $1""",
        outbox_id,
        status,
        provider_id,
        error_code,
        now,
    )


async def add_opt_out_for(conn: asyncpg.Connection, outbox_id: int, code: str) -> None:
    """Opt out the recipient of an SMS row: no SMS goes to the number again."""
    await conn.execute(
        """INSERT INTO sms_opt_outs (phone, error_code)
           SELECT recipient, $2 FROM outbox WHERE id = $1 AND channel = 'sms'
           ON CONFLICT DO NOTHING""",
        outbox_id,
        code,
    )


async def add_whatsapp_opt_out(
    conn: asyncpg.Connection, contact_hash: bytes, source: str, now: datetime
) -> bool:
    """No WhatsApp message goes to the number of `contact_hash` again (a
    keyed hash, never the number); False when it had opted out already."""
    done: str = await conn.execute(
        """INSERT INTO whatsapp_opt_outs (contact_hash, source, created_at) VALUES ($1, $2, $3)
           ON CONFLICT DO NOTHING""",
        contact_hash,
        source,
        now,
    )
    return done == "INSERT 0 1"


async def remove_whatsapp_opt_out(conn: asyncpg.Connection, contact_hash: bytes) -> bool:
    done: str = await conn.execute(
        "DELETE FROM whatsapp_opt_outs WHERE contact_hash = $1", contact_hash
    )
    return done != "DELETE 0"


async def whatsapp_opted_out(conn: asyncpg.Connection, contact_hash: bytes) -> bool:
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM whatsapp_opt_outs WHERE contact_hash = $1)", contact_hash
    )
    return found


async def recipient_of(conn: asyncpg.Connection, outbox_id: int) -> str | None:
    found: str | None = await conn.fetchval("SELECT recipient FROM outbox WHERE id = $1", outbox_id)
    return found


async def pending_whatsapp(conn: asyncpg.Connection, phone: str) -> list[tuple[int, str]]:
    """The WhatsApp messages still waiting to go to `phone`, as (id, kind);
    not locked: the caller locks each one's booking first, then the row
    (`skip_pending`), in the order a cancellation takes them."""
    rows = await conn.fetch(
        """SELECT id, kind FROM outbox
           WHERE channel = 'whatsapp' AND recipient = $1 AND status = 'pending'
           ORDER BY id""",
        phone,
    )
    return [(r["id"], r["kind"]) for r in rows]


async def skip_pending(
    conn: asyncpg.Connection, outbox_id: int, reason: str, now: datetime
) -> bool:
    """Skip a row still pending (one being sent is on its way already);
    whether it was."""
    done: str = await conn.execute(
        """UPDATE outbox SET status = 'skipped', status_reason = $2, updated_at = $3
           WHERE id = $1 AND status = 'pending'""",
        outbox_id,
        reason,
        now,
    )
    return done == "UPDATE 1"


# Per-destination limits ------------------------------------------------------------


async def codes_to(
    conn: asyncpg.Connection, recipient: str, since: datetime
) -> tuple[int, datetime | None]:
    """Code messages queued for `recipient` since `since`, and the oldest's time."""
    row = await conn.fetchrow(
        """SELECT count(*) AS n, min(created_at) AS oldest FROM outbox
           WHERE kind = 'code' AND recipient = $1 AND created_at >= $2""",
        recipient,
        since,
    )
    assert row is not None
    return row["n"], row["oldest"]


# One statement per channel, the channel written out, so that each uses its
# own partial index (outbox_sms_recipient, outbox_whatsapp_recipient).
_SENT_TO = {
    channel: f"""SELECT count(*) AS n, min(sent_at) AS oldest FROM outbox
           WHERE channel = '{channel}' AND recipient = $1 AND kind <> 'code' AND id <> $3
             AND (status = 'sending'
                  OR (status IN ('sent', 'delivered', 'read', 'undelivered')
                      AND sent_at > $2))"""
    for channel in ("sms", "whatsapp")
}


async def sent_to(
    conn: asyncpg.Connection, channel: str, recipient: str, since: datetime, exclude: int
) -> tuple[int, datetime | None]:
    """Messages on `channel` (SMS or WhatsApp: each has its own cap) other
    than codes sent to `recipient` after `since`, or being sent now (so that
    two workers sending at once each count the other), and the oldest
    send's time."""
    row = await conn.fetchrow(_SENT_TO[channel], recipient, since, exclude)
    assert row is not None
    return row["n"], row["oldest"]


async def wait_until(
    conn: asyncpg.Connection, outbox_id: int, send_at: datetime, reason: str, now: datetime
) -> None:
    """Back to pending until `send_at`, the attempt handed back: a limit of
    ours held the message, nothing failed."""
    await conn.execute(
        """UPDATE outbox SET status = 'pending', send_at = $2, claimed_until = NULL,
                             enqueued_at = NULL, status_reason = $3, updated_at = $4,
                             attempts = attempts - 1
           WHERE id = $1 AND status = 'sending'""",
        outbox_id,
        send_at,
        reason,
        now,
    )


# Dev sink listing ---------------------------------------------------------------


async def recent_messages(conn: asyncpg.Connection, limit: int = 200) -> list[dict[str, Any]]:
    """Messages that went through the sender, newest first (dev mode page)."""
    rows = await conn.fetch(
        """SELECT o.id, o.channel, o.recipient, o.kind,
                  COALESCE(b.reference, o.draw_entry_id, o.subscription_id::text) AS reference,
                  o.body, o.segments,
                  o.status, o.created_at, o.sent_at, o.status_reason, o.error_code
           FROM outbox o LEFT JOIN bookings b ON b.id = o.booking_id
           WHERE o.status NOT IN ('pending')
           ORDER BY o.id DESC
           LIMIT $1""",
        limit,
    )
    return [dict(r) for r in rows]


async def counts_by_status(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch("SELECT status, count(*) AS n FROM outbox GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


@dataclass(frozen=True, slots=True)
class Backlog:
    """Rows not finished yet, by (channel, status), and the age in seconds of
    the oldest due pending row (0 when none is due)."""

    rows: dict[tuple[str, str], int]
    lag_seconds: float


async def backlog(conn: asyncpg.Connection, now: datetime) -> Backlog:
    """Read at each metrics scrape: only the pending and sending rows, which
    the partial indexes outbox_due and outbox_leased hold, never the history."""
    counts = await conn.fetch(
        """SELECT channel, status, count(*) AS n FROM outbox
           WHERE status IN ('pending', 'sending') GROUP BY channel, status"""
    )
    oldest: datetime | None = await conn.fetchval(
        "SELECT min(send_at) FROM outbox WHERE status = 'pending' AND send_at <= $1", now
    )
    rows = {(r["channel"], r["status"]): int(r["n"]) for r in counts}
    for channel in ("sms", "whatsapp", "email"):
        for status in ("pending", "sending"):
            rows.setdefault((channel, status), 0)
    lag = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    return Backlog(rows=rows, lag_seconds=lag)
