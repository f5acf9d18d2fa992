"""Booking rush: N concurrent clients race for M seats released at once.

Two paths in one run, against the same embedded Postgres:
  http     clients POST /api/v1/bookings to a `mawid serve` subprocess, each
           on its own keep-alive connection through a minimal HTTP client;
  ceiling  the same booking transaction (service.bookings.book) called
           directly through asyncpg, with no HTTP in between.
Prints attempts per second for both and their ratio, bookings made, seats
overbooked (must be 0), p50/p99 latency, the CPU time per attempt of the load
generator, the server and Postgres, and the server's peak RSS.

    .venv/bin/python bench/booking_rush.py --clients 200 --seats 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as wall
from pathlib import Path

import asyncpg
import psutil
from _stack import wait_http

from service import bookings, devstack
from service.db import create_pool, migrate
from service.domain.calendar import HoursRule
from service.domain.errors import Refusal
from service.domain.models import Office, Service
from service.domain.validation import RawDetails
from service.store import offices as office_store
from service.store import slots as slot_store

OFFICE = Office(
    id="bench-office",
    kind="consulate",
    name={"ar": "مكتب", "fr": "Bureau", "en": "Office"},
    city={"ar": "باريس", "fr": "Paris", "en": "Paris"},
    country="FR",
    timezone="Europe/Paris",
    address="bench",
    reference_prefix="BEN",
    holiday_countries=(),
    # Each client books up to --attempts seats with its own address.
    household_cap=100,
)
SERVICE = Service(
    office_id=OFFICE.id,
    id="bench-service",
    name={"ar": "خدمة", "fr": "Service", "en": "Service"},
    duration_minutes=15,
    document_required=True,
    earliest_hours=0,
    latest_days=365,
    reschedule_cutoff_minutes=120,
    bring={"ar": "", "fr": "", "en": ""},
    # The booking transaction itself, confirmed at once (bench/abuse.py
    # measures the code step and the limits).
    verify_contact=False,
)
SECRET = "bench-secret"


@dataclass
class Run:
    name: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    booked: int = 0
    refused: int = 0
    # CPU seconds spent during the run: this process (the load generator, or
    # the direct path itself), the server, Postgres.
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def attempts(self) -> int:
        return self.booked + self.refused

    @property
    def rate(self) -> float:
        return self.attempts / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


async def release_seats(dsn: str, seats: int, capacity: int) -> list[int]:
    """Wipe bookings and open `seats` seats on fresh slots, all at once."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("TRUNCATE audit_log, bookings RESTART IDENTITY CASCADE")
        await conn.execute("DELETE FROM slots")
        await conn.execute("DELETE FROM counter_cells")
        await office_store.upsert_office(conn, OFFICE)
        await office_store.upsert_service(conn, SERVICE)
        # Every day of the week, all day: enough distinct slots for the seats.
        await office_store.replace_hours(
            conn,
            OFFICE.id,
            [HoursRule(d, wall(0), wall(23, 45), capacity) for d in range(7)],
        )
        now = datetime.now(UTC)
        await slot_store.regenerate_office(conn, OFFICE, now, horizon_days=30)
        rows = await conn.fetch(
            "SELECT id FROM slots WHERE starts_at > now() + interval '1 day' "
            "ORDER BY starts_at LIMIT $1",
            seats // capacity,
        )
        ids = [r["id"] for r in rows]
        await conn.execute("UPDATE slots SET capacity = 0 WHERE NOT (id = ANY($1))", ids)
        return ids
    finally:
        await conn.close()


