"""What the bench scripts share: waiting for a `mawid serve` they started.

Imported as a sibling module (the scripts run as `python bench/NAME.py`, so
their own folder is first on the path)."""

from __future__ import annotations

import asyncio

import aiohttp


async def wait_http(url: str) -> None:
    """Until `url`/healthz answers 200, or RuntimeError after about 20 s."""
    async with aiohttp.ClientSession() as session:
        for _ in range(400):
            try:
                async with session.get(f"{url}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("server did not start")
