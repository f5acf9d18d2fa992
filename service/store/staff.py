"""SQL for staff accounts, their offices, sessions, API tokens, login failures
and office feeds. Functions take a connection; callers own the transaction.
Secrets arrive here already hashed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from service.domain.staff import Failures, Role, StaffMember


@dataclass(frozen=True, slots=True)
class Credentials:
    member: StaffMember
    password_hash: str
    active: bool


_MEMBER_SQL = """SELECT s.id, s.email, s.role, s.demo, s.active, s.password_hash,
       COALESCE(array_agg(o.office_id ORDER BY o.office_id)
                FILTER (WHERE o.office_id IS NOT NULL), '{}') AS offices
FROM staff s LEFT JOIN staff_offices o ON o.staff_id = s.id"""


def _member(r: asyncpg.Record) -> StaffMember:
    return StaffMember(
        id=r["id"],
        email=r["email"],
        role=Role(r["role"]),
        offices=frozenset(r["offices"]),
        demo=r["demo"],
    )


async def insert(
    conn: asyncpg.Connection,
    email: str,
    role: Role,
    offices: Collection[str],
    password_hash: str,
    now: datetime,
    *,
    demo: bool = False,
) -> StaffMember | None:
    """The new account, or None when the e-mail is taken."""
    staff_id = await conn.fetchval(
        """INSERT INTO staff (email, role, password_hash, demo, created_at)
           VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING RETURNING id""",
        email,
        role.value,
        password_hash,
        demo,
        now,
    )
    if staff_id is None:
        return None
    await conn.executemany(
        "INSERT INTO staff_offices (staff_id, office_id) VALUES ($1, $2)",
        [(staff_id, office) for office in sorted(offices)],
    )
    return StaffMember(staff_id, email, role, frozenset(offices), demo)


async def unknown_offices(conn: asyncpg.Connection, offices: Collection[str]) -> list[str]:
    rows = await conn.fetch(
        """SELECT x FROM unnest($1::text[]) AS x
           WHERE NOT EXISTS (SELECT 1 FROM offices WHERE id = x)""",
        list(offices),
    )
    return [r["x"] for r in rows]


async def credentials(conn: asyncpg.Connection, email: str) -> Credentials | None:
    row = await conn.fetchrow(f"{_MEMBER_SQL} WHERE s.email = $1 GROUP BY s.id", email)
    if row is None:
        return None
    return Credentials(_member(row), row["password_hash"], row["active"])


async def set_password_hash(conn: asyncpg.Connection, staff_id: int, password_hash: str) -> None:
    await conn.execute("UPDATE staff SET password_hash = $2 WHERE id = $1", staff_id, password_hash)


async def mark_login(conn: asyncpg.Connection, staff_id: int, now: datetime) -> None:
    await conn.execute("UPDATE staff SET last_login_at = $2 WHERE id = $1", staff_id, now)


async def member(conn: asyncpg.Connection, staff_id: int) -> Credentials | None:
    """An account by id, active or not (the password hash is not used)."""
    row = await conn.fetchrow(f"{_MEMBER_SQL} WHERE s.id = $1 GROUP BY s.id", staff_id)
    if row is None:
        return None
    return Credentials(_member(row), row["password_hash"], row["active"])


async def deactivate(conn: asyncpg.Connection, staff_id: int, now: datetime) -> None:
    """Turn an account off: it can no longer sign in, its sessions end and its
    API tokens are revoked now rather than left to the checks on `active`."""
    await conn.execute("UPDATE staff SET active = false WHERE id = $1", staff_id)
    await conn.execute("DELETE FROM staff_sessions WHERE staff_id = $1", staff_id)
    await conn.execute(
        """UPDATE staff_api_tokens SET revoked_at = $2
           WHERE staff_id = $1 AND revoked_at IS NULL""",
        staff_id,
        now,
    )


async def for_office(conn: asyncpg.Connection, office_id: str) -> list[asyncpg.Record]:
    """Accounts working for an office, admins excluded (they work for all)."""
    return list(
        await conn.fetch(
            """SELECT s.id, s.email, s.role, s.active, s.last_login_at, s.created_at
               FROM staff s JOIN staff_offices o ON o.staff_id = s.id
               WHERE o.office_id = $1 ORDER BY s.role, s.email""",
            office_id,
        )
    )


# Sessions ------------------------------------------------------------------------


async def create_session(
    conn: asyncpg.Connection, id_hash: bytes, staff_id: int, now: datetime, expires_at: datetime
) -> None:
    await conn.execute(
        """INSERT INTO staff_sessions (id_hash, staff_id, created_at, last_seen_at, expires_at)
           VALUES ($1, $2, $3, $3, $4)""",
        id_hash,
        staff_id,
        now,
        expires_at,
    )


@dataclass(frozen=True, slots=True)
class SessionRow:
    member: StaffMember
    created_at: datetime
    last_seen_at: datetime


async def session(conn: asyncpg.Connection, id_hash: bytes, now: datetime) -> SessionRow | None:
    """The live session's account; expired sessions and disabled accounts give None."""
    row = await conn.fetchrow(
        """SELECT x.created_at AS s_created, x.last_seen_at AS s_seen,
                  s.id, s.email, s.role, s.demo,
                  COALESCE(array_agg(o.office_id ORDER BY o.office_id)
                           FILTER (WHERE o.office_id IS NOT NULL), '{}') AS offices
           FROM staff_sessions x
           JOIN staff s ON s.id = x.staff_id AND s.active
           LEFT JOIN staff_offices o ON o.staff_id = s.id
           WHERE x.id_hash = $1 AND x.expires_at > $2
           GROUP BY s.id, x.created_at, x.last_seen_at""",
        id_hash,
        now,
    )
    if row is None:
        return None
    return SessionRow(_member(row), row["s_created"], row["s_seen"])


