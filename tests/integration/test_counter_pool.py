"""Counters are shared by the services of an office: never more people at a
time than counters open, whichever services they came for."""

from __future__ import annotations

import asyncio
from datetime import datetime, time
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.domain.calendar import HoursRule
from service.store import offices as office_store
from service.store import slots as slot_store
from tests.fixtures.app import prove_contacts

Client = TestClient  # type: ignore[type-arg]

# The booking core as a returning citizen books it (test_abuse_*.py test
# the code step, the limits and the household cap).
pytestmark = [pytest.mark.no_rate_limits, pytest.mark.usefixtures("returning_citizen")]
PARIS_SERVICES = [
    "passport", "cnie", "civil-status", "consular-registration", "legalization",
    "power-of-attorney",
]  # fmt: skip
AT_NINE = "2027-02-03T09:00:00+01:00"


async def slot_at(client: Client, service: str, start: str) -> dict[str, Any] | None:
    resp = await client.get(
        "/api/v1/offices/consulate-paris/availability",
        params={"service": service, "from": start[:10], "to": start[:10]},
    )
    for slot in (await resp.json())["slots"]:
        if slot["start"] == start:
            found: dict[str, Any] = slot
            return found
    return None


async def book(client: Client, service: str, slot_id: int, n: int) -> tuple[int, Any]:
    resp = await client.post(
        "/api/v1/bookings",
        json={
            "slot_id": slot_id,
            "service": service,
            "name": "Client",
            "language": "fr",
            "email": f"c{n}@example.org",
            "document_number": f"POOL{n:06d}",
        },
    )
    return resp.status, await resp.json()


