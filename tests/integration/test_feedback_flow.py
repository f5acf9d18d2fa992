"""Feedback end to end: one message per done booking after the delay, none
for a cancelled or missed one, none to a contact that opted out; the form
records once (a second submit is refused); the office's statistics are
computed from the database."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest
from arq.connections import RedisSettings, create_pool

from service import bookings
from service.domain.booking import Status
from service.office.common import actor_of
from service.store import staff as staff_store
from service.worker import jobs
from tests.fixtures.notify import Env, book, in_days, outbox_rows
from tests.fixtures.office import ADMIN, AGENT

OFFICE = "consulate-paris"


async def set_status(pool: asyncpg.Pool, reference: str, status: str, now: Any) -> None:
    async with pool.acquire() as conn:
        found = await staff_store.credentials(conn, AGENT.email)
        assert found is not None
        await bookings.set_status_by_office(
            conn, reference, OFFICE, Status(status), actor_of(found.member), now,
            "Closed" if status == "cancelled" else None,
        )  # fmt: skip


async def visit(env: Env, booked: bookings.Booked, *, done: bool = True) -> None:
    start = booked.booking.starts_at
    env.clock.set(start + timedelta(minutes=1))
    await set_status(env.pool, booked.booking.reference, "checked_in", env.clock())
    if done:
        env.clock.set(start + timedelta(minutes=20))
        await set_status(env.pool, booked.booking.reference, "done", env.clock())


def feedback_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["kind"] == "feedback"]


async def test_one_message_per_done_booking_none_for_cancelled_or_missed_or_opted_out(
    notify_env: Env,
) -> None:
    env = notify_env
    done = await book(env, starts_at=in_days(2, hour=10))
    late = await book(env, starts_at=in_days(2, hour=19), phone="+33612345679", email=None)
    missed = await book(env, starts_at=in_days(2, hour=11), phone="+33612345670")
    cancelled = await book(env, starts_at=in_days(3, hour=11), phone="+33612345671")
    await visit(env, done)
    [row] = feedback_rows(await outbox_rows(env.pool, done.booking.id))
    # On the e-mail (free), three hours after it was done.
    assert (row["channel"], row["send_at"]) == ("email", env.clock() + timedelta(hours=3))
    # Done at 19:20 Paris: three hours later is quiet, it waits for 08:00.
    await visit(env, late)
    [night] = feedback_rows(await outbox_rows(env.pool, late.booking.id))
    assert (night["channel"], night["send_at"]) == ("sms", in_days(3, hour=8))
    env.clock.set(missed.booking.starts_at + timedelta(minutes=10))
    await set_status(env.pool, missed.booking.reference, "no_show", env.clock())
    await set_status(env.pool, cancelled.booking.reference, "cancelled", env.clock())
    for b in (missed, cancelled):
        assert feedback_rows(await outbox_rows(env.pool, b.booking.id)) == []
    # Never two for one booking, whatever writes them.
    with pytest.raises(asyncpg.UniqueViolationError):
        await env.pool.execute(
            """INSERT INTO outbox (booking_id, kind, channel, recipient, language, send_at,
                                   appointment_at, created_at, updated_at)
               SELECT booking_id, kind, 'sms', '+33612345678', language, send_at,
                      appointment_at, created_at, updated_at FROM outbox WHERE id = $1""",
            row["id"],
        )

    state = await env.worker_state_for(env.settings)
    redis = await create_pool(RedisSettings.from_dsn(env.settings.redis_url))
    ctx = {jobs.STATE: state, "redis": redis}
    try:
        # Not before its time.
        assert await jobs.send_message(ctx, row["id"]) == "not_claimed"
        env.clock.set(row["send_at"])
        assert await jobs.send_message(ctx, row["id"]) == "sent"
        [mail] = [m for m in env.smtp.to("amina@example.org") if "avis" in m["Subject"]]
        link = re.search(r"http://127\.0\.0\.1:\d+/f/[A-Z0-9-]+/[A-Za-z0-9_-]+", mail.as_string())
        assert link is not None
        # The citizen of `late` turns these messages off: theirs is skipped.
        page = await _get(env, late, "")
        assert 'action="/f/' in page
        env.clock.set(in_days(3, hour=8))
        assert await jobs.send_message(ctx, night["id"]) == "sent"
        await env.pool.execute(
            "UPDATE outbox SET status = 'pending', claimed_until = NULL WHERE id = $1",
            night["id"],
        )
        await _post(env, late.booking.reference, late.manage_token, "/stop", {})
        assert await jobs.send_message(ctx, night["id"]) == "skipped"
        status = await env.pool.fetchval(
            "SELECT status_reason FROM outbox WHERE id = $1", night["id"]
        )
        assert status == "opted_out"
        kept = await env.pool.fetchval("SELECT count(*) FROM feedback_opt_outs")
        assert kept == 1  # a hash of the mobile; its number is nowhere there
        assert not await env.pool.fetchval(
            "SELECT count(*) FROM feedback_opt_outs WHERE contact_hash::text LIKE '%33612%'"
        )
    finally:
        await redis.aclose()
        await jobs.close_state(state)


async def _get(env: Env, booked: bookings.Booked, query: str) -> str:
    url = f"{env.settings.base_url}/f/{booked.booking.reference}/{booked.manage_token}{query}"
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        assert r.status == 200
        return await r.text()


async def _post(
    env: Env, reference: str, token: str, suffix: str, data: dict[str, str], lang: str = "en"
) -> tuple[int, str, str]:
    base = f"{env.settings.base_url}/f/{reference}/{token}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.get(base + f"?lang={lang}") as r:
            page = await r.text()
        found = re.search(r'name="_csrf" value="([^"]+)"', page)
        assert found, page
        async with s.post(
            base + suffix + f"?lang={lang}",
            data={**data, "_csrf": found[1]},
            allow_redirects=False,
        ) as r:
            return r.status, r.headers.get("Location", ""), await r.text()


async def test_the_form_records_once_and_the_statistics_come_from_the_database(
    notify_env: Env,
) -> None:
    env = notify_env
    answers = [
        ("5", "no", "Très rapide, merci. Amina El Idrissi"),
        ("2", "yes", "Il manquait un papier, appelez-moi au 06 12 34 56 78"),
        ("4", "no", ""),
    ]
    people = []
    for i, _answer in enumerate(answers):
        people.append(
            await book(env, starts_at=in_days(2, hour=10 + i), phone=f"+3361234560{i}", email=None)
        )
    # Not done yet: the form does not open.
    status, _, page = await _post(
        env,
        people[0].booking.reference,
        people[0].manage_token,
        "",
        {"rating": "5", "came_back": "no"},
    )
    assert status == 409 and "opens once your visit is over" in page
    for b in people:
        await visit(env, b)
    status, _, page = await _post(
        env, people[0].booking.reference, people[0].manage_token, "", {"rating": "9"}
    )
    assert status == 422
    assert "Choose a rating from 1 to 5." in page and "Say whether you had to come back." in page
    for b, (rating, back, comment) in zip(people, answers, strict=True):
        status, location, _ = await _post(
            env, b.booking.reference, b.manage_token, "",
            {"rating": rating, "came_back": back, "comment": comment},
        )  # fmt: skip
        assert status == 303 and location.endswith("?done=thanks")
    # A second submit is refused, and changes nothing.
    status, _, page = await _post(
        env, people[0].booking.reference, people[0].manage_token, "",
        {"rating": "1", "came_back": "yes"}, lang="fr",
    )  # fmt: skip
    assert status == 409 and "déjà enregistré" in page
    rows = await env.pool.fetch("SELECT rating, came_back, comment FROM feedback ORDER BY visit_at")
    assert [(r["rating"], r["came_back"]) for r in rows] == [(5, False), (2, True), (4, False)]
    # No name, no phone number kept.
    assert "Idrissi" not in rows[0]["comment"] and "Très rapide" in rows[0]["comment"]
    assert "06 12" not in rows[1]["comment"] and "Il manquait un papier" in rows[1]["comment"]
    assert rows[2]["comment"] is None

    # The office's figures for that week, from the database.
    import aiohttp

    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"Accept-Language": "en"}
    ) as s:
        async with s.get(f"{env.settings.base_url}/office/login") as r:
            csrf = re.search(r'name="_csrf" value="([0-9a-f]+)"', await r.text())
        assert csrf
        await s.post(
            f"{env.settings.base_url}/office/login",
            data={"email": ADMIN.email, "password": ADMIN.password, "_csrf": csrf[1]},
        )
        week = people[0].booking.starts_at.astimezone().isocalendar()
        label = f"{week.year}-W{week.week:02d}"
        async with s.get(
            f"{env.settings.base_url}/api/v1/offices/{OFFICE}/stats?week={label}"
        ) as r:
            body = await r.json()
        async with s.get(f"{env.settings.base_url}/office/{OFFICE}/stats?week={label}") as r:
            page = await r.text()
    assert body["satisfaction"] == {
        "responses": 3,
        "average_rating": 3.7,
        "came_back_share": 0.333,
    }
    assert body["satisfaction_by_service"]["passport"]["responses"] == 3
    assert len(body["comments"]) == 2
    assert "Citizens&#39; satisfaction" in page or "Citizens' satisfaction" in page
    assert "Très rapide" in page and "Idrissi" not in page and "Amina" not in page
    assert "33.3% had to come back" in page and "3 answers" in page
