"""The daily housekeeping jobs: expired sessions and stale login failures go,
and every office's slots are kept planned up to the horizon."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from service.config import Settings
from service.domain.staff import THROTTLE_WINDOW
from service.worker import jobs
from tests.fixtures.office import make_booking


async def test_purge_expired_keeps_live_sessions(
    settings: Settings, pool: asyncpg.Pool, clock: Any
) -> None:
    now = clock()
    async with pool.acquire() as conn:
        staff_id = await conn.fetchval("SELECT min(id) FROM staff")
        assert staff_id is not None, "the demo seed creates staff"
        for name, expires in (
            (b"old", now - timedelta(minutes=1)),
            (b"live", now + timedelta(hours=1)),
        ):
            await conn.execute(
                "INSERT INTO staff_sessions (id_hash, staff_id, created_at, last_seen_at,"
                " expires_at) VALUES ($1, $2, $3, $3, $4)",
                name,
                staff_id,
                now - timedelta(hours=3),
                expires,
            )
        await conn.execute(
            "INSERT INTO login_failures (key_hash, at) VALUES ('a', $1), ('b', $2)",
            now - THROTTLE_WINDOW - timedelta(minutes=1),
            now - THROTTLE_WINDOW + timedelta(minutes=1),
        )
        await conn.execute(
            "INSERT INTO form_keys (key_hash, created_at) VALUES ('old', $1), ('new', $2)",
            now - timedelta(days=8),
            now - timedelta(days=1),
        )
    state = await jobs.build_state(settings, pool=pool, clock=clock)
    assert await jobs.purge_expired({jobs.STATE: state}) == 1
    async with pool.acquire() as conn:
        sessions = [
            bytes(r["id_hash"]) for r in await conn.fetch("SELECT id_hash FROM staff_sessions")
        ]
        failures = [
            bytes(r["key_hash"]) for r in await conn.fetch("SELECT key_hash FROM login_failures")
        ]
        keys = [bytes(r["key_hash"]) for r in await conn.fetch("SELECT key_hash FROM form_keys")]
    assert sessions == [b"live"] and failures == [b"b"] and keys == [b"new"]


async def _last_planned_days(pool: asyncpg.Pool, table: str) -> dict[str, date]:
    """Each office's last day with a slot (or a counter cell), in its zone."""
    rows = await pool.fetch(
        f"""SELECT o.id, o.timezone, max(x.starts_at) AS last
            FROM {table} x JOIN offices o ON o.id = x.office_id
            WHERE x.capacity > 0 GROUP BY o.id, o.timezone"""
    )
    return {r["id"]: r["last"].astimezone(ZoneInfo(r["timezone"])).date() for r in rows}


async def _slots(pool: asyncpg.Pool) -> set[tuple[Any, ...]]:
    rows = await pool.fetch("SELECT id, starts_at, capacity, taken, pooled FROM slots")
    return {tuple(r) for r in rows}


async def test_extend_slots_plans_every_office_up_to_the_horizon_and_keeps_bookings(
    settings: Settings, pool: asyncpg.Pool, clock: Any
) -> None:
    booked = await make_booking(pool, "consulate-paris", "passport")
    slots_before = await _last_planned_days(pool, "slots")
    cells_before = await _last_planned_days(pool, "counter_cells")
    # The seed planned 84 days from Monday 2027-02-01; a week later, the
    # daily job runs on Monday 2027-02-08.
    assert slots_before["consulate-paris"] == date(2027, 4, 26)
    clock.advance(timedelta(days=7))
    assert settings.slot_horizon_days == 84
    state = await jobs.build_state(settings, pool=pool, clock=clock)
    ctx = {jobs.STATE: state}
    try:
        planned = await jobs.extend_slots(ctx)
        slots_after = await _last_planned_days(pool, "slots")
        cells_after = await _last_planned_days(pool, "counter_cells")
        closures = await pool.fetch(
            """SELECT day, source FROM closures
               WHERE office_id = 'consulate-paris' AND day > '2027-04-26' ORDER BY day"""
        )
        upcoming = await pool.fetchval(
            "SELECT count(*) FROM slots WHERE starts_at > $1 AND capacity > 0", clock()
        )
        after_once = await _slots(pool)
        # Daily means every day: a second run the same day changes nothing.
        assert await jobs.extend_slots(ctx) == planned
        assert await _slots(pool) == after_once
    finally:
        await jobs.close_state(state)
    # Every office moved on by the week (Paris: to Monday 2027-05-03, 84
    # days after the new today), slots and shared counters alike.
    assert slots_after["consulate-paris"] == date(2027, 5, 3)
    assert cells_after["consulate-paris"] == date(2027, 5, 3)
    assert set(slots_after) == set(slots_before)
    for office, last in slots_before.items():
        assert last < slots_after[office] <= date(2027, 2, 8) + timedelta(days=84), office
    for office, last in cells_before.items():
        assert last < cells_after[office], office
    # What it returns is what is planned from now on.
    assert planned == upcoming > 0
    # The new days' holidays close the office: 1 May (France and Morocco).
    assert [(r["day"], r["source"]) for r in closures] == [(date(2027, 5, 1), "holiday")]
    # The booking made before keeps its seat.
    seat = await pool.fetchrow("SELECT id, taken FROM slots WHERE id = $1", booked.slot_id)
    assert seat is not None and seat["taken"] == 1
    status = await pool.fetchval("SELECT status FROM bookings WHERE id = $1", booked.id)
    assert status == "confirmed"
