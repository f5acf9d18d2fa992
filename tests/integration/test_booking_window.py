"""The booking window (a service's earliest_hours and latest_days) and the
oversell trigger, enforced on every path that takes a seat: the JSON API, the
citizen form and a reschedule. Each refusal writes nothing."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.clock import FakeClock
from tests.fixtures.office import free_slot as office_free_slot
from tests.integration.test_booking_api import book, booking_body, snapshot
from tests.integration.test_citizen_pages import details

Client = TestClient  # type: ignore[type-arg]

# The booking core as a returning citizen books it (test_abuse_*.py test
# the code step, the limits and the household cap).
pytestmark = [pytest.mark.no_rate_limits, pytest.mark.usefixtures("returning_citizen")]

# Demo legalisation service at Paris: bookable from 2 hours to 60 days ahead.
OFFICE, SERVICE = "consulate-paris", "legalization"
EARLIEST = timedelta(hours=2)
LATEST = timedelta(days=60)


async def service_window(pool: asyncpg.Pool) -> tuple[timedelta, timedelta]:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT earliest_hours, latest_days FROM services WHERE office_id = $1 AND id = $2",
            OFFICE,
            SERVICE,
        )
    return timedelta(hours=row["earliest_hours"]), timedelta(days=row["latest_days"])


async def free_slot(pool: asyncpg.Pool, after: datetime, skip: int = 0) -> tuple[int, datetime]:
    """A free slot of the service starting after `after` (the `skip`-th one)."""
    row = await office_free_slot(pool, OFFICE, SERVICE, after, skip)
    return row["id"], row["starts_at"]


async def test_the_demo_window_is_the_one_these_tests_assume(pool: asyncpg.Pool) -> None:
    assert await service_window(pool) == (EARLIEST, LATEST)


async def test_api_books_on_both_edges_of_the_window_and_not_past_them(
    app_client: Client, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    slot_id, starts = await free_slot(pool, clock() + timedelta(days=3))
    # One minute inside the earliest edge: too late.
    clock.set(starts - EARLIEST + timedelta(minutes=1))
    before = await snapshot(pool)
    status, body = await book(app_client, booking_body(slot_id))
    assert (status, body["error"]) == (409, "too_late")
    assert await snapshot(pool) == before
    # Exactly on it: bookable.
    clock.set(starts - EARLIEST)
    status, body = await book(app_client, booking_body(slot_id))
    assert status == 201, body

    far_id, far = await free_slot(pool, clock() + LATEST - timedelta(days=2))
    # One minute before the slot comes inside the latest edge: not open yet.
    clock.set(far - LATEST - timedelta(minutes=1))
    before = await snapshot(pool)
    status, body = await book(app_client, booking_body(far_id, phone="06 11 22 33 44"), "fr")
    assert (status, body["error"]) == (409, "not_open_yet")
    assert "pas encore" in body["message"]  # in the reader's language
    assert await snapshot(pool) == before
    clock.set(far - LATEST)
    status, body = await book(app_client, booking_body(far_id, phone="06 11 22 33 44"))
    assert status == 201, body


async def test_citizen_form_refuses_a_slot_outside_the_window_and_offers_others(
    app_client: Client, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    resp = await app_client.get(f"/offices/{OFFICE}/{SERVICE}")
    assert resp.status == 200
    soon_id, soon = await free_slot(pool, clock() + timedelta(minutes=30))
    far_id, far = await free_slot(pool, clock() + LATEST + timedelta(hours=1))
    assert soon < clock() + EARLIEST and far > clock() + LATEST
    for slot_id, expected in ((soon_id, "trop tard"), (far_id, "pas encore")):
        # The form page itself already says the time is not available.
        page = await app_client.get(
            f"/offices/{OFFICE}/{SERVICE}/book", params={"slot": slot_id, "lang": "fr"}
        )
        form = await page.text()
        before = await snapshot(pool)
        resp = await app_client.post(
            f"/offices/{OFFICE}/{SERVICE}/book", data=details(form, slot_id)
        )
        text = await resp.text()
        assert resp.status == 409, text
        assert expected in text
        # Other times are offered instead, all inside the window.
        offered = [int(x) for x in re.findall(r'name="slot" value="(\d+)"', text)]
        assert offered and slot_id not in offered
        async with pool.acquire() as conn:
            starts = await conn.fetch("SELECT starts_at FROM slots WHERE id = ANY($1)", offered)
        assert all(clock() + EARLIEST <= r["starts_at"] <= clock() + LATEST for r in starts)
        assert await snapshot(pool) == before


async def test_reschedule_outside_the_window_is_refused_and_keeps_the_booking(
    app_client: Client, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    slot_id, _ = await free_slot(pool, clock() + timedelta(days=3))
    status, booked = await book(app_client, booking_body(slot_id))
    assert status == 201
    auth = {"Authorization": f"Bearer {booked['manage_token']}"}
    url = f"/api/v1/bookings/{booked['reference']}/reschedule"
    soon_id, _ = await free_slot(pool, clock() + timedelta(minutes=30))
    far_id, _ = await free_slot(pool, clock() + LATEST + timedelta(hours=1))
    for target, code in ((soon_id, "too_late"), (far_id, "not_open_yet")):
        before = await snapshot(pool)
        resp = await app_client.post(url, json={"slot_id": target}, headers=auth)
        assert (resp.status, (await resp.json())["error"]) == (409, code)
        assert await snapshot(pool) == before
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval(
                "SELECT slot_id FROM bookings WHERE reference = $1", booked["reference"]
            )
            == slot_id
        )


# The oversell trigger behind the guard -------------------------------------------

# Fires before refuse_oversell (triggers of one event fire in name order) and
# shrinks the slot to the seats already taken, as a concurrent change of hours
# would between the guard's check and the trigger: the guard has passed, the
# trigger must refuse, and the citizen must see the guard's own answer.
_SHRINK = """
CREATE FUNCTION test_shrink() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.taken > OLD.taken THEN NEW.capacity := OLD.taken; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER a_test_shrink BEFORE UPDATE OF taken ON slots
    FOR EACH ROW EXECUTE FUNCTION test_shrink();
