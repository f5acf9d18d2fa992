"""Faults under load: a `mawid dev` stack (embedded Postgres and Redis, the
web server and the worker, SMS to the fake Twilio server with a slow reply so
that sends are always in flight) takes bookings through the HTTP API for a
few minutes while, in turn, Postgres is killed (SIGKILL), the worker is
killed (SIGKILL), Redis is killed (SIGKILL), and the whole stack is stopped
with two Ctrl-C (SIGINT to its process group, twice, then `mawid dev`'s own
SIGTERM to the worker) and started again on its backlog.

Prints what must be 0 as such: bookings lost, confirmation SMS lost,
duplicate SMS other than those a worker killed with SIGKILL may cause (at
most one per send in flight at the kill, the documented at-least-once
bound), each duplicate put down to the fault before it; answers other than
503 while Postgres was down (0 = no answer, while the web server restarts
with the stack after a Ctrl-C, is expected); and the most SMS the provider
received in any one second against SMS_PER_SECOND (the ratio must be <= 1).
The fake provider runs on an event loop of its own, in a thread, so that the
load's own client does not delay the times it records arrivals at.

    .venv/bin/python bench/faults.py [--minutes 3] [--rate 20] [--every 25]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import os
import secrets
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil
from _stack import DevStack, dev_env, wait_ready

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.devstack import free_port  # noqa: E402
from tests.faketwilio import FakeTwilio, Reply  # noqa: E402
from tests.fixtures.notify import presume_lost  # noqa: E402

FAULTS = ("postgres", "worker", "redis", "ctrl-c")
# A duplicate is put down to the last fault before its first send's answer
# could be recorded: its arrival, the provider's delay and this much more.
BLAME_SLACK = 0.5


class ProviderThread:
    """The fake Twilio server on an event loop of its own, in a thread."""

    def __init__(self, fake: FakeTwilio) -> None:
        self.fake = fake
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.start(), self._loop).result(30)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()


def blame(events: list[tuple[float, str]], at: float) -> str:
    """The last fault at or before `at` (monotonic seconds)."""
    before = [what for when, what in events if when <= at]
    return before[-1] if before else "no fault"


def worst_window(times: list[float]) -> tuple[int, float]:
    """The most arrivals within one second, and when that second began."""
    times = sorted(times)
    best, start = 0, 0.0
    for i, t in enumerate(times):
        n = bisect.bisect_left(times, t + 1.0) - i
        if n > best:
            best, start = n, t
    return best, start


class Stack(DevStack):
    """`mawid dev`, and where its servers and its worker can be found."""

    def server_pid(self, name: str) -> int:
        record = json.loads((self.dev_dir / name / "mawid-owner.json").read_text())
        return int(record["server"])

    def worker_pid(self) -> int:
        assert self.process is not None
        [pid] = [
            p.pid
            for p in psutil.Process(self.process.pid).children()
            if p.cmdline()[-2:] == ["service.cli", "worker"]
        ]
        return int(pid)

    @property
    def dsn(self) -> str:
        ports = json.loads((self.dev_dir / "ports.json").read_text())
        return f"postgresql://postgres@127.0.0.1:{ports['postgres']}/mawid"

    def supervisor_lines(self) -> list[str]:
        text = self.log.read_text(errors="replace")
        return [line for line in text.splitlines() if line.startswith("mawid dev:")]


@dataclass
class Load:
    booked: list[str] = field(default_factory=list)
    full: int = 0
    # Answers while something was down, by status (0: no answer).
    refused: dict[int, int] = field(default_factory=dict)


async def all_slots(session: aiohttp.ClientSession, base: str) -> list[tuple[str, int]]:
    """(service, slot id) of every free slot of the demo offices from
    tomorrow for 60 days."""
    first = datetime.now(UTC).date() + timedelta(days=1)
    last = first + timedelta(days=60)
    found: list[tuple[str, int]] = []
    async with session.get(f"{base}/api/v1/offices") as resp:
        offices = [o["id"] for o in await resp.json()]
    for office in offices:
        async with session.get(f"{base}/api/v1/offices/{office}/services") as resp:
            services = [s["id"] for s in await resp.json()]
        for service in services:
            query = f"service={service}&from={first}&to={last}"
            async with session.get(f"{base}/api/v1/offices/{office}/availability?{query}") as resp:
                if resp.status != 200:
                    continue
                slots = (await resp.json())["slots"]
            found += [(service, s["id"]) for s in slots if s["remaining"] > 0]
    return found


async def book_for(
    session: aiohttp.ClientSession,
    base: str,
    slots: Any,
    numbers: Any,
    load: Load,
    per_second: float,
    until: float,
) -> None:
    """One client: a booking every 1/per_second seconds until `until`."""
    while time.monotonic() < until:
        began = time.monotonic()
        service, slot = next(slots)
        body = {
            "slot_id": slot,
            "service": service,
            "name": "Bench Citizen",
            # A Moroccan mobile: every office sends SMS to Morocco's numbers.
            "phone": f"+2126{next(numbers):08d}",
            "phone_country": "MA",
            "language": "fr",
            "document_number": f"BF{secrets.randbelow(10**8):08d}",
        }
        try:
            async with session.post(f"{base}/api/v1/bookings", json=body) as resp:
                payload = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError):
            status, payload = 0, None
        if status == 201:
            load.booked.append(payload["reference"])
        elif status == 409:
            load.full += 1
        else:
            load.refused[status] = load.refused.get(status, 0) + 1
        await asyncio.sleep(max(0.0, 1 / per_second - (time.monotonic() - began)))


async def confirm_at_once(dsn: str) -> None:
    """Bookings confirmed without the code step, so that each one sends its
    confirmation (the code step is bench/abuse.py's subject)."""
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute("UPDATE services SET verify_contact = false")
    finally:
        await conn.close()


async def in_flight(dsn: str) -> set[int]:
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError):
        return set()
    try:
        return {r["id"] for r in await conn.fetch("SELECT id FROM outbox WHERE status = 'sending'")}
    finally:
        await conn.close()


