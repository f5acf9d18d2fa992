"""Personal data use cases: export one booking (right of access), erase it
(right to erasure), and the daily retention run. Shared by `mawid booking
export|erase`, the admins' office pages and the worker's cron job."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from service import mobile_alerts
from service.domain import errors
from service.domain.booking import normalise_reference
from service.domain.retention import ANONYMISED_NAME, may_erase, retention_cutoff
from service.domain.verification import contact_hash
from service.store import audit
from service.store import draws as draw_store
from service.store import personal_data as store
from service.store import verification as verification_store
from service.store.audit import Actor

# Bookings anonymised per transaction by the retention run.
BATCH = 200


async def _locked(conn: asyncpg.Connection, reference: str, office_id: str | None) -> int:
    ref = normalise_reference(reference)
    found = await store.booking_id(conn, ref) if ref else None
    if found is None or (office_id is not None and found[1] != office_id):
        raise errors.NotFound()
    return found[0]


async def export(
    pool: asyncpg.Pool, reference: str, actor: Actor, office_id: str | None = None
) -> dict[str, Any]:
    """Everything stored about the booking `reference`, JSON-ready; who read
    it is recorded in its audit log (after the reading)."""
    async with pool.acquire() as conn, conn.transaction():
        booking_id = await _locked(conn, reference, office_id)
        record = await store.everything(conn, booking_id)
        status = record["booking"]["status"]
        await audit.record(conn, booking_id, actor, "export", status, status)
        return record


async def erase(
    pool: asyncpg.Pool,
    reference: str,
    actor: Actor,
    now: datetime,
    *,
    secret_key: str,
    office_id: str | None = None,
) -> None:
    """Anonymise the booking at once, recording who asked in its audit log,
    and forget that its phone and address were proved (`secret_key` keys
    their hashes)."""
    async with pool.acquire() as conn, conn.transaction():
        booking_id = await _locked(conn, reference, office_id)
        row = await conn.fetchrow(
            "SELECT status, starts_at, anonymised_at FROM bookings WHERE id = $1", booking_id
        )
        if row["anonymised_at"] is not None:
            return
        if not may_erase(row["status"], row["starts_at"], now):
            raise errors.Conflict(
                "still_active",
                errors.N_("This appointment is still to come: cancel it before erasing it."),
            )
        phone, email = await store.contacts(conn, booking_id)
        proved = [contact_hash("sms", phone, secret_key)] if phone else []
        proved += [contact_hash("email", email, secret_key)] if email else []
        await store.forget_contacts(conn, proved)
        await store.anonymise(conn, booking_id, now)
        await audit.record(conn, booking_id, actor, "erase", row["status"], row["status"])


async def anonymise_expired(pool: asyncpg.Pool, now: datetime, retention_days: int) -> int:
    """The daily run: anonymise every booking whose appointment is more than
    `retention_days` old, and forget contacts proved before then (whatever
    VERIFIED_CONTACT_DAYS says, nothing personal outlives the retention
    period), and anonymise draw requests of periods as old, and mobile day
    subscriptions that ended as long ago. Returns how many bookings were
    anonymised."""
    cutoff = retention_cutoff(now, retention_days)
    async with pool.acquire() as conn:
        await verification_store.forget_before(conn, cutoff)
    async with pool.acquire() as conn, conn.transaction():
        # Draw requests too, once their window's period is that old.
        await draw_store.anonymise_ended(conn, cutoff, ANONYMISED_NAME, now)
    await mobile_alerts.anonymise_ended(pool, cutoff, now)
    done = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            due = await store.due_for_anonymising(conn, cutoff, BATCH)
            for booking_id, status in due:
                await store.anonymise(conn, booking_id, now)
                await audit.record(conn, booking_id, audit.SYSTEM, "anonymise", status, status)
        done += len(due)
        if len(due) < BATCH:
            return done
