"""`mawid dev` keeps its stack running: Postgres killed while citizens book,
then Redis and the worker killed, then Ctrl-C.

One whole stack (embedded Postgres and Redis, the web server and the worker
as `mawid dev` runs them, SMS to tests/faketwilio.py), on the tests' fixed
clock (MAWID_CLOCK_START), the demo data seeded for it. Slow (a minute or
two), so every fault is in this one run.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil
import pytest

from service.devstack import free_port
from tests.clock import FIXED_NOW
from tests.faketwilio import FakeTwilio
from tests.fixtures.app import any_document
from tests.fixtures.notify import presume_lost

STARTUP_LIMIT = 240.0
RECOVERY_LIMIT = 120.0


@dataclass
class Stack:
    """A running `mawid dev`, its output collected line by line."""

    process: subprocess.Popen[str]
    base: str
    dev_dir: Path
    lines: list[str] = field(default_factory=list)

    def read_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    async def wait_line(self, pattern: str, limit: float, after: int = 0) -> re.Match[str]:
        """The first line from index `after` on that matches `pattern`."""
        loop = asyncio.get_running_loop()
        end = loop.time() + limit
        while loop.time() < end:
            for line in self.lines[after:]:
                if match := re.search(pattern, line):
                    return match
            assert self.process.poll() is None, "mawid dev exited:\n" + self.output()
            await asyncio.sleep(0.2)
        raise AssertionError(f"no line matching {pattern!r}:\n{self.output()}")

    def output(self) -> str:
        return "\n".join(self.lines[-60:])

    def ports(self) -> dict[str, int]:
        ports: dict[str, int] = json.loads((self.dev_dir / "ports.json").read_text())
        return ports

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.ports()['postgres']}/mawid"

    def server_pid(self, name: str) -> int:
        record = json.loads((self.dev_dir / name / "mawid-owner.json").read_text())
        pid: int = record["server"]
        return pid

    def app_pid(self, command: str) -> int:
        [pid] = [
            child.pid
            for child in psutil.Process(self.process.pid).children()
            if child.cmdline()[-2:] == ["service.cli", command]
        ]
        return pid


@pytest.fixture
async def fake_twilio_for_dev() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def stack(tmp_path: Path, fake_twilio_for_dev: FakeTwilio) -> Iterator[Stack]:
    port = free_port()
    fake = fake_twilio_for_dev
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "MAWID_ENV")
    }
    env.update(
        MAWID_DEV_DIR=str(tmp_path / "dev"),
        PORT=str(port),
        LOG_LEVEL="WARNING",
        MAWID_CLOCK_START=FIXED_NOW.isoformat(),
        TWILIO_ACCOUNT_SID=fake.account_sid,
        TWILIO_AUTH_TOKEN=fake.auth_token,
        TWILIO_FROM="+15005550006",
        TWILIO_BASE_URL=fake.url,
        SMS_PER_SECOND="20",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "dev"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Its own process group, as in a terminal: Ctrl-C is a SIGINT to
        # `mawid dev`, the web server and the worker at once.
        start_new_session=True,
    )
    running = Stack(process, f"http://127.0.0.1:{port}", tmp_path / "dev")
    reader = threading.Thread(target=running.read_output, daemon=True)
    reader.start()
    try:
        yield running
    finally:
        if process.poll() is None:
            family = psutil.Process(process.pid).children(recursive=True)
            os.killpg(process.pid, signal.SIGKILL)
            for proc in family:
                proc.kill()
        process.wait(30)
        # The servers run in sessions of their own: stop what is left.
        for name in ("postgres", "redis"):
            record = tmp_path / "dev" / name / "mawid-owner.json"
            if record.exists():
                pid = json.loads(record.read_text())["server"]
                if psutil.pid_exists(pid):
                    psutil.Process(pid).kill()
        reader.join(5)


async def status_of(session: aiohttp.ClientSession, url: str) -> int:
    try:
        async with session.get(url) as resp:
            return resp.status
    except aiohttp.ClientError:
        return 0


async def wait_ready(stack: Stack, session: aiohttp.ClientSession, limit: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while await status_of(session, f"{stack.base}/readyz") != 200:
        assert stack.process.poll() is None, "mawid dev exited:\n" + stack.output()
        assert loop.time() < end, "mawid dev did not become ready:\n" + stack.output()
        await asyncio.sleep(0.5)


@dataclass
class Citizens:
    """Books the demo passport service of the Paris consulate, one citizen
    (number, document) at a time, and remembers what was confirmed."""

    session: aiohttp.ClientSession
    base: str
    slots: list[int]
    booked: list[str] = field(default_factory=list)
    # Answers while a dependency was down: status -> count.
    refused: dict[int, int] = field(default_factory=dict)

    async def book(self) -> None:
        n = len(self.booked) + sum(self.refused.values())
        body = {
            "slot_id": self.slots[n % len(self.slots)],
            "service": "passport",
            "name": "Amina El Idrissi",
            "phone": f"+336{20000000 + n}",
            "phone_country": "FR",
            "language": "fr",
            "document_number": any_document(),
        }
        retry_after = None
        try:
            async with self.session.post(f"{self.base}/api/v1/bookings", json=body) as resp:
                payload: dict[str, Any] = await resp.json(content_type=None)
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
        except aiohttp.ClientError:
            status = 0
        if status == 201:
            self.booked.append(payload["reference"])
            return
        # Postgres down: 503 with Retry-After, or no answer while the web
        # server itself restarts. Nothing else.
        assert status in (0, 503), (status, payload)
        assert status == 0 or retry_after is not None
        self.refused[status] = self.refused.get(status, 0) + 1


async def free_slots(session: aiohttp.ClientSession, base: str) -> list[int]:
    first = FIXED_NOW.date() + timedelta(days=7)
    query = f"service=passport&from={first}&to={first + timedelta(days=13)}"
    url = f"{base}/api/v1/offices/consulate-paris/availability?{query}"
    async with session.get(url) as resp:
        assert resp.status == 200
        slots = (await resp.json())["slots"]
    return [s["id"] for s in slots if s["remaining"] > 0]


async def confirmations(dsn: str, references: list[str]) -> dict[int, str]:
    """Outbox id -> status of the confirmation SMS of these bookings."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT o.id, o.status FROM outbox o JOIN bookings b ON b.id = o.booking_id
               WHERE b.reference = ANY($1::text[]) AND o.kind = 'confirmation'
                 AND o.channel = 'sms'""",
            references,
        )
    finally:
        await conn.close()
    return {r["id"]: r["status"] for r in rows}


@pytest.mark.timeout(900)
async def test_mawid_dev_restarts_what_dies_and_loses_nothing(
    stack: Stack, fake_twilio_for_dev: FakeTwilio
) -> None:
    fake = fake_twilio_for_dev
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        await wait_ready(stack, session, STARTUP_LIMIT)
        ports = stack.ports()
        citizens = Citizens(session, stack.base, await free_slots(session, stack.base))
        for _ in range(5):
            await citizens.book()
        assert len(citizens.booked) == 5

        # Postgres killed outright while citizens keep booking: the
        # supervisor reaps it and starts it again in place, on its port.
        mark = len(stack.lines)
        os.kill(stack.server_pid("postgres"), signal.SIGKILL)
        loop = asyncio.get_running_loop()
        end = loop.time() + RECOVERY_LIMIT
        booked_before = len(citizens.booked)
        while len(citizens.booked) < booked_before + 5:
            assert loop.time() < end, "no bookings after the restart:\n" + stack.output()
            await citizens.book()
            await asyncio.sleep(0.1)
        # Citizens who booked while it was down were told to come back later.
        assert citizens.refused.get(503, 0) > 0, citizens.refused
        again = await stack.wait_line(r"Postgres running again on port (\d+)", 5, mark)
        assert int(again.group(1)) == ports["postgres"]
        await stack.wait_line(r"Postgres exited \(killed by SIGKILL\); restarting", 1, mark)
        assert stack.ports() == ports
        # Every booking confirmed to a citizen is there, with its messages.
        sent_for = await confirmations(stack.dsn, citizens.booked)
        assert len(sent_for) == len(citizens.booked)

        # Redis, then the worker, killed outright: both back, Redis on its port.
        mark = len(stack.lines)
        os.kill(stack.server_pid("redis"), signal.SIGKILL)
        again = await stack.wait_line(r"Redis running again on port (\d+)", RECOVERY_LIMIT, mark)
        assert int(again.group(1)) == ports["redis"]
        mark = len(stack.lines)
        os.kill(stack.app_pid("worker"), signal.SIGKILL)
        await stack.wait_line(r"worker exited \(killed by SIGKILL\); restarting", 10, mark)
        await stack.wait_line(r"worker running again", RECOVERY_LIMIT, mark)
        for _ in range(5):
            await citizens.book()
        await wait_ready(stack, session, RECOVERY_LIMIT)

        # Nothing lost: every confirmation reaches the provider, once what
        # the killed worker held is given back (at once, not in two minutes).
        conn = await asyncpg.connect(stack.dsn)
        try:
            await presume_lost(conn)
        finally:
            await conn.close()
        end = loop.time() + RECOVERY_LIMIT
        while set((await confirmations(stack.dsn, citizens.booked)).values()) != {"sent"}:
            assert loop.time() < end, "confirmations not all sent:\n" + stack.output()
            await asyncio.sleep(0.5)
        sent_for = await confirmations(stack.dsn, citizens.booked)
        assert set(sent_for) <= set(fake.per_outbox_id())
        assert len(citizens.booked) >= 15

    # Ctrl-C: everything stops, in order, and nothing is left running.
    family = psutil.Process(stack.process.pid).children(recursive=True)
    servers = [psutil.Process(stack.server_pid(name)) for name in ("postgres", "redis")]
    os.killpg(stack.process.pid, signal.SIGINT)
    code = await asyncio.to_thread(stack.process.wait, 120)
    assert code == 0, stack.output()
    await stack.wait_line(r"Mawid \(dev\) stopped\.", 5)
    _, alive = psutil.wait_procs([*family, *servers], timeout=10)
    assert alive == [], alive
    print(f"bookings: {len(citizens.booked)}, refused while Postgres was down: {citizens.refused}")
