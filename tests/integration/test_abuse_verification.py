"""Verified contact before a seat is confirmed: held bookings, codes sent by
the worker and stored only as keyed hashes, attempts, resends, hold expiry
(by the worker's cron and whenever seats are read), remembered contacts, and
the paths that need no code (the counter, services that do not verify, the
manage link). Through the JSON API and the citizen pages, on the fixed clock.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from service.app import create_app
from service.config import Settings
from service.domain.verification import MAX_ATTEMPTS
from service.worker import jobs
from tests.clock import FakeClock
from tests.codesink import CODE_RE, code_for, send_codes
from tests.fixtures.notify import Env, wait_for
from tests.fixtures.office import AGENT, Browser
from tests.integration.test_citizen_pages import details, open_form

Client = TestClient  # type: ignore[type-arg]

OFFICE, SERVICE = "consulate-paris", "legalization"
PHONE = "+33611223344"
EMAIL = "youssef@example.org"
NAME = "Youssef Benali"
DOCUMENT = "QX4471882"


async def slots(client: Client, day: str = "2027-02-03", service: str = SERVICE) -> list[Any]:
    resp = await client.get(
        f"/api/v1/offices/{OFFICE}/availability",
        params={"service": service, "from": day, "to": day},
    )
    assert resp.status == 200, await resp.text()
    found: list[Any] = (await resp.json())["slots"]
    return found


async def book(client: Client, slot_id: int, **extra: Any) -> tuple[int, Any]:
    body = {"slot_id": slot_id, "service": SERVICE, "name": NAME, "phone": "06 11 22 33 44",
            "language": "fr", **extra}  # fmt: skip
    resp = await client.post("/api/v1/bookings", json=body, headers={"Accept-Language": "fr"})
    return resp.status, await resp.json()


def auth(booked: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {booked['manage_token']}", "Accept-Language": "fr"}


async def verify(client: Client, booked: dict[str, Any], code: str) -> tuple[int, Any]:
    resp = await client.post(
        f"/api/v1/bookings/{booked['reference']}/verify", json={"code": code}, headers=auth(booked)
    )
    return resp.status, await resp.json()


async def resend(client: Client, booked: dict[str, Any]) -> Any:
    return await client.post(f"/api/v1/bookings/{booked['reference']}/resend", headers=auth(booked))


async def row(pool: asyncpg.Pool, reference: str) -> asyncpg.Record:
    found = await pool.fetchrow(
        """SELECT b.*, s.taken, s.capacity FROM bookings b JOIN slots s ON s.id = b.slot_id
           WHERE b.reference = $1""",
        reference,
    )
    assert found is not None
    return found


async def messages(pool: asyncpg.Pool, reference: str) -> list[tuple[str, str]]:
    rows = await pool.fetch(
        """SELECT o.kind, o.channel FROM outbox o JOIN bookings b ON b.id = o.booking_id
           WHERE b.reference = $1 ORDER BY o.id""",
        reference,
    )
    return [(r["kind"], r["channel"]) for r in rows]


async def seats_match_bookings(pool: asyncpg.Pool) -> bool:
    """Every slot's `taken` is the number of its active bookings."""
    mismatched = await pool.fetchval(
        """SELECT count(*) FROM slots s WHERE s.taken <> (
               SELECT count(*) FROM bookings b WHERE b.slot_id = s.id
               AND b.status IN ('held', 'confirmed', 'checked_in'))"""
    )
    return bool(mismatched == 0)


def other_than(code: str) -> str:
    return "000000" if code != "000000" else "111111"


# --- the API ---------------------------------------------------------------------


