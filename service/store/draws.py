"""SQL for draws: request windows, their entries, the published draw and the
offers of the draw and of its waiting list. Functions take a connection;
callers own the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from service.domain.draw import Mode, PartOfDay, Wish


@dataclass(frozen=True, slots=True)
class Window:
    id: int
    office_id: str
    service_id: str
    opens_at: datetime
    closes_at: datetime
    first_day: date
    last_day: date
    period_start: datetime
    period_end: datetime
    seed: bytes
    seed_sha256: str
    state: str
    entries_sha256: str | None
    drawn_at: datetime | None


def _window(r: asyncpg.Record) -> Window:
    return Window(
        id=r["id"],
        office_id=r["office_id"],
        service_id=r["service_id"],
        opens_at=r["opens_at"],
        closes_at=r["closes_at"],
        first_day=r["first_day"],
        last_day=r["last_day"],
        period_start=r["period_start"],
        period_end=r["period_end"],
        seed=bytes(r["seed"]),
        seed_sha256=r["seed_sha256"],
        state=r["state"],
        entries_sha256=r["entries_sha256"],
        drawn_at=r["drawn_at"],
    )


@dataclass(frozen=True, slots=True)
class NewEntry:
    id: str
    window_id: int
    document_hash: bytes | None
    phone_hash: bytes | None
    email_hash: bytes | None
    citizen_name: str
    phone: str | None
    email: str | None
    language: str
    document_number: str | None
    days: list[date]
    parts: list[str]
    created_by: str


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    window_id: int
    citizen_name: str
    phone: str | None
    email: str | None
    language: str
    document_number: str | None
    wish: Wish
    position: int | None
    outcome: str
    booking_id: int | None
    offer_expires_at: datetime | None


def _entry(r: asyncpg.Record) -> Entry:
    parts: frozenset[PartOfDay] = frozenset(r["parts"])
    return Entry(
        id=r["id"],
        window_id=r["window_id"],
        citizen_name=r["citizen_name"],
        phone=r["phone"],
        email=r["email"],
        language=r["language"],
        document_number=r["document_number"],
        wish=Wish(frozenset(r["days"]), parts),
        position=r["position"],
        outcome=r["outcome"],
        booking_id=r["booking_id"],
        offer_expires_at=r["offer_expires_at"],
    )


# The constraint names of 0050, for the refusals they stand for.
ONE_PER_IDENTITY = frozenset(
    {"draw_entries_one_per_document", "draw_entries_one_per_phone", "draw_entries_one_per_email"}
)
WINDOW_CLOSED = "draw_window_closed"
DRAW_ONLY = "draw_only"


def constraint_of(exc: BaseException) -> str | None:
    return getattr(exc, "constraint_name", None)


async def mode_of(conn: asyncpg.Connection, office_id: str, service_id: str) -> Mode | None:
    value = await conn.fetchval(
        "SELECT allocation_mode FROM services WHERE office_id = $1 AND id = $2",
        office_id,
        service_id,
    )
    return Mode(value) if value is not None else None


async def set_mode(conn: asyncpg.Connection, office_id: str, service_id: str, mode: Mode) -> None:
    await conn.execute(
        "UPDATE services SET allocation_mode = $3 WHERE office_id = $1 AND id = $2",
        office_id,
        service_id,
        mode.value,
    )


async def insert_window(
    conn: asyncpg.Connection,
    *,
    office_id: str,
    service_id: str,
    opens_at: datetime,
    closes_at: datetime,
    first_day: date,
    last_day: date,
    period_start: datetime,
    period_end: datetime,
    seed: bytes,
    seed_sha256: str,
    created_by: str,
    now: datetime,
) -> Window:
    row = await conn.fetchrow(
        """INSERT INTO draw_windows (office_id, service_id, opens_at, closes_at, first_day,
                                     last_day, period_start, period_end, seed, seed_sha256,
                                     created_by, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
           RETURNING *""",
        office_id,
        service_id,
        opens_at,
        closes_at,
        first_day,
        last_day,
        period_start,
        period_end,
        seed,
        seed_sha256,
        created_by,
        now,
    )
    assert row is not None
    return _window(row)


async def overlapping(
    conn: asyncpg.Connection, office_id: str, service_id: str, start: datetime, end: datetime
) -> bool:
    return bool(
        await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM draw_windows
                              WHERE office_id = $1 AND service_id = $2
                                AND period_start < $4 AND period_end > $3)""",
            office_id,
            service_id,
            start,
            end,
        )
    )


