"""Moving a booking and reading availability with mobile days: a booking at
a mobile day is moved among that day's times, a consulate's booking among
the consulate's (another site only when chosen there), and the public
availability lists each site's slots with its site."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service import bookings
from service.domain import errors
from service.domain.mobile_day import MobileDay
from service.store import mobile_days as mobile_day_store
from tests.clock import FIXED_NOW
from tests.fixtures.app import TEST_SECRET, prove_contacts
from tests.integration.test_citizen_pages import hidden
from tests.integration.test_mobile_days import details

Client = TestClient[Any, Any]
OFFICE, SERVICE = "consulate-paris", "cnie"
PHONE = "+33612345678"


async def orleans(pool: asyncpg.Pool) -> MobileDay:
    async with pool.acquire() as conn:
        [day] = [m for m in await mobile_day_store.upcoming(conn, FIXED_NOW)
                 if m.office_id == OFFICE]  # fmt: skip
    return day


async def free_slots(pool: asyncpg.Pool, mobile_day_id: int | None) -> list[int]:
    rows = await pool.fetch(
        """SELECT id FROM slots WHERE office_id = $1 AND service_id = $2 AND capacity > taken
             AND mobile_day_id IS NOT DISTINCT FROM $3 AND starts_at > $4
           ORDER BY starts_at LIMIT 40""",
        OFFICE,
        SERVICE,
        mobile_day_id,
        FIXED_NOW + timedelta(days=2),
    )
    return [r["id"] for r in rows]


async def book(pool: asyncpg.Pool, slot_id: int) -> bookings.Booked:
    await prove_contacts(pool, PHONE, "amina@example.org")
    return await bookings.book(
        pool, slot_id=slot_id, service_id=SERVICE, details=details("fr", PHONE, "FR"),
        secret_key=TEST_SECRET, now=FIXED_NOW,
    )  # fmt: skip


async def site_of(pool: asyncpg.Pool, booked: bookings.Booked) -> int | None:
    """The mobile day a booking's slot is held at, as it is now."""
    site: int | None = await pool.fetchval(
        """SELECT s.mobile_day_id FROM bookings b JOIN slots s ON s.id = b.slot_id
           WHERE b.id = $1""",
        booked.booking.id,
    )
    return site


def confirm_links(page: str, manage: str) -> list[tuple[str | None, int]]:
    return [
        (m[1], int(m[2]))
        for m in re.finditer(
            rf'href="{re.escape(manage)}/reschedule/confirm\?(?:site=(\w+)&amp;)?slot=(\d+)"', page
        )
    ]


async def test_moving_a_mobile_day_booking_offers_that_days_times(
    app_client: Client, pool: asyncpg.Pool
) -> None:
    day = await orleans(pool)
    venue_slots = await free_slots(pool, day.id)
    booked = await book(pool, venue_slots[0])
    manage = f"/b/{booked.booking.reference}/{booked.manage_token}"
    page = await (await app_client.get(f"{manage}/reschedule?lang=fr")).text()
    offered = confirm_links(page, manage)
    assert offered
    # Every time offered is the mobile day's, shown on the venue's clock.
    assert {slot for _, slot in offered} <= set(venue_slots) - {venue_slots[0]}
    assert all(site is None for site, _ in offered)
    assert "Journée consulaire mobile à Orléans" in page and "heure d&#39;Orléans" in page
    # The consulate's own times are there too, when chosen.
    assert f'href="{manage}/reschedule/at/office"' in page
    at_office = await (await app_client.get(f"{manage}/reschedule/at/office?lang=fr")).text()
    elsewhere = confirm_links(at_office, manage)
    assert elsewhere and {site for site, _ in elsewhere} == {"office"}
    ids = {slot for _, slot in elsewhere}
    office_slots = await pool.fetch(
        "SELECT id FROM slots WHERE id = ANY($1::bigint[]) AND mobile_day_id IS NULL", list(ids)
    )
    assert len(office_slots) == len(ids)
    # Moved to another time of the day, through the confirmation step.
    target = offered[0][1]
    confirm = await (await app_client.get(f"{manage}/reschedule/confirm?slot={target}")).text()
    resp = await app_client.post(
        f"{manage}/reschedule",
        data={"_csrf": hidden(confirm, "_csrf"), "slot": str(target),
              "site": hidden(confirm, "site")},
        allow_redirects=False,
    )  # fmt: skip
    assert resp.status == 303
    assert await site_of(pool, booked) == day.id


