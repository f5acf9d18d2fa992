"""Draws on the web: the public JSON and page (replayable, no personal
data), an office's list, and the offer page answered without JavaScript in
Arabic and French."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from service.cli import fetch_and_verify
from service.config import Settings
from service.domain import draw as rules
from tests.clock import FakeClock
from tests.fixtures.app import LiveServer
from tests.fixtures.office import MANAGER
from tests.integration.test_citizen_pages import hidden
from tests.integration.test_draw_flow import ask, draw_service, offer_token, offers, tick

Client = TestClient[Any, Any]


async def test_the_public_record_and_page(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    window_id = await draw_service(pool, clock, capacity=2)
    opened = await (await app_client.get(f"/api/v1/draws/{window_id}")).json()
    assert opened["state"] == "open" and "seed" not in opened
    # The page of an open draw: names, times and days in the reader's
    # language and the office's zone, no codes nor UTC instants.
    assert (await app_client.get(f"/draws/{window_id}")).status == 200
    resp = await app_client.get(f"/draws/{window_id}?lang=ar")
    assert resp.status == 200
    page = await resp.text()
    assert "القنصلية العامة للمملكة المغربية بباريس" in page and "فبراير" in page
    assert "consulate-paris" not in page
    assert f"{opened['opens_at']} –" not in page and f">{opened['closes_at']}" not in page
    assert opened["seed_sha256"] in page
    ids = [await ask(pool, settings, clock, window_id, n) for n in range(4)]
    clock.advance(timedelta(days=7))
    await tick(pool, settings, clock)
    resp = await app_client.get(f"/api/v1/draws/{window_id}")
    assert resp.status == 200
    doc = await resp.json()
    seed = bytes.fromhex(doc["seed"])
    assert hashlib.sha256(seed).hexdigest() == opened["seed_sha256"]
    assert [r["entry"] for r in doc["ranking"]] == sorted(
        ids, key=lambda i: hashlib.sha256(seed + i.encode()).hexdigest()
    )
    assert rules.verify(doc) == []
    listed = await (await app_client.get("/api/v1/offices/consulate-paris/draws")).json()
    assert [(d["id"], d["state"]) for d in listed] == [(window_id, "drawn")]
    assert (await app_client.get("/api/v1/draws/999999")).status == 404
    assert (await app_client.get("/api/v1/offices/nowhere/draws")).status == 404
    page = await (await app_client.get(f"/draws/{window_id}?lang=fr")).text()
    assert doc["seed"] in page and ids[0] in page
    # Each entry's outcome in the reader's language: two seats, four entries.
    assert page.count("Place proposée") == 2 and page.count("Sur la liste d’attente") == 2
    assert "SHA-256" in page and "hashlib.sha256(seed + i.encode())" in page
    assert "example.org" not in page and "Citoyen" not in page


async def test_an_offer_is_accepted_in_arabic_and_declined_in_french_without_javascript(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    window_id = await draw_service(pool, clock, capacity=2)
    for n in range(3):
        await ask(pool, settings, clock, window_id, n)
    clock.advance(timedelta(days=7))
    await tick(pool, settings, clock)
    first, second = (await offers(pool, window_id)).items()
    # Arabic: the page speaks Arabic and its form accepts the seat.
    link = f"/d/{first[1]}/{await offer_token(pool, settings, first[1])}"
    page = await (await app_client.get(link + "?lang=ar")).text()
    assert '<html lang="ar" dir="rtl">' in page and first[0] in page
    resp = await app_client.post(
        link, data={"_csrf": hidden(page, "_csrf"), "answer": "accept"}, allow_redirects=False
    )
    assert resp.status == 303
    page = await (await app_client.get(link + "?lang=ar")).text()
    assert "تم تأكيد موعدكم" in page
    # The manage link of a held offer leads to the offer's page.
    manage = link.replace("/d/", "/b/")
    # French: decline; the seat goes to the next entry in drawn order.
    link2 = f"/d/{second[1]}/{await offer_token(pool, settings, second[1])}"
    assert (await app_client.get(link2.replace("/d/", "/b/"), allow_redirects=False)).headers[
        "Location"
    ] == link2
    page = await (await app_client.get(link2 + "?lang=fr")).text()
    assert "Une place vous est proposée" in page
    csrf = hidden(page, "_csrf")
    resp = await app_client.post(
        link2, data={"_csrf": csrf, "answer": "decline"}, allow_redirects=False
    )
    assert resp.status == 303
    assert "Vous avez refusé la proposition" in await (await app_client.get(link2)).text()
    await tick(pool, settings, clock)
    assert len(await offers(pool, window_id)) == 1
    # Answering again is refused (the page no longer offers a form), and
    # nothing changes.
    assert 'value="accept"' not in await (await app_client.get(link2)).text()
    resp = await app_client.post(
        link2, data={"_csrf": csrf, "answer": "accept"}, allow_redirects=False
    )
    assert resp.status == 409
    assert len(await offers(pool, window_id)) == 1
    assert (await app_client.get(manage, allow_redirects=False)).status == 200


async def test_mawid_draw_verify_replays_a_running_instance(
    live_server: LiveServer, settings: Settings
) -> None:
    pool, clock = live_server.pool, live_server.clock
    window_id = await draw_service(pool, clock, capacity=2)
    for n in range(5):
        await ask(pool, settings, clock, window_id, n)
    _, problems = await fetch_and_verify(live_server.url, window_id)
    assert problems == ["the draw has not been published yet"]
    clock.advance(timedelta(days=7))
    await tick(pool, settings, clock)
    assert await fetch_and_verify(live_server.url, window_id) == (5, [])
    # A record that was tampered with does not replay.
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE draw_entries SET position = 4 - position WHERE window_id = $1", window_id
        )
    _, problems = await fetch_and_verify(live_server.url, window_id)
    assert problems == ["the ranking is not the one the seed and the entries give"]
    assert (await fetch_and_verify(live_server.url, 424242))[1] == [
        f"GET {live_server.url}/api/v1/draws/424242 answered 404"
    ]


async def test_a_manager_sets_the_mode_and_opens_a_window_through_the_api(
    pool: asyncpg.Pool, clock: FakeClock, browsers: Any
) -> None:
    manager = browsers()
    assert (await manager.login(MANAGER)).status == 303
    base = "/api/v1/offices/consulate-paris/services/legalization"
    headers = {"X-CSRF-Token": manager.csrf}
    window = {
        "closes_at": "2027-02-08T18:00:00+01:00",
        "first_day": "2027-02-15",
        "last_day": "2027-02-19",
    }
    r = await manager.session.post(f"{base}/draws", json=window, headers=headers)
    assert r.status == 409 and (await r.json())["error"] == "not_draw_mode"
    r = await manager.session.post(f"{base}/allocation", json={"mode": "draw"}, headers=headers)
    assert r.status == 200 and (await r.json())["mode"] == "draw"
    r = await manager.session.post(
        f"{base}/draws", json={**window, "closes_at": "2027-02-01T12:00:00+01:00"}, headers=headers
    )
    assert r.status == 422 and "closes_at" in (await r.json())["fields"]
    # Instants no calendar day holds (0001-01-01 at +01:00 is before UTC's first).
    for far in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        r = await manager.session.post(
            f"{base}/draws", json={**window, "opens_at": far}, headers=headers
        )
        assert r.status == 422 and set((await r.json())["fields"]) == {"opens_at"}
    r = await manager.session.post(f"{base}/draws", json=window, headers=headers)
    assert r.status == 201
    record = await r.json()
    assert record["state"] == "open" and len(record["seed_sha256"]) == 64 and "seed" not in record
    r = await manager.session.post(f"{base}/draws", json=window, headers=headers)
    assert r.status == 409 and (await r.json())["error"] == "window_overlaps"
    # Its seats stay with the draw while the window has days ahead.
    r = await manager.session.post(f"{base}/allocation", json={"mode": "instant"}, headers=headers)
    assert r.status == 409 and (await r.json())["error"] == "draw_ahead"
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM draw_windows") == 1


async def free_slot(pool: asyncpg.Pool, clock: FakeClock) -> int:
    """A free seat of the legalization service, past the booking window's start."""
    async with pool.acquire() as conn:
        slot_id: int = await conn.fetchval(
            """SELECT id FROM slots WHERE office_id = 'consulate-paris'
                 AND service_id = 'legalization' AND taken = 0
                 AND starts_at > $1::timestamptz + interval '1 day'
               ORDER BY starts_at LIMIT 1""",
            clock(),
        )
    return slot_id


