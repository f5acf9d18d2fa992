"""SQL for draws: request windows, their entries, the published draw and the
offers of the draw and of its waiting list; and the waiting lists of instant
services, whose entries are draw entries without a window (migration 0110).
Functions take a connection; callers own the transaction."""

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
    # None: an entry of the waiting list of an instant service.
    window_id: int | None
    office_id: str
    service_id: str
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
    # A citizen's request whose contact is not proved yet waits for its
    # code until then; None: proved (or typed by staff), counted at once.
    pending_until: datetime | None = None
    token_hash: bytes | None = None
    # Where its phone messages go: sms | whatsapp | email (e-mail only).
    message_channel: str = "sms"


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    # None: an entry of the waiting list of an instant service.
    window_id: int | None
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
    verified_at: datetime | None = None
    pending_until: datetime | None = None
    token_hash: bytes | None = None
    created_at: datetime | None = None
    office_id: str = ""
    service_id: str = ""
    message_channel: str = "sms"
    created_by: str = ""
    # Why the service moved its messages off WhatsApp (not_whatsapp_user).
    message_channel_reason: str | None = None


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
        verified_at=r["verified_at"],
        pending_until=r["pending_until"],
        token_hash=bytes(r["token_hash"]) if r["token_hash"] is not None else None,
        created_at=r["created_at"],
        office_id=r["office_id"],
        service_id=r["service_id"],
        message_channel=r["message_channel"],
        created_by=r["created_by"],
        message_channel_reason=r["message_channel_reason"],
    )


# The constraint names of 0050 and 0110, for the refusals they stand for.
ONE_PER_IDENTITY = frozenset(
    {"draw_entries_one_per_document", "draw_entries_one_per_phone", "draw_entries_one_per_email"}
)
ONE_ON_LIST = frozenset(
    {"waitlist_one_per_document", "waitlist_one_per_phone", "waitlist_one_per_email"}
)
WINDOW_CLOSED = "draw_window_closed"
INSTANT_ONLY = "waitlist_instant_only"
DRAW_ONLY = "draw_only"


def constraint_of(exc: BaseException) -> str | None:
    return getattr(exc, "constraint_name", None)


def draw_only_refused(exc: BaseException) -> bool:
    """Whether `exc` is the database refusing a seat of a draw service taken
    other than by an offer (migration 0050)."""
    return isinstance(exc, asyncpg.CheckViolationError) and constraint_of(exc) == DRAW_ONLY


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
    conn: asyncpg.Connection, window_id: int, *, lock: bool = False, share: bool = False
) -> Window | None:
    suffix = " FOR UPDATE" if lock else " FOR SHARE" if share else ""
    row = await conn.fetchrow("SELECT * FROM draw_windows WHERE id = $1" + suffix, window_id)
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
                                     days, parts, created_by, created_at, verified_at,
                                     pending_until, token_hash, office_id, service_id,
                                     message_channel)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                   CASE WHEN $15::timestamptz IS NULL THEN $14::timestamptz END, $15, $16,
                   $17, $18, $19)""",
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
        new.pending_until,
        new.token_hash,
        new.office_id,
        new.service_id,
        new.message_channel,
    )


# The entries a draw counts: proved, still asking (not withdrawn nor lapsed).
_COUNTED = "verified_at IS NOT NULL AND outcome = 'waiting'"


async def entry_ids(conn: asyncpg.Connection, window_id: int) -> list[str]:
    rows = await conn.fetch(
        f"SELECT id FROM draw_entries WHERE window_id = $1 AND {_COUNTED}", window_id
    )
    return [r["id"] for r in rows]


async def count_entries(conn: asyncpg.Connection, window_ids: list[int]) -> dict[int, int]:
    """Counted entries of each window (drawn ones: those the draw ranked)."""
    rows = await conn.fetch(
        f"""SELECT window_id, count(*) AS n FROM draw_entries
            WHERE window_id = ANY($1::bigint[]) AND (position IS NOT NULL OR {_COUNTED})
            GROUP BY window_id""",
        window_ids,
    )
    return {r["window_id"]: r["n"] for r in rows}


async def lapse_pending(
    conn: asyncpg.Connection, window_id: int, now: datetime | None = None
) -> int:
    """Requests whose code did not come back in time (all of them when `now`
    is None: the window closes) lapse; their identity may ask again."""
    done = await conn.execute(
        """UPDATE draw_entries SET outcome = 'lapsed'
           WHERE window_id = $1 AND verified_at IS NULL AND outcome = 'waiting'
             AND ($2::timestamptz IS NULL OR pending_until <= $2)""",
        window_id,
        now,
    )
    return int(done.split()[-1])


# Waiting lists of instant services ---------------------------------------------------


async def lapse_waitlist(
    conn: asyncpg.Connection,
    now: datetime,
    office_id: str | None = None,
    service_id: str | None = None,
) -> int:
    """Entries of waiting lists (of one service, or all) that no longer ask:
    their code did not come back in time, or their last acceptable day is
    past in the office's zone. Their identity may join again."""
    done = await conn.execute(
        """UPDATE draw_entries e SET outcome = 'lapsed'
           FROM offices o
           WHERE e.window_id IS NULL AND e.outcome = 'waiting' AND o.id = e.office_id
             AND ($2::text IS NULL OR (e.office_id = $2 AND e.service_id = $3))
             AND ((e.verified_at IS NULL AND e.pending_until <= $1)
                  OR (SELECT max(d) FROM unnest(e.days) AS d)
                     < ($1::timestamptz AT TIME ZONE o.timezone)::date)""",
        now,
        office_id,
        service_id,
    )
    return int(done.split()[-1])


