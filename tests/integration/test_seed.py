"""`mawid seed --demo` is idempotent and never disturbs bookings."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg

from service import bookings
from service.domain.validation import RawDetails
from service.seed import DATA_FILE, load_demo, seed_demo
from tests.fixtures.app import prove_contacts

COUNTED = ("offices", "services", "opening_hours", "closures", "slots", "bookings", "staff")


async def counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in COUNTED}


async def test_seeding_again_changes_nothing_and_keeps_bookings(
    pool: asyncpg.Pool, clock: Any
) -> None:
    async with pool.acquire() as conn:
        slot_id = await conn.fetchval(
            "SELECT id FROM slots WHERE office_id = 'prefecture-tiznit' "
            "AND service_id = 'legalization' AND starts_at > $1::timestamptz + interval '1 day' "
            "ORDER BY starts_at LIMIT 1",
            clock(),
        )
    await prove_contacts(pool, "+212612345678", secret_key="k")
    booked = await bookings.book(
        pool,
        slot_id=slot_id,
        service_id="legalization",
        details=RawDetails(name="Said", phone="0612345678", language="ar"),
        secret_key="k",
        now=clock(),
    )
    async with pool.acquire() as conn:
        before = await counts(conn)
        await seed_demo(conn, clock(), 84)
        after = await counts(conn)
        row = await conn.fetchrow(
            "SELECT b.status, b.slot_id, s.taken FROM bookings b JOIN slots s ON s.id = b.slot_id "
            "WHERE b.id = $1",
            booked.booking.id,
        )
    assert after == before
    assert (row["status"], row["slot_id"], row["taken"]) == ("confirmed", slot_id, 1)
    assert before["offices"] == len(load_demo(clock().date()))
    # Ramadan hours for the Moroccan offices, none for the consulates.
    async with pool.acquire() as conn:
        dated = await conn.fetch(
            "SELECT DISTINCT office_id FROM opening_hours WHERE valid_from IS NOT NULL"
        )
    assert {r["office_id"] for r in dated} == {"prefecture-tiznit", "prefecture-agadir"}


def test_ramadan_hours_follow_the_day_seeded_for_not_the_real_one() -> None:
    # The tests seed on their fixed clock: the Ramadan hours must be those
    # around that day, whatever year the machine's clock says.
    [tiznit] = [d for d in load_demo(date(2040, 6, 1)) if d.office.id == "prefecture-tiznit"]
    years = {r.valid_from.year for r in tiznit.rules if r.valid_from is not None}
    assert 2040 in years and min(years) >= 2038 and max(years) <= 2043


def test_the_office_file_sets_the_household_cap_and_the_sms_countries(tmp_path: Path) -> None:
    data = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    [brussels] = [o for o in data["offices"] if o.get("sms_countries") == ["NL", "LU"]]
    brussels["household_cap"] = 2
    path = tmp_path / "offices.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    offices = {d.office.id: d.office for d in load_demo(date(2027, 2, 1), path)}
    assert offices[brussels["id"]].household_cap == 2
    assert offices[brussels["id"]].sms_countries == ("NL", "LU")
    # Offices that say nothing get the defaults.
    assert {o.household_cap for i, o in offices.items() if i != brussels["id"]} == {4}
