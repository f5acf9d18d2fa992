"""`mawid serve` keeps what start-up made out of the collector's passes."""

from __future__ import annotations

import asyncio
import gc

from aiohttp import web

from service import cli


def test_the_objects_of_start_up_are_frozen_once_the_app_has_started() -> None:
    app = web.Application()
    made_at_startup = [object() for _ in range(100)]
    gc.unfreeze()
    try:
        asyncio.run(cli.freeze_startup_objects(app))
        # Frozen objects are out of every generation the collector walks.
        assert gc.get_freeze_count() >= len(made_at_startup)
    finally:
        gc.unfreeze()