async def test_a_public_booking_is_held_until_its_code_comes_back(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    slot = (await slots(app_client))[0]
    status, booked = await book(app_client, slot["id"], email=EMAIL)
    assert status == 201, booked
    assert booked["status"] == "held"
    assert (
        booked["hold_expires_at"]
        == (clock() + timedelta(minutes=10)).astimezone(booked_zone(booked)).isoformat()
    )
    assert booked["verification"]["channel"] == "sms"
    assert booked["verification"]["to"] == PHONE
    assert booked["verification"]["attempts_left"] == MAX_ATTEMPTS
    held = await row(pool, booked["reference"])
    assert held["taken"] == 1, "a held booking holds its seat"
    # Only the code message, and only to the phone: the address is unproved.
    assert await messages(pool, booked["reference"]) == [("code", "sms")]
    assert (held["notify_phone"], held["notify_email"]) == (False, False)

    code = await code_for(pool, settings, clock, PHONE)
    status, wrong = await verify(app_client, booked, other_than(code))
    assert (status, wrong["error"]) == (422, "wrong_code")
    assert "code" in wrong["fields"] and "4" in wrong["message"]
    status, confirmed = await verify(app_client, booked, code)
    assert status == 200, confirmed
    assert confirmed["status"] == "confirmed" and confirmed["hold_expires_at"] is None
    after = await row(pool, booked["reference"])
    assert (after["notify_phone"], after["notify_email"]) == (True, False)
    assert after["taken"] == 1
    # The confirmation and reminders go to the proved phone only.
    kinds = await messages(pool, booked["reference"])
    assert kinds[0] == ("code", "sms") and ("confirmation", "sms") in kinds
    assert all(channel == "sms" for _, channel in kinds)
    audit = await pool.fetch(
        """SELECT a.action, a.actor_kind, a.after_status FROM audit_log a
           JOIN bookings b ON b.id = a.booking_id WHERE b.reference = $1 ORDER BY a.id""",
        booked["reference"],
    )
    assert [tuple(a) for a in audit] == [
        ("hold", "citizen", "held"),
        ("verify", "citizen", "confirmed"),
    ]
    # Verifying again is not possible.
    status, again = await verify(app_client, booked, code)
    assert (status, again["error"]) == (409, "not_held")


def booked_zone(booked: dict[str, Any]) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(booked["timezone"])


async def test_a_proved_contact_is_remembered_for_a_while_by_hash_only(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    remembering = settings.with_(verified_contact_days=2)
    async with TestClient(TestServer(create_app(remembering, pool=pool, clock=clock))) as client:
        first, second = (await slots(client))[:2]
        _, booked = await book(client, first["id"])
        status, _ = await verify(client, booked, await code_for(pool, settings, clock, PHONE))
        assert status == 200
        stored = await pool.fetch("SELECT contact_hash FROM verified_contacts")
        assert len(stored) == 1
        assert PHONE.encode() not in bytes(stored[0]["contact_hash"])
        assert b"611223344" not in bytes(stored[0]["contact_hash"])
        # A returning family is not asked again...
        clock.advance(timedelta(days=2) - timedelta(seconds=1))
        later = await slots(client, (clock() + timedelta(days=1)).date().isoformat())
        status, again = await book(client, later[0]["id"])
        assert (status, again["status"]) == (201, "confirmed")
        assert "verification" not in again
        assert ("code", "sms") not in await messages(pool, again["reference"])
        # ...for VERIFIED_CONTACT_DAYS.
        clock.advance(timedelta(seconds=1))
        status, asked = await book(client, later[1]["id"])
        assert (status, asked["status"]) == (201, "held")
        assert second["id"] != later[1]["id"]


async def test_the_code_is_stored_only_as_a_keyed_hash(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    status, _ = await book(app_client, (await slots(app_client))[0]["id"])
    assert status == 201
    kept = await send_codes(pool, settings, clock)
    [(to, body)] = kept.sms
    code = CODE_RE.search(body)
    assert to == PHONE and code
    check = await pool.fetchrow("SELECT * FROM contact_checks")
    assert check is not None and len(check["code_hashes"]) == 1
    assert code[0].encode() not in bytes(check["code_hashes"][0])
    stored_body = await pool.fetchval("SELECT body FROM outbox WHERE kind = 'code'")
    assert code[0] not in stored_body and "[code]" in stored_body
    assert not await pool.fetchval("SELECT count(*) FROM manage_tokens")


async def test_the_dev_sink_shows_the_code_in_dev_mode_only(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    for env in ("dev", "test"):
        mode = settings.with_(env=env)
        async with TestClient(TestServer(create_app(mode, pool=pool, clock=clock))) as client:
            day = (clock() + timedelta(days=2 if env == "dev" else 3)).date().isoformat()
            status, _ = await book(
                client, (await slots(client, day))[0]["id"], phone=None, email=f"{env}@example.org"
            )
            assert status == 201
            kept = await send_codes(pool, mode, clock)
            code = kept.codes()[f"{env}@example.org"]
            resp = await client.get("/dev/messages.json")
            if env == "dev":
                listed = [m for m in await resp.json() if m["kind"] == "code"]
                assert any(code in m["body"] for m in listed)
            else:
                assert resp.status == 404
                bodies = await pool.fetch("SELECT body FROM outbox WHERE kind = 'code'")
                assert sum(code in (b["body"] or "") for b in bodies) == 0


async def test_five_wrong_codes_release_the_seat(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    slot = (await slots(app_client))[0]
    _, booked = await book(app_client, slot["id"])
    code = await code_for(pool, settings, clock, PHONE)
    for left in range(MAX_ATTEMPTS - 1, 0, -1):
        status, wrong = await verify(app_client, booked, other_than(code))
        assert (status, wrong["error"]) == (422, "wrong_code")
        assert str(left) in wrong["message"]
    status, last = await verify(app_client, booked, "not a code")
    assert (status, last["error"]) == (409, "code_attempts_exhausted")
    ended = await row(pool, booked["reference"])
    assert ended["status"] == "expired" and ended["taken"] == 0
    # The right code comes too late.
    status, late = await verify(app_client, booked, code)
    assert (status, late["error"]) == (409, "hold_expired")
    assert (await slots(app_client))[0]["remaining"] == slot["remaining"]


async def test_resends_wait_longer_each_time_stop_after_three_and_any_code_works(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    _, booked = await book(app_client, (await slots(app_client))[0]["id"])
    first = await code_for(pool, settings, clock, PHONE)
    resp = await resend(app_client, booked)
    assert resp.status == 429 and (await resp.json())["error"] == "resend_too_soon"
    assert resp.headers["Retry-After"] == "60"
    # Each resend waits twice as long as the one before; the third is the last.
    for wait, next_wait in ((60, 120), (120, 240), (240, None)):
        clock.advance(timedelta(seconds=wait))
        resp = await resend(app_client, booked)
        assert resp.status == 202, await resp.text()
        state = await resp.json()
        again = await resend(app_client, booked)
        if next_wait is None:
            assert state["next_resend_at"] is None
            assert again.status == 409 and (await again.json())["error"] == "resend_limit"
        else:
            assert again.status == 429 and again.headers["Retry-After"] == str(next_wait)
    assert [k for k, _ in await messages(pool, booked["reference"])] == ["code"] * 4
    await send_codes(pool, settings, clock)
    # The first code still confirms: messages can overtake each other.
    status, confirmed = await verify(app_client, booked, first)
    assert (status, confirmed["status"]) == (200, "confirmed")


async def test_an_expired_hold_frees_its_seat_when_seats_are_read(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    slot = (await slots(app_client))[0]
    await pool.execute("UPDATE slots SET capacity = 1 WHERE id = $1", slot["id"])
    _, booked = await book(app_client, slot["id"])
    assert slot["id"] not in [s["id"] for s in await slots(app_client)], "held: full"
    clock.advance(timedelta(minutes=9, seconds=59))
    assert slot["id"] not in [s["id"] for s in await slots(app_client)]
    clock.advance(timedelta(seconds=1))
    # No cron has run: reading the week gives the seat back.
    assert slot["id"] in [s["id"] for s in await slots(app_client)]
    ended = await row(pool, booked["reference"])
    assert (ended["status"], ended["taken"]) == ("expired", 0)
    assert await seats_match_bookings(pool)
    actor = await pool.fetchval(
        "SELECT actor_kind FROM audit_log WHERE booking_id = $1 AND action = 'expired'", ended["id"]
    )
    assert actor == "system"
    status, late = await verify(app_client, booked, "123456")
    assert (status, late["error"]) == (409, "hold_expired")
    # The pending code message is never sent for an expired hold.
    kept = await send_codes(pool, settings, clock)
    assert kept.sms == []
    assert await pool.fetchval("SELECT status_reason FROM outbox WHERE kind = 'code'") == (
        "booking_inactive"
    )


async def test_a_new_booking_takes_a_seat_whose_hold_ran_out(
    app_client: Client, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    slot = (await slots(app_client))[0]
    await pool.execute("UPDATE slots SET capacity = 1 WHERE id = $1", slot["id"])
    _, held = await book(app_client, slot["id"])
    status, full = await book(app_client, slot["id"], phone="06 99 88 77 66")
    assert (status, full["error"]) == (409, "slot_full")
    clock.advance(timedelta(minutes=10))
    status, second = await book(app_client, slot["id"], phone="06 99 88 77 66")
    assert (status, second["status"]) == (201, "held")
    assert (await row(pool, held["reference"]))["status"] == "expired"
    assert (await row(pool, second["reference"]))["taken"] == 1
    assert await seats_match_bookings(pool)


@pytest.mark.parametrize(
    ("after", "outcome"),
    [
        # Past its time a code no longer confirms, whoever gets there first.
        (timedelta(minutes=10), "expired"),
        # One second before, every code wins and the cron leaves them alone.
        (timedelta(minutes=9, seconds=59), "confirmed"),
    ],
)
async def test_the_worker_cron_and_last_second_codes_race_safely(
    after: timedelta,
    outcome: str,
    app_client: Client,
    pool: asyncpg.Pool,
    settings: Settings,
    clock: FakeClock,
) -> None:
    free = await slots(app_client)
    booked = []
    for n, slot in enumerate(free[:12]):
        status, body = await book(app_client, slot["id"], phone=f"06 12 34 56 {n:02d}")
        assert status == 201
        booked.append(body)
    codes = (await send_codes(pool, settings, clock)).codes()
    clock.advance(after)
    state = await jobs.build_state(settings, pool=pool, clock=clock)
    try:
        # The cron and twelve codes at once: each booking ends confirmed or
        # expired, never both, and every seat count holds.
        results = await asyncio.gather(
            jobs.expire_holds({jobs.STATE: state}),
            *(verify(app_client, b, codes[f"+336123456{n:02d}"]) for n, b in enumerate(booked)),
        )
    finally:
        await jobs.close_state(state)
    statuses = {(await row(pool, b["reference"]))["status"] for b in booked}
    assert statuses == {outcome}
    expected = 409 if outcome == "expired" else 200
    assert all(status == expected for status, _ in results[1:])
    assert await seats_match_bookings(pool)
    assert await pool.fetchval("SELECT count(*) FROM bookings WHERE status = 'held'") == 0


async def test_a_service_that_does_not_verify_confirms_at_once(
    app_client: Client, pool: asyncpg.Pool
) -> None:
    await pool.execute(
        "UPDATE services SET verify_contact = false WHERE office_id = $1 AND id = $2",
        OFFICE,
        SERVICE,
    )
    status, booked = await book(app_client, (await slots(app_client))[0]["id"], email=EMAIL)
    assert (status, booked["status"]) == (201, "confirmed")
    kinds = await messages(pool, booked["reference"])
    assert ("confirmation", "sms") in kinds and ("confirmation", "email") in kinds
    assert ("code", "sms") not in kinds


async def test_the_counter_books_without_a_code(
    app_client: Client, pool: asyncpg.Pool, browsers: Any, clock: FakeClock
) -> None:
    agent: Browser = browsers()
    await agent.login(AGENT)
    free = await slots(app_client)
    # The clerk has the family in front of them: six bookings on one phone,
    # beyond the household cap, and no code.
    for n in range(6):
        r = await agent.post_form(
            f"/office/{OFFICE}/book",
            {"slot_id": str(free[n]["id"]), "service": SERVICE, "name": f"Enfant {'ABCDEF'[n]}",
             "phone": "06 11 22 33 44", "email": EMAIL, "language": "fr"},
        )  # fmt: skip
        assert r.status == 303, await r.text()
    rows = await pool.fetch("SELECT * FROM bookings WHERE phone = $1", PHONE)
    assert len(rows) == 6
    assert {r["status"] for r in rows} == {"confirmed"}
    assert all(r["notify_phone"] and r["notify_email"] for r in rows)
    assert all(r["created_by"].startswith("staff:") for r in rows)
    assert not await pool.fetchval("SELECT count(*) FROM outbox WHERE kind = 'code'")
    # The household's online bookings are not blocked by the counter's.
    status, online = await book(app_client, free[7]["id"])
    assert (status, online["status"]) == (201, "held")


async def test_manage_link_actions_need_no_new_code_and_a_held_cancel_says_nothing(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    free = await slots(app_client)
    _, booked = await book(app_client, free[0]["id"], email=EMAIL)
    await verify(app_client, booked, await code_for(pool, settings, clock, PHONE))
    url = f"/api/v1/bookings/{booked['reference']}"
    resp = await app_client.post(
        f"{url}/reschedule", json={"slot_id": free[3]["id"]}, headers=auth(booked)
    )
    assert resp.status == 200
    assert (await app_client.post(f"{url}/cancel", headers=auth(booked))).status == 200
    kinds = [k for k, _ in await messages(pool, booked["reference"])]
    assert kinds.count("code") == 1
    # A held booking cancelled by its link: its contact is unproved, so no
    # message at all goes to it.
    _, held = await book(app_client, free[5]["id"], phone="06 55 44 33 22")
    resp = await app_client.post(f"/api/v1/bookings/{held['reference']}/cancel", headers=auth(held))
    assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    assert await messages(pool, held["reference"]) == [("code", "sms")]
    assert (await row(pool, held["reference"]))["taken"] == 0
    assert (await send_codes(pool, settings, clock)).sms == []


async def test_an_email_only_booking_gets_its_code_by_email_with_nothing_typed_in_it(
    app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    name = "Zineb Aït Baha"
    _, booked = await book(
        app_client, (await slots(app_client))[0]["id"], phone=None, email=EMAIL, name=name,
        document_number=DOCUMENT,
    )  # fmt: skip
    assert booked["verification"] == {**booked["verification"], "channel": "email", "to": EMAIL}
    kept = await send_codes(pool, settings, clock)
    [message] = kept.emails
    assert message["To"] == EMAIL
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    for part in (str(message["Subject"]), text.get_content(), html.get_content()):
        for typed in (name, "Zineb", DOCUMENT, EMAIL, booked["reference"]):
            assert typed not in part
    assert list(message.iter_attachments()) == []
    code = kept.codes()[EMAIL]
    status, confirmed = await verify(app_client, booked, code)
    assert (status, confirmed["status"]) == (200, "confirmed")
    assert (await row(pool, booked["reference"]))["notify_email"]
    assert ("confirmation", "email") in await messages(pool, booked["reference"])


# --- the citizen pages --------------------------------------------------------------


@pytest.mark.parametrize("lang", ["fr", "ar"])
async def test_the_form_leads_to_the_code_page_then_to_the_confirmation(
    lang: str, app_client: Client, pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    page, slot_id, url = await open_form(app_client)
    data = details(page, slot_id, name=NAME, phone="06 11 22 33 44", email=EMAIL)
    resp = await app_client.post(f"{url}?lang={lang}", data=data, allow_redirects=False)
    assert resp.status == 303
    code_url = resp.headers["Location"]
    assert re.fullmatch(r"/b/PAR-[A-Z0-9]{6}/[\w-]+/code", code_url)
    base = code_url.removesuffix("/code")
    page = await (await app_client.get(code_url)).text()
    assert "+33 6 11 22 33 44" in page
    assert {"fr": "Saisissez le code", "ar": "أدخل الرمز"}[lang] in page
    # Not booked yet: the confirmation page sends back to the code.
    resp = await app_client.get(f"{base}/confirmation", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == code_url
    resp = await app_client.get(base, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == code_url
    csrf = re.search(r'name="_csrf" value="([^"]+)"', page)
    assert csrf
    code = await code_for(pool, settings, clock, PHONE)
    resp = await app_client.post(code_url, data={"_csrf": csrf[1], "code": other_than(code)})
    assert resp.status == 422
    wrong = await resp.text()
    assert 'aria-invalid="true"' in wrong and "4" in wrong
    # Asking again too soon: the page says so, with Retry-After.
    resp = await app_client.post(f"{code_url}/resend", data={"_csrf": csrf[1]})
    assert resp.status == 429 and resp.headers["Retry-After"] == "60"
    typed = " ".join(code[i : i + 3] for i in (0, 3))  # "042 917" as a person types it
    if lang == "ar":
        typed = typed.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    resp = await app_client.post(
        code_url, data={"_csrf": csrf[1], "code": typed}, allow_redirects=False
    )
    assert resp.status == 303 and resp.headers["Location"] == f"{base}/confirmation"
    page = await (await app_client.get(f"{base}/confirmation")).text()
    assert {"fr": "Votre rendez-vous est réservé", "ar": "تم حجز موعدك"}[lang] in page


async def test_a_hold_that_ran_out_shows_the_way_to_book_again(
    app_client: Client, pool: asyncpg.Pool, clock: FakeClock
) -> None:
    page, slot_id, url = await open_form(app_client)
    resp = await app_client.post(
        f"{url}?lang=fr", data=details(page, slot_id, phone="06 11 22 33 44"), allow_redirects=False
    )
    code_url = resp.headers["Location"]
    clock.advance(timedelta(minutes=11))
    resp = await app_client.get(code_url)
    page = await resp.text()
    assert resp.status == 200
    assert "L’horaire retenu pour vous a été libéré" in page
    assert f'href="/offices/{OFFICE}/{SERVICE}"' in page
    reference = code_url.split("/")[2]
    assert (await row(pool, reference))["status"] == "expired"


# --- the real pipeline --------------------------------------------------------------


async def test_codes_travel_through_twilio_and_smtp_and_then_the_confirmation(
    notify_env: Env,
) -> None:
    env = notify_env
    async with TestClient(
        TestServer(create_app(env.settings, pool=env.pool, clock=env.clock))
    ) as client:
        free = await slots(client, service="passport")
        status, by_sms = await book(
            client, free[0]["id"], email=EMAIL, service="passport", document_number="QX122222"
        )
        assert status == 201 and by_sms["status"] == "held"
        status, by_mail = await book(
            client, free[1]["id"], phone=None, email="zineb@example.org", service="passport",
            document_number="QX133333",
        )  # fmt: skip
        assert status == 201 and by_mail["status"] == "held"
        await env.start_worker()
        await wait_for(lambda: _got(env, PHONE, "zineb@example.org"), what="both codes")
        [sms] = env.twilio.bodies_to(PHONE)
        [mail] = env.smtp.to("zineb@example.org")
        sms_code = CODE_RE.search(sms)
        mail_code = CODE_RE.search(str(mail["Subject"]))
        assert sms_code and mail_code
        assert NAME not in sms and EMAIL not in sms
        assert env.smtp.to(EMAIL) == [], "nothing to the unproved address"
        assert (await verify(client, by_sms, sms_code[0]))[0] == 200
        assert (await verify(client, by_mail, mail_code[0]))[0] == 200

        async def confirmations() -> bool:
            return (
                len(env.twilio.bodies_to(PHONE)) == 2 and len(env.smtp.to("zineb@example.org")) == 2
            )

        await wait_for(confirmations, what="the confirmations")
        assert env.twilio.bodies_to(PHONE)[1].startswith("RDV confirmé")
        assert env.smtp.to(EMAIL) == [], "proved by SMS only: still nothing by e-mail"


async def _got(env: Env, phone: str, address: str) -> bool:
    return bool(env.twilio.bodies_to(phone)) and bool(env.smtp.to(address))