async def test_booking_a_draw_service_through_the_api_is_refused_in_the_readers_language(
    app_client: Client, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    await draw_service(pool, clock)
    slot_id = await free_slot(pool, clock)
    details = {
        "slot_id": slot_id,
        "service": "legalization",
        "name": "Citoyen Ba",
        "email": "person1@example.org",
        "language": "ar",
        "document_number": "AB1234567",
    }
    resp = await app_client.post(
        "/api/v1/bookings", json=details, headers={"Accept-Language": "ar"}
    )
    assert resp.status == 409
    body = await resp.json()
    assert body["error"] == "draw_only"
    assert "القرعة" in body["message"], body
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM bookings WHERE slot_id = $1", slot_id) == 0


async def test_a_booking_kept_through_a_switch_to_draw_offers_no_move(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    from service import bookings, draw
    from service.domain.validation import RawDetails
    from service.store.audit import Actor

    slot_id = await free_slot(pool, clock)
    booked = await bookings.book(
        pool, slot_id=slot_id, service_id="legalization",
        details=RawDetails(name="Citoyen Ba", email="person1@example.org", language="fr"),
        secret_key=settings.secret_key, now=clock(), actor=Actor("staff", "agent"),
    )  # fmt: skip
    manage = f"/b/{booked.booking.reference}/{booked.manage_token}"
    assert f'href="{manage}/reschedule"' in await (await app_client.get(manage)).text()
    await draw.set_mode(pool, "consulate-paris", "legalization", "draw", clock())
    page = await (await app_client.get(manage)).text()
    assert f'href="{manage}/reschedule"' not in page
    assert f"{manage}/cancel" in page, "it can still be cancelled"
