"""Login, logout, sessions, throttling, CSRF, API tokens; secrets stored hashed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestServer

from service.app import create_app
from service.config import Settings
from service.domain.errors import TooManyRequests, Unauthorized
from service.domain.staff import (
    ALERT_AFTER,
    FREE_FAILURES_PER_ACCOUNT,
    FREE_FAILURES_PER_ADDRESS,
    FREE_FAILURES_PER_PAIR,
)
from service.office import accounts
from service.office.accounts import LoginAlert
from service.web.i18n import gettext
from service.web.office import alerts
from tests.clock import FakeClock
from tests.fixtures.office import (
    AGENT,
    MANAGER,
    START,
    Browser,
    Demo,
    make_booking,
)
from tests.smtpcapture import SmtpCapture

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


async def test_a_clerks_wrong_passwords_slow_them_down_and_never_lock_the_right_one(
    clock: FakeClock, browsers: Callable[[], Browser]
) -> None:
    browser = browsers()
    for _ in range(FREE_FAILURES_PER_PAIR):
        assert (await browser.login(Demo(AGENT.email.upper(), "guess-guess"))).status == 401
    # The next attempt waits a second; the password is not even checked.
    r = await browser.login(AGENT)
    assert r.status == 429 and r.headers["Retry-After"] == "1"
    assert "You can try again in 1 s." in await r.text()
    # Another account from the same address is not slowed by this one.
    assert (await browsers().login(MANAGER)).status == 303
    clock.advance(timedelta(seconds=1))
    assert (await browser.login(Demo(AGENT.email, "guess-again"))).status == 401
    r = await browser.login(AGENT)
    assert r.status == 429 and r.headers["Retry-After"] == "2"
    clock.advance(timedelta(seconds=2))
    assert (await browser.login(AGENT)).status == 303


async def _login(
    pool: asyncpg.Pool, who: Demo, ip: str, now: datetime, alerts: list[LoginAlert] | None = None
) -> str:
    """How the attempt ended: signed in, wrong or wait."""
    try:
        await accounts.login(
            pool, who.email, who.password, ip, secret_key="k", now=now, allow_demo=True,
            alert=alerts.append if alerts is not None else None,
        )  # fmt: skip
    except Unauthorized:
        return "wrong"
    except TooManyRequests:
        return "wait"
    return "signed in"


async def test_guesses_from_everywhere_never_stop_the_holder_where_they_sign_in(
    pool: asyncpg.Pool,
) -> None:
    assert await _login(pool, AGENT, "10.0.0.5", START - timedelta(days=1)) == "signed in"
    alerts: list[LoginAlert] = []
    wrong = Demo(AGENT.email, "guess-guess")
    # Two guesses from each of 40 addresses: under each pair's free failures.
    outcomes = [
        await _login(pool, wrong, f"10.9.0.{n}", START, alerts) for n in range(40) for _ in "ab"
    ]
    assert outcomes.count("wrong") == FREE_FAILURES_PER_ACCOUNT
    assert set(outcomes[FREE_FAILURES_PER_ACCOUNT:]) == {"wait"}
    # A place the holder never signed in from waits too, right password or not...
    assert await _login(pool, AGENT, "10.0.0.77", START) == "wait"
    # ...but where they did, the right password opens at once.
    assert await _login(pool, AGENT, "10.0.0.5", START) == "signed in"
    # Told once, when the failures on the account reached ALERT_AFTER.
    assert alerts == [LoginAlert(AGENT.email, ALERT_AFTER, START)]
    assert await _login(pool, Demo("nobody@example.org", "x"), "10.9.1.1", START, alerts) == "wrong"
    assert len(alerts) == 1


async def test_guessing_many_accounts_from_one_address_slows_only_new_places(
    pool: asyncpg.Pool,
) -> None:
    assert await _login(pool, MANAGER, "10.0.0.8", START - timedelta(hours=1)) == "signed in"
    for n in range(FREE_FAILURES_PER_ADDRESS + 1):
        await _login(pool, Demo(f"guess{n}@example.org", "guess-guess"), "10.0.0.8", START)
    # A colleague who never signed in from this address waits...
    assert await _login(pool, AGENT, "10.0.0.8", START) == "wait"
    # ...one who did does not, nor does anyone from elsewhere.
    assert await _login(pool, MANAGER, "10.0.0.8", START) == "signed in"
    assert await _login(pool, AGENT, "10.0.0.9", START) == "signed in"
    async with pool.acquire() as conn:
        failures = await conn.fetch("SELECT key_hash FROM login_failures")
        keys = [bytes(r["key_hash"]) for r in failures]
        places = await conn.fetch("SELECT pair_hash, account_hash FROM login_places")
    # Counted and remembered under hashes: no e-mail or address in clear.
    stored = keys + [bytes(p[k]) for p in places for k in ("pair_hash", "account_hash")]
    assert keys and places and all(len(value) == 32 for value in stored)
    assert not any(b"example.org" in v or b"10.0.0" in v for v in stored)


async def test_the_holder_is_told_by_email_in_three_languages(
    settings: Settings, pool: asyncpg.Pool, clock: FakeClock, smtp: SmtpCapture
) -> None:
    app = create_app(
        settings.with_(smtp_host=smtp.host, smtp_port=smtp.port), pool=pool, clock=clock
    )
    async with TestServer(app) as server:
        browser = Browser(server)
        try:
            for n in range(ALERT_AFTER):
                r = await browser.login(Demo(AGENT.email, f"guess-{n}"))
                assert r.status == 401
                clock.advance(timedelta(minutes=1))
            async with asyncio.timeout(10):
                while not smtp.to(AGENT.email):  # noqa: ASYNC110 - a mailbox to poll
                    await asyncio.sleep(0.05)
        finally:
            await browser.close()
    [message] = smtp.to(AGENT.email)
    body = message.get_content()
    for language in ("ar", "fr", "en"):
        assert gettext(language, alerts.BODY[1]) in body
        assert gettext(language, alerts.BODY[0]) % {
            "count": str(ALERT_AFTER), "email": AGENT.email
        } in body  # fmt: skip
    assert "127.0.0.1" not in body
    assert message["Subject"].startswith(gettext("ar", alerts.SUBJECT))


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
