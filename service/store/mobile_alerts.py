"""SQL for mobile day subscriptions ("tell me when a mobile day is planned
near me"), their links' tokens and the announcements of a published day.
Functions take a connection; callers own the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time

import asyncpg

from service.domain.mobile_alerts import AlertChannel, Announcement, Subscriber
from service.logs import current_request_id


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    office_id: str
    channel: AlertChannel
    # None once anonymised (stopped, or ended long enough ago).
    contact: str | None
    language: str
    token_hash: bytes
    verified_at: datetime | None
    expires_at: datetime
    stopped_at: datetime | None
    anonymised_at: datetime | None
    created_at: datetime


def _subscription(r: asyncpg.Record) -> Subscription:
    return Subscription(
        id=r["id"],
        office_id=r["office_id"],
        channel=r["channel"],
        contact=r["contact"],
        language=r["language"],
        token_hash=bytes(r["token_hash"]),
        verified_at=r["verified_at"],
        expires_at=r["expires_at"],
        stopped_at=r["stopped_at"],
        anonymised_at=r["anonymised_at"],
        created_at=r["created_at"],
    )


async def insert(
    conn: asyncpg.Connection,
    *,
    office_id: str,
    channel: str,
    contact: str,
    contact_hash: bytes,
    place: tuple[float, float],
    language: str,
    token_hash: bytes,
    verified_at: datetime | None,
    expires_at: datetime,
    now: datetime,
) -> int:
    new_id: int = await conn.fetchval(
        """INSERT INTO mobile_day_subscriptions
               (office_id, channel, contact, contact_hash, latitude, longitude, language,
                token_hash, verified_at, expires_at, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id""",
        office_id,
        channel,
        contact,
        contact_hash,
        place[0],
        place[1],
        language,
        token_hash,
        verified_at,
        expires_at,
        now,
    )
    return new_id


async def get(
    conn: asyncpg.Connection, subscription_id: int, *, lock: bool = False
) -> Subscription | None:
    row = await conn.fetchrow(
        f"SELECT * FROM mobile_day_subscriptions WHERE id = $1{' FOR UPDATE' if lock else ''}",
        subscription_id,
    )
    return _subscription(row) if row else None


async def token_opens(conn: asyncpg.Connection, subscription_id: int, token_hash: bytes) -> bool:
    """Whether a token one of the subscription's messages carried opens it."""
    found: bool = await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM mobile_day_subscription_tokens
                          WHERE token_hash = $2 AND subscription_id = $1)""",
        subscription_id,
        token_hash,
    )
    return found


async def add_token(
    conn: asyncpg.Connection,
    subscription_id: int,
    token_hash: bytes,
    outbox_id: int,
    now: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO mobile_day_subscription_tokens
               (token_hash, subscription_id, outbox_id, created_at)
           VALUES ($1, $2, $3, $4)""",
        token_hash,
        subscription_id,
        outbox_id,
        now,
    )


async def set_standing(
    conn: asyncpg.Connection,
    subscription_id: int,
    *,
    verified_at: datetime,
    expires_at: datetime,
) -> None:
    """Proved (or renewed): it stands until `expires_at`."""
    await conn.execute(
        """UPDATE mobile_day_subscriptions SET verified_at = COALESCE(verified_at, $2),
                                               expires_at = $3
           WHERE id = $1""",
        subscription_id,
        verified_at,
        expires_at,
    )


async def others_standing(
    conn: asyncpg.Connection, office_id: str, contact_hash: bytes, keep: int
) -> list[int]:
    """The other standing subscriptions of a contact to an office, locked:
    the one being proved takes their place."""
    rows = await conn.fetch(
        """SELECT id FROM mobile_day_subscriptions
           WHERE office_id = $1 AND contact_hash = $2 AND id <> $3
             AND verified_at IS NOT NULL AND stopped_at IS NULL AND anonymised_at IS NULL
           FOR UPDATE""",
        office_id,
        contact_hash,
        keep,
    )
    return [r["id"] for r in rows]