async def get_window(
    conn: asyncpg.Connection, window_id: int, *, lock: bool = False
) -> Window | None:
    row = await conn.fetchrow(
        "SELECT * FROM draw_windows WHERE id = $1" + (" FOR UPDATE" if lock else ""), window_id
    )
    return _window(row) if row else None


async def windows_of(conn: asyncpg.Connection, office_id: str) -> list[Window]:
    rows = await conn.fetch(
        "SELECT * FROM draw_windows WHERE office_id = $1 ORDER BY opens_at DESC, id DESC",
        office_id,
    )
    return [_window(r) for r in rows]


async def open_windows(
    conn: asyncpg.Connection, office_id: str, service_id: str, now: datetime
) -> list[Window]:
    rows = await conn.fetch(
        """SELECT * FROM draw_windows
           WHERE office_id = $1 AND service_id = $2 AND state = 'open'
             AND opens_at <= $3 AND closes_at > $3
           ORDER BY period_start""",
        office_id,
        service_id,
        now,
    )
    return [_window(r) for r in rows]


async def due_windows(conn: asyncpg.Connection, now: datetime) -> list[int]:
    rows = await conn.fetch(
        "SELECT id FROM draw_windows WHERE state <> 'drawn' AND closes_at <= $1 ORDER BY id", now
    )
    return [r["id"] for r in rows]


async def drawn_windows(conn: asyncpg.Connection, now: datetime) -> list[int]:
    """Drawn windows whose period has not ended: their freed seats go to
    their waiting list."""
    rows = await conn.fetch(
        "SELECT id FROM draw_windows WHERE state = 'drawn' AND period_end > $1 ORDER BY id", now
    )
    return [r["id"] for r in rows]


async def insert_entry(conn: asyncpg.Connection, new: NewEntry, now: datetime) -> None:
    await conn.execute(
        """INSERT INTO draw_entries (id, window_id, document_hash, phone_hash, email_hash,
                                     citizen_name, phone, email, language, document_number,
                                     days, parts, created_by, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)""",
        new.id,
        new.window_id,
        new.document_hash,
        new.phone_hash,
        new.email_hash,
        new.citizen_name,
        new.phone,
        new.email,
        new.language,
        new.document_number,
        new.days,
        new.parts,
        new.created_by,
        now,
    )


async def entry_ids(conn: asyncpg.Connection, window_id: int) -> list[str]:
    rows = await conn.fetch("SELECT id FROM draw_entries WHERE window_id = $1", window_id)
    return [r["id"] for r in rows]


async def close(
    conn: asyncpg.Connection, window_id: int, entries_sha256: str, now: datetime
) -> None:
    await conn.execute(
        """UPDATE draw_windows SET state = 'closed', entries_sha256 = $2, closed_at = $3
           WHERE id = $1 AND state = 'open'""",
        window_id,
        entries_sha256,
        now,
    )


async def set_positions(
    conn: asyncpg.Connection, window_id: int, ranked: list[str], now: datetime
) -> None:
    await conn.execute(
        """UPDATE draw_entries e SET position = t.p - 1
           FROM unnest($2::text[]) WITH ORDINALITY AS t(id, p)
           WHERE e.window_id = $1 AND e.id = t.id""",
        window_id,
        ranked,
    )
    await conn.execute(
        "UPDATE draw_windows SET state = 'drawn', drawn_at = $2 WHERE id = $1", window_id, now
    )