async def next_waiting(
    conn: asyncpg.Connection,
    office_id: str,
    service_id: str,
    day: date,
    part: PartOfDay,
    skip: list[str],
) -> Entry | None:
    """The first entry of a service's waiting list, in order of joining, that
    is proved and can come on `day` in `part` of it, locked: a second seat
    freed at the same moment waits for this one's offer, then finds the next
    entry. `skip`: entries already tried for this seat."""
    row = await conn.fetchrow(
        """SELECT * FROM draw_entries
           WHERE window_id IS NULL AND office_id = $1 AND service_id = $2
             AND outcome = 'waiting' AND verified_at IS NOT NULL
             AND $3::date = ANY(days) AND $4::text = ANY(parts)
             AND NOT (id = ANY($5::text[]))
           ORDER BY created_at, seq
           LIMIT 1
           FOR UPDATE""",
        office_id,
        service_id,
        day,
        part,
        skip,
    )
    return _entry(row) if row else None


async def waitlist(conn: asyncpg.Connection, office_id: str, service_id: str) -> list[Entry]:
    """A service's waiting list, in order of joining: the proved entries
    waiting or holding an offer."""
    rows = await conn.fetch(
        """SELECT * FROM draw_entries
           WHERE window_id IS NULL AND office_id = $1 AND service_id = $2
             AND outcome IN ('waiting', 'offered') AND verified_at IS NOT NULL
           ORDER BY created_at, seq""",
        office_id,
        service_id,
    )
    return [_entry(r) for r in rows]


async def add_token(
    conn: asyncpg.Connection, entry_id: str, token_hash: bytes, outbox_id: int, now: datetime
) -> None:
    await conn.execute(
        """INSERT INTO draw_entry_tokens (token_hash, entry_id, outbox_id, created_at)
           VALUES ($1, $2, $3, $4)""",
        token_hash,
        entry_id,
        outbox_id,
        now,
    )