"""


async def shrink_on_take(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute(_SHRINK)


async def test_oversell_trigger_reaches_the_api_as_slot_full(
    app_client: Client, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    slot_id, _ = await free_slot(pool, clock() + timedelta(days=3))
    await shrink_on_take(pool)
    before = await snapshot(pool)
    status, body = await book(app_client, booking_body(slot_id))
    assert (status, body["error"]) == (409, "slot_full"), body
    assert await snapshot(pool) == before


async def test_oversell_trigger_reaches_the_form_as_full_with_alternatives(
    app_client: Client, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    slot_id, _ = await free_slot(pool, clock() + timedelta(days=3))
    page = await app_client.get(
        f"/offices/{OFFICE}/{SERVICE}/book", params={"slot": slot_id, "lang": "fr"}
    )
    form = await page.text()
    await shrink_on_take(pool)
    before = await snapshot(pool)
    resp = await app_client.post(f"/offices/{OFFICE}/{SERVICE}/book", data=details(form, slot_id))
    text = await resp.text()
    assert resp.status == 409, text
    assert "plus disponible" in text
    offered = re.findall(r'type="radio" name="slot" value="(\d+)"', text)
    assert offered  # other times offered
    assert await snapshot(pool) == before


async def test_oversell_trigger_reaches_a_reschedule_as_slot_full(
    app_client: Client, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    slot_id, starts = await free_slot(pool, clock() + timedelta(days=3))
    status, booked = await book(app_client, booking_body(slot_id))
    assert status == 201
    target, _ = await free_slot(pool, starts)
    await shrink_on_take(pool)
    before = await snapshot(pool)
    resp = await app_client.post(
        f"/api/v1/bookings/{booked['reference']}/reschedule",
        json={"slot_id": target},
        headers={"Authorization": f"Bearer {booked['manage_token']}"},
    )
    body: dict[str, Any] = await resp.json()
    assert (resp.status, body["error"]) == (409, "slot_full"), body
    assert await snapshot(pool) == before


async def test_a_full_slot_on_either_edge_is_full_not_outside_the_window(
    app_client: Client, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    """The refusal names the real reason: a slot exactly on an edge is inside
    the window, so when the trigger finds it full the citizen reads "full"."""
    await shrink_on_take(pool)
    slot_id, starts = await free_slot(pool, clock() + timedelta(days=3))
    clock.set(starts - EARLIEST)
    status, body = await book(app_client, booking_body(slot_id))
    assert (status, body["error"]) == (409, "slot_full"), body
    far_id, far = await free_slot(pool, clock() + LATEST - timedelta(days=2))
    clock.set(far - LATEST)
    status, body = await book(app_client, booking_body(far_id))
    assert (status, body["error"]) == (409, "slot_full"), body


async def test_a_slot_of_another_service_of_the_office_is_not_found(
    app_client: Client, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    other = await office_free_slot(pool, OFFICE, "passport", clock() + timedelta(days=3))
    before = await snapshot(pool)
    status, body = await book(app_client, booking_body(other["id"]))
    assert (status, body["error"]) == (404, "slot_not_found"), body
    assert await snapshot(pool) == before


async def test_moving_onto_a_slot_of_another_service_is_not_found(
    app_client: Client, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    """A move takes the new seat without reading the slot first: the guard's
    refusal is read after the fact, and names a slot of another service (or
    another office) as not found, not as full."""
    slot_id, _ = await free_slot(pool, clock() + timedelta(days=3))
    status, booked = await book(app_client, booking_body(slot_id))
    assert status == 201, booked
    for office, service in ((OFFICE, "passport"), ("consulate-montreal", SERVICE)):
        other = await office_free_slot(pool, office, service, clock() + timedelta(days=3))
        before = await snapshot(pool)
        resp = await app_client.post(
            f"/api/v1/bookings/{booked['reference']}/reschedule",
            json={"slot_id": other["id"]},
            headers={"Authorization": f"Bearer {booked['manage_token']}"},
        )
        body: dict[str, Any] = await resp.json()
        assert (resp.status, body["error"]) == (404, "slot_not_found"), (office, service, body)
        assert await snapshot(pool) == before