async def touch_session(
    conn: asyncpg.Connection, id_hash: bytes, now: datetime, expires_at: datetime
) -> None:
    await conn.execute(
        "UPDATE staff_sessions SET last_seen_at = $2, expires_at = $3 WHERE id_hash = $1",
        id_hash,
        now,
        expires_at,
    )


async def delete_session(conn: asyncpg.Connection, id_hash: bytes) -> None:
    await conn.execute("DELETE FROM staff_sessions WHERE id_hash = $1", id_hash)


async def purge_expired_sessions(conn: asyncpg.Connection, now: datetime) -> int:
    result: str = await conn.execute("DELETE FROM staff_sessions WHERE expires_at <= $1", now)
    return int(result.split()[-1])


# API tokens ------------------------------------------------------------------------


async def create_token(
    conn: asyncpg.Connection, staff_id: int, token_hash: bytes, label: str, now: datetime
) -> int:
    token_id: int = await conn.fetchval(
        """INSERT INTO staff_api_tokens (staff_id, token_hash, label, created_at)
           VALUES ($1, $2, $3, $4) RETURNING id""",
        staff_id,
        token_hash,
        label,
        now,
    )
    return token_id


async def token_member(
    conn: asyncpg.Connection, token_hash: bytes, now: datetime
) -> StaffMember | None:
    staff_id = await conn.fetchval(
        """UPDATE staff_api_tokens SET last_used_at = $2
           WHERE token_hash = $1 AND revoked_at IS NULL RETURNING staff_id""",
        token_hash,
        now,
    )
    if staff_id is None:
        return None
    row = await conn.fetchrow(f"{_MEMBER_SQL} WHERE s.id = $1 AND s.active GROUP BY s.id", staff_id)
    return _member(row) if row else None


async def tokens_of(conn: asyncpg.Connection, staff_id: int) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            """SELECT id, label, created_at, last_used_at, revoked_at FROM staff_api_tokens
               WHERE staff_id = $1 ORDER BY created_at DESC, id DESC""",
            staff_id,
        )
    )


async def revoke_token(
    conn: asyncpg.Connection, staff_id: int, token_id: int, now: datetime
) -> bool:
    result: str = await conn.execute(
        """UPDATE staff_api_tokens SET revoked_at = $3
           WHERE id = $1 AND staff_id = $2 AND revoked_at IS NULL""",
        token_id,
        staff_id,
        now,
    )
    return result.endswith(" 1")


# Login throttling ------------------------------------------------------------------


async def failures_since(
    conn: asyncpg.Connection, key_hashes: list[bytes], since: datetime
) -> list[Failures]:
    """Each key's failures since `since`, with the last one's time, in order."""
    rows = await conn.fetch(
        """SELECT count(f.at) AS n, max(f.at) AS last_at
           FROM unnest($1::bytea[]) WITH ORDINALITY AS t(k, i)
           LEFT JOIN login_failures f ON f.key_hash = t.k AND f.at > $2
           GROUP BY t.i ORDER BY t.i""",
        key_hashes,
        since,
    )
    return [Failures(r["n"], r["last_at"]) for r in rows]


