"""The demo's draws: a closed and drawn window over a few hundred requests
(offers made, the rest told they wait) and an open one, once."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from service import draw
from service.config import Settings
from service.demo_draws import DRAWN_ENTRIES, OFFICE, OPEN_ENTRIES, SERVICE, seed_demo_draws
from service.domain import draw as rules
from tests.clock import FakeClock


async def test_the_demo_shows_a_drawn_window_and_an_open_one(
    app_client: TestClient[Any, Any], pool: asyncpg.Pool, settings: Settings, clock: FakeClock
) -> None:
    assert await seed_demo_draws(pool, clock(), secret_key=settings.secret_key, offer_hours=48)
    assert not await seed_demo_draws(pool, clock(), secret_key=settings.secret_key, offer_hours=48)
    listed = await draw.office_draws(pool, OFFICE)
    assert sorted(d["state"] for d in listed) == ["drawn", "open"]
    drawn = next(d for d in listed if d["state"] == "drawn")
    doc = await draw.published(pool, int(str(drawn["id"])))
    assert rules.verify(doc) == []
    ranking = doc["ranking"]
    assert isinstance(ranking, list) and len(ranking) == DRAWN_ENTRIES
    outcomes = [r["outcome"] for r in ranking]
    # Seats go in drawn order: the offered ones lead, the rest wait.
    offered = outcomes.count("offered")
    assert 0 < offered < DRAWN_ENTRIES
    assert set(outcomes) == {"offered", "waiting"}
    async with pool.acquire() as conn:
        told = await conn.fetchval("SELECT count(*) FROM outbox WHERE kind = 'draw_not_served'")
        opened = next(d for d in listed if d["state"] == "open")
        entries = await conn.fetchval(
            "SELECT count(*) FROM draw_entries WHERE window_id = $1", opened["id"]
        )
        pending = await conn.fetchval(
            """SELECT count(*) FROM outbox
               WHERE kind IN ('draw_offer', 'draw_not_served', 'entry_received')
                 AND status = 'pending'"""
        )
    assert told == DRAWN_ENTRIES - offered and entries == OPEN_ENTRIES
    # The demo's people do not exist: nothing of theirs waits to be sent.
    assert pending == 0
    # The service's page leads to its request form, which shows the open window.
    resp = await app_client.get(f"/offices/{OFFICE}/{SERVICE}?lang=fr")
    page = await resp.text()
    assert resp.status == 200 and f'name="window" value="{opened["id"]}"' in page
