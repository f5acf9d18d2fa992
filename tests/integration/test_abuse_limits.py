"""Limits: per client address in Redis (shared by every web process, 429 with
Retry-After in the request's language, JSON for the API and a page for the
forms, X-Forwarded-For only behind a trusted proxy), the household cap in
the database, the reschedule cap, the per-number SMS cap in the worker, the
daily budget of codes per contact, and the fields that reach messages.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from service import bookings
from service.app import create_app
from service.config import Settings
from service.domain.validation import RawDetails
from service.store.audit import Actor
from service.web import limits
from service.worker import jobs
from service.worker.senders import Senders
from tests.clock import FakeClock
from tests.codesink import Kept, code_for
from tests.fixtures.app import prove_contacts
from tests.integration.test_abuse_verification import (
    OFFICE,
    PHONE,
    SERVICE,
    auth,
    book,
    messages,
    row,
    slots,
)
from tests.integration.test_citizen_pages import details, hidden, open_form
from tests.integration.test_draw_flow import draw_service
from tests.integration.test_draw_request_pages import FORM as DRAW_FORM
from tests.integration.test_draw_request_pages import form_body, request_data
from tests.integration.test_mobile_day_alerts import FORM as ALERT_FORM
from tests.integration.test_waitlist_pages import FORM as WAITLIST_FORM
from tests.integration.test_waitlist_pages import join_data

Client = TestClient  # type: ignore[type-arg]
Call = Callable[[Client], Awaitable[Any]]


@asynccontextmanager
async def app_with(
    settings: Settings, pool: asyncpg.Pool, clock: FakeClock
) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(settings, pool=pool, clock=clock))) as client:
        yield client


REF = "/api/v1/bookings/PAR-ZZZZZZ"
TOKEN = {"Authorization": "Bearer " + "x" * 22}
# One request of each limited kind; what it answers does not matter, only
# that it is counted (every attempt is, refused or not).
CALLS: dict[str, Call] = {
    "book": lambda c: c.post("/api/v1/bookings", json={}),
    "verify": lambda c: c.post(f"{REF}/verify", json={"code": "1"}, headers=TOKEN),
    "resend": lambda c: c.post(f"{REF}/resend", headers=TOKEN),
    "reschedule": lambda c: c.post(f"{REF}/reschedule", json={"slot_id": 1}, headers=TOKEN),
    "cancel": lambda c: c.post(f"{REF}/cancel", headers=TOKEN),
    "manage": lambda c: c.get(REF, headers=TOKEN),
    "availability": lambda c: c.get(
        f"/api/v1/offices/{OFFICE}/availability",
        params={"service": SERVICE, "from": "2027-02-03", "to": "2027-02-03"},
    ),
}


@pytest.mark.parametrize("action", list(CALLS))
async def test_each_limit_answers_429_with_retry_after_then_lets_the_client_back(
    action: str, settings: Settings, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    limited = settings.with_(**{f"limit_{action}": "2/1m"})
    async with app_with(limited, pool, clock) as client:
        for _ in range(2):
            resp = await CALLS[action](client)
            assert resp.status != 429, await resp.text()
        clock.advance(timedelta(seconds=10))
        resp = await CALLS[action](client)
        assert resp.status == 429
        body = await resp.json()
        assert body["error"] == "rate_limited"
        # Two a minute: the next one is free 30 s after the first.
        assert resp.headers["Retry-After"] == "20"
        assert resp.headers["Content-Language"] == "fr"
        assert body["message"].endswith("Réessayez dans 1 minute."), body["message"]
        clock.advance(timedelta(seconds=20))
        resp = await CALLS[action](client)
        assert resp.status != 429


async def test_the_citizen_form_gets_a_429_page_in_its_language(
    settings: Settings, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    async with app_with(settings.with_(limit_book="1/1h"), pool, clock) as client:
        page, slot_id, url = await open_form(client)
        data = details(page, slot_id, phone="06 11 22 33 44")
        # A form sent back for a mistake is not a booking attempt: the one
        # attempt an hour is still there after it.
        mistyped = await client.post(f"{url}?lang=ar", data={**data, "name": ""})
        assert mistyped.status == 422
        first = await client.post(f"{url}?lang=ar", data=data, allow_redirects=False)
        assert first.status == 303
        again = await client.post(f"{url}?lang=ar", data=data, allow_redirects=False)
        assert again.status == 429
        assert again.headers["Retry-After"] == "3600"
        assert again.content_type == "text/html"
        page = await again.text()
        assert 'lang="ar" dir="rtl"' in page and "طلبات كثيرة من اتصالك" in page
        assert "بعد 60 دقيقة" in page  # minutes, in the form Arabic gives 60
        # The form again, with what was typed, to send later.
        assert 'value="06 11 22 33 44"' in page and f'name="slot" value="{slot_id}"' in page


async def _draw_request_form(client: Client, pool: asyncpg.Pool, clock: FakeClock) -> Form:
    await draw_service(pool, clock)
    page = await (await client.get(DRAW_FORM)).text()
    data = request_data(page)
    return DRAW_FORM, form_body(data), form_body({**data, "days": []}), "draw_entries"


async def _waitlist_form(client: Client, pool: asyncpg.Pool, clock: FakeClock) -> Form:
    page = await (await client.get(WAITLIST_FORM)).text()
    data = join_data(page)
    return WAITLIST_FORM, form_body(data), form_body({**data, "name": ""}), "draw_entries"


async def _alert_form(client: Client, pool: asyncpg.Pool, clock: FakeClock) -> Form:
    page = await (await client.get(f"{ALERT_FORM}?office={OFFICE}")).text()
    data = {
        "_csrf": hidden(page, "_csrf"), "office": OFFICE, "town": "Tours", "channel": "sms",
        "phone_country": "FR", "phone": "06 12 34 56 78", "language": "fr",
    }  # fmt: skip
    mistyped = {**data, "town": "Xyzzyville"}
    return ALERT_FORM, list(data.items()), list(mistyped.items()), "mobile_day_subscriptions"


Form = tuple[str, list[tuple[str, str]], list[tuple[str, str]], str]
ENTRY_FORMS: dict[str, Callable[[Client, asyncpg.Pool, FakeClock], Awaitable[Form]]] = {
    "draw request": _draw_request_form,
    "waiting list": _waitlist_form,
    "mobile day alert": _alert_form,
}


@pytest.mark.parametrize("form", list(ENTRY_FORMS))
async def test_entry_forms_count_attempts_not_mistakes_and_keep_what_was_typed_when_refused(
    form: str, settings: Settings, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    async with app_with(settings.with_(limit_book="1/1h"), pool, clock) as client:
        url, data, mistyped, table = await ENTRY_FORMS[form](client, pool, clock)
        # Forms sent back for a mistake are reads, not attempts: the one
        # attempt an hour is still there after them.
        for _ in range(3):
            resp = await client.post(url, data=mistyped)
            assert resp.status == 422, await resp.text()
        resp = await client.post(url, data=data, allow_redirects=False)
        assert resp.status == 303, await resp.text()
        again = await client.post(f"{url}?lang=ar", data=data, allow_redirects=False)
        assert again.status == 429
        assert again.headers["Retry-After"] == "3600"
        page = await again.text()
        assert 'lang="ar" dir="rtl"' in page and "طلبات كثيرة من اتصالك" in page
        # The form again, with what was typed, to send later; nothing written.
        assert 'value="06 12 34 56 78"' in page
        assert await pool.fetchval(f"SELECT count(*) FROM {table}") == 1


@asynccontextmanager
async def silent_redis() -> AsyncIterator[str]:
    """A Redis that takes connections and commands and never answers: the
    app's client gives up after its socket timeout (2 s)."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        while await reader.read(4096):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield f"redis://127.0.0.1:{server.sockets[0].getsockname()[1]}/0"
    finally:
        for writer in held:
            writer.close()
        server.close()


