"""SQL for the one-time keys of the citizen booking form (migrations/0004)."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def claim(conn: asyncpg.Connection, key_hash: bytes, now: datetime) -> bool:
    """Claim a key inside the booking transaction; False when it was claimed before.

    A concurrent submission of the same form waits on the primary key until
    the first transaction ends: it then either sees the claim (and gives up)
    or, if the first one rolled back, takes the key itself.
    """
    claimed = await conn.fetchval(
        """INSERT INTO form_keys (key_hash, created_at) VALUES ($1, $2)
           ON CONFLICT (key_hash) DO NOTHING RETURNING true""",
        key_hash,
        now,
    )
    return bool(claimed)


async def attach(conn: asyncpg.Connection, key_hash: bytes, booking_id: int) -> None:
    await conn.execute(
        "UPDATE form_keys SET booking_id = $2 WHERE key_hash = $1", key_hash, booking_id
    )


async def booking_reference(
    conn: asyncpg.Connection, key_hash: bytes, since: datetime
) -> str | None:
    """The reference a key produced, if it was claimed after `since`."""
    value = await conn.fetchval(
        """SELECT b.reference FROM form_keys k JOIN bookings b ON b.id = k.booking_id
           WHERE k.key_hash = $1 AND k.created_at >= $2""",
        key_hash,
        since,
    )
    return value if isinstance(value, str) else None


async def purge(conn: asyncpg.Connection, before: datetime) -> int:
    """Forget keys older than `before` (the replay window is hours, not days)."""
    status: str = await conn.execute("DELETE FROM form_keys WHERE created_at < $1", before)
    return int(status.split()[-1])
