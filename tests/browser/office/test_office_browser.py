"""Staff in a real Chromium: an agent runs the day, a manager closes a day."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.app import LiveServer
from tests.fixtures.office import AGENT, MANAGER, Demo, make_booking

pytestmark = pytest.mark.browser


async def sign_in(page: Any, who: Demo) -> None:
    await page.goto("/office/login")
    await page.get_by_label("E-mail").fill(who.email)
    await page.get_by_label("Password").fill(who.password)
    await page.get_by_role("button", name="Sign in").click()


async def test_agent_checks_in_and_marks_a_no_show(
    live_server: LiveServer, office_page: Any, artifacts: Path
) -> None:
    first = await make_booking(live_server.pool, "consulate-paris", "passport", name="Salma Amrani")
    second = await make_booking(
        live_server.pool, "consulate-paris", "passport", nth=1, name="Omar Tazi"
    )
    # Later that afternoon: Omar's time has passed, so he can be a no-show.
    live_server.clock.set(second.starts_at + timedelta(minutes=10))
    page = office_page
    await sign_in(page, AGENT)
    # The agent's only office opens on today's schedule (office zone).
    await page.wait_for_url("**/office/consulate-paris/day/2027-02-01")
    await page.screenshot(path=str(artifacts / "office-day-before.png"), full_page=True)

    row = page.locator(f"#b-{first.reference}")
    await row.get_by_role("button", name="Arrived").click()
    await page.wait_for_url("**done=checked_in**")
    assert (await page.locator(f"#b-{first.reference} td.status").inner_text()) == "Checked in"

    await page.locator(f"#b-{second.reference}").get_by_role("button", name="No-show").click()
    await page.wait_for_url("**done=no_show**")
    assert (await page.locator(f"#b-{second.reference} td.status").inner_text()) == "No-show"
    await page.screenshot(path=str(artifacts / "office-day-after.png"), full_page=True)

    await page.get_by_role("link", name="Print view").click()
    await page.wait_for_url("**/print")
    await page.emulate_media(media="print")
    rows = page.locator("table.print-list tbody tr")
    assert await rows.count() == 2
    await page.screenshot(path=str(artifacts / "office-print.png"), full_page=True)
    await page.pdf(path=str(artifacts / "office-print.pdf"), format="A4")


async def test_manager_closes_a_day_and_citizens_lose_its_slots(
    live_server: LiveServer, office_page: Any, artifacts: Path
) -> None:
    page = office_page
    availability = (
        "/api/v1/offices/consulate-paris/availability?service=passport"
        "&from=2027-02-16&to=2027-02-16"
    )
    before = await (await page.request.get(availability)).json()
    assert before["slots"]

    await sign_in(page, MANAGER)
    await page.wait_for_url("**/office/consulate-paris/day/**")
    await page.get_by_role("link", name="Hours and closures").click()
    await page.get_by_label("Day", exact=True).fill("2027-02-16")
    reasons = page.get_by_role("group", name="Reason shown to citizens")
    await reasons.get_by_label("French").fill("Formation du personnel")
    await page.get_by_role("button", name="Close this day").click()
    await page.wait_for_url("**notice=saved**")
    assert "Formation du personnel" in await page.locator("table.closures").inner_text()
    await page.screenshot(path=str(artifacts / "office-hours.png"), full_page=True)

    after = await (await page.request.get(availability)).json()
    assert after["slots"] == []
