"""SQL for slots and counter cells: materialisation, availability, and the
guarded seat counters.

`taken` (of a slot and of the counter cells a pooled slot covers) only moves
through take_seat / retake_seat / release_seat, called in the same transaction
as the booking row that holds the seat; a trigger (0007) refuses any increase
past capacity whatever the statement.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import asyncpg

from service.domain.calendar import (
    CELL,
    CounterCell,
    SlotPlan,
    cells_covering,
    local_date,
    local_day_bounds,
    plan_counters,
    plan_slots,
)
from service.domain.holidays import holidays_for
from service.domain.models import Booking, Office, Slot
from service.store import mobile_days as mobile_day_store
from service.store import offices as office_store


def _slot(r: asyncpg.Record) -> Slot:
    return Slot(
        id=r["id"],
        office_id=r["office_id"],
        service_id=r["service_id"],
        starts_at=r["starts_at"],
        ends_at=r["ends_at"],
        capacity=r["capacity"],
        taken=r["taken"],
        pooled=r["pooled"],
        free=r.get("free"),
        mobile_day_id=r.get("mobile_day_id"),
    )


# The cells an appointment covers, for a slot row aliased `s`.
_COVERED = """c.office_id = s.office_id AND c.mobile_day_id IS NOT DISTINCT FROM s.mobile_day_id
               AND c.starts_at > s.starts_at - $CELL::interval AND c.starts_at < s.ends_at"""
# Seats left on a slot: its own, and for a pooled slot the fewest counters
# free in any cell it covers.
_FREE = f"""CASE WHEN s.pooled THEN LEAST(s.capacity - s.taken, COALESCE(
               (SELECT min(c.capacity - c.taken) FROM counter_cells c WHERE {_COVERED}), 0))
           ELSE s.capacity - s.taken END"""


# The constraint name refuse_oversell (0007) raises under: the trigger that
# backs up the guards below, whatever statement tried to oversell.
OVERSELL = "no_oversell"


def oversell_refused(exc: BaseException) -> bool:
    """Whether `exc` is the database refusing a seat past capacity."""
    return isinstance(exc, asyncpg.CheckViolationError) and exc.constraint_name == OVERSELL


def _with_cell(sql: str, n: int) -> str:
    """Bind the cell size as parameter $n (asyncpg wants numbered parameters)."""
    return sql.replace("$CELL", f"${n}")


async def get_slot(conn: asyncpg.Connection, slot_id: int) -> Slot | None:
    row = await conn.fetchrow("SELECT * FROM slots WHERE id = $1", slot_id)
    return _slot(row) if row else None


async def take_seat(
    conn: asyncpg.Connection,
    slot_id: int,
    office_id: str,
    service_id: str,
    earliest: datetime,
    latest: datetime,
    now: datetime | None = None,
) -> Slot | None:
    """Take one seat, or None when the slot is full, unknown or out of window.

    The guard sits in the statement itself: concurrent callers queue on the row
    lock and each re-checks `taken < capacity` against the committed value, so
    no interleaving can oversell. A mobile day's slot also waits for the
    instant its bookings open (`now` past it; without `now`, never).
    """
    row = await conn.fetchrow(
        """UPDATE slots SET taken = taken + 1
           WHERE id = $1 AND office_id = $2 AND service_id = $3
             AND taken < capacity AND starts_at >= $4 AND starts_at <= $5
             AND (mobile_day_id IS NULL OR EXISTS (
                 SELECT 1 FROM mobile_days m
                 WHERE m.id = slots.mobile_day_id AND m.booking_opens_at <= $6::timestamptz))
           RETURNING *""",
        slot_id,
        office_id,
        service_id,
        earliest,
        latest,
        now,
    )
    if row is None:
        return None
    slot = _slot(row)
    return slot if await _counters_for(conn, slot, slot.starts_at, slot.ends_at) else None


async def _counters_for(
    conn: asyncpg.Connection, slot: Slot, starts_at: datetime, ends_at: datetime
) -> bool:
    """After a seat was taken on `slot`: a pooled slot also needs a shared
    counter for [starts_at, ends_at); without one the seat is given back."""
    if slot.pooled and not await _take_counters(
        conn, slot.office_id, slot.mobile_day_id, starts_at, ends_at
    ):
        await conn.execute("UPDATE slots SET taken = taken - 1 WHERE id = $1", slot.id)
        return False
    return True


async def _take_counters(
    conn: asyncpg.Connection,
    office_id: str,
    mobile_day_id: int | None,
    starts_at: datetime,
    ends_at: datetime,
) -> bool:
    """One shared counter in every cell the appointment covers, or none.

    The trigger refuses a full cell; the savepoint undoes the cells already
    taken by this statement so the caller's transaction goes on.
    """
    try:
        async with conn.transaction():
            done: str = await conn.execute(
                """UPDATE counter_cells SET taken = taken + 1
                   WHERE office_id = $1 AND starts_at > $2::timestamptz - $4::interval
                     AND starts_at < $3 AND mobile_day_id IS NOT DISTINCT FROM $5""",
                office_id,
                starts_at,
                ends_at,
                CELL,
                mobile_day_id,
            )
            # Every covered cell must exist: a slot outside the counters'
            # hours cannot be sold.
            if done != f"UPDATE {cells_covering(starts_at, ends_at)}":
                raise _NoCounter
    except (asyncpg.CheckViolationError, _NoCounter):
        return False
    return True


class _NoCounter(Exception):
    pass


async def _release_counters(
    conn: asyncpg.Connection,
    office_id: str,
    mobile_day_id: int | None,
    starts_at: datetime,
    ends_at: datetime,
) -> None:
    await conn.execute(
        """UPDATE counter_cells SET taken = taken - 1
           WHERE office_id = $1 AND starts_at > $2::timestamptz - $4::interval
             AND starts_at < $3 AND taken > 0 AND mobile_day_id IS NOT DISTINCT FROM $5""",
        office_id,
        starts_at,
        ends_at,
        CELL,
        mobile_day_id,
    )


async def retake_seat(conn: asyncpg.Connection, booking: Booking) -> bool:
    """Give a seat back to a booking that had one (no-show undone); guarded
    like take_seat, without the booking window."""
    row = await conn.fetchrow(
        "UPDATE slots SET taken = taken + 1 WHERE id = $1 AND taken < capacity RETURNING *",
        booking.slot_id,
    )
    if row is None:
        return False
    return await _counters_for(conn, _slot(row), booking.starts_at, booking.ends_at)


async def lock_for_move(conn: asyncpg.Connection, slot_ids: list[int]) -> None:
    """Lock the slots of a move in id order, then their counter cells in time
    order, so that two citizens swapping slots queue instead of deadlocking."""
    await conn.execute(
        "SELECT id FROM slots WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE", slot_ids
    )
    await conn.execute(
        """SELECT 1 FROM counter_cells c
           WHERE EXISTS (SELECT 1 FROM slots s WHERE s.id = ANY($1::bigint[]) AND s.pooled
                         AND c.office_id = s.office_id
                         AND c.mobile_day_id IS NOT DISTINCT FROM s.mobile_day_id
                         AND c.starts_at > s.starts_at - $2::interval AND c.starts_at < s.ends_at)
           ORDER BY c.office_id, c.starts_at FOR UPDATE""",
        slot_ids,
        CELL,
    )


async def release_seat(conn: asyncpg.Connection, booking: Booking) -> None:
    """Free a booking's seat, and its counters by the booking's own times
    (the slot's may have changed since, with the service's duration)."""
    row = await conn.fetchrow(
        """UPDATE slots SET taken = taken - 1 WHERE id = $1 AND taken > 0
           RETURNING pooled, mobile_day_id""",
        booking.slot_id,
    )
    if row is not None and row["pooled"]:
        await _release_counters(
            conn, booking.office_id, row["mobile_day_id"], booking.starts_at, booking.ends_at
        )


async def available(
    conn: asyncpg.Connection,
    office_id: str,
    service_id: str,
    start: datetime,
    end: datetime,
    earliest: datetime,
    latest: datetime,
    mobile_day_id: int | None = None,
) -> list[Slot]:
    """Slots with a free seat starting in [start, end) and inside the booking
    window, at the office itself or at one of its mobile days."""
    rows = await conn.fetch(
        _with_cell(
            f"""SELECT * FROM (
                   SELECT s.*, {_FREE} AS free FROM slots s
                   WHERE s.office_id = $1 AND s.service_id = $2
                     AND s.starts_at >= GREATEST($3::timestamptz, $5::timestamptz)
                     AND s.starts_at < $4 AND s.starts_at <= $6 AND s.taken < s.capacity
                     AND s.mobile_day_id IS NOT DISTINCT FROM $8
               ) t WHERE free > 0 ORDER BY starts_at""",
            7,
        ),
        office_id,
        service_id,
        start,
        end,
        earliest,
        latest,
        CELL,
        mobile_day_id,
    )
    return [_slot(r) for r in rows]


async def slots_between(
    conn: asyncpg.Connection,
    office_id: str,
    service_id: str,
    start: datetime,
    end: datetime,
    mobile_day_id: int | None = None,
) -> list[Slot]:
    """Every slot, full or not, for calendars that show full days as such."""
    rows = await conn.fetch(
        _with_cell(
            f"""SELECT s.*, {_FREE} AS free FROM slots s
                WHERE s.office_id = $1 AND s.service_id = $2
                  AND s.starts_at >= $3 AND s.starts_at < $4 AND s.capacity > 0
                  AND s.mobile_day_id IS NOT DISTINCT FROM $6
                ORDER BY s.starts_at""",
            5,
        ),
        office_id,
        service_id,
        start,
        end,
        CELL,
        mobile_day_id,
    )
    return [_slot(r) for r in rows]


async def _of_site(
    conn: asyncpg.Connection,
    table: str,
    columns: str,
    office_id: str,
    start: datetime,
    end: datetime,
    mobile_day_id: int | None,
) -> list[asyncpg.Record]:
    """The rows of `table` (slots or counter_cells, our own names) starting in
    [start, end) at the office itself or at one of its mobile days."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {columns} FROM {table}
            WHERE office_id = $1 AND starts_at >= $2 AND starts_at < $3
              AND mobile_day_id IS NOT DISTINCT FROM $4""",
        office_id,
        start,
        end,
        mobile_day_id,
    )
    return rows


async def apply_plan(
    conn: asyncpg.Connection,
    office_id: str,
    plans: list[SlotPlan],
    start: datetime,
    end: datetime,
    mobile_day_id: int | None = None,
) -> None:
    """Make the slots in [start, end) of the office itself, or of one of its
    mobile days, match `plans`, never losing a booking.

    Planned slots are inserted or get their new capacity; slots no longer
    planned drop to capacity 0 and are deleted only when no booking, active or
    not, points at them. `taken` is never written here.

    The slots there are read once and compared with the plan here, by their
    (service, start). Only those that change are locked, and first, in id
    order: a move locks its two slots in that order, and rewriting them in
    another (by time: after a closed day was reopened, its new slots have
    newer ids than the booked ones kept) was a deadlock. Neither an upsert
    (ON CONFLICT DO UPDATE locks every row it meets, changed or not) nor an
    anti-join in SQL (on statistics older than the slots just written, a
    nested loop of planned rows times slots: minutes) chooses them. Only a
    change under the office's change lock writes these columns, so they
    cannot move between the read and the lock.
    """
    existing = {
        (r["service_id"], r["starts_at"]): r
        for r in await _of_site(
            conn,
            "slots",
            "id, service_id, starts_at, ends_at, capacity, pooled",
            office_id,
            start,
            end,
            mobile_day_id,
        )
    }
    new: list[SlotPlan] = []
    changed: list[tuple[int, SlotPlan]] = []
    for plan in plans:
        there = existing.pop((plan.service_id, plan.starts_at), None)
        if there is None:
            new.append(plan)
        elif (there["ends_at"], there["capacity"], there["pooled"]) != (
            plan.ends_at,
            plan.capacity,
            plan.pooled,
        ):
            changed.append((there["id"], plan))
    # What is left in `existing` is no longer planned.
    stale = [r["id"] for r in existing.values()]
    await conn.execute(
        "SELECT 1 FROM slots WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE",
        sorted([slot_id for slot_id, _ in changed] + stale),
    )
    # One statement each, whatever the number of slots: arrays in (a
    # row-by-row executemany took seconds per office).
    await conn.execute(
        """INSERT INTO slots (office_id, service_id, starts_at, ends_at, capacity, pooled,
                              mobile_day_id)
           SELECT $6, p.service_id, p.starts_at, p.ends_at, p.capacity, p.pooled, $7::bigint
           FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::integer[],
                       $5::boolean[]) AS p(service_id, starts_at, ends_at, capacity, pooled)
           ON CONFLICT (office_id, service_id, starts_at, mobile_day_id) DO NOTHING""",
        [p.service_id for p in new],
        [p.starts_at for p in new],
        [p.ends_at for p in new],
        [p.capacity for p in new],
        [p.pooled for p in new],
        office_id,
        mobile_day_id,
    )
    await conn.execute(
        """UPDATE slots SET capacity = u.capacity, ends_at = u.ends_at,
               -- A slot whose bookings hold counters (or not) keeps its kind
               -- until they are gone, so releases match what was taken.
               pooled = CASE WHEN slots.taken = 0 THEN u.pooled ELSE slots.pooled END
           FROM unnest($1::bigint[], $2::timestamptz[], $3::integer[], $4::boolean[])
                AS u(id, ends_at, capacity, pooled)
           WHERE slots.id = u.id""",
        [slot_id for slot_id, _ in changed],
        [p.ends_at for _, p in changed],
        [p.capacity for _, p in changed],
        [p.pooled for _, p in changed],
    )
    await conn.execute(
        "UPDATE slots SET capacity = 0 WHERE id = ANY($1::bigint[]) AND capacity <> 0", stale
    )
    await conn.execute(
        """DELETE FROM slots WHERE id = ANY($1::bigint[]) AND taken = 0
           AND NOT EXISTS (SELECT 1 FROM bookings b WHERE b.slot_id = slots.id)""",
        stale,
    )


async def regenerate_office(
    conn: asyncpg.Connection, office: Office, now: datetime, horizon_days: int
) -> int:
    """Refresh holiday closures and slots from today (office zone) to the horizon.

    Returns the number of slots planned. Past slots are left as they are.
    """
    # Serialise with a manager's change of hours or closures, which locks the
    # same row: otherwise this run could write back capacities read before it.
    await office_store.lock_for_change(conn, office.id)
    zone = office.zone
    first = local_date(now, zone)
    last = first + timedelta(days=horizon_days)
    await office_store.sync_holidays(
        conn, office.id, holidays_for(office.holiday_countries, first, last), first, last
    )
    services = await office_store.list_services(conn, office.id)
    rules = await office_store.hours_rules(conn, office.id)
    closed = await office_store.closed_days(conn, office.id, first, last)
    plans = plan_slots(
        rules,
        closed,
        zone,
        {s.id: timedelta(minutes=s.duration_minutes) for s in services},
        first,
        last,
    )
    # Only slots that have not started yet are replanned.
    upcoming = [p for p in plans if p.starts_at > now]
    end = _day_start(last + timedelta(days=1), office)
    await apply_plan(conn, office.id, upcoming, now, end)
    cells = [c for c in plan_counters(rules, closed, zone, first, last) if c.starts_at > now]
    await apply_counters(conn, office.id, cells, now, end)
    # Its mobile days follow the office's services (one closed, a length
    # changed), in the same transaction.
    return len(upcoming) + await mobile_day_store.regenerate_office(conn, office, now)


async def apply_counters(
    conn: asyncpg.Connection,
    office_id: str,
    cells: list[CounterCell],
    start: datetime,
    end: datetime,
    mobile_day_id: int | None = None,
) -> None:
    """Make the counter cells in [start, end) match the plan, like apply_plan
    (read once, compared here, only the cells that change locked first: in
    time order, as a booking takes them).

    A new cell starts with the pooled bookings already covering it (a cell
    can appear under existing bookings when hours widen, or on a database that
    had bookings before counters were pooled), so `taken` never understates.
    """
    existing = {
        r["starts_at"]: r["capacity"]
        for r in await _of_site(
            conn, "counter_cells", "starts_at, capacity", office_id, start, end, mobile_day_id
        )
    }
    new: list[CounterCell] = []
    changed: list[CounterCell] = []
    for cell in cells:
        capacity = existing.pop(cell.starts_at, None)
        if capacity is None:
            new.append(cell)
        elif capacity != cell.capacity:
            changed.append(cell)
    stale = list(existing)
    await conn.execute(
        """SELECT 1 FROM counter_cells
           WHERE office_id = $1 AND mobile_day_id IS NOT DISTINCT FROM $2
             AND starts_at = ANY($3::timestamptz[])
           ORDER BY starts_at FOR UPDATE""",
        office_id,
        mobile_day_id,
        [c.starts_at for c in changed] + stale,
    )
    # The office's pooled bookings are read once, not once a cell: a count
    # joined through `slots` for each cell let the planner, on statistics
    # older than the slots just written, walk every slot of the office for
    # each of thousands of cells (`mawid seed` ran for minutes at some hours).
    # A booking lasts at most 480 minutes (services.duration_minutes), so a
    # day before the first new cell bounds the bookings that can cover one.
    await conn.execute(
        """WITH pooled AS MATERIALIZED (
               SELECT b.starts_at, b.ends_at FROM bookings b JOIN slots s ON s.id = b.slot_id
               WHERE b.office_id = $3 AND s.pooled
                 AND s.mobile_day_id IS NOT DISTINCT FROM $5::bigint
                 AND b.status IN ('held', 'confirmed', 'checked_in')
                 AND b.starts_at >= (SELECT min(c) FROM unnest($1::timestamptz[]) c)
                                    - interval '1 day'
                 AND b.starts_at < (SELECT max(c) FROM unnest($1::timestamptz[]) c)
                                   + $4::interval)
           INSERT INTO counter_cells (office_id, starts_at, capacity, taken, mobile_day_id)
           SELECT $3, p.starts_at, p.capacity, (
                      SELECT count(*) FROM pooled b
                      WHERE b.starts_at < p.starts_at + $4::interval AND b.ends_at > p.starts_at),
                  $5::bigint
           FROM unnest($1::timestamptz[], $2::integer[]) AS p(starts_at, capacity)
           ON CONFLICT (office_id, starts_at, mobile_day_id) DO NOTHING""",
        [c.starts_at for c in new],
        [c.capacity for c in new],
        office_id,
        CELL,
        mobile_day_id,
    )
    await conn.execute(
        """UPDATE counter_cells SET capacity = u.capacity
           FROM unnest($3::timestamptz[], $4::integer[]) AS u(starts_at, capacity)
           WHERE counter_cells.office_id = $1
             AND counter_cells.mobile_day_id IS NOT DISTINCT FROM $2
             AND counter_cells.starts_at = u.starts_at""",
        office_id,
        mobile_day_id,
        [c.starts_at for c in changed],
        [c.capacity for c in changed],
    )
    gone = """office_id = $1 AND mobile_day_id IS NOT DISTINCT FROM $2
              AND starts_at = ANY($3::timestamptz[])"""
    await conn.execute(
        f"UPDATE counter_cells SET capacity = 0 WHERE capacity <> 0 AND {gone}",
        office_id,
        mobile_day_id,
        stale,
    )
    await conn.execute(
        f"DELETE FROM counter_cells WHERE taken = 0 AND {gone}", office_id, mobile_day_id, stale
    )


def _day_start(day: date, office: Office) -> datetime:
    return local_day_bounds(day, office.zone)[0]


async def extend_all_offices(
    conn: asyncpg.Connection, now: datetime, horizon_days: int = 84
) -> int:
    """The daily worker cron: keep every office's slots materialised ahead."""
    total = 0
    for office in await office_store.list_offices(conn):
        async with conn.transaction():
            total += await regenerate_office(conn, office, now, horizon_days)
    return total


async def over_counters(conn: asyncpg.Connection, office_id: str, after: datetime) -> set[str]:
    """References of the bookings beyond the office's shared counters after
    counters were lowered: in each overfull cell, the latest-made ones (a
    citizen already checked in keeps their counter)."""
    rows = await conn.fetch(
        """WITH over AS (
               SELECT starts_at, capacity FROM counter_cells
               WHERE office_id = $1 AND mobile_day_id IS NULL AND starts_at > $2
                 AND taken > capacity
           ), covering AS (
               SELECT o.capacity, b.reference, row_number() OVER (
                          PARTITION BY o.starts_at
                          ORDER BY b.status <> 'checked_in', b.created_at, b.id) AS n
               FROM over o
               JOIN bookings b ON b.office_id = $1
                    AND b.status IN ('held', 'confirmed', 'checked_in')
                    AND b.starts_at < o.starts_at + $3::interval AND b.ends_at > o.starts_at
               JOIN slots s ON s.id = b.slot_id AND s.pooled AND s.mobile_day_id IS NULL
           )
           SELECT DISTINCT reference FROM covering WHERE n > capacity""",
        office_id,
        after,
        CELL,
    )
    return {r["reference"] for r in rows}
