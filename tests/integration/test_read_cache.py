"""The read cache (service.web.readcache) on: what it keeps, for how long at
most, and that a seat gone while it is still shown is refused cleanly.

The cache ages entries by the product clock, here the tests' fixed clock: an
entry read again without the clock moving is the kept one, unless Postgres
notified a change. A change made with triggers off (session_replication_role
= replica) sends no notification, which stands for a notification still on
its way: the page may show it stale, only until READ_CACHE_SECONDS have passed.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.app import create_app
from service.config import Settings
from service.web.readcache import READ_CACHE_KEY, ReadCache
from tests.clock import FakeClock
from tests.fixtures.office import free_slot
from tests.integration.test_booking_api import book, booking_body, snapshot
from tests.integration.test_citizen_pages import details

Client = TestClient  # type: ignore[type-arg]

OFFICE, SERVICE = "consulate-paris", "legalization"
MAX_AGE = timedelta(seconds=1)
PARIS = ZoneInfo("Europe/Paris")


def paris_day(slot: asyncpg.Record) -> str:
    return str(slot["starts_at"].astimezone(PARIS).date().isoformat())


@pytest.fixture
async def cached(
    settings: Settings, pool: asyncpg.Pool, clock: FakeClock
) -> AsyncIterator[tuple[Client, ReadCache]]:
    app = create_app(
        settings.with_(read_cache_seconds=MAX_AGE.total_seconds()), pool=pool, clock=clock
    )
    async with TestClient(TestServer(app)) as client:
        cache = app[READ_CACHE_KEY]
        async with asyncio.timeout(10):
            await cache.up()
        yield client, cache


async def offered(client: Client, day: str) -> dict[int, int]:
    """Slot id -> seats left, as the availability API answers for `day`."""
    resp = await client.get(
        f"/api/v1/offices/{OFFICE}/availability",
        params={"service": SERVICE, "from": day, "to": day},
    )
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return {s["id"]: s["remaining"] for s in body["slots"]}


async def fill_silently(pool: asyncpg.Pool, slot_id: int) -> None:
    """Take every seat left on a slot without any notification."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("UPDATE slots SET taken = capacity WHERE id = $1", slot_id)


async def heard(cache: ReadCache, seen: int) -> None:
    async with asyncio.timeout(10):
        await cache.heard_since(seen)


async def test_a_seat_gone_unnoticed_is_offered_at_most_the_stated_time(
    cached: tuple[Client, ReadCache], pool: asyncpg.Pool, clock: FakeClock
) -> None:
    client, _ = cached
    slot = await free_slot(pool, OFFICE, SERVICE, clock() + timedelta(days=3))
    day = paris_day(slot)
    assert slot["id"] in await offered(client, day)
    await fill_silently(pool, slot["id"])
    # Kept: the change was not announced and the clock has not moved.
    assert slot["id"] in await offered(client, day)
    clock.advance(MAX_AGE / 2)
    assert slot["id"] in await offered(client, day)
    # Past half the bound, a reader alone reads it again (while another
    # reader reads it again, the kept entry is answered up to the bound:
    # test_while_one_reader_reads_again_the_others_get_the_kept_entry_within_the_bound).
    clock.advance(timedelta(milliseconds=1))
    assert slot["id"] not in await offered(client, day)


async def test_a_booking_is_seen_at_once_through_its_notification(
    cached: tuple[Client, ReadCache], pool: asyncpg.Pool, clock: FakeClock
) -> None:
    client, cache = cached
    slot = await free_slot(pool, OFFICE, SERVICE, clock() + timedelta(days=3))
    day = paris_day(slot)
    before = (await offered(client, day))[slot["id"]]
    seen = cache.notifications
    status, body = await book(client, booking_body(slot["id"]))
    assert status == 201, body
    await heard(cache, seen)
    # The clock has not moved: only the notification can have dropped the day.
    after = await offered(client, day)
    assert after.get(slot["id"], 0) == before - 1


async def test_a_manager_edit_is_seen_at_once(
    cached: tuple[Client, ReadCache], pool: asyncpg.Pool
) -> None:
    client, cache = cached
    resp = await client.get(f"/api/v1/offices/{OFFICE}/services")
    names = {s["id"]: s["name"]["fr"] for s in await resp.json()}
    assert names[SERVICE] != "Légalisations et copies"
    seen = cache.notifications
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE services SET name_fr = 'Légalisations et copies' "
            "WHERE office_id = $1 AND id = $2",
            OFFICE,
            SERVICE,
        )
    await heard(cache, seen)
    resp = await client.get(f"/api/v1/offices/{OFFICE}/services")
    names = {s["id"]: s["name"]["fr"] for s in await resp.json()}
    assert names[SERVICE] == "Légalisations et copies"