async def test_a_consulate_booking_moves_to_a_mobile_day_only_when_chosen_there(
    app_client: Client, pool: asyncpg.Pool
) -> None:
    day = await orleans(pool)
    venue_slots = await free_slots(pool, day.id)
    office_slots = await free_slots(pool, None)
    booked = await book(pool, office_slots[0])
    manage = f"/b/{booked.booking.reference}/{booked.manage_token}"
    page = await (await app_client.get(f"{manage}/reschedule?lang=fr")).text()
    offered = {slot for _, slot in confirm_links(page, manage)}
    assert offered and not offered & set(venue_slots)
    # A move onto the mobile day's slot without choosing it is not found,
    # and changes nothing; the same one chosen there is made.
    with pytest.raises(errors.NotFound):
        await bookings.reschedule(
            pool, booked.booking.reference, booked.manage_token, TEST_SECRET, venue_slots[0],
            FIXED_NOW,
        )  # fmt: skip
    assert await pool.fetchval("SELECT taken FROM slots WHERE id = $1", venue_slots[0]) == 0
    there = await (await app_client.get(f"{manage}/reschedule/at/{day.id}?lang=fr")).text()
    chosen = confirm_links(there, manage)
    assert chosen and {site for site, _ in chosen} == {str(day.id)}
    assert {slot for _, slot in chosen} <= set(venue_slots)
    target = chosen[0][1]
    confirm = await (
        await app_client.get(f"{manage}/reschedule/confirm?site={day.id}&slot={target}&lang=fr")
    ).text()
    assert "placeholder venue address, Orléans" in confirm and "heure d&#39;Orléans" in confirm
    resp = await app_client.post(
        f"{manage}/reschedule",
        data={"_csrf": hidden(confirm, "_csrf"), "slot": str(target), "site": str(day.id)},
        allow_redirects=False,
    )  # fmt: skip
    assert resp.status == 303
    assert await pool.fetchval("SELECT taken FROM slots WHERE id = $1", target) == 1
    assert await pool.fetchval("SELECT taken FROM slots WHERE id = $1", office_slots[0]) == 0
    # A confirmation link naming a site the slot is not at is refused.
    bad = await app_client.get(f"{manage}/reschedule/confirm?site=office&slot={venue_slots[1]}")
    assert bad.status == 422


async def test_availability_lists_each_sites_slots_with_its_site(
    app_client: Client, pool: asyncpg.Pool
) -> None:
    day = await orleans(pool)
    held_on = day.dates[0]
    params = {"service": SERVICE, "from": (held_on - timedelta(days=1)).isoformat(),
              "to": held_on.isoformat()}  # fmt: skip
    url = f"/api/v1/offices/{OFFICE}/availability"
    both = await (await app_client.get(url, params=params)).json()
    assert both["mobile_days"] == [
        {"id": day.id, "town": day.town, "address": day.address, "timezone": "Europe/Paris"}
    ]
    sites = {s["mobile_day"] for s in both["slots"]}
    assert sites == {None, day.id}
    venue = [s for s in both["slots"] if s["mobile_day"] == day.id]
    assert all(date.fromisoformat(s["start"][:10]) == held_on for s in venue)
    only_office = await (await app_client.get(url, params={**params, "site": "office"})).json()
    assert only_office["mobile_days"] == []
    assert {s["mobile_day"] for s in only_office["slots"]} == {None}
    only_day = await (await app_client.get(url, params={**params, "site": str(day.id)})).json()
    assert [s["id"] for s in only_day["slots"]] == [s["id"] for s in venue]
    assert (await app_client.get(url, params={**params, "site": "999999"})).status == 404
    resp = await app_client.get(url, params={**params, "site": "everywhere"})
    assert resp.status == 422 and "site" in (await resp.json())["fields"]
    # Montreal's day does not open before the fixed clock's 20 February.
    montreal = await (
        await app_client.get(
            "/api/v1/offices/consulate-montreal/availability",
            params={"service": "passport", "from": "2027-03-13", "to": "2027-03-14"},
        )
    ).json()
    assert montreal["mobile_days"] == [] and montreal["slots"] == []


async def test_the_api_moves_to_a_chosen_site(app_client: Client, pool: asyncpg.Pool) -> None:
    day = await orleans(pool)
    venue_slots = await free_slots(pool, day.id)
    booked = await book(pool, (await free_slots(pool, None))[0])
    url = f"/api/v1/bookings/{booked.booking.reference}/reschedule"
    auth = {"Authorization": f"Bearer {booked.manage_token}"}
    refused = await app_client.post(url, json={"slot_id": venue_slots[0]}, headers=auth)
    assert refused.status == 404
    bad = await app_client.post(url, json={"slot_id": venue_slots[0], "site": "elsewhere"},
                                headers=auth)  # fmt: skip
    assert bad.status == 422
    moved = await app_client.post(url, json={"slot_id": venue_slots[0], "site": day.id},
                                  headers=auth)  # fmt: skip
    assert moved.status == 200, await moved.text()
    assert await site_of(pool, booked) == day.id