async def overfull_cells(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        value: int = await conn.fetchval(
            """SELECT count(*) FROM counter_cells c WHERE c.taken > c.capacity OR c.taken <> (
                   SELECT count(*) FROM bookings b JOIN slots s ON s.id = b.slot_id
                   WHERE s.office_id = c.office_id AND s.pooled
                     AND b.status IN ('held', 'confirmed', 'checked_in')
                     AND b.starts_at < c.starts_at + interval '5 minutes'
                     AND b.ends_at > c.starts_at)"""
        )
    return value


async def test_four_counters_serve_four_people_whatever_their_services(
    app_client: Client, pool: asyncpg.Pool
) -> None:
    slots = {s: await slot_at(app_client, s, AT_NINE) for s in PARIS_SERVICES}
    assert all(slots.values()), "every service has a 09:00 slot"
    assert {s["remaining"] for s in slots.values() if s} == {4}
    statuses = []
    for n, service in enumerate(PARIS_SERVICES):
        slot = slots[service]
        assert slot is not None
        status, body = await book(app_client, service, slot["id"], n)
        statuses.append(status if status == 201 else body["error"])
    # Paris has 4 counters: the fifth and sixth person at 09:00 find none.
    assert statuses == [201, 201, 201, 201, "slot_full", "slot_full"]
    for service in PARIS_SERVICES:
        assert await slot_at(app_client, service, AT_NINE) is None
    # Legalisation at 09:10 overlaps the 15- and 20-minute appointments.
    assert await slot_at(app_client, "legalization", "2027-02-03T09:10:00+01:00") is None
    # At 09:20 everyone booked at 09:00 is done: four counters again.
    later = await slot_at(app_client, "legalization", "2027-02-03T09:20:00+01:00")
    assert later is not None and later["remaining"] == 4
    assert await overfull_cells(pool) == 0


async def test_cancelling_frees_the_counter_for_any_service(app_client: Client) -> None:
    booked = []
    for n, service in enumerate(PARIS_SERVICES[:4]):
        slot = await slot_at(app_client, service, AT_NINE)
        assert slot is not None
        status, body = await book(app_client, service, slot["id"], n)
        assert status == 201
        booked.append(body)
    assert await slot_at(app_client, "legalization", AT_NINE) is None
    resp = await app_client.post(
        f"/api/v1/bookings/{booked[0]['reference']}/cancel",
        headers={"Authorization": f"Bearer {booked[0]['manage_token']}"},
    )
    assert resp.status == 200
    freed = await slot_at(app_client, "legalization", AT_NINE)
    assert freed is not None and freed["remaining"] == 1


async def test_300_concurrent_bookings_across_services_at_one_time(
    app_client: Client, pool: asyncpg.Pool
) -> None:
    slots = [await slot_at(app_client, s, AT_NINE) for s in PARIS_SERVICES]

    async def attempt(n: int) -> int:
        service = PARIS_SERVICES[n % len(PARIS_SERVICES)]
        slot = slots[n % len(PARIS_SERVICES)]
        assert slot is not None
        status, _ = await book(app_client, service, slot["id"], n)
        return status

    statuses = await asyncio.gather(*(attempt(n) for n in range(300)))
    assert statuses.count(201) == 4 and statuses.count(409) == 296
    assert await overfull_cells(pool) == 0


async def test_the_database_refuses_an_oversold_seat_whatever_the_statement(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        slot_id = await conn.fetchval("SELECT min(id) FROM slots WHERE capacity > 0")
        with pytest.raises(asyncpg.CheckViolationError) as slot_refused:
            await conn.execute("UPDATE slots SET taken = capacity + 1 WHERE id = $1", slot_id)
        with pytest.raises(asyncpg.CheckViolationError) as cell_refused:
            await conn.execute(
                "UPDATE counter_cells SET taken = capacity + 1 WHERE office_id = 'consulate-paris'"
            )
        # Both are told apart from any other check, which is no oversell.
        with pytest.raises(asyncpg.CheckViolationError) as other:
            await conn.execute("UPDATE services SET latest_days = 0 WHERE id = 'passport'")
        assert slot_store.oversell_refused(slot_refused.value)
        assert slot_store.oversell_refused(cell_refused.value)
        assert not slot_store.oversell_refused(other.value)
        assert not slot_store.oversell_refused(ValueError(slot_store.OVERSELL))
        # Lowering capacity under existing bookings stays possible.
        await conn.execute("UPDATE slots SET capacity = 0 WHERE id = $1", slot_id)


async def test_a_cell_made_under_existing_bookings_counts_them(
    app_client: Client, pool: asyncpg.Pool, clock: Any
) -> None:
    for n, service in enumerate(PARIS_SERVICES[:3]):
        slot = await slot_at(app_client, service, AT_NINE)
        assert slot is not None
        assert (await book(app_client, service, slot["id"], n))[0] == 201
    async with pool.acquire() as conn, conn.transaction():
        # As on a database whose bookings came before pooled counters: no
        # cells, and the next regeneration makes them all (~4,000).
        await conn.execute("DELETE FROM counter_cells WHERE office_id = 'consulate-paris'")
        office = await office_store.get_office(conn, "consulate-paris")
        assert office is not None
        scans = """SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables
                   WHERE relname = 'bookings'"""
        before = await conn.fetchval(scans)
        await slot_store.regenerate_office(conn, office, clock(), 84)
        # Bookings are read a few times a regeneration, never once a cell:
        # once a cell, the planner could walk all the office's slots for each
        # (seen: `mawid seed` running for minutes at some hours).
        assert await conn.fetchval(scans) - before < 50
        made = await conn.fetchval(
            "SELECT count(*) FROM counter_cells WHERE office_id = 'consulate-paris'"
        )
        taken = await conn.fetchval(
            "SELECT taken FROM counter_cells WHERE office_id = 'consulate-paris' "
            "AND starts_at = $1::timestamptz AND mobile_day_id IS NULL",
            datetime.fromisoformat(AT_NINE),
        )
    assert made > 1000
    assert taken == 3
    assert await overfull_cells(pool) == 0


async def test_dedicated_hours_keep_their_own_counters(
    app_client: Client, pool: asyncpg.Pool, clock: Any
) -> None:
    async with pool.acquire() as conn:
        office = await office_store.get_office(conn, "consulate-rotterdam")
        assert office is not None
        rules = [HoursRule(d, time(9), time(12), 1) for d in range(5)] + [
            HoursRule(d, time(9), time(12), 2, service_id="passport") for d in range(5)
        ]
        await office_store.replace_hours(conn, office.id, rules)
        await slot_store.regenerate_office(conn, office, clock(), 84)
        pooled = dict(
            await conn.fetch(
                "SELECT service_id, bool_and(pooled) FROM slots WHERE office_id = $1 "
                "AND starts_at > $2 AND capacity > 0 GROUP BY service_id",
                office.id,
                clock(),
            )
        )
    assert pooled["passport"] is False and pooled["cnie"] is True
    resp = await app_client.get(
        "/api/v1/offices/consulate-rotterdam/availability",
        params={"service": "passport", "from": "2027-02-03", "to": "2027-02-03"},
    )
    first = (await resp.json())["slots"][0]
    assert first["remaining"] == 2


async def test_fewer_counters_list_the_bookings_beyond_them(
    app_client: Client, pool: asyncpg.Pool, clock: Any
) -> None:
    from service.domain.models import Office
    from service.office import changes

    references = []
    for n, service in enumerate(PARIS_SERVICES[:4]):
        slot = await slot_at(app_client, service, AT_NINE)
        assert slot is not None
        status, body = await book(app_client, service, slot["id"], n)
        assert status == 201
        references.append(body["reference"])
    async with pool.acquire() as conn, conn.transaction():
        office = await office_store.get_office(conn, "consulate-paris")
        assert isinstance(office, Office)
        # Two counters instead of four; each service's own slot keeps room
        # (capacity 2, one booking), so only the shared counters overflow.
        rules = [HoursRule(d, time(9), time(12, 30), 2) for d in range(5)]
        await office_store.replace_hours(conn, office.id, rules)
        await slot_store.regenerate_office(conn, office, clock(), 84)
        closed = await office_store.closed_days(conn, office.id, clock().date(), clock().date())
        lost = await changes._stranded_by(conn, office, rules, closed, clock(), 84)
    # The two made last are listed for the manager to keep or cancel.
    assert {b.reference for b in lost} == set(references[2:])


async def test_a_no_show_is_undone_only_while_a_shared_counter_is_free(
    app_client: Client, pool: asyncpg.Pool, clock: Any
) -> None:
    from datetime import datetime, timedelta

    from service import bookings as flows
    from service.domain.booking import Status
    from service.domain.errors import Conflict
    from service.domain.models import Office
    from service.store.audit import Actor

    # Confirmed bookings (a held one cannot be a no-show): proved addresses.
    await prove_contacts(pool, *(f"c{n}@example.org" for n in range(4)))

    booked = []
    for n, service in enumerate(PARIS_SERVICES[:4]):
        slot = await slot_at(app_client, service, AT_NINE)
        assert slot is not None
        status, body = await book(app_client, service, slot["id"], n)
        assert status == 201
        booked.append(body)
    async with pool.acquire() as conn, conn.transaction():
        office = await office_store.get_office(conn, "consulate-paris")
        assert isinstance(office, Office)
        # The manager goes down to three counters and keeps all four people.
        rules = [HoursRule(d, time(9), time(12, 30), 3) for d in range(5)]
        await office_store.replace_hours(conn, office.id, rules)
        await slot_store.regenerate_office(conn, office, clock(), 84)
    first, second = booked[0]["reference"], booked[1]["reference"]
    clerk = Actor("staff", "1")
    clock.set(datetime.fromisoformat(AT_NINE) + timedelta(minutes=20))

    async def set_status(reference: str, target: Status) -> None:
        async with pool.acquire() as conn:
            await flows.set_status_by_office(
                conn, reference, "consulate-paris", target, clerk, clock()
            )

    async def seats() -> tuple[Any, ...]:
        row = await pool.fetchrow(
            """SELECT s.taken AS slot_taken, s.capacity AS slot_capacity,
                      (SELECT array_agg(c.taken ORDER BY c.starts_at) FROM counter_cells c
                       WHERE c.office_id = s.office_id AND c.starts_at >= s.starts_at
                         AND c.starts_at < s.ends_at) AS cells,
                      b.status
               FROM bookings b JOIN slots s ON s.id = b.slot_id WHERE b.reference = $1""",
            first,
        )
        return tuple(row)

    await set_status(first, Status.NO_SHOW)
    # Their passport slot has room of its own, but the three counters are
    # taken by the three others: coming late, they cannot be served.
    before = await seats()
    assert before == (0, 3, [3, 3, 3], "no_show")
    with pytest.raises(Conflict) as full:
        await set_status(first, Status.CHECKED_IN)
    assert full.value.code == "slot_full"
    assert await seats() == before
    assert await overfull_cells(pool) == 0
    # Once a counter is free again (another no-show), the undo goes through.
    await set_status(second, Status.NO_SHOW)
    await set_status(first, Status.CHECKED_IN)
    assert await seats() == (1, 3, [3, 3, 3], "checked_in")
    assert await overfull_cells(pool) == 0