async def token_opens(conn: asyncpg.Connection, entry_id: str, token_hash: bytes) -> bool:
    return bool(
        await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM draw_entry_tokens
                              WHERE token_hash = $1 AND entry_id = $2)""",
            token_hash,
            entry_id,
        )
    )


async def anonymise_ended(
    conn: asyncpg.Connection, cutoff: datetime, name: str, now: datetime
) -> int:
    """Remove the personal data of the requests of windows whose period
    ended before `cutoff` (of waiting lists' entries whose last day did),
    and of their messages; ids, wishes, places and outcomes stay for the
    public record."""
    ids = [
        r["id"]
        for r in await conn.fetch(
            """SELECT e.id FROM draw_entries e LEFT JOIN draw_windows w ON w.id = e.window_id
               WHERE e.anonymised_at IS NULL
                 AND CASE WHEN e.window_id IS NULL
                          -- A waiting list's entry: once its last day is that old.
                          THEN (SELECT max(d) FROM unnest(e.days) AS d) < $1::date
                          ELSE w.period_end < $1 END
               FOR UPDATE OF e SKIP LOCKED""",
            cutoff,
        )
    ]
    if not ids:
        return 0
    await conn.execute(
        """UPDATE draw_entries SET citizen_name = $2, phone = NULL, email = NULL,
                                   document_number = NULL, document_hash = NULL,
                                   phone_hash = NULL, email_hash = NULL, token_hash = NULL,
                                   anonymised_at = $3
           WHERE id = ANY($1::text[])""",
        ids,
        name,
        now,
    )
    await conn.execute(
        """UPDATE outbox SET
               status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END,
               status_reason = CASE WHEN status = 'pending' THEN 'erased' ELSE status_reason END,
               recipient = '', body = NULL, updated_at = $2
           WHERE draw_entry_id = ANY($1::text[])""",
        ids,
        now,
    )
    await conn.execute("DELETE FROM draw_entry_tokens WHERE entry_id = ANY($1::text[])", ids)
    await conn.execute("DELETE FROM contact_checks WHERE draw_entry_id = ANY($1::text[])", ids)
    return len(ids)


async def mark_told(conn: asyncpg.Connection, window_id: int, now: datetime) -> bool:
    """Record that a drawn window's unserved entries were told; False when
    they already were."""
    done = await conn.fetchval(
        """UPDATE draw_windows SET waiting_told_at = $2
           WHERE id = $1 AND state = 'drawn' AND waiting_told_at IS NULL RETURNING true""",
        window_id,
        now,
    )
    return bool(done)


async def mark_verified(conn: asyncpg.Connection, entry_id: str, now: datetime) -> None:
    await conn.execute(
        """UPDATE draw_entries SET verified_at = $2
           WHERE id = $1 AND verified_at IS NULL AND outcome = 'waiting'""",
        entry_id,
        now,
    )


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
    """The published entries: those the draw ranked, or before it those it
    will count."""
    rows = await conn.fetch(
        f"""SELECT * FROM draw_entries
            WHERE window_id = $1 AND (position IS NOT NULL OR {_COUNTED})
            ORDER BY position, id""",
        window_id,
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


async def set_message_channel(
    conn: asyncpg.Connection, entry_id: str, channel: str, reason: str | None
) -> None:
    """Where a request's phone messages go from now on, and why when the
    service moved them (`reason`)."""
    await conn.execute(
        """UPDATE draw_entries SET message_channel = $2, message_channel_reason = $3
           WHERE id = $1""",
        entry_id,
        channel,
        reason,
    )


async def set_offer(
    conn: asyncpg.Connection, entry_id: str, booking_id: int, expires_at: datetime
) -> bool:
    done = await conn.fetchval(
        """UPDATE draw_entries SET outcome = 'offered', booking_id = $2, offer_expires_at = $3
           WHERE id = $1 AND outcome = 'waiting' RETURNING true""",
        entry_id,
        booking_id,
        expires_at,
    )
    return bool(done)


async def end_offer(conn: asyncpg.Connection, booking_id: int, outcome: str) -> bool:
    """The open offer held by `booking_id` ends with `outcome` (its booking
    expired or was cancelled); False when it was no open offer."""
    done = await conn.fetchval(
        """UPDATE draw_entries SET outcome = $2
           WHERE booking_id = $1 AND outcome = 'offered' RETURNING true""",
        booking_id,
        outcome,
    )
    return bool(done)


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


async def skip_pending_messages(
    conn: asyncpg.Connection, window_id: int, reason: str, now: datetime
) -> int:
    """Skip, with `reason`, the pending messages of a window's entries and
    of their offers (the demo's: its people do not exist)."""
    done = await conn.execute(
        """UPDATE outbox o SET status = 'skipped', status_reason = $2, updated_at = $3
           FROM draw_entries e
           WHERE e.window_id = $1 AND o.status = 'pending'
             AND (o.draw_entry_id = e.id OR o.booking_id = e.booking_id)""",
        window_id,
        reason,
        now,
    )
    return int(done.split()[-1])
