"""Login, logout, sessions, throttling, CSRF, API tokens; secrets stored hashed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import asyncpg
import pytest

from service.domain.errors import Unauthorized
from service.domain.staff import MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_IP
from service.office import accounts
from tests.clock import FakeClock
from tests.fixtures.office import (
    AGENT,
    MANAGER,
    START,
    Browser,
    Demo,
    make_booking,
)

SCHEDULE = "/api/v1/offices/consulate-paris/schedule?date=2027-02-02"


async def test_login_opens_a_session_stored_hashed_and_logout_ends_it(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    browser = browsers()
    r = await browser.login(AGENT)
    assert r.status == 303
    assert r.headers["Location"] == "/office/"
    cookie = r.cookies["mawid_staff"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    session_id = cookie.value
    async with pool.acquire() as conn:
        stored = await conn.fetch("SELECT id_hash FROM staff_sessions")
        password_hash = await conn.fetchval(
            "SELECT password_hash FROM staff WHERE email = $1", AGENT.email
        )
    assert len(stored) == 1 and session_id.encode() not in bytes(stored[0]["id_hash"])
    assert password_hash.startswith("$argon2id$")
    # The single office of an agent opens directly.
    r = await browser.get("/office/")
    assert r.status == 303 and r.headers["Location"] == "/office/consulate-paris/"
    assert (await browser.get(SCHEDULE)).status == 200

    r = await browser.post_form("/office/logout")
    assert r.status == 303
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM staff_sessions") == 0
    # The old cookie, replayed, opens nothing.
    replay = browsers()
    replay.session.cookie_jar.update_cookies({"mawid_staff": session_id})
    assert (await replay.get(SCHEDULE)).status == 401


async def test_wrong_password_and_unknown_account_answer_alike(
    browsers: Callable[[], Browser],
) -> None:
    browser = browsers()
    wrong = await browser.login(Demo(AGENT.email, "not-the-password"))
    unknown = await browser.login(Demo("nobody@example.org", "not-the-password"))
    assert wrong.status == unknown.status == 401
    assert "mawid_staff" not in wrong.cookies


async def test_account_throttled_after_repeated_failures_then_released(
    clock: FakeClock, browsers: Callable[[], Browser]
) -> None:
    browser = browsers()
    for _ in range(MAX_FAILURES_PER_ACCOUNT):
        assert (await browser.login(Demo(AGENT.email.upper(), "guess-guess"))).status == 401
    # Even the right password is refused now, and not checked.
    r = await browser.login(AGENT)
    assert r.status == 429
    # Another account from the same address is not locked by this one.
    assert (await browsers().login(MANAGER)).status == 303
    clock.advance(timedelta(minutes=16))
    assert (await browser.login(AGENT)).status == 303


async def test_address_throttled_across_accounts(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    browser = browsers()
    for n in range(MAX_FAILURES_PER_IP):
        await browser.login(Demo(f"guess{n}@example.org", "guess-guess"))
    assert (await browser.login(MANAGER)).status == 429
    async with pool.acquire() as conn:
        keys = await conn.fetch("SELECT key_hash FROM login_failures")
    # Counted under hashes: no e-mail or address in clear.
    assert keys and all(len(bytes(k["key_hash"])) == 32 for k in keys)
    assert all(b"example.org" not in bytes(k["key_hash"]) for k in keys)


async def test_demo_accounts_are_refused_outside_dev_and_test(pool: asyncpg.Pool) -> None:
    with pytest.raises(Unauthorized):
        await accounts.login(
            pool,
            AGENT.email,
            AGENT.password,
            "10.0.0.9",
            secret_key="k",
            now=START,
            allow_demo=False,
        )


async def test_session_ends_after_idle_time(
    clock: FakeClock, browsers: Callable[[], Browser]
) -> None:
    browser = browsers()
    await browser.login(AGENT)
    clock.advance(timedelta(minutes=90))
    assert (await browser.get("/office/consulate-paris/day/2027-02-02")).status == 200
    clock.advance(timedelta(minutes=90))  # idle expiry slid forward at the last visit
    assert (await browser.get("/office/consulate-paris/day/2027-02-02")).status == 200
    clock.advance(timedelta(hours=2, minutes=1))
    r = await browser.get("/office/consulate-paris/day/2027-02-02")
    assert r.status == 303 and r.headers["Location"].startswith("/office/login")


async def test_csrf_refusals_write_nothing(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    booking = await make_booking(pool, "consulate-paris", "passport")
    browser = browsers()
    # The login form itself needs the token (no login CSRF).
    await browser.fetch_csrf()
    r = await browser.post_form(
        "/office/login", {"email": AGENT.email, "password": AGENT.password}, csrf=False
    )
    assert r.status == 403
    await browser.login(AGENT)
    form = f"/office/consulate-paris/bookings/{booking.reference}/status"
    assert (await browser.post_form(form, {"status": "checked_in"}, csrf=False)).status == 403
    r = await browser.post_form(form, {"status": "checked_in", "_csrf": "0" * 64}, csrf=False)
    assert r.status == 403
    # A cookie-authenticated API call must carry the token in a header.
    api = f"/api/v1/offices/consulate-paris/bookings/{booking.reference}/status"
    r = await browser.session.post(api, json={"status": "checked_in"})
    assert r.status == 403 and (await r.json())["error"] == "csrf"
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT status FROM bookings WHERE id = $1", booking.id)
            == "confirmed"
        )
        assert (
            await conn.fetchval("SELECT count(*) FROM audit_log WHERE booking_id = $1", booking.id)
            == 1
        )  # the booking itself
    r = await browser.session.post(
        api, json={"status": "checked_in"}, headers={"X-CSRF-Token": browser.csrf}
    )
    assert r.status == 200 and (await r.json())["status"] == "checked_in"


async def test_api_tokens_made_on_the_account_page(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    import re

    anonymous = browsers()
    assert (await anonymous.get(SCHEDULE)).status == 401
    browser = browsers()
    await browser.login(AGENT)
    r = await browser.post_form("/office/account/tokens", {"label": "counter script"})
    found = re.search(r'class="secret api-token">([^<]+)<', await r.text())
    assert r.status == 200 and found
    token = found[1]
    # A reload does not show it again.
    assert token not in await (await browser.get("/office/account")).text()
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT id, token_hash FROM staff_api_tokens")
    assert token.encode() not in bytes(row["token_hash"])

    bearer = {"Authorization": f"Bearer {token}"}
    api = browsers()  # no cookie at all
    r = await api.get(SCHEDULE, headers=bearer)
    assert r.status == 200 and (await r.json())["office"] == "consulate-paris"
    r = await api.get(SCHEDULE.replace("consulate-paris", "prefecture-tiznit"), headers=bearer)
    assert r.status == 404
    booking = await make_booking(pool, "consulate-paris", "passport")
    # Bearer calls need no CSRF header: browsers never attach them on their own.
    r = await api.session.post(
        f"/api/v1/offices/consulate-paris/bookings/{booking.reference}/status",
        json={"status": "cancelled", "reason": "Office closed by the prefect"},
        headers=bearer,
    )
    assert r.status == 200 and (await r.json())["status"] == "cancelled"
    bad = await api.get(SCHEDULE, headers={"Authorization": "Bearer mawid_" + "x" * 43})
    assert bad.status == 401

    await browser.post_form(f"/office/account/tokens/{row['id']}/revoke")
    assert (await api.get(SCHEDULE, headers=bearer)).status == 401
