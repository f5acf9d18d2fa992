"""Office pages, round two (issue 11): the day's page offers only what can be
done now and says why a change is refused, the call-in screen, the hours form,
statistics in the reader's locale, the 403 page and the print view's way back.
Over real HTTP against real Postgres, without a browser."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from zoneinfo import ZoneInfo

import asyncpg

from tests.clock import FakeClock
from tests.fixtures.office import AGENT, START, Browser, make_booking

PARIS = ZoneInfo("Europe/Paris")


def row(page: str, reference: str) -> str:
    found = re.search(rf'<tr id="b-{reference}".*?</tr>', page, re.S)
    assert found, reference
    return found[0]


def offered(page: str, reference: str) -> list[str]:
    """The actions a row offers, as the status each would set."""
    return re.findall(r'name="status" value="([a-z_]+)"', row(page, reference))


async def test_the_day_offers_only_what_can_be_done_now(
    pool: asyncpg.Pool, clock: FakeClock, browsers: Callable[[], Browser]
) -> None:
    today = await make_booking(pool, "consulate-paris", "passport")
    tomorrow = await make_booking(
        pool, "consulate-paris", "passport", after=START + timedelta(days=1)
    )
    browser = browsers()
    await browser.login(AGENT)
    day = today.starts_at.astimezone(PARIS).date().isoformat()
    next_day = tomorrow.starts_at.astimezone(PARIS).date().isoformat()
    assert next_day != day

    page = await (await browser.get(f"/office/consulate-paris/day/{day}")).text()
    # Before the start: arrived, or cancel behind a disclosure; never absent.
    assert offered(page, today.reference) == ["checked_in", "cancelled"]
    assert '<details class="cancel"><summary>Cancel…</summary>' in row(page, today.reference)
    # References and phones as people read them.
    assert '<bdi dir="ltr" class="phone">+212 6 12 34 56 78</bdi>' in row(page, today.reference)
    page = await (await browser.get(f"/office/consulate-paris/day/{next_day}")).text()
    assert offered(page, tomorrow.reference) == ["cancelled"]  # no arrival on tomorrow's list

    # A refused change says why, in an error box, not in the green notice.
    r = await browser.post_form(
        f"/office/consulate-paris/bookings/{today.reference}/status",
        {"status": "no_show", "back": day},
    )
    assert r.status == 409
    page = await r.text()
    start = today.starts_at.astimezone(PARIS).strftime("%H:%M")
    box = re.search(r'<div class="error-summary" role="alert".*?</div>', page, re.S)
    assert box and f"Absent only after {start}, once the appointment has started." in box[0]
    assert 'class="notice"' not in page
    r = await browser.post_form(
        f"/office/consulate-paris/bookings/{tomorrow.reference}/status",
        {"status": "checked_in", "back": next_day},
    )
    assert r.status == 409
    assert f"only be marked on the day of the appointment, {next_day}." in await r.text()

    # Done: the notice names what was saved.
    r = await browser.post_form(
        f"/office/consulate-paris/bookings/{today.reference}/status",
        {"status": "checked_in", "back": day},
    )
    page = await (await browser.get(r.headers["Location"])).text()
    assert f'<p class="notice" role="status">{today.reference} marked as arrived.</p>' in page
    assert offered(page, today.reference) == ["done"]  # absent only once started
    # Once started: arrived late or absent; cancelling is over.
    other = await make_booking(pool, "consulate-paris", "passport", nth=3)
    clock.set(other.starts_at + timedelta(minutes=1))
    await browser.login(AGENT)  # a session sleeps after 2 idle hours
    page = await (await browser.get(f"/office/consulate-paris/day/{day}")).text()
    assert offered(page, other.reference) == ["checked_in", "no_show"]
    assert offered(page, today.reference) == ["done", "no_show"]
