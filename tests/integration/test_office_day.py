"""The office day: schedule, status actions, print, CSV, feed, message log,
bookings for citizens, hours and closures, statistics, `mawid staff add`."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from argon2 import PasswordHasher

from service.domain.errors import ValidationFailed
from service.domain.staff import Role
from service.office.accounts import add_staff
from service.store import staff as staff_store
from tests.clock import FakeClock
from tests.fixtures.office import (
    AGENT,
    MANAGER,
    START,
    Browser,
    free_slot,
    keep_stranded,
    make_booking,
)

PARIS = ZoneInfo("Europe/Paris")
CLI = [sys.executable, "-m", "service.cli"]


def local_day(instant: datetime) -> str:
    return instant.astimezone(PARIS).date().isoformat()


async def test_schedule_lists_the_day_in_time_order_with_masked_documents(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    later = await make_booking(pool, "consulate-paris", "passport", nth=3)
    first = await make_booking(
        pool, "consulate-paris", "passport", name="Youssef Benali", document="AB123456"
    )
    other_office = await make_booking(pool, "prefecture-tiznit", "mre-desk")
    day = local_day(first.starts_at)
    assert local_day(later.starts_at) == day
    browser = browsers()
    await browser.login(AGENT)
    page = await (await browser.get(f"/office/consulate-paris/day/{day}")).text()
    assert page.index(first.reference) < page.index(later.reference)
    assert other_office.reference not in page
    assert "Youssef Benali" in page and "••••3456" in page and "AB123456" not in page
    body = await (await browser.get(f"/api/v1/offices/consulate-paris/schedule?date={day}")).json()
    assert [b["reference"] for b in body["bookings"]] == [first.reference, later.reference]
    assert body["bookings"][0]["document_number"] == "••••3456"
    assert body["bookings"][0]["start"].endswith("+01:00")
    assert {"start", "booked", "counters"} <= set(body["load"][0])
    assert sum(x["booked"] for x in body["load"]) == 2
    # The page's load table: the two booked times, and each stretch of times
    # with nobody expected as one row ("09:10–09:50"), not one row per slot.
    table = page[page.index('<table class="load">') :]
    rows = re.findall(r"<tr[^>]*><td>(.*?)</td><td>(\d+)</td>", table)
    assert sum(int(booked) for _, booked in rows) == 2
    stretches = [when for when, booked in rows if "–" in when]
    assert stretches and all(booked == "0" for when, booked in rows if "–" in when)
    assert len(rows) < len(body["load"]) / 2, (len(rows), len(body["load"]))
    # Today in the office's zone by default.
    r = await browser.get("/office/consulate-paris/")
    assert r.headers["Location"] == "/office/consulate-paris/day/2027-02-01"


async def test_check_in_done_no_show_and_cancel_each_leave_an_audit_row(
    pool: asyncpg.Pool, clock: FakeClock, browsers: Callable[[], Browser]
) -> None:
    arrived = await make_booking(pool, "consulate-paris", "passport")
    missing = await make_booking(pool, "consulate-paris", "passport", nth=1)
    dropped = await make_booking(pool, "consulate-paris", "passport", nth=2)
    # No-show only once the appointment has started.
    clock.set(missing.starts_at + timedelta(minutes=5))
    browser = browsers()
    await browser.login(AGENT)
    day = local_day(arrived.starts_at)

    async def act(reference: str, status: str, reason: str = "", expect: int = 303) -> str:
        r = await browser.post_form(
            f"/office/consulate-paris/bookings/{reference}/status",
            {"status": status, "reason": reason, "back": day},
        )
        assert r.status == expect
        return r.headers["Location"] if expect == 303 else await r.text()

    location = await act(arrived.reference, "checked_in")
    assert f"done=checked_in&ref={arrived.reference}" in location
    assert location.endswith(f"#b-{arrived.reference}")
    # The notice is in the row the page jumps to, where the clerk looks, not
    # at the top of a long day.
    page = await (await browser.get(location)).text()
    row = re.search(rf'<tr id="b-{arrived.reference}".*?</tr>', page, re.S)
    assert row and f"{arrived.reference} marked as arrived." in row[0]
    assert page.count('class="notice"') == 1
    assert f"done=done&ref={arrived.reference}" in await act(arrived.reference, "done")
    assert f"done=no_show&ref={missing.reference}" in await act(missing.reference, "no_show")
    # Refusals come back on the day's page, in an error box.
    # A reason of spaces only: that booking's cancel form comes back open,
    # with what was typed and the field's words, linked from the error box.
    page = await act(dropped.reference, "cancelled", "   ", expect=422)
    assert f'<a href="#reason-{dropped.reference}">' in page
    assert page.count("Say why the office cancels: the citizen will read it.") == 2
    opened = re.findall(r'<details class="cancel"( open)?>', page)
    assert opened.count(" open") == 1, opened
    assert re.search(rf'id="reason-{dropped.reference}"[^>]*value="   " aria-invalid="true"', page)
    long_reason = "x" * 301
    page = await act(dropped.reference, "cancelled", long_reason, expect=422)
    assert "Keep the reason under 300 characters." in page and f'value="{long_reason}"' in page
    page = await act(arrived.reference, "checked_in", expect=409)
    assert "This change is not possible" in page and 'class="notice"' not in page
    location = await act(dropped.reference, "cancelled", "Consul away")
    assert f"done=cancelled&ref={dropped.reference}" in location

    async with pool.acquire() as conn:
        staff_id = await conn.fetchval("SELECT id FROM staff WHERE email = $1", AGENT.email)
        rows = await conn.fetch(
            """SELECT b.reference, a.action, a.actor_kind, a.actor_id, a.before_status,
                      a.after_status FROM audit_log a JOIN bookings b ON b.id = a.booking_id
               WHERE a.actor_kind = 'staff' ORDER BY a.id"""
        )
        outbox = await conn.fetch(
            "SELECT kind, reason FROM outbox WHERE booking_id = $1"
            " AND kind = 'cancelled_by_office'",
            dropped.id,
        )
        seats = await conn.fetchval("SELECT taken FROM slots WHERE id = $1", dropped.slot_id)
    assert [(r["reference"], r["before_status"], r["after_status"]) for r in rows] == [
        (arrived.reference, "confirmed", "checked_in"),
        (arrived.reference, "checked_in", "done"),
        (missing.reference, "confirmed", "no_show"),
        (dropped.reference, "confirmed", "cancelled"),
    ]
    assert {r["actor_id"] for r in rows} == {str(staff_id)}
    assert outbox and all(r["reason"] == "Consul away" for r in outbox)
    assert seats == 0  # the cancelled seat is free again

    page = await (await browser.get(f"/office/consulate-paris/bookings/{dropped.reference}")).text()
    assert "Cancelled by the office" in page  # the message log
    assert "Consul away" in page
    # The audit log names the clerk by address, not by number.
    assert f'Staff <bdi dir="ltr">{AGENT.email}</bdi>' in page
    assert f"#{staff_id}<" not in page
    body = await (
        await browser.get(f"/api/v1/offices/consulate-paris/bookings/{dropped.reference}")
    ).json()
    assert [a["after"] for a in body["audit"]] == ["confirmed", "cancelled"]
    assert [a["actor_email"] for a in body["audit"]] == [None, AGENT.email]
    assert {m["kind"] for m in body["messages"]} >= {"confirmation", "cancelled_by_office"}
    assert all("recipient" not in m and "body" not in m for m in body["messages"])


async def test_print_view_and_csv(pool: asyncpg.Pool, browsers: Callable[[], Browser]) -> None:
    booking = await make_booking(pool, "consulate-paris", "passport", document="CD987654")
    # A name from before the name rules: a formula, with a right-to-left
    # override that would reverse what a spreadsheet shows after it.
    await pool.execute(
        "UPDATE bookings SET citizen_name = $2 WHERE id = $1", booking.id, "=HYPERLINK(1)\u202e"
    )
    day = local_day(booking.starts_at)
    browser = browsers()
    await browser.login(AGENT)
    r = await browser.get(f"/office/consulate-paris/day/{day}/print")
    assert r.status == 200 and booking.reference in await r.text()
    r = await browser.get(f"/office/consulate-paris/day/{day}/export.csv")
    assert r.status == 200 and r.content_type == "text/csv"
    assert r.headers["Cache-Control"] == "no-store"
    rows = list(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))))
    assert rows[0][:3] == ["time", "end", "reference"]
    assert rows[1][2] == booking.reference
    assert rows[1][4] == "'=HYPERLINK(1)"  # never a live formula in a spreadsheet
    assert rows[1][7] == "••••7654"


async def test_secret_ics_feed(pool: asyncpg.Pool, browsers: Callable[[], Browser]) -> None:
    booking = await make_booking(pool, "consulate-paris", "passport", name="Nadia Secret")
    browser = browsers()
    await browser.login(MANAGER)
    page = await (await browser.post_form("/office/consulate-paris/feed")).text()
    url = re.search(r'class="secret feed-url">([^<]+)<', page)
    assert url
    path = url[1].split("://", 1)[1].split("/", 1)[1]
    anyone = browsers()
    r = await anyone.get("/" + path)
    assert r.status == 200 and r.content_type == "text/calendar"
    ics = await r.text()
    assert booking.reference in ics and "Nadia Secret" not in ics
    secret = path.rsplit("/", 1)[1].removesuffix(".ics")
    async with pool.acquire() as conn:
        stored = bytes(await conn.fetchval("SELECT secret_hash FROM office_feeds"))
    assert secret.encode() not in stored
    await browser.post_form("/office/consulate-paris/feed")  # rotate
    assert (await anyone.get("/" + path)).status == 404


async def test_booking_for_a_citizen_follows_the_public_rules(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    slot = await free_slot(pool, "consulate-paris", "passport", START + timedelta(hours=3))
    browser = browsers()
    await browser.login(AGENT)
    day = local_day(slot["starts_at"])
    form = await browser.get(f"/office/consulate-paris/book?service=passport&date={day}")
    page = await form.text()
    assert f'value="{slot["id"]}"' in page
    # The phone's country is a menu, the office's country chosen; messages
    # may go in any of the site's languages.
    assert re.search(r'<select id="phone_country"[^>]*>.*<option value="FR" selected>', page, re.S)
    languages = re.search(r'<select id="language".*?</select>', page, re.S)
    assert languages and re.findall(r'option value="(\w+)"', languages[0]) == [
        "ar", "fr", "en", "es", "zgh",
    ]  # fmt: skip
    details = {
        "service": "passport",
        "date": day,
        "slot_id": str(slot["id"]),
        "name": "Karim Alaoui",
        "phone": "06 12 34 56 78",
        "language": "ar",
        "document_number": "EF-112233",
    }
    # Sent without its time nor a name: every mistake said at once.
    r = await browser.post_form(
        "/office/consulate-paris/book", {**details, "slot_id": "", "name": ""}
    )
    assert r.status == 422
    summary = re.search(r'<div class="error-summary".*?</div>', await r.text(), re.S)
    assert summary and re.findall(r'href="#f-(\w+)"', summary[0]) == ["slot_id", "name"]
    r = await browser.post_form("/office/consulate-paris/book", details)
    assert r.status == 303, await r.text()
    reference = r.headers["Location"].split("/bookings/")[1].split("?")[0]
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM bookings WHERE reference = $1", reference)
        kinds = await conn.fetch("SELECT kind FROM outbox WHERE booking_id = $1", row["id"])
        staff_id = await conn.fetchval("SELECT id FROM staff WHERE email = $1", AGENT.email)
    assert row["phone"] == "+33612345678"  # the office's country by default
    assert row["created_by"] == f"staff:{staff_id}"
    assert "confirmation" in {k["kind"] for k in kinds}
    # The same document and service again: refused like on the public form.
    details["slot_id"] = str((await free_slot(pool, "consulate-paris", "passport", START))["id"])
    r = await browser.post_form("/office/consulate-paris/book", details)
    assert r.status == 409
    # A number read in the country chosen in the menu: a Belgian mobile,
    # which this consulate sends no SMS to (read as French, it would not be
    # a number at all). Nothing is written.
    belgian = {**details, "phone": "0470 12 34 56", "phone_country": "BE",
               "document_number": "BE-998877"}  # fmt: skip
    r = await browser.post_form("/office/consulate-paris/book", belgian)
    text = await r.text()
    assert r.status == 422 and 'id="e-phone"' in text
    assert "numbers of this country" in text or "numéros de ce pays" in text, text
    async with pool.acquire() as conn:
        assert not await conn.fetchval(
            "SELECT count(*) FROM bookings WHERE document_number = 'BE-998877'"
        )
    # A slot of another office is not bookable from this one.
    tiznit = await free_slot(pool, "prefecture-tiznit", "mre-desk", START)
    details.update(slot_id=str(tiznit["id"]), service="mre-desk", document_number="GH445566")
    assert (await browser.post_form("/office/consulate-paris/book", details)).status == 409


async def citizen_slots(browser: Browser, day: str) -> list[object]:
    r = await browser.get(
        f"/api/v1/offices/consulate-paris/availability?service=passport&from={day}&to={day}"
    )
    slots: list[object] = (await r.json())["slots"]
    return slots


async def test_closure_with_bookings_asks_then_cancels_with_a_message(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    after = datetime(2027, 2, 10, 6, tzinfo=UTC)
    booking = await make_booking(pool, "consulate-paris", "passport", after=after)
    day = local_day(booking.starts_at)
    browser = browsers()
    await browser.login(MANAGER)
    assert await citizen_slots(browser, day)
    closure = {"day": day, "reason_fr": "Fermeture exceptionnelle"}
    r = await browser.post_form("/office/consulate-paris/closures", closure)
    assert r.status == 409
    page = await r.text()
    assert booking.reference in page and "Nothing has been changed yet" in page
    assert await citizen_slots(browser, day)  # nothing written yet
    seen = re.search(r'name="seen" value="([^"]*)"', page)
    assert seen and seen[1] == booking.reference

    # A booking made after the page was shown is not cancelled unseen.
    other = await make_booking(pool, "consulate-paris", "passport", after=after, nth=1)
    r = await browser.post_form(
        "/office/consulate-paris/closures",
        {**closure, "decision": "cancel", "reason": "Fermeture", "seen": seen[1]},
    )
    assert r.status == 409 and other.reference in await r.text()

    r = await browser.post_form(
        "/office/consulate-paris/closures",
        {
            **closure,
            "decision": "cancel",
            "reason": "Fermeture exceptionnelle",
            "seen": f"{booking.reference} {other.reference}",
        },
    )
    assert r.status == 303 and "cancelled=2" in r.headers["Location"]
    assert await citizen_slots(browser, day) == []
    async with pool.acquire() as conn:
        statuses = await conn.fetch(
            "SELECT status FROM bookings WHERE id = ANY($1::bigint[])", [booking.id, other.id]
        )
        reasons = await conn.fetch(
            "SELECT DISTINCT reason FROM outbox WHERE kind = 'cancelled_by_office'"
        )
        closure_row = await conn.fetchrow(
            "SELECT * FROM closures WHERE office_id = 'consulate-paris' AND day = $1",
            date.fromisoformat(day),
        )
    assert {r["status"] for r in statuses} == {"cancelled"}
    assert [r["reason"] for r in reasons] == ["Fermeture exceptionnelle"]
    # Not typed in Arabic: Arabic readers see a generic reason in Arabic.
    assert closure_row["reason_fr"] == "Fermeture exceptionnelle"
    assert closure_row["reason_ar"] == ""

    # Reopening brings the slots back.
    r = await browser.post_form(f"/office/consulate-paris/closures/{day}/remove")
    assert r.status == 303
    assert await citizen_slots(browser, day)


async def test_closure_without_bookings_applies_at_once(browsers: Callable[[], Browser]) -> None:
    browser = browsers()
    await browser.login(MANAGER)
    assert await citizen_slots(browser, "2027-02-16")
    r = await browser.post_form(
        "/office/consulate-paris/closures", {"day": "2027-02-16", "reason_en": "Staff training"}
    )
    assert r.status == 303
    assert await citizen_slots(browser, "2027-02-16") == []
    page = await (await browser.get("/office/consulate-paris/hours")).text()
    assert "Staff training" in page


async def test_shorter_hours_list_stranded_bookings_and_can_keep_them(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    afternoon = datetime(2027, 2, 9, 13, 0, tzinfo=UTC)  # 14:00 in Paris
    booking = await make_booking(pool, "consulate-paris", "passport", after=afternoon)
    browser = browsers()
    await browser.login(MANAGER)
    page = await (await browser.get("/office/consulate-paris/hours")).text()
    assert 'name="s0-d0-p1-opens" value="13:30"' in page
    # The afternoons go: Monday to Friday mornings only.
    mornings = {"sets": "1", "action": "save"}
    for day in range(5):
        mornings |= {f"s0-d{day}-p0-opens": "09:00", f"s0-d{day}-p0-closes": "12:30",
                     f"s0-d{day}-p0-counters": "4"}  # fmt: skip
    r = await browser.post_form(
        "/office/consulate-paris/hours", {**mornings, "s0-d0-p0-opens": "9h"}
    )
    assert r.status == 422 and 'href="#s0-d0-p0-opens"' in await r.text()
    r = await browser.post_form("/office/consulate-paris/hours", mornings)
    assert r.status == 409
    page = await r.text()
    assert booking.reference in page
    r = await browser.post_form("/office/consulate-paris/hours", keep_stranded(page))
    assert r.status == 303
    async with pool.acquire() as conn:
        status = await conn.fetchval("SELECT status FROM bookings WHERE id = $1", booking.id)
        slot = await conn.fetchrow(
            "SELECT capacity, taken FROM slots WHERE id = $1", booking.slot_id
        )
        afternoons = await conn.fetchval(
            """SELECT count(*) FROM slots WHERE office_id = 'consulate-paris'
               AND mobile_day_id IS NULL AND capacity > 0 AND starts_at > $1
               AND (starts_at AT TIME ZONE 'Europe/Paris')::time >= '13:00'""",
            START,
        )
    assert status == "confirmed"
    assert (slot["capacity"], slot["taken"]) == (0, 1)  # kept, and no one else can book it
    assert afternoons == 0


async def test_weekly_statistics(
    pool: asyncpg.Pool, clock: FakeClock, browsers: Callable[[], Browser]
) -> None:
    made = [await make_booking(pool, "consulate-paris", "passport", nth=n) for n in range(4)]
    async with pool.acquire() as conn:
        await conn.execute("UPDATE bookings SET status = 'no_show' WHERE id = $1", made[0].id)
        await conn.execute("UPDATE bookings SET status = 'done' WHERE id = $1", made[1].id)
        await conn.execute("UPDATE bookings SET status = 'cancelled' WHERE id = $1", made[2].id)
        await conn.execute(
            """UPDATE outbox SET status = 'delivered', segments = 2, sent_at = $2
               WHERE booking_id = $1 AND channel = 'sms' AND kind = 'confirmation'""",
            made[0].id,
            START + timedelta(minutes=1),
        )
    browser = browsers()
    await browser.login(MANAGER)
    body = await (await browser.get("/api/v1/offices/consulate-paris/stats?week=2027-W05")).json()
    assert body["appointments"] == 4
    assert body["bookings_made"] == 4
    assert body["cancellations"] == 1
    assert body["no_show_rate"] == 0.5
    assert body["median_lead_time_hours"] > 3
    assert body["sms_segments"] == 2
    assert body["sms_estimated_cost"] == 0.14
    page = await (await browser.get("/office/consulate-paris/stats?week=2027-W05")).text()
    assert "50% (1 of 2)" in page and "US$0.14" in page
    empty = await (await browser.get("/api/v1/offices/consulate-paris/stats?week=2027-W20")).json()
    assert empty["appointments"] == 0 and empty["no_show_rate"] is None
    bad = await browser.get("/api/v1/offices/consulate-paris/stats?week=soon")
    assert bad.status == 422


async def test_managers_create_accounts_for_their_office_only(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    browser = browsers()
    await browser.login(MANAGER)
    r = await browser.post_form(
        "/office/consulate-paris/staff", {"email": "New.Agent@Example.org", "role": "agent"}
    )
    password = re.search(r'class="secret"><bdi>([^<]+)<', await r.text())
    assert r.status == 200 and password
    newcomer = browsers()
    from tests.fixtures.office import Demo

    assert (await newcomer.login(Demo("new.agent@example.org", password[1]))).status == 303
    r = await browser.post_form(
        "/office/consulate-paris/staff", {"email": "boss@example.org", "role": "admin"}
    )
    assert r.status == 422
    r = await browser.post_form(
        "/office/consulate-paris/staff", {"email": "new.agent@example.org", "role": "agent"}
    )
    assert r.status == 422  # taken
    # Another office: the page does not exist for this manager, and the use
    # case itself refuses, whatever page or command would call it.
    r = await browser.post_form(
        "/office/prefecture-tiznit/staff", {"email": "tiznit.agent@example.org", "role": "agent"}
    )
    assert r.status == 404
    async with pool.acquire() as conn:
        found = await staff_store.credentials(conn, "manager@mawid.test")
    assert found is not None
    manager = found.member
    for offices in (["prefecture-tiznit"], ["consulate-paris", "prefecture-tiznit"]):
        async with pool.acquire() as conn:
            with pytest.raises(ValidationFailed) as refused:
                await add_staff(
                    conn, "tiznit.agent@example.org", Role.MANAGER, offices, START, creator=manager
                )
        assert refused.value.message == "You may only create accounts for your own offices."
    assert (
        await pool.fetchval("SELECT count(*) FROM staff WHERE email = 'tiznit.agent@example.org'")
        == 0
    )


async def _password_hash(dsn: str, email: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        stored: str = await conn.fetchval("SELECT password_hash FROM staff WHERE email = $1", email)
    finally:
        await conn.close()
    return stored


def test_mawid_staff_add_prints_the_password_once(db_dsn: str) -> None:
    env = {**os.environ, "DATABASE_URL": db_dsn, "MAWID_ENV": "test"}
    # The template may lack the demo offices; the command checks office ids.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "service.cli",
            "staff",
            "add",
            "Chef@Example.org",
            "--role",
            "admin",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    password = result.stdout.split("password (shown once): ")[1].strip()
    assert len(password) >= 12
    # Once: one line of the output, nowhere else, and the database keeps
    # only its argon2id hash (which the password opens).
    assert result.stdout.count(password) == 1 and password not in result.stderr
    stored = asyncio.run(_password_hash(db_dsn, "chef@example.org"))
    assert stored.startswith("$argon2id$") and password not in stored
    assert PasswordHasher().verify(stored, password)
    # Never again: adding the address a second time refuses and shows nothing.
    again = subprocess.run(
        [*CLI, "staff", "add", "chef@example.org", "--role", "admin"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 2 and "already exists" in again.stderr
    assert "password" not in again.stdout + again.stderr
    assert asyncio.run(_password_hash(db_dsn, "chef@example.org")) == stored
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "service.cli",
            "staff",
            "add",
            "x@example.org",
            "--role",
            "agent",
            "--office",
            "no-such-office",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2 and "no-such-office" in refused.stderr
