"""SQL for personal data: everything stored about one booking (right of
access), and its anonymisation. Functions take a connection; callers own the
transaction.

What holds personal data, table by table: `bookings` (name, phone, e-mail
and its key, document number), `outbox` (recipient, the sent body, an
office's reason for a cancellation), `audit_log.detail` (an office's
reason), `contact_checks` (the booking's verification codes, hashed) and
`verified_contacts` (keyed hashes of proved phones and addresses, not tied
to a booking), and, through the booking, `manage_tokens` and `form_keys`
(hashes that open it).
`draw_entries` (a draw request's name, contacts, document number and
their keyed hashes) are anonymised once the period they asked for is as old
(service.store.draws.anonymise_ended).
`mobile_day_subscriptions` (a contact, its keyed hash and a town's
coordinates) forget them when stopped, and once ended (run out, or never
confirmed) for the retention period (service.mobile_alerts.anonymise_ended);
their messages lose their recipients and bodies with them.
`sms_opt_outs` keeps a number that replied STOP: honouring the refusal
outlives any one booking.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from service.domain.retention import ANONYMISED_NAME

# Columns never exported: hashes that open the booking are secrets, not data
# about the citizen.
_SECRET_COLUMNS = {"manage_token_hash"}


def _plain(record: asyncpg.Record) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in _SECRET_COLUMNS:
            continue
        out[key] = value.isoformat() if isinstance(value, datetime) else value
    return out


async def booking_id(conn: asyncpg.Connection, reference: str) -> tuple[int, str] | None:
    """(id, office id) of the booking with this reference, locked."""
    row = await conn.fetchrow(
        "SELECT id, office_id FROM bookings WHERE reference = $1 FOR UPDATE", reference
    )
    return (row["id"], row["office_id"]) if row else None


async def everything(conn: asyncpg.Connection, booking_id: int) -> dict[str, Any]:
    """All that is stored about one booking, as JSON-ready values."""
    booking = await conn.fetchrow("SELECT * FROM bookings WHERE id = $1", booking_id)
    messages = await conn.fetch(
        "SELECT * FROM outbox WHERE booking_id = $1 ORDER BY id", booking_id
    )
    audit = await conn.fetch(
        "SELECT * FROM audit_log WHERE booking_id = $1 ORDER BY at, id", booking_id
    )
    tokens = await conn.fetch(
        """SELECT outbox_id, created_at FROM manage_tokens
           WHERE booking_id = $1 ORDER BY created_at, outbox_id""",
        booking_id,
    )
    calls = await conn.fetch(
        "SELECT counter, called_at, called_by FROM calls WHERE booking_id = $1", booking_id
    )
    checks = await conn.fetch(
        """SELECT channel, attempts, sends, last_send_at, verified_at, created_at
           FROM contact_checks WHERE booking_id = $1""",
        booking_id,
    )
    opted_out = await conn.fetch(
        """SELECT phone, error_code, created_at FROM sms_opt_outs
           WHERE phone = (SELECT phone FROM bookings WHERE id = $1)""",
        booking_id,
    )
    audit_rows = []
    for row in audit:
        plain = _plain(row)
        plain["detail"] = _json(plain["detail"])
        audit_rows.append(plain)
    return {
        "booking": _plain(booking),
        "messages": [_plain(r) for r in messages],
        "audit_log": audit_rows,
        "manage_links_issued": [_plain(r) for r in tokens],
        "waiting_room_calls": [_plain(r) for r in calls],
        # Codes are stored as hashes only; what is kept is how the check went.
        "contact_checks": [_plain(r) for r in checks],
        "sms_opt_out": [_plain(r) for r in opted_out],
    }


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def anonymise(conn: asyncpg.Connection, booking_id: int, now: datetime) -> None:
    """Remove the booking's personal data; office, service, times and
    statuses stay. Messages still waiting are cancelled (nobody to send them to)."""
    await conn.execute(
        # A hash nobody holds the token of: the citizen's old links no
        # longer open what is left.
        """UPDATE bookings SET citizen_name = $2, phone = NULL, email = NULL,
                               email_key = NULL, document_number = NULL, cancel_reason = NULL,
                               manage_token_hash = sha256(gen_random_uuid()::text::bytea),
                               anonymised_at = $3, updated_at = $3
           WHERE id = $1""",
        booking_id,
        ANONYMISED_NAME,
        now,
    )
    await conn.execute(
        """UPDATE outbox SET
               status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END,
               status_reason = CASE WHEN status = 'pending' THEN 'erased' ELSE status_reason END,
               recipient = '', body = NULL, reason = NULL, updated_at = $2
           WHERE booking_id = $1""",
        booking_id,
        now,
    )
    await conn.execute("UPDATE audit_log SET detail = '{}' WHERE booking_id = $1", booking_id)
    await conn.execute("DELETE FROM manage_tokens WHERE booking_id = $1", booking_id)
    await conn.execute("DELETE FROM form_keys WHERE booking_id = $1", booking_id)
    await conn.execute("DELETE FROM contact_checks WHERE booking_id = $1", booking_id)


async def contacts(conn: asyncpg.Connection, booking_id: int) -> tuple[str | None, str | None]:
    """The booking's phone and e-mail address, as stored."""
    row = await conn.fetchrow("SELECT phone, email FROM bookings WHERE id = $1", booking_id)
    return row["phone"], row["email"]


async def forget_contacts(conn: asyncpg.Connection, contact_hashes: list[bytes]) -> None:
    """Forget that these contacts were proved (a later booking asks again)."""
    await conn.execute(
        "DELETE FROM verified_contacts WHERE contact_hash = ANY($1::bytea[])", contact_hashes
    )


async def due_for_anonymising(
    conn: asyncpg.Connection, cutoff: datetime, limit: int
) -> list[tuple[int, str]]:
    """Bookings whose appointment started before `cutoff` and still hold
    personal data, locked (several workers may run the job)."""
    rows = await conn.fetch(
        """SELECT id, status FROM bookings
           WHERE anonymised_at IS NULL AND starts_at < $1
           ORDER BY starts_at LIMIT $2
           FOR UPDATE SKIP LOCKED""",
        cutoff,
        limit,
    )
    return [(r["id"], r["status"]) for r in rows]

