"""The office pages of fair allocation: a manager sets a service to draw and
opens a request window (state, seed hash, entries), an agent files a
request for a citizen at the counter into the same window, and after the
draw the page links to the public record."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import asyncpg

from service.config import Settings
from tests.clock import FakeClock
from tests.fixtures.office import AGENT, MANAGER, Browser
from tests.integration.test_draw_flow import FIRST, LAST, OFFICE, SERVICE, tick

PAGE = f"/office/{OFFICE}/services/{SERVICE}/draws"


async def test_a_manager_opens_a_window_and_an_agent_files_a_request(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock, browsers: Callable[[], Browser]
) -> None:
    manager = browsers()
    assert (await manager.login(MANAGER)).status == 303
    page = await (await manager.get(PAGE)).text()
    assert "Allocation and draws" in page and "Open a request window" not in page
    # Opening a window needs the draw mode first; nothing is written before.
    r = await manager.post_form(f"{PAGE}/mode", {"mode": "lottery"})
    assert r.status == 422
    r = await manager.post_form(f"{PAGE}/mode", {"mode": "draw"})
    assert r.status == 303
    closes = (clock() + timedelta(days=7)).date().isoformat()
    window = {"closes_day": closes, "closes_time": "18:00",
              "first_day": FIRST.isoformat(), "last_day": LAST.isoformat()}  # fmt: skip
    r = await manager.post_form(PAGE, {**window, "closes_time": "25:00"})
    assert r.status == 422
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM draw_windows") == 0
    r = await manager.post_form(PAGE, window)
    assert r.status == 303
    page = await (await manager.get(r.headers["Location"])).text()
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT id, seed_sha256, closes_at FROM draw_windows")
    assert row["seed_sha256"] in page and "Open for requests" in page
    # 18:00 in Paris in February is 17:00 UTC.
    assert row["closes_at"].isoformat() == f"{closes}T17:00:00+00:00"
    # A second window over the same days is refused.
    assert (await manager.post_form(PAGE, window)).status == 409
    # The agent files a request at the counter: no code, the same window.
    agent = browsers()
    assert (await agent.login(AGENT)).status == 303
    form = await (await agent.get(f"{PAGE}/request")).text()
    assert f'name="window" value="{row["id"]}"' in form
    body = [("_csrf", agent.csrf), ("window", str(row["id"])), ("days", FIRST.isoformat()),
            ("parts", "morning"), ("name", "Fatima Zahra"), ("phone", "06 11 22 33 44"),
            ("phone_country", "FR"), ("language", "ar")]  # fmt: skip
    r = await agent.session.post(f"{PAGE}/request", data=body)
    done = await r.text()
    assert r.status == 200, done
    entry = re.search(r"[0-9a-f]{32}", done.split("Draw entry")[1])
    assert entry
    async with pool.acquire() as conn:
        filed = await conn.fetchrow(
            "SELECT created_by, verified_at, language FROM draw_entries WHERE id = $1", entry[0]
        )
    assert filed["created_by"].startswith("staff:") and filed["verified_at"] is not None
    # The same person again is refused whatever the counter.
    r = await agent.session.post(f"{PAGE}/request", data=body)
    assert r.status == 409
    page = await (await manager.get(PAGE)).text()
    assert re.search(r"<td[^>]*>1<br>", page)
    clock.advance(timedelta(days=8))
    await tick(pool, settings, clock)
    # A week later: new sessions.
    assert (await manager.login(MANAGER)).status == 303
    assert (await agent.login(AGENT)).status == 303
    page = await (await manager.get(PAGE)).text()
    assert "Drawn" in page and f'href="/draws/{row["id"]}"' in page
    # After the close, the counter has no window to file into.
    form = await (await agent.get(f"{PAGE}/request")).text()
    assert "No request window of this service is open now." in form