async def test_a_seat_shown_free_but_gone_gets_the_409_with_alternatives(
    cached: tuple[Client, ReadCache], pool: asyncpg.Pool, clock: FakeClock
) -> None:
    client, _ = cached
    slot = await free_slot(pool, OFFICE, SERVICE, clock() + timedelta(days=3))
    day = slot["starts_at"].astimezone(PARIS).date()
    week = await client.get(
        f"/offices/{OFFICE}/{SERVICE}", params={"day": day.isoformat(), "lang": "fr"}
    )
    assert f"book?slot={slot['id']}" in await week.text()
    form = await (
        await client.get(
            f"/offices/{OFFICE}/{SERVICE}/book", params={"slot": slot["id"], "lang": "fr"}
        )
    ).text()
    await fill_silently(pool, slot["id"])
    # Still shown (within the bound) ...
    week = await client.get(
        f"/offices/{OFFICE}/{SERVICE}", params={"day": day.isoformat(), "lang": "fr"}
    )
    assert f"book?slot={slot['id']}" in await week.text()
    before = await snapshot(pool)
    # ... but the API refuses it,
    status, body = await book(client, booking_body(slot["id"]))
    assert (status, body["error"]) == (409, "slot_full"), body
    # and the form answers 409 with other times, read from Postgres itself.
    resp = await client.post(f"/offices/{OFFICE}/{SERVICE}/book", data=details(form, slot["id"]))
    text = await resp.text()
    assert resp.status == 409, text
    assert "plus disponible" in text
    alternatives = [int(v) for v in re.findall(r'type="radio" name="slot" value="(\d+)"', text)]
    assert alternatives
    assert slot["id"] not in alternatives
    assert await snapshot(pool) == before


async def week_page(client: Client, day: str) -> str:
    resp = await client.get(f"/offices/{OFFICE}/{SERVICE}", params={"day": day, "lang": "fr"})
    assert resp.status == 200
    return await resp.text()


async def test_the_week_page_is_kept_rendered_within_the_bound_and_dropped_on_a_change(
    cached: tuple[Client, ReadCache], pool: asyncpg.Pool, clock: FakeClock
) -> None:
    client, cache = cached
    slot = await free_slot(pool, OFFICE, SERVICE, clock() + timedelta(days=3))
    day = paris_day(slot)
    other = await pool.fetchrow(
        """SELECT id, starts_at FROM slots WHERE office_id = $1 AND service_id = $2 AND id <> $3
             AND starts_at BETWEEN $4 AND $4 + interval '6 hours' AND taken < capacity
           ORDER BY starts_at LIMIT 1""",
        OFFICE, SERVICE, slot["id"], slot["starts_at"],
    )  # fmt: skip
    assert other is not None and paris_day(other) == day
    first = await week_page(client, day)
    assert f"book?slot={slot['id']}" in first
    await fill_silently(pool, slot["id"])
    # The same bytes while the clock stays within the bound and nothing is announced.
    assert await week_page(client, day) == first
    # A booking of another seat that day is announced: the page is rendered
    # again from a fresh read, which no longer offers the silently filled slot.
    seen = cache.notifications
    status, body = await book(client, booking_body(other["id"]))
    assert status == 201, body
    await heard(cache, seen)
    assert f"book?slot={slot['id']}" not in await week_page(client, day)


async def test_a_kept_page_ages_out_after_the_bound(
    cached: tuple[Client, ReadCache], pool: asyncpg.Pool, clock: FakeClock
) -> None:
    client, _ = cached
    slot = await free_slot(pool, OFFICE, SERVICE, clock() + timedelta(days=3))
    day = paris_day(slot)
    assert f"book?slot={slot['id']}" in await week_page(client, day)
    await fill_silently(pool, slot["id"])
    clock.advance(MAX_AGE / 2)
    assert f"book?slot={slot['id']}" in await week_page(client, day)
    clock.advance(timedelta(milliseconds=1))
    assert f"book?slot={slot['id']}" not in await week_page(client, day)
    # Each language has its own page.
    resp = await client.get(f"/offices/{OFFICE}/{SERVICE}", params={"day": day, "lang": "ar"})
    assert resp.headers["Content-Language"] == "ar" and 'lang="ar"' in await resp.text()


async def slots_read_waiting(pool: asyncpg.Pool) -> None:
    """Until a read of the slots waits for the lock the test holds."""
    async with asyncio.timeout(10):
        while not await pool.fetchval(  # noqa: ASYNC110 - another process's lock
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'slots'::regclass"
        ):
            await asyncio.sleep(0.01)


async def offers_on_week_page(client: Client, day: str, slot_id: int) -> bool:
    return f"book?slot={slot_id}" in await week_page(client, day)


async def offers_in_api(client: Client, day: str, slot_id: int) -> bool:
    return slot_id in await offered(client, day)


@pytest.mark.parametrize("offers", [offers_in_api, offers_on_week_page])
async def test_while_one_reader_reads_again_the_others_get_the_kept_entry_within_the_bound(
    offers: Callable[[Client, str, int], Awaitable[bool]],
    cached: tuple[Client, ReadCache],
    pool: asyncpg.Pool,
    clock: FakeClock,
) -> None:
    client, _ = cached
    slot = await free_slot(pool, OFFICE, SERVICE, clock() + timedelta(days=3))
    day = paris_day(slot)
    assert await offers(client, day, slot["id"])
    await fill_silently(pool, slot["id"])
    clock.advance(MAX_AGE * 3 / 4)
    async with pool.acquire() as locker, locker.transaction():
        # The slots cannot be read until this transaction ends: the reader
        # past half the entry's time is stuck reading them again.
        await locker.execute("LOCK TABLE slots IN ACCESS EXCLUSIVE MODE")
        again = asyncio.create_task(offers(client, day, slot["id"]))
        await slots_read_waiting(pool)
        # Another reader meanwhile: the kept entry, still within the bound
        # (it does not wait for the read: the timeout only ends a test that hangs).
        async with asyncio.timeout(10):
            assert await offers(client, day, slot["id"])
        # Past the bound no reader gets it: this one waits for the read.
        clock.advance(MAX_AGE / 4 + timedelta(milliseconds=1))
        late = asyncio.create_task(offers(client, day, slot["id"]))
    assert not await again
    assert not await late