async def overbooked(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        over = await conn.fetchval(
            """SELECT coalesce(sum(greatest(n - capacity, 0)), 0) FROM (
                   SELECT s.capacity, count(b.id) AS n FROM slots s
                   LEFT JOIN bookings b ON b.slot_id = s.id
                        AND b.status IN ('held', 'confirmed', 'checked_in')
                   GROUP BY s.id) t"""
        )
        active = await conn.fetchval("SELECT count(*) FROM bookings WHERE status = 'confirmed'")
        return int(over), int(active)
    finally:
        await conn.close()


def plan_attempts(clients: int, attempts: int, slot_ids: list[int]) -> list[list[int]]:
    rng = random.Random(7)
    return [[rng.choice(slot_ids) for _ in range(attempts)] for _ in range(clients)]


class Connection:
    """One client's keep-alive connection, speaking just enough HTTP/1.1 to
    post JSON and read the answer: a full client library costs the load
    generator as much CPU per request as the server spends, and on a small
    machine the two share the cores."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        return cls(*await asyncio.open_connection(host, port))

    async def post_json(self, host: str, path: str, body: bytes) -> int:
        self.writer.write(
            b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (path.encode(), host.encode(), len(body), body)
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                await self.reader.readexactly(int(value))
                return status
        raise RuntimeError(f"HTTP {status} without Content-Length")

    def close(self) -> None:
        self.writer.close()


async def run_http(host: str, port: int, plan: list[list[int]]) -> Run:
    run = Run("http")
    gate = asyncio.Event()
    address = f"{host}:{port}"
    connections = [await Connection.open(host, port) for _ in plan]

    async def client(index: int, slot_ids: list[int]) -> None:
        await gate.wait()
        connection = connections[index]
        for n, slot_id in enumerate(slot_ids):
            body = json.dumps(
                {
                    "slot_id": slot_id,
                    "service": SERVICE.id,
                    "name": "Bench Client",
                    "email": f"c{index}@example.com",
                    "language": "fr",
                    "document_number": f"H{index:05d}N{n:04d}",
                }
            ).encode()
            t0 = time.perf_counter()
            status = await connection.post_json(address, "/api/v1/bookings", body)
            run.latencies.append(time.perf_counter() - t0)
            if status == 201:
                run.booked += 1
            elif status == 409:
                run.refused += 1
            else:
                raise RuntimeError(f"unexpected HTTP {status}")

    try:
        tasks = [asyncio.create_task(client(i, s)) for i, s in enumerate(plan)]
        await asyncio.sleep(0.2)
        t0 = time.perf_counter()
        gate.set()
        await asyncio.gather(*tasks)
        run.seconds = time.perf_counter() - t0
    finally:
        for connection in connections:
            connection.close()
    return run


async def run_direct(dsn: str, plan: list[list[int]], pool_size: int) -> Run:
    run = Run("ceiling")
    pool = await create_pool(dsn, min_size=pool_size, max_size=pool_size)
    gate = asyncio.Event()
    now = datetime.now(UTC)

    async def client(index: int, slot_ids: list[int]) -> None:
        await gate.wait()
        for n, slot_id in enumerate(slot_ids):
            t0 = time.perf_counter()
            try:
                await bookings.book(
                    pool,
                    slot_id=slot_id,
                    service_id=SERVICE.id,
                    details=RawDetails(
                        name="Bench Client",
                        email=f"c{index}@example.com",
                        language="fr",
                        document_number=f"D{index:05d}N{n:04d}",
                    ),
                    secret_key=SECRET,
                    now=now,
                )
                run.booked += 1
            except Refusal:
                run.refused += 1
            run.latencies.append(time.perf_counter() - t0)

    try:
        tasks = [asyncio.create_task(client(i, s)) for i, s in enumerate(plan)]
        await asyncio.sleep(0.2)
        t0 = time.perf_counter()
        gate.set()
        await asyncio.gather(*tasks)
        run.seconds = time.perf_counter() - t0
    finally:
        await pool.close()
    return run


def cpu_seconds(process: psutil.Process, *, children: bool = True) -> float:
    """The process's CPU time, with its children's (those that have ended
    too: Postgres backends of a closed pool) unless `children` is False."""
    total = 0.0
    for one in (process, *(process.children(recursive=True) if children else ())):
        try:
            times = one.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
        if children:
            total += times.children_user + times.children_system
    return total


async def measured(parties: dict[str, psutil.Process], running: Awaitable[Run]) -> Run:
    """The run, with the CPU time each party spent on it."""

    # This process started the others: its own time only.
    def spent() -> dict[str, float]:
        return {name: cpu_seconds(p, children=name != "bench") for name, p in parties.items()}

    before = spent()
    run = await running
    after = spent()
    run.cpu = {name: after[name] - before[name] for name in parties}
    return run


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.05)


def report(runs: list[Run], over: dict[str, int], peak_rss: int, seats: int) -> None:
    print(
        f"{'path':8} {'attempts':>8} {'att/s':>9} {'booked':>7} {'overbooked':>10} "
        f"{'p50 ms':>8} {'p99 ms':>8}"
    )
    for run in runs:
        print(
            f"{run.name:8} {run.attempts:8d} {run.rate:9.1f} {run.booked:7d} "
            f"{over[run.name]:10d} {run.pct(0.50):8.1f} {run.pct(0.99):8.1f}"
        )
    # The bench process is the load generator on the http path, the path
    # itself on the ceiling.
    print("CPU ms per attempt:")
    for run in runs:
        spent = (f"{name} {sec * 1000 / run.attempts:.2f}" for name, sec in run.cpu.items())
        print(f"  {run.name:8} {', '.join(spent)}")
    http, ceiling = runs
    print(f"seats released: {seats} per path")
    print(f"ratio http/ceiling (attempts per second): {http.rate / ceiling.rate:.2f}")
    print(f"server peak RSS: {peak_rss / 2**20:.1f} MiB")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seats", type=int, default=300)
    parser.add_argument("--capacity", type=int, default=3, help="seats per slot")
    parser.add_argument("--attempts", type=int, default=5, help="attempts per client")
    parser.add_argument("--pool", type=int, default=20, help="DB pool size, both paths")
    parser.add_argument(
        "--rounds", type=int, default=3, help="pairs of runs; the median ratio is the figure"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mawid-bench-"))
    postgres = devstack.start_postgres(work / "pg", durable=False)
    server: subprocess.Popen[bytes] | None = None
    try:
        dsn = postgres.dsn
        await migrate(dsn)
        port = devstack.free_port()
        url = f"http://127.0.0.1:{port}"
        env = dict(
            os.environ,
            MAWID_ENV="test",
            DATABASE_URL=dsn,
            PORT=str(port),
            REDIS_URL="redis://127.0.0.1:1",
            # One client address books everything here.
            LIMIT_BOOK="off",
            SECRET_KEY=SECRET,
            LOG_LEVEL="WARNING",
            DB_POOL_MIN=str(args.pool),
            DB_POOL_MAX=str(args.pool),
        )
        # Popen returns at once; the server is awaited through /healthz below.
        server = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env)  # noqa: ASYNC220
        await wait_http(url)
        sampler = RssSampler(server.pid)
        sampler.start()

        parties = {
            "bench": psutil.Process(),
            "server": psutil.Process(server.pid),
            "postgres": psutil.Process(postgres.process.pid),
        }
        ratios: list[float] = []
        overbooked_seats = 0
        for _ in range(args.rounds):
            over: dict[str, int] = {}
            runs = []
            for name in ("http", "ceiling"):
                slot_ids = await release_seats(dsn, args.seats, args.capacity)
                plan = plan_attempts(args.clients, args.attempts, slot_ids)
                running = (
                    run_http("127.0.0.1", port, plan)
                    if name == "http"
                    else run_direct(dsn, plan, args.pool)
                )
                runs.append(await measured(parties, running))
                over[name], booked = await overbooked(dsn)
                assert booked == runs[-1].booked
            sampler.done.set()
            report(runs, over, sampler.peak, args.seats)
            ratios.append(runs[0].rate / runs[1].rate)
            overbooked_seats += sum(over.values())
        print(
            f"\nratio per round: {' '.join(f'{r:.2f}' for r in ratios)}; "
            f"median {statistics.median(ratios):.2f}"
        )
        return 0 if overbooked_seats == 0 else 1
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        postgres.stop()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