async def entries(conn: asyncpg.Connection, window_id: int) -> list[Entry]:
    rows = await conn.fetch(
        "SELECT * FROM draw_entries WHERE window_id = $1 ORDER BY position, id", window_id
    )
    return [_entry(r) for r in rows]


async def get_entry(conn: asyncpg.Connection, entry_id: str, *, lock: bool = False) -> Entry | None:
    row = await conn.fetchrow(
        "SELECT * FROM draw_entries WHERE id = $1" + (" FOR UPDATE" if lock else ""), entry_id
    )
    return _entry(row) if row else None


async def entry_for_booking(conn: asyncpg.Connection, booking_id: int) -> Entry | None:
    row = await conn.fetchrow(
        "SELECT * FROM draw_entries WHERE booking_id = $1 FOR UPDATE", booking_id
    )
    return _entry(row) if row else None


async def entry_of_booking(conn: asyncpg.Connection, booking_id: int) -> str | None:
    value = await conn.fetchval("SELECT id FROM draw_entries WHERE booking_id = $1", booking_id)
    return str(value) if value is not None else None


async def set_offer(
    conn: asyncpg.Connection, entry_id: str, booking_id: int, expires_at: datetime
) -> None:
    await conn.execute(
        """UPDATE draw_entries SET outcome = 'offered', booking_id = $2, offer_expires_at = $3
           WHERE id = $1 AND outcome = 'waiting'""",
        entry_id,
        booking_id,
        expires_at,
    )


async def set_outcome(conn: asyncpg.Connection, entry_id: str, before: str, after: str) -> bool:
    done = await conn.fetchval(
        "UPDATE draw_entries SET outcome = $3 WHERE id = $1 AND outcome = $2 RETURNING true",
        entry_id,
        before,
        after,
    )
    return bool(done)


async def lapsed_offers(conn: asyncpg.Connection, now: datetime) -> list[str]:
    """Open offers whose booking is no longer held (expired by the hold
    sweep, or cancelled) or whose time is up."""
    rows = await conn.fetch(
        """SELECT e.id FROM draw_entries e JOIN bookings b ON b.id = e.booking_id
           WHERE e.outcome = 'offered' AND (b.status <> 'held' OR e.offer_expires_at <= $1)""",
        now,
    )
    return [r["id"] for r in rows]


@dataclass(frozen=True, slots=True)
class FreeSeat:
    slot_id: int
    starts_at: datetime
    free: int


async def free_seats(conn: asyncpg.Connection, window: Window, after: datetime) -> list[FreeSeat]:
    """Seats of the window's period not taken by any booking (offers hold
    theirs as held bookings), starting after `after`."""
    rows = await conn.fetch(
        """SELECT id, starts_at, capacity - taken AS free FROM slots
           WHERE office_id = $1 AND service_id = $2 AND starts_at >= $3 AND starts_at < $4
             AND starts_at > $5 AND taken < capacity
             AND mobile_day_id IS NULL  -- a draw allocates the office's own seats
           ORDER BY starts_at, id""",
        window.office_id,
        window.service_id,
        window.period_start,
        window.period_end,
        after,
    )
    return [FreeSeat(r["id"], r["starts_at"], r["free"]) for r in rows]


async def waiting(conn: asyncpg.Connection, window_id: int) -> list[Entry]:
    rows = await conn.fetch(
        """SELECT * FROM draw_entries
           WHERE window_id = $1 AND outcome = 'waiting' AND position IS NOT NULL
           ORDER BY position""",
        window_id,
    )
    return [_entry(r) for r in rows]


async def booking_reference(conn: asyncpg.Connection, booking_id: int) -> str | None:
    value = await conn.fetchval("SELECT reference FROM bookings WHERE id = $1", booking_id)
    return str(value) if value is not None else None
