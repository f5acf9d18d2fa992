"""SQL for contact checks (the codes of a held booking) and remembered
verified contacts. Functions take a connection; callers own the transaction
(and lock the booking a check belongs to, which serialises its changes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from service.domain.mobile_alerts import SubscriptionRef

# What a check belongs to: a held booking (its id), a draw request waiting
# for its code (the entry's id) or a mobile day subscription.
Owner = int | str | SubscriptionRef


def owner_column(owner: Owner) -> tuple[str, int | str]:
    """The column of outbox and contact_checks naming `owner`, and its value."""
    if isinstance(owner, SubscriptionRef):
        return "subscription_id", owner.id
    return ("booking_id" if isinstance(owner, int) else "draw_entry_id"), owner


@dataclass(frozen=True, slots=True)
class Check:
    id: int
    booking_id: int | None
    channel: str
    code_hashes: list[bytes]
    attempts: int
    sends: int
    last_send_at: datetime
    verified_at: datetime | None


def _check(r: asyncpg.Record) -> Check:
    return Check(
        id=r["id"],
        booking_id=r["booking_id"],
        channel=r["channel"],
        code_hashes=[bytes(h) for h in r["code_hashes"]],
        attempts=r["attempts"],
        sends=r["sends"],
        last_send_at=r["last_send_at"],
        verified_at=r["verified_at"],
    )


async def open_check(conn: asyncpg.Connection, owner: Owner, channel: str, now: datetime) -> int:
    column, value = owner_column(owner)
    check_id: int = await conn.fetchval(
        f"""INSERT INTO contact_checks ({column}, channel, last_send_at, created_at)
            VALUES ($1, $2, $3, $3) RETURNING id""",
        value,
        channel,
        now,
    )
    return check_id


async def for_owner(conn: asyncpg.Connection, owner: Owner) -> Check | None:
    column, value = owner_column(owner)
    row = await conn.fetchrow(f"SELECT * FROM contact_checks WHERE {column} = $1", value)
    return _check(row) if row else None


async def add_code_hash(conn: asyncpg.Connection, check_id: int, code_hash: bytes) -> None:
    await conn.execute(
        "UPDATE contact_checks SET code_hashes = code_hashes || $2::bytea WHERE id = $1",
        check_id,
        code_hash,
    )


async def count_attempt(conn: asyncpg.Connection, check_id: int) -> int:
    """One more wrong code; returns the attempts so far."""
    attempts: int = await conn.fetchval(
        "UPDATE contact_checks SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts",
        check_id,
    )
    return attempts


async def count_send(conn: asyncpg.Connection, check_id: int, now: datetime) -> None:
    await conn.execute(
        "UPDATE contact_checks SET sends = sends + 1, last_send_at = $2 WHERE id = $1",
        check_id,
        now,
    )


async def mark_verified(conn: asyncpg.Connection, check_id: int, now: datetime) -> None:
    await conn.execute("UPDATE contact_checks SET verified_at = $2 WHERE id = $1", check_id, now)


async def remember(conn: asyncpg.Connection, contact_hash: bytes, now: datetime) -> None:
    await conn.execute(
        """INSERT INTO verified_contacts (contact_hash, verified_at) VALUES ($1, $2)
           ON CONFLICT (contact_hash) DO UPDATE SET verified_at = EXCLUDED.verified_at""",
        contact_hash,
        now,
    )


async def remembered(
    conn: asyncpg.Connection, contact_hashes: Sequence[bytes], since: datetime
) -> set[bytes]:
    """Which of `contact_hashes` were proved after `since`."""
    if not contact_hashes:
        return set()
    rows = await conn.fetch(
        """SELECT contact_hash FROM verified_contacts
           WHERE contact_hash = ANY($1::bytea[]) AND verified_at > $2""",
        list(contact_hashes),
        since,
    )
    return {bytes(r["contact_hash"]) for r in rows}


async def forget_before(conn: asyncpg.Connection, before: datetime) -> int:
    """Drop contacts proved before `before`: they would be asked again anyway."""
    done: str = await conn.execute("DELETE FROM verified_contacts WHERE verified_at < $1", before)
    return int(done.split()[-1])
