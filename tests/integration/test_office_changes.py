"""Changes a manager makes to an office (hours, counters, closures, services,
staff) and the edge cases around them: overfull slots, reopened holidays,
checked-in bookings, out-of-range days, concurrent logins."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from service import bookings
from service.config import Settings
from service.domain.booking import Status
from service.domain.calendar import local_day_bounds
from service.domain.errors import TooManyRequests, Unauthorized
from service.domain.holidays import PUBLIC_HOLIDAY
from service.domain.office_day import parse_hours
from service.domain.staff import (
    FREE_FAILURES_PER_ADDRESS,
    FREE_FAILURES_PER_PAIR,
    Role,
    StaffMember,
)
from service.office import accounts
from service.office.changes import (
    AddClosure,
    Change,
    ChangeOutcome,
    RemoveClosure,
    ReplaceHours,
    change_office,
)
from service.office.common import actor_of
from service.office.schedule import change_status
from service.store import offices as office_store
from service.store import slots as slot_store
from tests.clock import FakeClock
from tests.fixtures.office import (
    MANAGER,
    START,
    Browser,
    add_account,
    make_booking,
)

PARIS_MANAGER = StaffMember(0, "manager@mawid.test", Role.MANAGER, frozenset({"consulate-paris"}))
MANAGER_ACTOR = actor_of(PARIS_MANAGER)
ONE_COUNTER = "mon-fri 09:00-12:30 13:30-16:00 x1"


def english(browser: Browser) -> Browser:
    """The office pages in English (the source text these tests read),
    whatever the default language of the pages."""
    browser.session.cookie_jar.update_cookies({"lang": "en"})
    return browser


def in_language(browser: Browser, language: str) -> Browser:
    browser.session.cookie_jar.update_cookies({"lang": language})
    return browser


def stranded_table(page: str) -> str:
    """The list of bookings a change would strand, on the page asking about them."""
    return page[page.index('<table class="stranded">') : page.index("</table>")]


def main_part(page: str) -> str:
    """The page's own content (the language links repeat the query)."""
    return page[page.index("<main") : page.index("</main>")]


def local_day(instant: datetime) -> str:
    return instant.astimezone(ZoneInfo("Europe/Paris")).date().isoformat()


async def _seat(pool: asyncpg.Pool, slot_id: int) -> tuple[int, int]:
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT capacity, taken FROM slots WHERE id = $1", slot_id)
    return row["capacity"], row["taken"]


async def _three_on_one_slot(pool: asyncpg.Pool) -> list[str]:
    """Three bookings on one slot of four counters, oldest first."""
    first = await make_booking(pool, "consulate-paris", "passport", after=START + timedelta(days=3))
    assert (await _seat(pool, first.slot_id))[0] == 4
    made = [first]
    for _ in range(2):
        made.append(
            await make_booking(
                pool, "consulate-paris", "passport", after=first.starts_at - timedelta(seconds=1)
            )
        )
    assert {b.slot_id for b in made} == {first.slot_id}
    return [b.reference for b in made]


async def test_lowering_counters_lists_the_bookings_beyond_the_new_capacity(
    pool: asyncpg.Pool,
) -> None:
    references = await _three_on_one_slot(pool)
    rules = parse_hours(ONE_COUNTER, ["passport"])
    out = await change_office(
        pool,
        "consulate-paris",
        ReplaceHours("consulate-paris", rules),
        decision=None,
        seen=[],
        reason=None,
        member=PARIS_MANAGER,
        now=START,
        horizon_days=84,
    )
    assert not out.applied
    # The two made last have no seat under one counter; the first keeps it.
    assert sorted(s.reference for s in out.stranded) == sorted(references[1:])