async def count_then_record(
    conn: asyncpg.Connection,
    key_hashes: list[bytes],
    since: datetime,
    now: datetime,
    wait_for: Callable[[list[Failures]], timedelta],
) -> tuple[list[Failures], timedelta]:
    """Count each key's failures since `since` and, unless `wait_for(counts)`
    says to wait, record this attempt as one more failure. Returns the counts
    before this attempt and the wait (zero: recorded, go on and check).

    Count and insert happen under a transaction-scoped advisory lock per key,
    so concurrent attempts for one account queue here and each sees the ones
    before it: no burst of parallel guesses gets past the limit.
    """
    async with conn.transaction():
        # Locks taken in one global order: two attempts sharing only the IP
        # key never wait on each other in a cycle.
        for lock in sorted({int.from_bytes(k[:8], "big", signed=True) for k in key_hashes}):
            await conn.execute("SELECT pg_advisory_xact_lock($1)", lock)
        counts = await failures_since(conn, key_hashes, since)
        wait = wait_for(counts)
        if wait <= timedelta(0):
            await record_failure(conn, key_hashes, now)
    return counts, wait


async def forget_attempt(conn: asyncpg.Connection, key_hash: bytes, at: datetime) -> None:
    """Take back one attempt counted by count_then_record (it succeeded)."""
    await conn.execute(
        """DELETE FROM login_failures WHERE ctid = (
               SELECT ctid FROM login_failures WHERE key_hash = $1 AND at = $2 LIMIT 1)""",
        key_hash,
        at,
    )


async def record_failure(conn: asyncpg.Connection, key_hashes: list[bytes], now: datetime) -> None:
    await conn.execute(
        "INSERT INTO login_failures (key_hash, at) SELECT k, $2 FROM unnest($1::bytea[]) AS k",
        key_hashes,
        now,
    )


async def clear_failures(conn: asyncpg.Connection, key_hash: bytes) -> None:
    await conn.execute("DELETE FROM login_failures WHERE key_hash = $1", key_hash)


async def purge_failures(conn: asyncpg.Connection, before: datetime) -> None:
    await conn.execute("DELETE FROM login_failures WHERE at <= $1", before)


async def is_known_place(conn: asyncpg.Connection, pair_hash: bytes, since: datetime) -> bool:
    known: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM login_places WHERE pair_hash = $1 AND last_at > $2)",
        pair_hash,
        since,
    )
    return known


async def remember_place(
    conn: asyncpg.Connection, pair_hash: bytes, account_hash: bytes, now: datetime, since: datetime
) -> None:
    """A sign-in from this place; the account's places unused since `since` go."""
    await conn.execute(
        """INSERT INTO login_places (pair_hash, account_hash, last_at) VALUES ($1, $2, $3)
           ON CONFLICT (pair_hash) DO UPDATE SET last_at = EXCLUDED.last_at""",
        pair_hash,
        account_hash,
        now,
    )
    await conn.execute(
        "DELETE FROM login_places WHERE account_hash = $1 AND last_at <= $2", account_hash, since
    )


async def claim_login_alert(
    conn: asyncpg.Connection, staff_id: int, now: datetime, since: datetime
) -> bool:
    """Whether to tell the holder now: true once, unless told after `since`."""
    claimed = await conn.fetchval(
        """UPDATE staff SET login_alert_at = $2
           WHERE id = $1 AND active AND (login_alert_at IS NULL OR login_alert_at <= $3)
           RETURNING id""",
        staff_id,
        now,
        since,
    )
    return claimed is not None


# Office feeds --------------------------------------------------------------------


async def set_feed(
    conn: asyncpg.Connection,
    office_id: str,
    secret_hash: bytes,
    staff_id: int | None,
    now: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO office_feeds (office_id, secret_hash, created_at, created_by)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (office_id) DO UPDATE SET secret_hash = EXCLUDED.secret_hash,
               created_at = EXCLUDED.created_at, created_by = EXCLUDED.created_by""",
        office_id,
        secret_hash,
        now,
        staff_id,
    )


async def feed_office(conn: asyncpg.Connection, secret_hash: bytes) -> str | None:
    office: str | None = await conn.fetchval(
        "SELECT office_id FROM office_feeds WHERE secret_hash = $1", secret_hash
    )
    return office


async def feed_created_at(conn: asyncpg.Connection, office_id: str) -> datetime | None:
    at: datetime | None = await conn.fetchval(
        "SELECT created_at FROM office_feeds WHERE office_id = $1", office_id
    )
    return at
