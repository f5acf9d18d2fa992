"""The worker's side of fair allocation: one cron job that draws the windows
that closed, ends lapsed offers, offers freed seats to drawn windows'
waiting lists and lapses the places of instant services' waiting lists
whose days are past (service.draw.tick; idempotent, so a second run or a
crash mid-way is harmless)."""

from __future__ import annotations

import logging
from typing import Any

from service import bookings, draw
from service.worker.jobs import STATE, WorkerState

log = logging.getLogger(__name__)


async def draw_tick(ctx: dict[str, Any]) -> int:
    state: WorkerState = ctx[STATE]
    done = await draw.tick(
        state.pool,
        state.clock(),
        offer_hours=state.settings.draw_offer_hours,
        secret_key=state.settings.secret_key,
        rules_=bookings.Rules.of(state.settings),
    )
    if done.drawn or done.offers or done.lapsed:
        log.info("draws: %d drawn, %d offers, %d lapsed", done.drawn, done.offers, done.lapsed)
    return done.offers