async def settle(dsn: str, references: list[str], limit: float) -> dict[str, int]:
    """Let every confirmation SMS of the bookings made go out: rows a killed
    worker held are given back now rather than when their two-minute lease
    runs out (and queued jobs it lost, likewise)."""
    conn = await asyncpg.connect(dsn)
    try:
        await presume_lost(conn)
        began = time.monotonic()
        while True:
            rows = await conn.fetch(
                """SELECT o.status, count(*) AS n FROM outbox o
                   JOIN bookings b ON b.id = o.booking_id
                   WHERE b.reference = ANY($1::text[]) AND o.kind = 'confirmation'
                   GROUP BY o.status""",
                references,
            )
            statuses = {r["status"]: r["n"] for r in rows}
            if set(statuses) <= {"sent"} or time.monotonic() - began > limit:
                return statuses
            await asyncio.sleep(1)
    finally:
        await conn.close()


async def found(dsn: str, references: list[str]) -> tuple[int, set[int]]:
    """How many of the bookings exist, and their confirmation SMS ids."""
    conn = await asyncpg.connect(dsn)
    try:
        bookings = await conn.fetchval(
            "SELECT count(*) FROM bookings WHERE reference = ANY($1::text[])", references
        )
        ids = await conn.fetch(
            """SELECT o.id FROM outbox o JOIN bookings b ON b.id = o.booking_id
               WHERE b.reference = ANY($1::text[]) AND o.kind = 'confirmation'
                 AND o.channel = 'sms'""",
            references,
        )
        return int(bookings), {r["id"] for r in ids}
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=20.0, help="SMS_PER_SECOND")
    parser.add_argument("--every", type=float, default=25.0, help="seconds between faults")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--bookings-per-second", type=float, default=12.0)
    parser.add_argument("--provider-delay", type=float, default=0.3)
    args = parser.parse_args()

    fake = FakeTwilio(default=Reply(delay=args.provider_delay))
    provider = ProviderThread(fake)
    provider.start()
    with tempfile.TemporaryDirectory(prefix="mawid-faults-") as tmp:
        port = free_port()
        env = dev_env(
            Path(tmp) / "dev",
            port,
            LOG_LEVEL="ERROR",
            TWILIO_ACCOUNT_SID=fake.account_sid,
            TWILIO_AUTH_TOKEN=fake.auth_token,
            TWILIO_FROM="+15005550006",
            TWILIO_BASE_URL=fake.url,
            SMS_PER_SECOND=f"{args.rate:g}",
            # One client address books for everyone here: the per-address
            # limits are bench/abuse.py's subject, not this one's.
            LIMIT_BOOK="off",
            LIMIT_AVAILABILITY="off",
        )
        stack = Stack(Path(tmp) / "dev", port, env, Path(tmp) / "dev.log")
        timeout = aiohttp.ClientTimeout(total=20)
        load = Load()
        killed_in_flight: set[int] = set()
        # (monotonic time, what): the faults, for the report and for blame.
        events: list[tuple[float, str]] = []
        stack.start()
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                await wait_ready(session, stack)
                await confirm_at_once(stack.dsn)
                slots = itertools.cycle(await all_slots(session, stack.base))
                numbers = itertools.count(10_000_000)
                began = time.monotonic()
                until = began + args.minutes * 60
                clients = [
                    asyncio.create_task(
                        book_for(
                            session,
                            stack.base,
                            slots,
                            numbers,
                            load,
                            args.bookings_per_second / args.clients,
                            until,
                        )
                    )
                    for _ in range(args.clients)
                ]
                for fault in itertools.cycle(FAULTS):
                    await asyncio.sleep(args.every)
                    if time.monotonic() + 10 > until:
                        break
                    at = time.monotonic()
                    if fault == "ctrl-c":
                        code = await asyncio.to_thread(stack.ctrl_c)
                        stack.start()
                        back = await wait_ready(session, stack)
                        events.append((at, f"two Ctrl-C (exit {code}), up in {back:.0f} s"))
                        continue
                    if fault == "worker":
                        killed_in_flight |= await in_flight(stack.dsn)
                        pid = stack.worker_pid()
                    else:
                        pid = stack.server_pid(fault)
                    os.kill(pid, signal.SIGKILL)
                    events.append((at, f"SIGKILL {fault}"))
                await asyncio.gather(*clients)
                await wait_ready(session, stack)
                await confirm_at_once(stack.dsn)
            statuses = await settle(stack.dsn, load.booked, limit=300)
            made, sms_ids = await found(stack.dsn, load.booked)
        finally:
            stack.stop()
            provider.stop()
        restarts = [line for line in stack.supervisor_lines() if "running again" in line]

    counts = fake.per_outbox_id()
    first_sent: dict[int | None, float] = {}
    for sent in fake.sent:
        first_sent.setdefault(sent.outbox_id, sent.at)
    duplicates = {i: n - 1 for i, n in counts.items() if n > 1}
    by_fault: dict[str, int] = {}
    for i, n in duplicates.items():
        fault = blame(events, first_sent[i] + args.provider_delay + BLAME_SLACK)
        by_fault[fault] = by_fault.get(fault, 0) + n
    after_kill = sum(n for i, n in duplicates.items() if i in killed_in_flight)
    other = sum(n for i, n in duplicates.items() if i not in killed_in_flight)
    worst, worst_at = worst_window([s.at for s in fake.sent])
    not_503 = {status: n for status, n in load.refused.items() if status not in (0, 503)}
    print(f"run                 {args.minutes:g} min, a fault every {args.every:g} s:")
    for when, what in events:
        print(f"                    {when - began:5.0f} s  {what}")
    print(f"supervisor          {len(restarts)} restarts: " + "; ".join(restarts))
    print(
        f"bookings            {len(load.booked)} made, {load.full} slot full; "
        f"lost (must be 0): {len(load.booked) - made}"
    )
    print(
        f"while down          answers by status: {load.refused} (0: no answer); "
        f"other than 503 (must be 0): {sum(not_503.values())}"
    )
    print(
        f"confirmation SMS    {len(sms_ids)}; lost (must be 0): {len(sms_ids - set(counts))} "
        f"(outbox: {statuses})"
    )
    print(
        f"duplicate SMS       after a worker SIGKILL: {after_kill} "
        f"(at most the {len(killed_in_flight)} in flight at the kills); "
        f"otherwise (must be 0): {other}"
    )
    print(f"  by the fault before each   {by_fault or 'none'}")
    print(
        f"worst second        {worst} SMS at {worst_at - began:.0f} s (after "
        f"{blame(events, worst_at)}), rate {args.rate:g}/s: "
        f"ratio (must be <= 1) {worst / args.rate:.2f} (provider delay {args.provider_delay:g} s)"
    )


if __name__ == "__main__":
    asyncio.run(main())
