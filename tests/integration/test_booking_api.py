"""The JSON API of the booking core against real Postgres, through real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.domain.calendar import HoursRule
from service.store import offices as office_store
from service.store import slots as slot_store

Client = TestClient  # type: ignore[type-arg]

pytestmark = [pytest.mark.no_rate_limits, pytest.mark.usefixtures("returning_citizen")]

TABLES = ("bookings", "audit_log", "outbox")


async def snapshot(pool: asyncpg.Pool) -> dict[str, int]:
    """Row counts and seats taken: what 'nothing was written' is checked against."""
    async with pool.acquire() as conn:
        counts = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}
        counts["taken"] = await conn.fetchval("SELECT coalesce(sum(taken), 0) FROM slots")
    return counts


async def first_slots(
    client: Client, office: str, service: str, day: str, to: str | None = None
) -> list[dict[str, Any]]:
    resp = await client.get(
        f"/api/v1/offices/{office}/availability",
        params={"service": service, "from": day, "to": to or day},
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    slots: list[dict[str, Any]] = body["slots"]
    return slots


def booking_body(slot_id: int, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "slot_id": slot_id,
        "service": "legalization",
        "name": "Amina El Idrissi",
        "phone": "06 12 34 56 78",
        "language": "fr",
    }
    body.update(extra)
    return body


async def book(client: Client, body: dict[str, Any], lang: str = "fr") -> tuple[int, Any]:
    resp = await client.post("/api/v1/bookings", json=body, headers={"Accept-Language": lang})
    return resp.status, await resp.json()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_offices_and_services(app_client: Client) -> None:
    resp = await app_client.get("/api/v1/offices")
    offices = {o["id"]: o for o in await resp.json()}
    assert offices["consulate-montreal"]["timezone"] == "America/Toronto"
    assert offices["prefecture-tiznit"]["name"]["ar"]
    assert set(offices["consulate-paris"]) == {
        "id",
        "kind",
        "name",
        "city",
        "country",
        "timezone",
    }
    resp = await app_client.get("/api/v1/offices/consulate-paris/services")
    services = {s["id"]: s for s in await resp.json()}
    assert services["passport"]["document_required"] is True
    assert services["passport"]["duration_minutes"] == 15
    resp = await app_client.get("/api/v1/offices/nowhere/services")
    assert resp.status == 404
    assert (await resp.json())["error"] == "office_not_found"


async def test_times_carry_the_office_offset_across_ramadan(app_client: Client) -> None:
    during = await first_slots(app_client, "prefecture-tiznit", "legalization", "2027-02-15")
    after = await first_slots(app_client, "prefecture-tiznit", "legalization", "2027-03-15")
    assert "2027-02-15T09:00:00+00:00" in [s["start"] for s in during]
    assert "2027-03-15T09:00:00+01:00" in [s["start"] for s in after]
    # Ramadan hours (09:00-15:00) replace 08:30-16:30.
    assert during[0]["start"] == "2027-02-15T09:00:00+00:00"
    assert after[0]["start"] == "2027-03-15T08:30:00+01:00"
    assert await first_slots(app_client, "prefecture-tiznit", "legalization", "2027-03-09") == []


async def test_availability_respects_window_and_range(app_client: Client, clock: Any) -> None:
    # The clock stands at 2027-02-01T10:00Z; earliest booking is 2 hours ahead.
    today = await first_slots(app_client, "consulate-paris", "passport", "2027-02-01")
    assert today and today[0]["start"] >= "2027-02-01T13:00:00+01:00"
    assert all(s["remaining"] > 0 for s in today)
    # Latest is 60 days ahead.
    beyond = await first_slots(app_client, "consulate-paris", "passport", "2027-04-05")
    assert beyond == []
    resp = await app_client.get(
        "/api/v1/offices/consulate-paris/availability",
        params={"service": "passport", "from": "2027-02-01", "to": "2027-04-05"},
    )
    assert resp.status == 422
    assert "to" in (await resp.json())["fields"]
    resp = await app_client.get(
        "/api/v1/offices/consulate-paris/availability",
        params={"service": "passport", "from": "soon", "to": "2027-02-01"},
        headers={"Accept-Language": "ar"},
    )
    body = await resp.json()
    assert resp.status == 422 and "from" in body["fields"]
    resp = await app_client.get(
        "/api/v1/offices/consulate-paris/availability",
        params={"service": "haircut", "from": "2027-02-02", "to": "2027-02-02"},
    )
    assert resp.status == 404 and (await resp.json())["error"] == "service_not_found"


async def test_book_view_cancel(app_client: Client, pool: asyncpg.Pool) -> None:
    slot = (await first_slots(app_client, "consulate-paris", "legalization", "2027-02-03"))[0]
    status, booked = await book(app_client, booking_body(slot["id"]))
    assert status == 201, booked
    assert booked["phone"] == "+33612345678"  # office's country as the hint
    assert booked["start"] == slot["start"] and booked["status"] == "confirmed"
    assert booked["reference"].startswith("PAR-")
    token = booked["manage_token"]
    async with pool.acquire() as conn:
        stored = await conn.fetchval(
            "SELECT manage_token_hash FROM bookings WHERE reference = $1", booked["reference"]
        )
        assert token.encode() not in bytes(stored)
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == 1
    url = f"/api/v1/bookings/{booked['reference']}"
    resp = await app_client.get(url, headers=auth(token))
    assert resp.status == 200
    assert (await resp.json())["start"] == slot["start"]
    assert "manage_token" not in await resp.json()

    resp = await app_client.post(f"{url}/cancel", headers=auth(token))
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    after = await first_slots(app_client, "consulate-paris", "legalization", "2027-02-03")
    assert after[0]["remaining"] == slot["remaining"], "the seat is free again"
    resp = await app_client.post(f"{url}/cancel", headers=auth(token))
    assert resp.status == 409 and (await resp.json())["error"] == "not_active"
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT actor_kind, before_status, after_status FROM audit_log")
        assert [(r["before_status"], r["after_status"]) for r in rows] == [
            (None, "confirmed"),
            ("confirmed", "cancelled"),
        ]


async def test_phone_hint_is_the_office_country(app_client: Client) -> None:
    slot = (await first_slots(app_client, "prefecture-tiznit", "legalization", "2027-02-03"))[0]
    status, booked = await book(app_client, booking_body(slot["id"]))
    assert status == 201 and booked["phone"] == "+212612345678"
    slot = (await first_slots(app_client, "prefecture-tiznit", "legalization", "2027-02-04"))[0]
    status, booked = await book(app_client, booking_body(slot["id"], phone_country="FR"))
    assert status == 201 and booked["phone"] == "+33612345678"


async def test_reschedule_moves_the_seat(app_client: Client, pool: asyncpg.Pool) -> None:
    slots = await first_slots(app_client, "consulate-paris", "legalization", "2027-02-03")
    status, booked = await book(app_client, booking_body(slots[0]["id"]))
    assert status == 201
    url = f"/api/v1/bookings/{booked['reference']}/reschedule"
    resp = await app_client.post(
        url, json={"slot_id": slots[5]["id"]}, headers=auth(booked["manage_token"])
    )
    assert resp.status == 200
    moved = await resp.json()
    assert moved["start"] == slots[5]["start"] and moved["reference"] == booked["reference"]
    async with pool.acquire() as conn:
        taken = dict(
            await conn.fetch(
                "SELECT id, taken FROM slots WHERE id = ANY($1)", [slots[0]["id"], slots[5]["id"]]
            )
        )
    assert taken == {slots[0]["id"]: 0, slots[5]["id"]: 1}


async def test_one_active_booking_per_document_and_service(
    app_client: Client, pool: asyncpg.Pool
) -> None:
    paris = (await first_slots(app_client, "consulate-paris", "passport", "2027-02-03"))[0]
    milan = (await first_slots(app_client, "consulate-milan", "passport", "2027-02-03"))[0]
    status, first = await book(
        app_client,
        booking_body(paris["id"], service="passport", document_number="ab 123-456"),
    )
    assert status == 201 and first["document_number"] == "AB123456"
    before = await snapshot(pool)
    status, refused = await book(
        app_client,
        booking_body(
            milan["id"], service="passport", document_number="AB123456", phone_country="MA"
        ),
        lang="ar",
    )
    assert status == 409 and refused["error"] == "already_booked"
    assert (
        refused["message"]
        != "There is already an active appointment for this document and this service."
    )
    assert await snapshot(pool) == before
    # Another service with the same document is fine.
    cnie = (await first_slots(app_client, "consulate-milan", "cnie", "2027-02-03"))[0]
    status, _ = await book(
        app_client,
        booking_body(cnie["id"], service="cnie", document_number="AB123456", phone_country="MA"),
    )
    assert status == 201
    # Once cancelled, the document may book the service again.
    resp = await app_client.post(
        f"/api/v1/bookings/{first['reference']}/cancel", headers=auth(first["manage_token"])
    )
    assert resp.status == 200
    status, _ = await book(
        app_client,
        booking_body(
            milan["id"], service="passport", document_number="AB123456", phone_country="MA"
        ),
    )
    assert status == 201


async def test_cut_offs(app_client: Client, clock: Any) -> None:
    slots = await first_slots(app_client, "consulate-paris", "legalization", "2027-02-03")
    status, booked = await book(app_client, booking_body(slots[0]["id"]))
    assert status == 201
    ref, token = booked["reference"], booked["manage_token"]
    start = slots[0]["start"]
    from datetime import datetime

    starts_at = datetime.fromisoformat(start)
    clock.set(starts_at - timedelta(hours=1))
    resp = await app_client.post(
        f"/api/v1/bookings/{ref}/reschedule", json={"slot_id": slots[3]["id"]}, headers=auth(token)
    )
    assert resp.status == 409 and (await resp.json())["error"] == "too_late"
    clock.set(starts_at + timedelta(minutes=1))
    resp = await app_client.post(f"/api/v1/bookings/{ref}/cancel", headers=auth(token))
    assert resp.status == 409 and (await resp.json())["error"] == "too_late"


async def test_regeneration_never_drops_a_booking(
    app_client: Client, pool: asyncpg.Pool, clock: Any
) -> None:
    slots = await first_slots(app_client, "prefecture-agadir", "legalization", "2027-02-16")
    status, booked = await book(app_client, booking_body(slots[0]["id"]))
    assert status == 201
    async with pool.acquire() as conn:
        office = await office_store.get_office(conn, "prefecture-agadir")
        assert office is not None
        # The office now opens only in the afternoon: the booked morning slot goes.
        from datetime import time

        await office_store.replace_hours(
            conn,
            office.id,
            [HoursRule(d, time(14), time(16), 1) for d in range(5)],
        )
        await slot_store.regenerate_office(conn, office, clock(), 84)
        await office_store.add_closure(conn, office.id, date(2027, 2, 17), {"fr": "Travaux"})
        await slot_store.regenerate_office(conn, office, clock(), 84)
        row = await conn.fetchrow(
            "SELECT b.status, b.starts_at, s.capacity, s.taken FROM bookings b "
            "JOIN slots s ON s.id = b.slot_id WHERE reference = $1",
            booked["reference"],
        )
    assert row["status"] == "confirmed" and row["taken"] == 1 and row["capacity"] == 0
    assert row["starts_at"].isoformat() == "2027-02-16T09:00:00+00:00"  # Ramadan hours
    afternoon = await first_slots(app_client, "prefecture-agadir", "legalization", "2027-02-16")
    assert afternoon[0]["start"] == "2027-02-16T14:00:00+00:00"
    assert await first_slots(app_client, "prefecture-agadir", "legalization", "2027-02-17") == []
    resp = await app_client.get(
        f"/api/v1/bookings/{booked['reference']}", headers=auth(booked["manage_token"])
    )
    assert (await resp.json())["start"] == "2027-02-16T09:00:00+00:00"


# --- every error path of section 5, each leaving the database untouched ---


ErrorCase = Callable[[Client, dict[str, Any], dict[str, Any]], Awaitable[tuple[int, Any]]]


async def _post(client: Client, path: str, **kw: Any) -> tuple[int, Any]:
    resp = await client.post(path, **kw)
    return resp.status, await resp.json()


async def _get(client: Client, path: str, **kw: Any) -> tuple[int, Any]:
    resp = await client.get(path, **kw)
    return resp.status, await resp.json()


ERROR_CASES: dict[str, tuple[int, str, ErrorCase]] = {
    "malformed json": (
        400,
        "malformed_json",
        lambda c, s, b: _post(
            c, "/api/v1/bookings", data=b"{not json", headers={"Content-Type": "application/json"}
        ),
    ),
    "json not an object": (
        400,
        "malformed_json",
        lambda c, s, b: _post(c, "/api/v1/bookings", json=[1, 2]),
    ),
    "body over 64 KiB": (
        413,
        "too_large",
        lambda c, s, b: _post(c, "/api/v1/bookings", json=booking_body(s["id"], name="x" * 70_000)),
    ),
    "unknown slot": (
        404,
        "slot_not_found",
        lambda c, s, b: _post(c, "/api/v1/bookings", json=booking_body(999_999_999)),
    ),
    "slot of another service": (
        404,
        "slot_not_found",
        lambda c, s, b: _post(
            c,
            "/api/v1/bookings",
            json=booking_body(s["id"], service="passport", document_number="ZZ998877"),
        ),
    ),
    "unknown service": (
        404,
        "service_not_found",
        lambda c, s, b: _post(c, "/api/v1/bookings", json=booking_body(s["id"], service="haircut")),
    ),
    "validation": (
        422,
        "validation",
        lambda c, s, b: _post(
            c, "/api/v1/bookings", json=booking_body(s["id"], name="", phone="123", email="x@")
        ),
    ),
    "no contact": (
        422,
        "validation",
        lambda c, s, b: _post(c, "/api/v1/bookings", json=booking_body(s["id"], phone=None)),
    ),
    "slot id not a number": (
        422,
        "validation",
        lambda c, s, b: _post(c, "/api/v1/bookings", json=booking_body("12")),
    ),  # type: ignore[arg-type]
    "view without token": (
        401,
        "unauthorized",
        lambda c, s, b: _get(c, f"/api/v1/bookings/{b['reference']}"),
    ),
    "view with wrong token": (
        401,
        "unauthorized",
        lambda c, s, b: _get(c, f"/api/v1/bookings/{b['reference']}", headers=auth("wrong" * 9)),
    ),
    "view unknown reference": (
        401,
        "unauthorized",
        lambda c, s, b: _get(c, "/api/v1/bookings/PAR-ZZZZZZ", headers=auth(b["manage_token"])),
    ),
    "cancel without token": (
        401,
        "unauthorized",
        lambda c, s, b: _post(c, f"/api/v1/bookings/{b['reference']}/cancel"),
    ),
    "cancel with wrong token": (
        401,
        "unauthorized",
        lambda c, s, b: _post(
            c, f"/api/v1/bookings/{b['reference']}/cancel", headers=auth("nope" * 11)
        ),
    ),
    "reschedule with wrong token": (
        401,
        "unauthorized",
        lambda c, s, b: _post(
            c,
            f"/api/v1/bookings/{b['reference']}/reschedule",
            json={"slot_id": s["id"]},
            headers=auth("nope" * 11),
        ),
    ),
    "reschedule to unknown slot": (
        404,
        "slot_not_found",
        lambda c, s, b: _post(
            c,
            f"/api/v1/bookings/{b['reference']}/reschedule",
            json={"slot_id": 987_654_321},
            headers=auth(b["manage_token"]),
        ),
    ),
    "reschedule to the same slot": (
        422,
        "validation",
        lambda c, s, b: _post(
            c,
            f"/api/v1/bookings/{b['reference']}/reschedule",
            json={"slot_id": b["slot_id"]},
            headers=auth(b["manage_token"]),
        ),
    ),
    "reschedule malformed": (
        400,
        "malformed_json",
        lambda c, s, b: _post(
            c,
            f"/api/v1/bookings/{b['reference']}/reschedule",
            data=b"[",
            headers={**auth(b["manage_token"]), "Content-Type": "application/json"},
        ),
    ),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
async def test_error_paths_write_nothing(case: str, app_client: Client, pool: asyncpg.Pool) -> None:
    slots = await first_slots(app_client, "consulate-paris", "legalization", "2027-02-03")
    status, booked = await book(app_client, booking_body(slots[0]["id"]))
    assert status == 201
    booked["slot_id"] = slots[0]["id"]
    expected_status, expected_code, call = ERROR_CASES[case]
    before = await snapshot(pool)
    status, body = await call(app_client, slots[1], booked)
    assert (status, body["error"]) == (expected_status, expected_code), body
    assert body["message"]
    assert await snapshot(pool) == before


async def test_unknown_reference_and_wrong_token_look_the_same(app_client: Client) -> None:
    slots = await first_slots(app_client, "consulate-paris", "legalization", "2027-02-03")
    _, booked = await book(app_client, booking_body(slots[0]["id"]))
    wrong = await app_client.get(f"/api/v1/bookings/{booked['reference']}", headers=auth("x" * 43))
    unknown = await app_client.get("/api/v1/bookings/PAR-ZZZZZZ", headers=auth("x" * 43))
    assert wrong.status == unknown.status == 401
    assert await wrong.json() == await unknown.json()


ENGLISH_SLOT_FULL = "This time is no longer available. Please choose another time."


def arabic(text: str) -> bool:
    return any("\u0600" <= ch <= "\u06ff" for ch in text)


@pytest.mark.parametrize(
    ("accept", "language"),
    [("ar", "ar"), ("fr-FR,fr;q=0.9", "fr"), ("en-GB", "en"), ("de, ar;q=0.5", "ar"), ("", "fr")],
)
async def test_errors_in_the_request_language(
    accept: str, language: str, app_client: Client, pool: asyncpg.Pool
) -> None:
    slots = await first_slots(app_client, "prefecture-tiznit", "legalization", "2027-02-03")
    async with pool.acquire() as conn:
        await conn.execute("UPDATE slots SET capacity = 0 WHERE id = $1", slots[0]["id"])
    resp = await app_client.post(
        "/api/v1/bookings",
        json=booking_body(slots[0]["id"], phone="bad"),
        headers={"Accept-Language": accept},
    )
    body = await resp.json()
    assert resp.status == 422 and resp.headers["Content-Language"] == language
    resp = await app_client.post(
        "/api/v1/bookings",
        json=booking_body(slots[0]["id"]),
        headers={"Accept-Language": accept},
    )
    body = await resp.json()
    assert resp.status == 409 and body["error"] == "slot_full"
    assert resp.headers["Content-Language"] == language
    if language == "en":
        assert body["message"] == ENGLISH_SLOT_FULL
    else:
        assert body["message"] != ENGLISH_SLOT_FULL, "translated"
        assert arabic(body["message"]) == (language == "ar")


# --- concurrency ---


async def test_300_concurrent_bookings_on_a_slot_of_capacity_3(
    app_client: Client, pool: asyncpg.Pool
) -> None:
    slot = (await first_slots(app_client, "consulate-paris", "passport", "2027-02-04"))[0]
    async with pool.acquire() as conn:
        await conn.execute("UPDATE slots SET capacity = 3 WHERE id = $1", slot["id"])

    async def attempt(i: int) -> tuple[int, Any]:
        return await book(
            app_client,
            booking_body(slot["id"], service="passport", document_number=f"RUSH{i:05d}"),
        )

    results = await asyncio.gather(*(attempt(i) for i in range(300)))
    statuses = [status for status, _ in results]
    assert statuses.count(201) == 3
    assert statuses.count(409) == 297
    assert {body["error"] for status, body in results if status == 409} == {"slot_full"}
    async with pool.acquire() as conn:
        held = await conn.fetchval(
            "SELECT count(*) FROM bookings WHERE slot_id = $1 AND status = 'confirmed'",
            slot["id"],
        )
        taken = await conn.fetchval("SELECT taken FROM slots WHERE id = $1", slot["id"])
    assert held == taken == 3


async def test_concurrent_reschedules_into_one_slot(app_client: Client, pool: asyncpg.Pool) -> None:
    sources = await first_slots(
        app_client, "consulate-paris", "legalization", "2027-02-08", "2027-02-12"
    )
    target = (await first_slots(app_client, "consulate-paris", "legalization", "2027-02-15"))[0]
    async with pool.acquire() as conn:
        await conn.execute("UPDATE slots SET capacity = 3 WHERE id = $1", target["id"])
    booked = []
    for slot in sources[:60]:
        status, body = await book(app_client, booking_body(slot["id"]))
        assert status == 201
        booked.append(body)

    async def move(b: dict[str, Any]) -> int:
        resp = await app_client.post(
            f"/api/v1/bookings/{b['reference']}/reschedule",
            json={"slot_id": target["id"]},
            headers=auth(b["manage_token"]),
        )
        return resp.status

    statuses = await asyncio.gather(*(move(b) for b in booked))
    assert statuses.count(200) == 3 and statuses.count(409) == 57
    async with pool.acquire() as conn:
        mismatched = await conn.fetchval(
            """SELECT count(*) FROM slots s WHERE s.taken <> (
                   SELECT count(*) FROM bookings b WHERE b.slot_id = s.id
                   AND b.status IN ('held', 'confirmed', 'checked_in'))"""
        )
        in_target = await conn.fetchval(
            "SELECT count(*) FROM bookings WHERE slot_id = $1", target["id"]
        )
    assert mismatched == 0 and in_target == 3


async def test_swapping_slots_concurrently_never_deadlocks(
    app_client: Client, pool: asyncpg.Pool
) -> None:
    slots = await first_slots(app_client, "consulate-paris", "legalization", "2027-02-09")
    pairs = []
    for i in range(0, 30, 2):
        a = slots[i]
        b = slots[i + 1]
        async with pool.acquire() as conn:
            await conn.execute(
                "UPDATE slots SET capacity = 2 WHERE id = ANY($1::bigint[])", [a["id"], b["id"]]
            )
        _, first = await book(app_client, booking_body(a["id"]))
        _, second = await book(app_client, booking_body(b["id"]))
        pairs.append((first, b["id"]))
        pairs.append((second, a["id"]))

    async def move(booked: dict[str, Any], target: int) -> int:
        resp = await app_client.post(
            f"/api/v1/bookings/{booked['reference']}/reschedule",
            json={"slot_id": target},
            headers=auth(booked["manage_token"]),
        )
        return resp.status

    statuses = await asyncio.gather(*(move(b, t) for b, t in pairs))
    # Each target has one free seat: both moves of a pair succeed, however
    # they interleave, and neither dies in a deadlock (a 500).
    assert set(statuses) == {200}
    async with pool.acquire() as conn:
        taken = await conn.fetch(
            "SELECT taken FROM slots WHERE id = ANY($1::bigint[])",
            [slot["id"] for slot in slots[:30]],
        )
    assert {r["taken"] for r in taken} == {1}


async def test_no_show_only_after_the_start_and_undo_never_oversells(
    pool: asyncpg.Pool, clock: Any, app_client: Client
) -> None:
    from service import bookings as flows
    from service.domain.booking import Status
    from service.domain.errors import Conflict
    from service.store.audit import Actor

    slot = (await first_slots(app_client, "consulate-paris", "legalization", "2027-02-03"))[0]
    async with pool.acquire() as conn:
        await conn.execute("UPDATE slots SET capacity = 1 WHERE id = $1", slot["id"])
    _, booked = await book(app_client, booking_body(slot["id"]))
    clerk = Actor("staff", "1")
    before = await snapshot(pool)
    async with pool.acquire() as conn:
        with pytest.raises(Conflict) as refused:
            await flows.set_status_by_office(
                conn, booked["reference"], "consulate-paris", Status.NO_SHOW, clerk, clock()
            )
    assert refused.value.code == "too_early"
    assert await snapshot(pool) == before
    from datetime import datetime

    clock.set(datetime.fromisoformat(slot["start"]) + timedelta(minutes=20))
    async with pool.acquire() as conn:
        await flows.set_status_by_office(
            conn, booked["reference"], "consulate-paris", Status.NO_SHOW, clerk, clock()
        )
        assert await conn.fetchval("SELECT taken FROM slots WHERE id = $1", slot["id"]) == 0
        # Late after all: checked in, the seat is theirs again.
        await flows.set_status_by_office(
            conn, booked["reference"], "consulate-paris", Status.CHECKED_IN, clerk, clock()
        )
        assert await conn.fetchval("SELECT taken FROM slots WHERE id = $1", slot["id"]) == 1
        # Had capacity been lowered meanwhile, the undo is refused, not oversold.
        await flows.set_status_by_office(
            conn, booked["reference"], "consulate-paris", Status.NO_SHOW, clerk, clock()
        )
        await conn.execute("UPDATE slots SET capacity = 0 WHERE id = $1", slot["id"])
        with pytest.raises(Conflict) as full:
            await flows.set_status_by_office(
                conn, booked["reference"], "consulate-paris", Status.CHECKED_IN, clerk, clock()
            )
        assert full.value.code == "slot_full"
        assert await conn.fetchval("SELECT taken FROM slots WHERE id = $1", slot["id"]) == 0


async def test_the_booking_body_chooses_the_channel(app_client: Client, pool: asyncpg.Pool) -> None:
    slots = await first_slots(app_client, "consulate-paris", "legalization", "2027-02-03")
    status, booked = await book(app_client, booking_body(slots[0]["id"], channel="whatsapp"))
    assert status == 201, booked
    assert booked["channel"] == "whatsapp"
    channels = await pool.fetch("SELECT DISTINCT channel FROM outbox")
    assert [r["channel"] for r in channels] == ["whatsapp"]
    # Without a choice: SMS, the booking having a phone.
    status, other = await book(app_client, booking_body(slots[1]["id"], phone="06 12 34 56 79"))
    assert status == 201 and other["channel"] == "sms"
    before = await snapshot(pool)
    for wrong, field in (("fax", "channel"), (["sms"], "channel"), ("email", "email")):
        status, refused = await book(app_client, booking_body(slots[2]["id"], channel=wrong))
        assert status == 422, refused
        assert list(refused["fields"]) == [field]
    assert await snapshot(pool) == before
