"""Demo data of fair allocation: one service of the Paris consulate gives
its seats by draw, with a window already closed and drawn over a few hundred
demo requests (offers made, the rest on the waiting list) and a window open
for requests, so that `make run` shows both states and the public record.

Written through the draw's own use cases (service.draw), as a manager and
the counter would; idempotent: nothing is added once the service has a
window.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from service import draw
from service.domain.calendar import local_date
from service.domain.draw import WindowPlan
from service.domain.validation import RawDetails
from service.store import draws as store
from service.store.audit import Actor

OFFICE, SERVICE = "consulate-paris", "power-of-attorney"
DRAWN_ENTRIES = 300
OPEN_ENTRIES = 12
_COUNTER = Actor("staff", "demo")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _person(n: int) -> RawDetails:
    # Letters only, like a name: "Demo Baa", "Demo Bab", ...
    name = "Demo " + "BCDFGHKLMNRSTZ"[n % 14] + _LETTERS[n // 14 % 26] + _LETTERS[n // 364 % 26]
    return RawDetails(
        name=name,
        email=f"draw{n}@example.org",
        language=("fr", "ar", "en")[n % 3],
        document_number=f"DM{n:06d}",
    )


async def seed_demo_draws(
    pool: asyncpg.Pool, now: datetime, *, secret_key: str, offer_hours: int
) -> bool:
    """Returns False when the demo windows exist already."""
    async with pool.acquire() as conn:
        if await store.mode_of(conn, OFFICE, SERVICE) is None:
            return False
        if await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM draw_windows WHERE office_id = $1 AND service_id = $2)",
            OFFICE,
            SERVICE,
        ):
            return False
        zone = ZoneInfo(await conn.fetchval("SELECT timezone FROM offices WHERE id = $1", OFFICE))
    today = local_date(now, zone)
    await draw.set_mode(pool, OFFICE, SERVICE, "draw", now)
    # Opened two weeks ago, closed yesterday, for one weekday morning next
    # week: scarce, as the seats a draw is for are.
    opened = now - timedelta(days=14)
    day = today + timedelta(days=7)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    drawn = await draw.open_window(
        pool, OFFICE, SERVICE, WindowPlan(opened, now - timedelta(days=1), day, day),
        created_by="staff:demo", now=opened,
    )  # fmt: skip
    for n in range(DRAWN_ENTRIES):
        await draw.request(
            pool, drawn.id, _person(n), [day], ["morning"], secret_key=secret_key,
            now=opened + timedelta(minutes=n), actor=_COUNTER,
        )  # fmt: skip
    await draw.tick(pool, now, offer_hours=offer_hours, secret_key=secret_key)
    # Its offers and "not served" notices have nobody to reach: they end
    # skipped (a reason, never lost) instead of queueing ahead of real ones.
    async with pool.acquire() as conn:
        await store.skip_pending_messages(conn, drawn.id, "demo", now)
    # Open now until next week, for the slots of the month after.
    window = await draw.open_window(
        pool, OFFICE, SERVICE,
        WindowPlan(now, now + timedelta(days=7), today + timedelta(days=30),
                   today + timedelta(days=34)),
        created_by="staff:demo", now=now,
    )  # fmt: skip
    for n in range(DRAWN_ENTRIES, DRAWN_ENTRIES + OPEN_ENTRIES):
        await draw.request(
            pool, window.id, _person(n), [window.first_day, window.last_day], ["morning"],
            secret_key=secret_key, now=now, actor=_COUNTER,
        )  # fmt: skip
    # Nor do their receipts ("received") have anybody to reach.
    async with pool.acquire() as conn:
        await store.skip_pending_messages(conn, window.id, "demo", now)
    return True