async def test_lowering_counters_then_cancelling_leaves_no_slot_over_capacity(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    references = await _three_on_one_slot(pool)
    browser = english(browsers())
    await browser.login(MANAGER)
    r = await browser.post_form("/office/consulate-paris/hours", {"hours": ONE_COUNTER})
    assert r.status == 409
    page = await r.text()
    seen = re.search(r'name="seen" value="([^"]*)"', page)
    assert seen and set(seen[1].split()) == set(references[1:])
    r = await browser.post_form(
        "/office/consulate-paris/hours",
        {"hours": ONE_COUNTER, "decision": "cancel", "reason": "Un seul guichet", "seen": seen[1]},
    )
    assert r.status == 303 and "cancelled=2" in r.headers["Location"]
    async with pool.acquire() as conn:
        over = await conn.fetchval(
            """SELECT count(*) FROM slots WHERE office_id = 'consulate-paris'
               AND starts_at > $1 AND taken > capacity""",
            START,
        )
        statuses = dict(
            await conn.fetch(
                "SELECT reference, status FROM bookings WHERE reference = ANY($1::text[])",
                references,
            )
        )
    assert over == 0
    assert statuses == {
        references[0]: "confirmed",
        references[1]: "cancelled",
        references[2]: "cancelled",
    }


async def test_parallel_wrong_passwords_are_checked_no_more_than_the_limit(
    pool: asyncpg.Pool,
) -> None:
    async def attempt(n: int) -> str:
        try:
            await accounts.login(
                pool,
                "agent@mawid.test",
                f"wrong-{n}",
                "10.0.0.1",
                secret_key="k",
                now=START,
                allow_demo=True,
            )
        except Unauthorized:
            return "checked"
        except TooManyRequests:
            return "throttled"
        return "signed in"

    results = await asyncio.gather(*(attempt(n) for n in range(30)))
    assert results.count("checked") == FREE_FAILURES_PER_PAIR
    assert results.count("throttled") == 30 - FREE_FAILURES_PER_PAIR


async def test_a_success_counts_against_neither_account_nor_address(
    pool: asyncpg.Pool,
) -> None:
    for _ in range(FREE_FAILURES_PER_ADDRESS + 1):
        await accounts.login(
            pool,
            "agent@mawid.test",
            "dev-agent-password",
            "10.0.0.2",
            secret_key="k",
            now=START,
            allow_demo=True,
        )
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM login_failures") == 0


async def test_cancelling_stranded_bookings_keeps_a_checked_in_one_with_a_message(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    after = START + timedelta(days=8)
    arrived = await make_booking(pool, "consulate-paris", "passport", after=after)
    other = await make_booking(pool, "consulate-paris", "passport", after=after, nth=1)
    day = local_day(arrived.starts_at)
    assert local_day(other.starts_at) == day
    browser = english(browsers())
    await browser.login(MANAGER)
    closure = {"day": day, "reason_fr": "Fermeture"}
    r = await browser.post_form("/office/consulate-paris/closures", closure)
    assert r.status == 409
    seen = re.search(r'name="seen" value="([^"]*)"', await r.text())
    assert seen
    # Meanwhile the citizen came early and was checked in at the counter (on
    # the day: arrivals are marked on the appointment's day only).
    await change_status(
        pool,
        "consulate-paris",
        arrived.reference,
        Status.CHECKED_IN,
        None,
        PARIS_MANAGER,
        arrived.starts_at - timedelta(minutes=10),
    )
    r = await browser.post_form(
        "/office/consulate-paris/closures",
        {**closure, "decision": "cancel", "reason": "Fermeture", "seen": seen[1]},
    )
    assert r.status == 303
    assert "cancelled=1" in r.headers["Location"] and "refused=1" in r.headers["Location"]
    page = await (await browser.get(r.headers["Location"])).text()
    assert "1 booking cancelled with a message." in page
    assert "1 of them could not be cancelled (already checked in) and was kept." in page
    async with pool.acquire() as conn:
        statuses = dict(
            await conn.fetch(
                "SELECT reference, status FROM bookings WHERE id = ANY($1::bigint[])",
                [arrived.id, other.id],
            )
        )
        closed = await conn.fetchval(
            "SELECT source FROM closures WHERE office_id = 'consulate-paris' AND day = $1",
            date.fromisoformat(day),
        )
    assert statuses == {arrived.reference: "checked_in", other.reference: "cancelled"}
    assert closed == "manual"


async def test_the_bookings_a_closure_strands_name_their_service_in_the_page_language(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    # The list showed "power-of-attorney", the service's id, on an Arabic page.
    booking = await make_booking(
        pool, "consulate-paris", "power-of-attorney", after=START + timedelta(days=8)
    )
    browser = in_language(browsers(), "ar")
    await browser.login(MANAGER)
    closure = {"day": local_day(booking.starts_at), "reason_ar": "إغلاق استثنائي"}
    r = await browser.post_form("/office/consulate-paris/closures", closure)
    assert r.status == 409
    table = stranded_table(await r.text())
    assert booking.reference in table
    assert "<bdi>الوكالة</bdi>" in table and "power-of-attorney" not in table


async def test_a_refused_closure_comes_back_with_what_was_typed(
    browsers: Callable[[], Browser],
) -> None:
    # Every reason field came back empty after an error.
    browser = english(browsers())
    await browser.login(MANAGER)
    typed = {"reason_fr": "Formation", "reason_ar": "تكوين", "reason_en": "Training"}
    r = await browser.post_form("/office/consulate-paris/closures", {"day": "", **typed})
    assert r.status == 422
    page = await r.text()
    assert 'href="#closure-day"' in page
    for name, value in typed.items():
        assert re.search(rf'name="{name}" value="{value}"', page), name


async def test_a_day_already_past_in_the_office_zone_is_not_closed(
    pool: asyncpg.Pool, clock: FakeClock, browsers: Callable[[], Browser]
) -> None:
    # 20 January was "saved" on 1 February. And 23:30 UTC on Monday 1
    # February is Tuesday in Paris: Monday has passed there too.
    clock.set(datetime(2027, 2, 1, 23, 30, tzinfo=UTC))
    browser = in_language(browsers(), "ar")
    await browser.login(MANAGER)
    for day in ("2027-01-20", "2027-02-01"):
        r = await browser.post_form(
            "/office/consulate-paris/closures", {"day": day, "reason_ar": "إغلاق استثنائي"}
        )
        assert r.status == 422, day
        page = await r.text()
        error = re.search(r'<span class="field-error" id="closure-day-error">([^<]*)</span>', page)
        assert error and error[1] == "هذا اليوم قد مضى: اختر اليوم أو يومًا بعده.", day
        assert f'name="day" value="{day}"' in page  # as typed, to correct
        assert page.count('id="closure-day"') == 1  # the error summary's one target
    async with pool.acquire() as conn:
        closed = await conn.fetchval(
            """SELECT count(*) FROM closures WHERE office_id = 'consulate-paris'
               AND day IN ('2027-01-20', '2027-02-01')"""
        )
    assert closed == 0
    # The office's today may still be closed (a burst pipe this morning).
    r = await browser.post_form(
        "/office/consulate-paris/closures", {"day": "2027-02-02", "reason_ar": "عطب"}
    )
    assert r.status == 303 and "notice=saved" in r.headers["Location"]


async def test_a_reason_not_given_in_a_language_reads_as_an_exceptional_closure_in_it(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    # Given in Arabic only, the reason stood in for the others: French pages
    # said "Fermé : إغلاق استثنائي".
    browser = in_language(browsers(), "fr")
    await browser.login(MANAGER)
    r = await browser.post_form(
        "/office/consulate-paris/closures", {"day": "2027-02-16", "reason_ar": "عطب تقني"}
    )
    assert r.status == 303
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            """SELECT reason_ar, reason_fr, reason_en FROM closures
               WHERE office_id = 'consulate-paris' AND day = '2027-02-16'"""
        )
    assert dict(row) == {"reason_ar": "عطب تقني", "reason_fr": "", "reason_en": ""}
    # Spanish readers read the French reason, Tamazight readers the Arabic one.
    expected = {
        "fr": "Fermé\u00a0: Fermeture exceptionnelle",
        "en": "Closed: Exceptional closure",
        "es": "Cerrado: Cierre excepcional",
        "ar": "مغلق: عطب تقني",
        "zgh": "ⵉⵇⵇⵏ: عطب تقني",
    }
    for language, said in expected.items():
        r = await browser.get(f"/offices/consulate-paris/passport?week=2027-02-15&lang={language}")
        page = main_part(await r.text())
        assert said in page, language
        assert ("عطب" in page) == (language in ("ar", "zgh")), language
    # The office's list shows the reason as the clerk typed it.
    page = main_part(await (await browser.get("/office/consulate-paris/hours?lang=fr")).text())
    assert "<bdi>عطب تقني</bdi>" in page


def far_year(page: str) -> bool:
    """Whether the page shows the year 9999 as a date or a week (not inside a
    random token, such as the form's CSRF field, that happens to hold it)."""
    return re.search(r"(?<![\w-])9999-", page) is not None


async def test_days_far_out_of_range_are_not_found_not_errors(
    browsers: Callable[[], Browser],
) -> None:
    browser = english(browsers())
    await browser.login(MANAGER)
    for day in ("9999-12-31", "0001-01-01", "2027-02-30"):
        for suffix in ("", "/print", "/export.csv"):
            r = await browser.get(f"/office/consulate-paris/day/{day}{suffix}")
            assert r.status == 404, (day, suffix, r.status)
    r = await browser.get("/api/v1/offices/consulate-paris/schedule?date=9999-12-31")
    assert r.status == 422
    assert list((await r.json())["fields"]) == ["date"]
    assert (await browser.get("/api/v1/offices/consulate-paris/stats?week=9999-W52")).status == 422
    # The pages fall back to the week and the day of the office's today
    # (Monday 2027-02-01 in Paris on the fixed clock), as for no choice at all.
    r = await browser.get("/office/consulate-paris/stats?week=9999-W52")
    page = main_part(await r.text())
    assert r.status == 200
    assert re.search(r"<h1>Statistics, 1\W+7 Feb 2027</h1>", page) and not far_year(page)
    assert 'href="?week=2027-W04"' in page and 'href="?week=2027-W06"' in page
    r = await browser.get("/office/consulate-paris/book?date=9999-12-31&service=passport")
    page = main_part(await r.text())
    assert r.status == 200
    assert 'name="date" value="2027-02-01"' in page and not far_year(page)
    # The day shown is today's, with today's free times of the service.
    assert re.search(r'name="slot_id" value="\d+"', page)
    r = await browser.post_form(
        "/office/consulate-paris/closures", {"day": "9999-12-31", "reason_fr": "x"}
    )
    assert r.status == 422


async def test_a_public_holiday_reopened_by_hand_stays_open_after_regeneration(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    async with pool.acquire() as conn:
        holiday = await conn.fetchval(
            """SELECT day FROM closures WHERE office_id = 'consulate-paris'
               AND source = 'holiday' AND day > $1 ORDER BY day LIMIT 1""",
            START.date(),
        )
    assert holiday is not None
    browser = english(browsers())
    await browser.login(MANAGER)
    page = await (await browser.get("/office/consulate-paris/hours")).text()
    assert f"/closures/{holiday.isoformat()}/remove" in page  # a Reopen button
    r = await browser.post_form(f"/office/consulate-paris/closures/{holiday.isoformat()}/remove")
    assert r.status == 303 and "notice=saved" in r.headers["Location"]

    async def open_slots() -> int:
        async with pool.acquire() as conn:
            office = await office_store.get_office(conn, "consulate-paris")
            assert office is not None
            async with conn.transaction():
                # What the worker's daily refresh does: holidays recomputed.
                await slot_store.regenerate_office(conn, office, START, 84)
            start, end = local_day_bounds(holiday, office.zone)
            count: int = await conn.fetchval(
                """SELECT count(*) FROM slots WHERE office_id = 'consulate-paris'
                   AND starts_at >= $1 AND starts_at < $2 AND capacity > 0""",
                start,
                end,
            )
            closed = await conn.fetchval(
                "SELECT source FROM closures WHERE office_id = 'consulate-paris' AND day = $1",
                holiday,
            )
            assert closed is None
        return count

    assert await open_slots() > 0
    assert await open_slots() > 0  # and again: still open

    # Reopening a day that is not closed says so rather than "Saved".
    r = await browser.post_form(f"/office/consulate-paris/closures/{holiday.isoformat()}/remove")
    assert r.status == 303 and "notice=unchanged" in r.headers["Location"]
    page = await (await browser.get(r.headers["Location"])).text()
    assert "Nothing changed" in page and "Saved" not in page


async def test_closing_a_public_holiday_keeps_the_holiday_and_says_so(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    # 25 December, closed by hand, silently replaced the holiday; and a holiday
    # with no Arabic name read "عطلة رسمية (عطلة رسمية)" in the list.
    query = """SELECT day, source, reason_ar, reason_fr, reason_en FROM closures
               WHERE office_id = 'consulate-paris' AND day > $1 AND reason_ar = $2
               ORDER BY day LIMIT 1"""
    async with pool.acquire() as conn:
        holiday = await conn.fetchrow(query, START.date(), PUBLIC_HOLIDAY["ar"])
    assert holiday is not None and holiday["source"] == "holiday"
    day = holiday["day"].isoformat()
    browser = in_language(browsers(), "ar")
    await browser.login(MANAGER)
    page = main_part(await (await browser.get("/office/consulate-paris/hours")).text())
    assert "<bdi>عطلة رسمية</bdi></td>" in page  # said once
    # One with a name of its own still says where it comes from.
    assert re.search(r'<bdi>[^<]+</bdi> <span class="meta">\(عطلة رسمية\)</span>', page)
    r = await browser.post_form(
        "/office/consulate-paris/closures", {"day": day, "reason_ar": "تكوين الموظفين"}
    )
    assert r.status == 422
    page = await r.text()
    error = re.search(r'<span class="field-error" id="closure-day-error">([^<]*)</span>', page)
    assert error and error[1].startswith("هذا اليوم مغلق أصلًا لأنه عطلة رسمية.")
    assert 'name="reason_ar" value="تكوين الموظفين"' in page
    async with pool.acquire() as conn:
        assert await conn.fetchrow(query, START.date(), PUBLIC_HOLIDAY["ar"]) == holiday
    # A day closed by hand says so, and takes new reasons.
    closure = {"day": "2027-02-16", "reason_ar": "تكوين الموظفين"}
    assert (await browser.post_form("/office/consulate-paris/closures", closure)).status == 303
    closure["reason_ar"] = "أشغال"
    assert (await browser.post_form("/office/consulate-paris/closures", closure)).status == 303
    page = main_part(await (await browser.get("/office/consulate-paris/hours")).text())
    assert '<bdi>أشغال</bdi> <span class="meta">(يدوي)</span>' in page


def service_form(**changes: str) -> dict[str, str]:
    form = {
        "duration_minutes": "20",
        "earliest_hours": "2",
        "latest_days": "60",
        "reschedule_cutoff_minutes": "120",
        "arrive_early_minutes": "10",
        "hold_minutes": "10",
        "verify_contact": "on",
        "bring_fr": "Passeport",
        "bring_ar": "",
        "bring_en": "Passport",
        "active": "on",
        "document_required": "on",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v != "-"}


async def test_a_manager_edits_a_service_and_a_new_duration_keeps_bookings(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    async with pool.acquire() as conn:
        duration = await conn.fetchval(
            "SELECT duration_minutes FROM services WHERE office_id = 'consulate-paris'"
            " AND id = 'passport'"
        )
    booking = await make_booking(pool, "consulate-paris", "passport")
    browser = english(browsers())
    await browser.login(MANAGER)
    page = await (await browser.get("/office/consulate-paris/services")).text()
    assert 'href="/office/consulate-paris/services/passport"' in page
    page = await (await browser.get("/office/consulate-paris/services/passport")).text()
    assert 'action="/office/consulate-paris/services/passport"' in page
    path = "/office/consulate-paris/services/passport"
    # The booking window alone moves no slot: saved at once.
    form = service_form(duration_minutes=str(duration), latest_days="30", bring_ar="جواز")
    r = await browser.post_form(path, form)
    assert r.status == 303 and "notice=saved" in r.headers["Location"]
    assert (await browser.post_form(path, form)).headers["Location"].endswith("notice=unchanged")
    r = await browser.post_form(path, {**form, "duration_minutes": "7"})
    assert r.status == 422 and "in steps of 5" in await r.text()

    # A new duration moves every slot: the booking is listed, then kept.
    longer = {**form, "duration_minutes": str(duration + 15)}
    r = await browser.post_form(path, longer)
    assert r.status == 409
    page = await r.text()
    assert booking.reference in page
    seen = re.search(r'name="seen" value="([^"]*)"', page)
    assert seen and 'name="duration_minutes"' in page
    r = await browser.post_form(path, {**longer, "decision": "keep", "seen": seen[1]})
    assert r.status == 303 and "/services?notice=saved" in r.headers["Location"]
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            """SELECT duration_minutes, latest_days, bring_ar FROM services
               WHERE office_id = 'consulate-paris' AND id = 'passport'"""
        )
        status = await conn.fetchval("SELECT status FROM bookings WHERE id = $1", booking.id)
        ends = await conn.fetch(
            """SELECT DISTINCT ends_at - starts_at AS length FROM slots
               WHERE office_id = 'consulate-paris' AND service_id = 'passport'
                 AND capacity > 0 AND starts_at > $1""",
            START,
        )
    assert tuple(row) == (duration + 15, 30, "جواز")
    assert status == "confirmed"
    assert [r["length"] for r in ends] == [timedelta(minutes=duration + 15)]


async def test_a_manager_turns_code_checks_off_and_sets_the_hold_time(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    browser = english(browsers())
    await browser.login(MANAGER)
    async with pool.acquire() as conn:
        duration = await conn.fetchval(
            "SELECT duration_minutes FROM services WHERE office_id = 'consulate-paris'"
            " AND id = 'passport'"
        )
    path = "/office/consulate-paris/services/passport"
    page = await (await browser.get(path)).text()
    assert 'name="verify_contact" checked' in page
    # An unticked box is absent from the form: the office cannot send codes.
    form = service_form(duration_minutes=str(duration), verify_contact="-", hold_minutes="15")
    r = await browser.post_form(path, form)
    assert r.status == 303 and "notice=saved" in r.headers["Location"]
    stored = await pool.fetchrow(
        """SELECT verify_contact, hold_minutes FROM services
           WHERE office_id = 'consulate-paris' AND id = 'passport'"""
    )
    assert tuple(stored) == (False, 15)
    r = await browser.post_form(path, {**form, "hold_minutes": "61"})
    assert r.status == 422
    held = await pool.fetchval(
        "SELECT hold_minutes FROM services WHERE office_id = 'consulate-paris' AND id = $1",
        "passport",
    )
    assert held == 15


async def test_turning_a_service_off_lists_its_bookings_and_stops_booking(
    pool: asyncpg.Pool, browsers: Callable[[], Browser]
) -> None:
    booking = await make_booking(pool, "consulate-paris", "passport")
    browser = english(browsers())
    await browser.login(MANAGER)
    async with pool.acquire() as conn:
        duration = await conn.fetchval(
            "SELECT duration_minutes FROM services WHERE office_id = 'consulate-paris'"
            " AND id = 'passport'"
        )
    off = service_form(duration_minutes=str(duration), active="-")
    path = "/office/consulate-paris/services/passport"
    r = await browser.post_form(path, off)
    assert r.status == 409
    table = stranded_table(await r.text())
    assert booking.reference in table and "<bdi>Biometric passport</bdi>" in table
    r = await browser.post_form(
        path, {**off, "decision": "cancel", "reason": "Service fermé", "seen": booking.reference}
    )
    assert r.status == 303 and "cancelled=1" in r.headers["Location"]
    async with pool.acquire() as conn:
        open_seats = await conn.fetchval(
            """SELECT count(*) FROM slots WHERE office_id = 'consulate-paris'
               AND service_id = 'passport' AND capacity > 0 AND starts_at > $1""",
            START,
        )
    assert open_seats == 0
    page = await (await browser.get("/office/consulate-paris/services")).text()
    assert "inactive" in page  # still listed, to be turned back on


async def test_a_deactivated_account_loses_its_sessions_and_tokens(
    pool: asyncpg.Pool, settings: Settings, browsers: Callable[[], Browser]
) -> None:
    leaving = await add_account(pool, "leaving@example.org", Role.AGENT, ["consulate-paris"])
    theirs = english(browsers())
    assert (await theirs.login(leaving)).status == 303
    async with pool.acquire() as conn:
        staff_id = await conn.fetchval("SELECT id FROM staff WHERE email = $1", leaving.email)
    member = StaffMember(staff_id, leaving.email, Role.AGENT, frozenset({"consulate-paris"}))
    token = await accounts.create_api_token(
        pool, member, "laptop", secret_key=settings.secret_key, now=START
    )
    schedule = "/api/v1/offices/consulate-paris/schedule?date=2027-02-02"
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await theirs.get(schedule, headers=bearer)).status == 200

    manager = english(browsers())
    await manager.login(MANAGER)
    page = await (await manager.get("/office/consulate-paris/staff")).text()
    assert f"/staff/{staff_id}/deactivate" in page
    r = await manager.post_form(f"/office/consulate-paris/staff/{staff_id}/deactivate")
    assert r.status == 303 and "notice=deactivated" in r.headers["Location"]

    assert (await theirs.get("/office/consulate-paris/day/2027-02-02")).status == 303  # to login
    assert (await theirs.get(schedule, headers=bearer)).status == 401
    assert (await browsers().login(leaving)).status == 401
    # Nobody deactivates themselves or someone above them.
    async with pool.acquire() as conn:
        manager_id = await conn.fetchval("SELECT id FROM staff WHERE email = $1", MANAGER.email)
    r = await manager.post_form(f"/office/consulate-paris/staff/{manager_id}/deactivate")
    assert r.status == 403
    tiznit = await add_account(pool, "t@example.org", Role.AGENT, ["prefecture-tiznit"])
    async with pool.acquire() as conn:
        tiznit_id = await conn.fetchval("SELECT id FROM staff WHERE email = $1", tiznit.email)
    r = await manager.post_form(f"/office/consulate-paris/staff/{tiznit_id}/deactivate")
    assert r.status == 404


async def test_a_booking_goes_through_while_an_office_change_holds_its_lock(
    pool: asyncpg.Pool,
) -> None:
    """A change of hours, closures or mobile days holds the office's change
    lock while it rewrites slots, and may wait there for a slot a citizen is
    booking; that booking's insert checks its office (a foreign key) and must
    not wait for the change in turn: that was a deadlock, and a 500 for the
    citizen or the manager. Changes still wait for one another."""
    async with pool.acquire() as change, change.transaction():
        await office_store.lock_for_change(change, "consulate-paris")
        booking = await asyncio.wait_for(make_booking(pool, "consulate-paris", "passport"), 10)
        assert booking.status == Status.CONFIRMED
        async with pool.acquire() as other:
            with pytest.raises(asyncpg.LockNotAvailableError):
                async with other.transaction():
                    await other.execute("SET LOCAL lock_timeout = '200ms'")
                    await office_store.lock_for_change(other, "consulate-paris")


async def _waiting_for_a_lock(pool: asyncpg.Pool, besides: int) -> None:
    """Until a backend other than `besides` waits for a row lock."""
    async with pool.acquire() as conn:
        for _ in range(200):
            if await conn.fetchval(
                """SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                   WHERE wait_event_type = 'Lock' AND pid <> $1)""",
                besides,
            ):
                return
            await asyncio.sleep(0.02)
    raise AssertionError("nothing waited for a lock")


async def test_a_change_that_cancels_bookings_waits_for_one_being_cancelled_meanwhile(
    pool: asyncpg.Pool,
) -> None:
    """A change cancelling the bookings it strands locks them before it
    rewrites their slots and counters: the citizen (or the desk) cancelling
    one of them meanwhile holds the booking and then frees its seat, and a
    change holding the seat while waiting for the booking was a deadlock
    (a 500 for the manager or the citizen)."""
    references = await _three_on_one_slot(pool)
    rules = parse_hours(ONE_COUNTER, ["passport"])
    async with pool.acquire() as desk, desk.transaction():
        # What cancelling locks first: the booking's row.
        await desk.execute("SELECT 1 FROM bookings WHERE reference = $1 FOR UPDATE", references[1])
        change = asyncio.create_task(
            change_office(
                pool,
                "consulate-paris",
                ReplaceHours("consulate-paris", rules),
                decision="cancel",
                seen=references[1:],
                reason="Un seul guichet",
                member=PARIS_MANAGER,
                now=START,
                horizon_days=84,
            )
        )
        await _waiting_for_a_lock(pool, desk.get_server_pid())
        # Then the seat and its counters, while the change waits.
        cancelled = await asyncio.wait_for(
            bookings.set_status_by_office(
                desk, references[1], "consulate-paris", Status.CANCELLED, MANAGER_ACTOR, START
            ),
            10,
        )
        assert cancelled.status == Status.CANCELLED
    out = await asyncio.wait_for(change, 10)
    assert out.applied and out.cancelled == 1
    async with pool.acquire() as conn:
        statuses = await conn.fetch(
            "SELECT reference, status FROM bookings WHERE reference = ANY($1::text[])", references
        )
    assert {r["reference"]: r["status"] for r in statuses} == {
        references[0]: "confirmed",
        references[1]: "cancelled",
        references[2]: "cancelled",
    }


async def _change(pool: asyncpg.Pool, write: Change, seen: list[str]) -> ChangeOutcome:
    return await change_office(
        pool,
        "consulate-paris",
        write,
        decision="keep" if seen else None,
        seen=seen,
        reason=None,
        member=PARIS_MANAGER,
        now=START,
        horizon_days=84,
    )


async def test_a_change_takes_the_seats_it_rewrites_in_the_order_a_move_does(
    pool: asyncpg.Pool,
) -> None:
    """A move locks its two slots in id order; a change rewriting many slots
    (here closing a day) must take them in that order too, not in the order
    of their times: after a day was closed and reopened, its slots are made
    anew (higher ids) but for the booked ones, which stayed. In time order,
    the change held one a move wanted while waiting for one the move held:
    a deadlock, a 500 for the citizen or the manager."""
    day = date(2027, 2, 10)  # a Wednesday after START
    start, end = local_day_bounds(day, ZoneInfo("Europe/Paris"))
    last = await _day_slots(pool, start, end, "starts_at DESC")
    booking = await make_booking(
        pool, "consulate-paris", "passport", after=last[0]["starts_at"] - timedelta(seconds=1)
    )
    assert booking.slot_id == last[0]["id"]
    closure = AddClosure("consulate-paris", day, {"fr": "Fermé", "en": "Closed"})
    assert (await _change(pool, closure, [booking.reference])).applied
    assert (await _change(pool, RemoveClosure("consulate-paris", day), [])).applied
    ids = [r["id"] for r in await _day_slots(pool, start, end, "id")]
    # The booked slot, last of the day, is now the first by id.
    assert len(ids) > 2 and ids[0] == booking.slot_id
    async with pool.acquire() as mover, mover.transaction():
        await slot_store.lock_for_move(mover, ids[:1])
        change = asyncio.create_task(_change(pool, closure, [booking.reference]))
        await _waiting_for_a_lock(pool, mover.get_server_pid())
        # The change waits for the first of them, holding none of the others.
        await asyncio.wait_for(slot_store.lock_for_move(mover, ids), 10)
    out = await asyncio.wait_for(change, 10)
    assert out.applied
    async with pool.acquire() as conn:
        assert not await conn.fetchval(
            "SELECT count(*) FROM slots WHERE id = ANY($1::bigint[]) AND capacity > 0", ids
        )


async def _day_slots(
    pool: asyncpg.Pool, start: datetime, end: datetime, order: str
) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch(
            f"""SELECT id, starts_at FROM slots WHERE office_id = 'consulate-paris'
                AND service_id = 'passport' AND mobile_day_id IS NULL
                AND starts_at >= $1 AND starts_at < $2 AND capacity > 0 ORDER BY {order}""",
            start,
            end,
        )


async def test_a_regeneration_leaves_the_seats_it_keeps_free_for_bookings(
    pool: asyncpg.Pool,
) -> None:
    """A regeneration holds what it rewrites until it commits, and nothing
    else: a slot or a counter cell it keeps as it is stays free for a booking
    or a move meanwhile. An upsert (ON CONFLICT DO UPDATE) locked every row
    it met, changed or not, in time order: racing found moves and bookings
    deadlocked with it (a 500)."""
    day = date(2027, 2, 10)  # a Wednesday after START
    start, end = local_day_bounds(day, ZoneInfo("Europe/Paris"))
    kept = await _day_slots(pool, start, end, "starts_at")
    async with pool.acquire() as change, change.transaction():
        office = await office_store.get_office(change, "consulate-paris")
        assert office is not None
        await slot_store.regenerate_office(change, office, START, 84)
        async with pool.acquire() as mover, mover.transaction():
            await mover.execute("SET LOCAL lock_timeout = '2s'")
            await slot_store.lock_for_move(mover, [r["id"] for r in kept])