async def anonymise(
    conn: asyncpg.Connection, subscription_id: int, now: datetime, *, stop: bool
) -> None:
    """Forget the contact and the place of a subscription (stopped by the
    citizen with `stop`, or ended long ago); its messages keep their kind
    and times only, and the waiting ones are cancelled."""
    await conn.execute(
        """UPDATE mobile_day_subscriptions SET contact = NULL, contact_hash = NULL,
                  latitude = NULL, longitude = NULL, anonymised_at = $2,
                  stopped_at = CASE WHEN $3 THEN COALESCE(stopped_at, $2) ELSE stopped_at END
           WHERE id = $1 AND anonymised_at IS NULL""",
        subscription_id,
        now,
        stop,
    )
    await conn.execute(
        """UPDATE outbox SET
               status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END,
               status_reason = CASE WHEN status = 'pending' THEN 'erased' ELSE status_reason END,
               recipient = '', body = NULL, updated_at = $2
           WHERE subscription_id = $1""",
        subscription_id,
        now,
    )
    await conn.execute(
        "DELETE FROM mobile_day_subscription_tokens WHERE subscription_id = $1", subscription_id
    )
    await conn.execute("DELETE FROM contact_checks WHERE subscription_id = $1", subscription_id)


async def ended_before(conn: asyncpg.Connection, cutoff: datetime, limit: int) -> list[int]:
    """Subscriptions still holding a contact that ended (ran out, or their
    code never came back) before `cutoff`, locked."""
    rows = await conn.fetch(
        """SELECT id FROM mobile_day_subscriptions
           WHERE anonymised_at IS NULL AND expires_at < $1
           ORDER BY expires_at LIMIT $2
           FOR UPDATE SKIP LOCKED""",
        cutoff,
        limit,
    )
    return [r["id"] for r in rows]


async def standing(conn: asyncpg.Connection, office_id: str, now: datetime) -> list[Subscriber]:
    """The office's subscriptions that stand at `now`."""
    rows = await conn.fetch(
        """SELECT id, channel, contact, language, latitude, longitude
           FROM mobile_day_subscriptions
           WHERE office_id = $1 AND verified_at IS NOT NULL AND stopped_at IS NULL
             AND anonymised_at IS NULL AND expires_at > $2
           ORDER BY id""",
        office_id,
        now,
    )
    return [
        Subscriber(
            r["id"], r["channel"], r["contact"], r["language"], r["latitude"], r["longitude"]
        )
        for r in rows
    ]


async def add_announcements(
    conn: asyncpg.Connection,
    mobile_day_id: int,
    announcements: Sequence[Announcement],
    now: datetime,
) -> int:
    """One pending row per announcement, in one statement; a subscriber who
    already has this day's announcement gets no second one. Returns how many
    rows were written."""
    if not announcements:
        return 0
    done: str = await conn.execute(
        """INSERT INTO outbox (subscription_id, mobile_day_id, kind, channel, recipient,
                               language, send_at, appointment_at, created_at, updated_at,
                               request_id)
           SELECT t.s, $1, t.k, t.c, t.r, t.l, t.at, t.a, $2, $2, $10
           FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[],
                       $8::timestamptz[], $9::timestamptz[]) AS t(s, k, c, r, l, at, a)
           ON CONFLICT (subscription_id, mobile_day_id)
               WHERE kind = 'mobile_day_planned' AND fallback_of IS NULL
           DO NOTHING""",
        mobile_day_id,
        now,
        [a.subscription_id for a in announcements],
        [a.message.kind for a in announcements],
        [a.message.channel for a in announcements],
        [a.message.recipient for a in announcements],
        [a.language for a in announcements],
        [a.message.send_at for a in announcements],
        [a.message.appointment_at for a in announcements],
        # The manager's request: the worker logs its sends under it.
        current_request_id(),
    )
    return int(done.split()[-1])


async def skip_announcements(
    conn: asyncpg.Connection, mobile_day_id: int, reason: str, now: datetime
) -> None:
    """A withdrawn mobile day: its announcements still waiting do not go."""
    await conn.execute(
        """UPDATE outbox SET status = 'skipped', status_reason = $2, updated_at = $3
           WHERE mobile_day_id = $1 AND kind = 'mobile_day_planned' AND status = 'pending'""",
        mobile_day_id,
        reason,
        now,
    )


async def office_quiet_hours(conn: asyncpg.Connection, office_id: str) -> tuple[time, time]:
    """The office's quiet hours (start, end), wall-clock."""
    row = await conn.fetchrow(
        "SELECT quiet_hours_start, quiet_hours_end FROM offices WHERE id = $1", office_id
    )
    assert row is not None
    return row["quiet_hours_start"], row["quiet_hours_end"]