@pytest.mark.parametrize("form", list(ENTRY_FORMS))
async def test_an_attempt_waiting_for_a_slow_redis_holds_no_database_connection(
    form: str, settings: Settings, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    """Under a rush with Redis slow, each request that waited for its count
    inside a transaction would keep one of the pool's connections for the
    whole wait, and the site would stall on the pool rather than on Redis."""
    async with silent_redis() as redis_url:
        slow = settings.with_(redis_url=redis_url, limit_availability="off")
        async with app_with(slow, pool, clock) as client:
            url, data, _, table = await ENTRY_FORMS[form](client, pool, clock)
            posting = asyncio.ensure_future(client.post(url, data=data, allow_redirects=False))
            busy_since: float | None = None
            longest = 0.0
            loop = asyncio.get_running_loop()
            started = loop.time()
            while not posting.done():
                now = loop.time()
                if pool.get_size() > pool.get_idle_size():
                    busy_since = now if busy_since is None else busy_since
                    longest = max(longest, now - busy_since)
                else:
                    busy_since = None
                await asyncio.sleep(0.02)
            resp = await posting
            # Redis never answered: the attempt waited for it, then went
            # through uncounted (service.web.limits), and was written.
            assert loop.time() - started >= 1.5
            assert resp.status == 303, await resp.text()
            assert await pool.fetchval(f"SELECT count(*) FROM {table}") == 1
            assert longest < 0.5


async def test_limits_are_shared_by_every_web_process(
    settings: Settings, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    limited = settings.with_(limit_availability="3/1m")
    call = CALLS["availability"]
    async with app_with(limited, pool, clock) as one, app_with(limited, pool, clock) as two:
        assert (await call(one)).status == 200
        assert (await call(two)).status == 200
        assert (await call(one)).status == 200
        assert (await call(two)).status == 429


async def test_a_busy_client_counted_ahead_gets_no_more_than_its_limit_and_the_lease(
    settings: Settings, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    """service.web.limits: requests counted ahead in Redis are let through
    within LEASE_SECONDS of their count, never uncounted; on a still clock a
    client gets exactly its limit, whichever process answers."""
    limited = settings.with_(limit_availability="40/40s")  # one a second, 40 at once
    call = CALLS["availability"]
    redis = Redis.from_url(settings.redis_url)
    key = f"{limits.PREFIX}:availability:127.0.0.1"
    async with app_with(limited, pool, clock) as one, app_with(limited, pool, clock) as two:
        # A busy client on one process: counted ahead, in Redis, before it goes.
        for _ in range(16):
            assert (await call(one)).status == 200
        counted_until = int(await redis.get(key)) / 1_000_000
        counted = round(counted_until - clock().timestamp())
        assert counted > 16, "counted ahead"
        # Idle long enough for the whole allowance to come back: what the
        # process still held was counted long ago and is no longer used.
        clock.advance(timedelta(seconds=100))
        statuses = [(await call(client)).status for client in (one, two) * 50]
        assert statuses.count(200) == 40, statuses
        # On a moving clock: within any span, at most the limit over that
        # span lengthened by the lease.
        clock.advance(timedelta(seconds=100))
        let_through: list[float] = []
        for client in (one, two) * 150:
            clock.advance(timedelta(milliseconds=250))
            if (await call(client)).status == 200:
                let_through.append(clock().timestamp())
    await redis.aclose()
    assert len(let_through) > 40
    for first, start in enumerate(let_through):
        for last in range(first, len(let_through)):
            span = let_through[last] - start
            assert last - first + 1 <= 40 + math.floor(span + limits.LEASE_SECONDS), (first, last)


async def test_forwarded_for_counts_only_behind_a_trusted_proxy(
    settings: Settings, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    call = f"/api/v1/offices/{OFFICE}/availability?service={SERVICE}&from=2027-02-03&to=2027-02-03"

    async def statuses(client: Client, forwarded: list[str]) -> list[int]:
        return [(await client.get(call, headers={"X-Forwarded-For": f})).status for f in forwarded]

    addresses = [f"198.51.100.{n}" for n in range(1, 5)]
    # Not behind our proxy: the header is anyone's claim; one client.
    async with app_with(settings.with_(limit_availability="2/1m"), pool, clock) as client:
        assert await statuses(client, addresses) == [200, 200, 429, 429]
    # Behind it (the test client connects from 127.0.0.1): one budget each.
    clock.advance(timedelta(minutes=1))
    trusting = settings.with_(limit_availability="2/1m", trusted_proxies="127.0.0.1, ::1")
    async with app_with(trusting, pool, clock) as client:
        assert await statuses(client, addresses * 2) == [200] * 8
        assert await statuses(client, [addresses[0]]) == [429]
        # What a client writes to the left of the proxy's entry is ignored.
        assert await statuses(client, [f"6.6.6.6, {addresses[0]}"]) == [429]


async def test_clients_counted_together_each_get_their_own_limit(
    settings: Settings, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    """The counts asked for at once go to Redis in one call
    (service.web.limits): each client still gets exactly its limit."""
    call = f"/api/v1/offices/{OFFICE}/availability?service={SERVICE}&from=2027-02-03&to=2027-02-03"
    trusting = settings.with_(limit_availability="2/1m", trusted_proxies="127.0.0.1, ::1")
    addresses = [f"198.51.100.{n}" for n in range(1, 11)]
    async with app_with(trusting, pool, clock) as client:

        async def status(address: str) -> tuple[str, int]:
            resp = await client.get(call, headers={"X-Forwarded-For": address})
            return address, resp.status

        answers = await asyncio.gather(*(status(a) for a in addresses * 3))
    for address in addresses:
        mine = sorted(s for a, s in answers if a == address)
        assert mine == [200, 200, 429], (address, mine)


async def test_without_redis_requests_go_through(
    settings: Settings, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    down = settings.with_(redis_url="redis://127.0.0.1:1/0", limit_availability="1/1h")
    async with app_with(down, pool, clock) as client:
        for _ in range(3):
            assert (await CALLS["availability"](client)).status == 200


# --- the household cap -------------------------------------------------------------


async def test_one_phone_holds_at_most_four_active_bookings_at_an_office(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    await prove_contacts(pool, PHONE)
    free = await slots(app_client)
    made = []
    for n in range(4):
        status, booked = await book(app_client, free[n]["id"])
        assert (status, booked["status"]) == (201, "confirmed")
        made.append(booked)
    before = await pool.fetchval("SELECT count(*) FROM bookings")
    status, refused = await book(app_client, free[4]["id"])
    assert (status, refused["error"]) == (409, "household_cap")
    assert set(refused["fields"]) == {"phone"} and "4" in refused["message"]
    assert await pool.fetchval("SELECT count(*) FROM bookings") == before
    # Another office is another count (Tiznit's desk sends SMS to French
    # mobiles); a cancelled booking frees its place.
    tiznit = await app_client.get(
        "/api/v1/offices/prefecture-tiznit/availability",
        params={"service": SERVICE, "from": "2027-02-03", "to": "2027-02-03"},
    )
    tiznit_slot = (await tiznit.json())["slots"][0]
    status, elsewhere = await book(app_client, tiznit_slot["id"], phone_country="FR")
    assert status == 201, elsewhere
    resp = await app_client.post(
        f"/api/v1/bookings/{made[0]['reference']}/cancel", headers=auth(made[0])
    )
    assert resp.status == 200
    status, _ = await book(app_client, free[4]["id"])
    assert status == 201


async def test_addresses_are_counted_as_one_mailbox_and_holds_count(
    app_client: Client, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    free = await slots(app_client)
    variants = [
        "amina@gmail.com",
        "A.Mina@gmail.com",
        "amina+rdv@googlemail.com",
        "AMINA@GMAIL.COM",
    ]
    for n, email in enumerate(variants):
        status, booked = await book(app_client, free[n]["id"], phone=None, email=email)
        assert (status, booked["status"]) == (201, "held")
    status, refused = await book(app_client, free[5]["id"], phone=None, email="a.m.i.n.a@gmail.com")
    assert (status, refused["error"]) == (409, "household_cap")
    assert set(refused["fields"]) == {"email"}
    # Holds that run out stop counting.
    clock.advance(timedelta(minutes=10))
    await slots(app_client)
    status, again = await book(app_client, free[5]["id"], phone=None, email="amina@gmail.com")
    assert status == 201, again


async def test_the_database_holds_the_cap_under_concurrency_and_against_any_statement(
    app_client: Client, pool: asyncpg.Pool, settings: Settings
) -> None:
    free = await slots(app_client, "2027-02-04")

    async def attempt(n: int) -> int:
        status, _ = await book(app_client, free[n]["id"], phone="06 11 22 33 44")
        return status

    results = await asyncio.gather(*(attempt(n) for n in range(12)))
    assert sorted(results) == [201] * 4 + [409] * 8
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM bookings WHERE phone = $1 AND status IN ('held', 'confirmed')",
            PHONE,
        )
        == 4
    )
    # A statement that is not the use case is refused too.
    with pytest.raises(asyncpg.CheckViolationError, match="household cap"):
        await pool.execute(
            """INSERT INTO bookings (reference, office_id, service_id, slot_id, starts_at,
                   ends_at, status, citizen_name, phone, language, manage_token_hash)
               SELECT 'PAR-ZZZZZZ', office_id, service_id, id, starts_at, ends_at,
                   'confirmed', 'X', $2, 'fr', '\\x00' FROM slots WHERE id = $1""",
            free[12]["id"],
            PHONE,
        )


# --- the reschedule cap --------------------------------------------------------------


async def test_a_citizen_moves_a_booking_twice_staff_any_number_of_times(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    await prove_contacts(pool, PHONE)
    free = await slots(app_client)
    _, booked = await book(app_client, free[0]["id"])
    url = f"/api/v1/bookings/{booked['reference']}/reschedule"
    for target in (1, 2):
        resp = await app_client.post(
            url, json={"slot_id": free[target]["id"]}, headers=auth(booked)
        )
        assert resp.status == 200
    before = await row(pool, booked["reference"])
    resp = await app_client.post(url, json={"slot_id": free[3]["id"]}, headers=auth(booked))
    assert resp.status == 409 and (await resp.json())["error"] == "reschedule_limit"
    after = await row(pool, booked["reference"])
    assert (after["slot_id"], after["citizen_reschedules"]) == (before["slot_id"], 2)
    # The manage page no longer offers it.
    page = await (await app_client.get(f"/b/{booked['reference']}/{booked['manage_token']}")).text()
    assert "/reschedule" not in page
    clerk = Actor("staff", "1")
    for target in (3, 4, 5):
        await bookings.reschedule(
            pool, booked["reference"], None, settings.secret_key, free[target]["id"], clock(),
            actor=clerk,
        )  # fmt: skip
    assert (await row(pool, booked["reference"]))["slot_id"] == free[5]["id"]


# --- the per-number SMS cap and the codes' budget -----------------------------------------


async def sent_sms(
    pool: asyncpg.Pool, settings: Settings, to: str, n: int, clock: FakeClock
) -> None:
    """n SMS already sent to `to` in the last hours, across bookings."""
    for i in range(n):
        await prove_contacts(pool, to)
        free = await pool.fetchval(
            """SELECT id FROM slots WHERE office_id = $1 AND service_id = $2
               AND starts_at > $3 AND taken < capacity ORDER BY starts_at OFFSET $4 LIMIT 1""",
            OFFICE,
            SERVICE,
            clock() + timedelta(days=10),
            i,
        )
        booked = await bookings.book(
            pool, slot_id=free, service_id=SERVICE, secret_key=settings.secret_key, now=clock(),
            details=RawDetails(name="Earlier Booking", phone=to, language="fr"),
        )  # fmt: skip
        await pool.execute(
            """UPDATE outbox SET status = 'sent', sent_at = $2
               WHERE booking_id = $1 AND kind = 'confirmation'""",
            booked.booking.id,
            clock() - timedelta(hours=20 - i),
        )
        await bookings.cancel(
            pool, booked.booking.reference, booked.manage_token, settings.secret_key, clock()
        )
        await pool.execute(
            "UPDATE outbox SET status = 'cancelled' WHERE booking_id = $1 AND status = 'pending'",
            booked.booking.id,
        )


async def send_due(pool: asyncpg.Pool, settings: Settings, clock: FakeClock) -> Kept:
    kept = Kept()
    state = await jobs.build_state(settings, pool=pool, senders=Senders(kept, kept), clock=clock)
    try:
        for r in await pool.fetch(
            "SELECT id FROM outbox WHERE status = 'pending' AND send_at <= $1 ORDER BY id", clock()
        ):
            await jobs.send_message({jobs.STATE: state}, r["id"])
    finally:
        await jobs.close_state(state)
    return kept


async def test_past_eight_sms_a_day_a_number_gets_email_or_waits(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    await sent_sms(pool, settings, PHONE, 8, clock)
    await prove_contacts(pool, PHONE, "youssef@example.org")
    free = await slots(app_client)
    _, with_email = await book(app_client, free[0]["id"], email="youssef@example.org")
    _, without = await book(app_client, free[1]["id"], phone="06 11 22 33 44")
    kept = await send_due(pool, settings, clock)
    assert kept.sms == [], "the ninth SMS of the day does not go"
    assert [m["To"] for m in kept.emails] == ["youssef@example.org"]
    rows = await pool.fetch(
        """SELECT b.reference, o.status, o.status_reason, o.send_at FROM outbox o
           JOIN bookings b ON b.id = o.booking_id
           WHERE o.kind = 'confirmation' AND o.channel = 'sms' AND b.reference = ANY($1)""",
        [with_email["reference"], without["reference"]],
    )
    by_ref = {r["reference"]: r for r in rows}
    assert (
        by_ref[with_email["reference"]]["status"],
        by_ref[with_email["reference"]]["status_reason"],
    ) == ("skipped", "sms_cap")
    waiting = by_ref[without["reference"]]
    assert (waiting["status"], waiting["status_reason"]) == ("pending", "sms_cap")
    # It goes once the oldest of the day's SMS is 24 hours old.
    assert waiting["send_at"] == clock() + timedelta(hours=4)
    clock.advance(timedelta(hours=4))
    kept = await send_due(pool, settings, clock)
    assert [to for to, _ in kept.sms] == [PHONE]
    # Codes are not counted: their own limits bound them.
    await pool.execute("DELETE FROM verified_contacts")
    _, held = await book(app_client, free[2]["id"], phone="06 11 22 33 44")
    assert held["status"] == "held"
    assert await code_for(pool, settings, clock, PHONE)


async def test_a_contact_gets_at_most_eight_codes_a_day(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    # Different households cannot flood one inbox with codes either.
    free = await slots(app_client, "2027-02-05")
    for n in range(8):
        status, booked = await book(
            app_client, free[n]["id"], phone=None, email="target@example.org"
        )
        assert status == 201, booked
        resp = await app_client.post(
            f"/api/v1/bookings/{booked['reference']}/cancel", headers=auth(booked)
        )
        assert resp.status == 200
    before = await pool.fetchval("SELECT count(*) FROM bookings")
    status, refused = await book(app_client, free[9]["id"], phone=None, email="target@example.org")
    assert (status, refused["error"]) == (429, "codes_per_contact")
    assert await pool.fetchval("SELECT count(*) FROM bookings") == before
    assert await pool.fetchval("SELECT taken FROM slots WHERE id = $1", free[9]["id"]) == 0


# --- fields that reach messages ----------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "postmaster,abuse,root@example.com"),
        ("email", "a\x07@example.com"),
        ("email", "a@example.com\u202e"),
        ("email", "root@localhost"),
        ("name", "URGENT pay the 90 EUR fee at https://pay.example"),
        ("name", "Amina www.pay.example"),
        ("phone", "+881612345678"),  # satellite
        ("phone", "+33899123456"),  # premium rate
        ("phone", "+34612345678"),  # a Spanish mobile, not served from Paris
    ],
)
async def test_fields_that_would_reach_a_message_are_refused_and_nothing_is_written(
    field: str, value: str, app_client: Client, pool: asyncpg.Pool
) -> None:
    before = await pool.fetchval("SELECT count(*) FROM bookings")
    body = {"email": "a@example.org", field: value}
    status, refused = await book(app_client, (await slots(app_client))[0]["id"], **body)
    assert (status, refused["error"]) == (422, "validation")
    assert set(refused["fields"]) == {field}
    assert await pool.fetchval("SELECT count(*) FROM bookings") == before


async def test_names_are_stored_without_invisible_characters_and_staff_get_the_same_rules(
    app_client: Client, pool: asyncpg.Pool, browsers: Any
) -> None:
    from tests.fixtures.office import AGENT

    free = await slots(app_client)
    status, booked = await book(app_client, free[0]["id"], name="Ami\u202ena\u200b El Idrissi")
    assert status == 201
    assert (await row(pool, booked["reference"]))["citizen_name"] == "Amina El Idrissi"
    agent = browsers()
    await agent.login(AGENT)
    r = await agent.post_form(
        f"/office/{OFFICE}/book",
        {"slot_id": str(free[1]["id"]), "service": SERVICE, "language": "fr",
         "name": "Call 0800 www.pay.example", "email": "a@example.org,b@example.org"},
    )  # fmt: skip
    assert r.status == 422
    page = await r.text()
    assert re.search(r"letters only|lettres seulement", page)
    assert await pool.fetchval("SELECT count(*) FROM bookings WHERE created_by <> 'citizen'") == 0
    assert await messages(pool, booked["reference"]) == [("code", "sms")]
