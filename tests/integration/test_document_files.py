"""Document files end to end: staff move a booking's file from the day view
and the office API, each move audited, jumps refused (409) by the use case
and by the database; at `ready` the citizen's message is written, sent by
the worker in their language; the manage page shows the file; a document
left uncollected gets one reminder (on the controllable clock) and the office
lists what waits, by age."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from arq.connections import RedisSettings, create_pool

from service import bookings
from service.domain.documents import FileState
from service.domain.staff import StaffMember
from service.domain.validation import RawDetails
from service.office.common import actor_of
from service.office.documents import move_file, remind_uncollected
from service.store import staff as staff_store
from service.worker import jobs
from tests.clock import FakeClock
from tests.fixtures.app import TEST_SECRET, any_document, prove_contacts
from tests.fixtures.notify import Env, book, in_days, outbox_rows
from tests.fixtures.office import AGENT, MANAGER, Browser, free_slot, make_booking

API = "/api/v1/offices/consulate-paris/bookings/{}/document"


async def came(pool: asyncpg.Pool, clock: FakeClock, reference: str, starts_at: Any) -> None:
    """The citizen came: checked in at the start, done a little later."""
    async with pool.acquire() as conn:
        member = await agent(conn)
        clock.set(starts_at + timedelta(minutes=1))
        for status in ("checked_in", "done"):
            await bookings.set_status_by_office(
                conn, reference, "consulate-paris", bookings.Status(status),
                actor_of(member), clock(),
            )  # fmt: skip


async def agent(conn: asyncpg.Connection) -> StaffMember:
    found = await staff_store.credentials(conn, AGENT.email)
    assert found is not None
    return found.member


async def move(browser: Browser, reference: str, state: str, reason: str | None = None) -> Any:
    body: dict[str, Any] = {"state": state}
    if reason is not None:
        body["reason"] = reason
    r = await browser.session.post(
        API.format(reference), json=body, headers={"X-CSRF-Token": browser.csrf}
    )
    return r.status, await r.json()


async def test_a_file_moves_along_its_states_each_move_audited_jumps_refused(
    pool: asyncpg.Pool, clock: FakeClock, browsers: Callable[[], Browser]
) -> None:
    booking = await make_booking(pool, "consulate-paris", "passport")
    waiting = await make_booking(pool, "consulate-paris", "passport", nth=1)
    other = await make_booking(pool, "consulate-paris", "legalization")
    await came(pool, clock, booking.reference, booking.starts_at)
    await came(pool, clock, other.reference, other.starts_at)
    clock.set(max(booking.starts_at, other.starts_at) + timedelta(minutes=5))
    browser = browsers()
    await browser.login(AGENT)
    # Not before the citizen came, not for a service without a document.
    status, body = await move(browser, waiting.reference, "received")
    assert (status, body["error"]) == (409, "not_received")
    status, body = await move(browser, other.reference, "received")
    assert (status, body["error"]) == (409, "no_document")
    # A jump is refused, and so is a refusal without its reason.
    assert (await move(browser, booking.reference, "ready"))[0] == 409
    assert (await move(browser, booking.reference, "received"))[0] == 200
    status, body = await move(browser, booking.reference, "refused")
    assert status == 422 and "reason" in body["fields"]
    assert (await move(browser, booking.reference, "collected"))[0] == 409
    assert (await move(browser, booking.reference, "in_production"))[0] == 200
    status, body = await move(browser, booking.reference, "ready")
    assert status == 200
    assert body["state"] == "ready" and body["ready_at"].endswith("+01:00")
    # Once ready it can only be collected.
    assert (await move(browser, booking.reference, "refused", "Photo"))[0] == 409
    assert (await move(browser, booking.reference, "received"))[0] == 409
    status, body = await move(browser, booking.reference, "collected")
    assert (status, body["state"]) == (200, "collected")
    assert body["collected_at"] is not None
    assert (await move(browser, booking.reference, "collected"))[0] == 409

    async with pool.acquire() as conn:
        staff_id = await conn.fetchval("SELECT id FROM staff WHERE email = $1", AGENT.email)
        trail = await conn.fetch(
            """SELECT actor_kind, actor_id, before_status, after_status FROM audit_log
               WHERE booking_id = $1 AND action = 'document' ORDER BY id""",
            booking.id,
        )
        ready = await conn.fetch(
            "SELECT kind, channel FROM outbox WHERE booking_id = $1 AND kind LIKE 'document%'",
            booking.id,
        )
        # The database refuses a jump whatever statement tries.
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "UPDATE document_files SET state = 'received' WHERE booking_id = $1", booking.id
            )
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                """INSERT INTO document_files (booking_id, office_id, state, received_at,
                                              ready_at, updated_at)
                   VALUES ($1, 'consulate-paris', 'ready', $2, $2, $2)""",
                other.id,
                clock(),
            )
    assert [(r["before_status"], r["after_status"]) for r in trail] == [
        (None, "received"),
        ("received", "in_production"),
        ("in_production", "ready"),
        ("ready", "collected"),
    ]
    assert {(r["actor_kind"], r["actor_id"]) for r in trail} == {("staff", str(staff_id))}
    # The ready message on the booking's one channel (a phone; no e-mail).
    assert [(r["kind"], r["channel"]) for r in ready] == [("document_ready", "sms")]


async def test_the_day_view_moves_a_file_and_says_a_refusal(
    pool: asyncpg.Pool, clock: FakeClock, browsers: Callable[[], Browser]
) -> None:
    booking = await make_booking(pool, "consulate-paris", "passport")
    await came(pool, clock, booking.reference, booking.starts_at)
    day = booking.starts_at.astimezone(ZoneInfo("Europe/Paris")).date()
    browser = browsers()
    await browser.login(AGENT)
    page = await (await browser.get(f"/office/consulate-paris/day/{day}")).text()
    assert f'action="/office/consulate-paris/bookings/{booking.reference}/document"' in page
    assert "file not received yet" in page
    path = f"/office/consulate-paris/bookings/{booking.reference}/document"
    r = await browser.post_form(path, {"state": "received", "back": day.isoformat()})
    assert r.status == 303 and "notice=file_moved" in r.headers["Location"]
    # Said in the booking's row, which the page jumps to.
    moved = await (await browser.get(r.headers["Location"])).text()
    row = re.search(rf'<tr id="b-{booking.reference}".*?</tr>', moved, re.S)
    assert row and 'class="notice" role="status"' in row[0]
    r = await browser.post_form(path, {"state": "collected", "back": day.isoformat()})
    assert r.status == 409
    text = await r.text()
    assert 'class="error-summary"' in text and "cannot move to this state" in text
    r = await browser.post_form(path, {"state": "refused", "back": day.isoformat()})
    assert r.status == 422 and "Give the reason for the refusal." in await r.text()
    page = await (await browser.get(f"/office/consulate-paris/day/{day}")).text()
    assert "File received" in page


async def test_ready_message_goes_in_the_citizens_language_and_the_reminder_once(
    notify_env: Env,
) -> None:
    env = notify_env
    booked = await book(env, starts_at=in_days(2), language="ar")
    ref = booked.booking.reference
    await came(env.pool, env.clock, ref, booked.booking.starts_at)
    async with env.pool.acquire() as conn:
        member = await agent(conn)

    for state in (FileState.RECEIVED, FileState.IN_PRODUCTION):
        await move_file(env.pool, "consulate-paris", ref, state, None, member, env.clock())
    # Ready at 23:00 Paris: quiet hours, the message waits for 08:00.
    night = in_days(5, hour=23)
    env.clock.set(night)
    await move_file(env.pool, "consulate-paris", ref, FileState.READY, None, member, night)
    rows = [
        r for r in await outbox_rows(env.pool, booked.booking.id) if r["kind"] == "document_ready"
    ]
    assert {r["channel"] for r in rows} == {"sms", "email"}
    assert all(r["send_at"] == in_days(6, hour=8) and r["language"] == "ar" for r in rows)

    state = await env.worker_state_for(env.settings)
    redis = await create_pool(RedisSettings.from_dsn(env.settings.redis_url))
    ctx = {jobs.STATE: state, "redis": redis}
    try:
        env.clock.set(in_days(6, hour=9))
        for r in rows:
            assert await jobs.send_message(ctx, r["id"]) == "sent"
        sent = {r["channel"]: r for r in await outbox_rows(env.pool, booked.booking.id)
                if r["kind"] == "document_ready"}  # fmt: skip
        assert "وثيقتكم جاهزة" in sent["sms"]["body"]
        assert sent["sms"]["segments"] <= 3 and sent["sms"]["encoding"] == "ucs2"
        assert [m for m in env.smtp.to("amina@example.org") if "وثيقتكم" in m["Subject"]]

        # Not collected: the one reminder after DOCUMENT_REMINDER_DAYS.
        days = env.settings.document_reminder_days
        env.clock.set(night + timedelta(days=days) - timedelta(minutes=1))
        assert await jobs.remind_uncollected(ctx) == 0
        env.clock.set(night + timedelta(days=days))
        assert await jobs.remind_uncollected(ctx) == 1
        env.clock.set(night + timedelta(days=days + 3))
        assert await jobs.remind_uncollected(ctx) == 0
        assert await remind_uncollected(env.pool, env.clock(), days) == 0
        reminders = [r for r in await outbox_rows(env.pool, booked.booking.id)
                     if r["kind"] == "document_uncollected"]  # fmt: skip
        assert {r["channel"] for r in reminders} == {"sms", "email"}
        # Collected before it went: it is not sent.
        await move_file(
            env.pool, "consulate-paris", ref, FileState.COLLECTED, None, member, env.clock()
        )
        sms = next(r for r in reminders if r["channel"] == "sms")
        await env.pool.execute(
            "UPDATE outbox SET send_at = $2 WHERE id = $1", sms["id"], env.clock()
        )
        assert await jobs.send_message(ctx, sms["id"]) == "skipped"
        row = await env.pool.fetchrow("SELECT status_reason FROM outbox WHERE id = $1", sms["id"])
        assert row["status_reason"] == "document_moved"
    finally:
        await redis.aclose()
        await jobs.close_state(state)


async def test_the_manage_page_and_the_office_list_show_the_file(
    pool: asyncpg.Pool, clock: FakeClock, browsers: Callable[[], Browser], app_client: Any
) -> None:

    await prove_contacts(pool, "+33612345678", at=clock())
    slot = await free_slot(pool, "consulate-paris", "passport", clock() + timedelta(hours=3))
    booked = await bookings.book(
        pool,
        slot_id=slot["id"],
        service_id="passport",
        details=RawDetails(name="Amina El Idrissi", phone="+33612345678", phone_country="FR",
                           language="fr", document_number=any_document()),
        secret_key=TEST_SECRET,
        now=clock(),
    )  # fmt: skip
    older = await make_booking(pool, "consulate-paris", "cnie")
    ref = booked.booking.reference
    manage = f"/b/{ref}/{booked.manage_token}"
    page = await (await app_client.get(manage)).text()
    assert 'id="document"' not in page
    await came(pool, clock, older.reference, older.starts_at)
    await came(pool, clock, ref, booked.booking.starts_at)

    async with pool.acquire() as conn:
        member = await agent(conn)
    for state in (FileState.RECEIVED, FileState.IN_PRODUCTION, FileState.READY):
        await move_file(pool, "consulate-paris", older.reference, state, None, member, clock())
    clock.set(clock() + timedelta(days=3))
    await move_file(pool, "consulate-paris", ref, FileState.RECEIVED, None, member, clock())
    page = await (await app_client.get(manage)).text()
    assert 'id="document"' in page and "Dossier reçu" in page
    await move_file(pool, "consulate-paris", ref, FileState.IN_PRODUCTION, None, member, clock())
    await move_file(pool, "consulate-paris", ref, FileState.READY, None, member, clock())
    clock.set(clock() + timedelta(days=2))
    page = await (await app_client.get(manage)).text()
    assert "Prêt au retrait" in page and "14:00" in page and "16:00" in page
    page = await (await app_client.get(manage + "?lang=ar")).text()
    assert "جاهز للسحب" in page

    browser = browsers()
    await browser.login(AGENT)
    listing = await (await browser.get("/office/consulate-paris/documents")).text()
    # The longest waiting first, with its age in days.
    assert listing.index(older.reference) < listing.index(ref)
    assert "5 days" in listing and "2 days" in listing
    r = await browser.get("/api/v1/offices/consulate-paris/documents/uncollected")
    body = await r.json()
    assert [(d["reference"], d["age_days"]) for d in body["documents"]] == [
        (older.reference, 5),
        (ref, 2),
    ]
    assert body["documents"][0]["service"] == "cnie"


async def test_a_manager_chooses_which_services_produce_a_document(
    pool: asyncpg.Pool, clock: FakeClock, browsers: Callable[[], Browser]
) -> None:
    booking = await make_booking(pool, "consulate-paris", "legalization")
    await came(pool, clock, booking.reference, booking.starts_at)
    manager = browsers()
    await manager.login(MANAGER)
    page = await (await manager.get("/office/consulate-paris/services/legalization")).text()
    assert 'name="produces_document">' in page  # unticked
    path = "/office/consulate-paris/services/legalization/documents"
    r = await manager.post_form(path, {"produces_document": "on", "pickup_by_appointment": "on"})
    assert r.status == 303 and r.headers["Location"].endswith("?notice=documents_saved")
    page = await (await manager.get(r.headers["Location"])).text()
    assert "Saved: how this service" in page
    assert 'name="produces_document" checked' in page
    assert 'name="pickup_by_appointment" checked' in page
    status, body = await move(manager, booking.reference, "received")
    assert (status, body["state"]) == (200, "received")
    # An agent may not change it.
    agent_browser = browsers()
    await agent_browser.login(AGENT)
    assert (await agent_browser.post_form(path, {})).status == 403
    assert (await manager.post_form(path, {})).status == 303
    async with pool.acquire() as conn:
        flags = await conn.fetchrow(
            """SELECT produces_document, pickup_by_appointment FROM services
               WHERE office_id = 'consulate-paris' AND id = 'legalization'"""
        )
    assert tuple(flags) == (False, False)
