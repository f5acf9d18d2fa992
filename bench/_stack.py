"""What the bench scripts share: waiting for a `mawid serve` they started, and
a `mawid dev` stack (embedded Postgres and Redis, the demo data, the web
server and the worker) in a directory of their own.

Imported as a sibling module (the scripts run as `python bench/NAME.py`, so
their own folder is first on the path)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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


def dev_env(dev_dir: Path, port: int, **settings: str) -> dict[str, str]:
    """This process's environment for a `mawid dev` of its own: data in
    `dev_dir`, the web server on `port`, no database or Redis of the caller's,
    and `settings` (LOG_LEVEL="ERROR", LIMIT_BOOK="off", ...)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "MAWID_ENV")
    }
    env.update(MAWID_DEV_DIR=str(dev_dir), PORT=str(port), **settings)
    return env


@dataclass
class DevStack:
    """`mawid dev`, started (and started again) on one dev dir, its output
    appended to `log`."""

    dev_dir: Path
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service.cli", "dev"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def ctrl_c(self, times: int = 2) -> int:
        """A Ctrl-C in its terminal, `times` times; waits for it to stop."""
        assert self.process is not None
        for _ in range(times):
            os.killpg(self.process.pid, signal.SIGINT)
            time.sleep(0.1)
        return self.process.wait(180)

    def stop(self) -> None:
        """One Ctrl-C, if it is still running: it stops as a developer's would."""
        if self.process is not None and self.process.poll() is None:
            self.ctrl_c(times=1)


async def wait_ready(session: aiohttp.ClientSession, stack: DevStack, limit: float = 300) -> float:
    """Seconds until `stack` answers /readyz with 200 (a first start migrates
    and loads the demo data); SystemExit after `limit` seconds."""
    began = time.monotonic()
    while time.monotonic() - began < limit:
        try:
            async with session.get(f"{stack.base}/readyz") as resp:
                if resp.status == 200:
                    return time.monotonic() - began
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.3)
    raise SystemExit(f"mawid dev not ready after {limit:.0f} s; see {stack.log}")
