"""A slot-scalping bot against the `make run` stack, with the limits on.

The stack: embedded Postgres and Redis, the demo offices, `mawid serve` (with
TRUSTED_PROXIES=127.0.0.1, as behind a reverse proxy on the same host) and
`mawid worker` in dev mode (messages go to the dev sink: nothing leaves the
machine, and the outbox records what would have been sent).

Two runs of --seconds each against one service (Paris civil status, the
issue's example), each with 50 invented identities (names, French mobiles,
e-mail addresses and document numbers that nobody holds):
  one address     every identity from the bot's own address;
  50 addresses    identity i behind the proxy as 198.51.100.i (X-Forwarded-For).
The bot polls availability, books every free time it sees, and tries to
confirm each hold by guessing codes. It never receives a code: the phones and
addresses are invented. After each run it stops and waits the hold time.

Prints per run: requests, bookings accepted (held or confirmed), seats
confirmed, SMS sent, 429s and other refusals, seats held when the run
ended, and seats still held (and `taken` consistency) one hold time later.

    .venv/bin/python bench/abuse.py --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
from _stack import wait_http

from service import devstack
from service.db import migrate
from service.seed import seed_demo

OFFICE, SERVICE = "consulate-paris", "civil-status"
IDENTITIES = 50
FIRST = ["Amina", "Youssef", "Salma", "Karim", "Nadia", "Omar", "Imane", "Hamza", "Sara", "Reda"]
LAST = ["Alaoui", "Bennani", "Tazi", "Idrissi", "Fassi", "Berrada", "Chraibi", "Kettani"]


@dataclass
class Identity:
    n: int
    name: str
    phone: str
    email: str
    address: str | None  # X-Forwarded-For, or None for the bot's own


@dataclass
class Tally:
    label: str
    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    accepted: int = 0
    guesses: int = 0
    confirmed_by_guess: int = 0

    def count(self, what: str) -> None:
        self.statuses[what] += 1


def identities(behind_proxy: bool, rng: random.Random) -> list[Identity]:
    people = []
    for n in range(IDENTITIES):
        people.append(
            Identity(
                n=n,
                name=f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                # Invented numbers in a valid French mobile range.
                phone=f"+3361{rng.randrange(10**7):07d}",
                email=f"bot{n}.{rng.randrange(10**6)}@example.net",
                address=f"198.51.100.{n + 1}" if behind_proxy else None,
            )
        )
    return people


async def free_slots(
    session: aiohttp.ClientSession, url: str, who: Identity, t: Tally
) -> list[int]:
    today = datetime.now(UTC).date()
    t.requests += 1
    async with session.get(
        f"{url}/api/v1/offices/{OFFICE}/availability",
        params={
            "service": SERVICE,
            "from": today.isoformat(),
            "to": (today + timedelta(days=30)).isoformat(),
        },
        headers=headers(who),
    ) as resp:
        t.count(f"availability {resp.status}")
        if resp.status != 200:
            return []
        return [s["id"] for s in (await resp.json())["slots"]]


def headers(who: Identity) -> dict[str, str]:
    return {"X-Forwarded-For": who.address} if who.address else {}


async def bot(
    session: aiohttp.ClientSession,
    url: str,
    who: Identity,
    until: float,
    t: Tally,
    rng: random.Random,
) -> None:
    booked = 0
    while time.monotonic() < until:
        slots = await free_slots(session, url, who, t)
        if not slots:
            await asyncio.sleep(0.5)
            continue
        t.requests += 1
        body = {
            "slot_id": rng.choice(slots),
            "service": SERVICE,
            "name": who.name,
            "phone": who.phone,
            "email": who.email,
            "language": "fr",
            "document_number": f"BOT{who.n:03d}X{booked:04d}",
        }
        async with session.post(f"{url}/api/v1/bookings", json=body, headers=headers(who)) as resp:
            t.count(f"book {resp.status}")
            answer = await resp.json()
        if resp.status == 429:
            # A polite bot would wait Retry-After; this one keeps trying.
            await asyncio.sleep(0.2)
            continue
        if resp.status != 201:
            continue
        booked += 1
        t.accepted += 1
        auth = {"Authorization": f"Bearer {answer['manage_token']}", **headers(who)}
        # No code ever arrives: guess until refused.
        for _ in range(6):
            t.requests += 1
            t.guesses += 1
            guess = {"code": f"{rng.randrange(10**6):06d}"}
            verify = f"{url}/api/v1/bookings/{answer['reference']}/verify"
            async with session.post(verify, json=guess, headers=auth) as resp:
                t.count(f"verify {resp.status}")
                if resp.status == 200:
                    t.confirmed_by_guess += 1
                if resp.status != 422:
                    break


async def snapshot(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            """SELECT
                 count(*) FILTER (WHERE b.status = 'held') AS held,
                 count(*) FILTER (WHERE b.status = 'confirmed') AS confirmed,
                 count(*) FILTER (WHERE b.status = 'expired') AS expired
               FROM bookings b WHERE b.office_id = $1 AND b.service_id = $2""",
            OFFICE,
            SERVICE,
        )
        sms = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE channel = 'sms' AND status IN ('sent', 'delivered')"
        )
        mismatched = await conn.fetchval(
            """SELECT count(*) FROM slots s WHERE s.taken <> (
                   SELECT count(*) FROM bookings b WHERE b.slot_id = s.id
                   AND b.status IN ('held', 'confirmed', 'checked_in'))"""
        )
        assert row is not None
        return {**dict(row), "sms": sms, "mismatched": mismatched}
    finally:
        await conn.close()


async def reset(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            """TRUNCATE audit_log, manage_tokens, contact_checks, verified_contacts, form_keys,
                        outbox, bookings RESTART IDENTITY CASCADE"""
        )
        await conn.execute("UPDATE slots SET taken = 0")
        await conn.execute("UPDATE counter_cells SET taken = 0")
    finally:
        await conn.close()


async def run(url: str, dsn: str, label: str, behind_proxy: bool, seconds: float, hold: int) -> int:
    await reset(dsn)
    rng = random.Random(10)
    tally = Tally(label)
    until = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=IDENTITIES)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(
            *(bot(session, url, who, until, tally, rng) for who in identities(behind_proxy, rng))
        )
    await asyncio.sleep(3)  # the worker's last sends
    at_end = await snapshot(dsn)
    # One hold time (and a cron period) later, with nobody reading seats.
    await asyncio.sleep(hold * 60 + 12)
    later = await snapshot(dsn)
    too_many = sum(n for k, n in tally.statuses.items() if k.endswith(" 429"))
    print(f"\n== {label}: {IDENTITIES} invented identities, {seconds:.0f} s")
    print(f"requests                      {tally.requests}")
    print(f"bookings accepted (201)       {tally.accepted}")
    print(f"seats confirmed               {at_end['confirmed']}  (guesses tried: {tally.guesses})")
    print(f"seats held when the run ended {at_end['held']}")
    print(f"SMS sent (codes)              {at_end['sms']}")
    print(f"429 answers                   {too_many}")
    others = {
        k: n for k, n in sorted(tally.statuses.items()) if not k.endswith((" 429", " 200", " 201"))
    }
    print(f"other answers                 {others}")
    print(
        f"{hold} min + 12 s later: held {later['held']}, expired {later['expired']}, "
        f"slots whose taken is off: {later['mismatched']}"
    )
    ok = at_end["confirmed"] == 0 and later["held"] == 0 and later["mismatched"] == 0
    return 0 if ok else 1


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument(
        "--hold-minutes", type=int, default=2,
        help="the service's hold time for this run (the product's default is 10)",
    )  # fmt: skip
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mawid-abuse-"))
    postgres = devstack.start_postgres(work / "pg", durable=False)
    redis = devstack.start_redis(work / "redis", persistent=False)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        dsn = postgres.dsn
        await migrate(dsn)
        conn = await asyncpg.connect(dsn)
        try:
            await seed_demo(conn, datetime.now(UTC), 84)
            await conn.execute(
                "UPDATE services SET hold_minutes = $3 WHERE office_id = $1 AND id = $2",
                OFFICE,
                SERVICE,
                args.hold_minutes,
            )
            seats = await conn.fetchval(
                """SELECT sum(capacity) FROM slots WHERE office_id = $1 AND service_id = $2
                   AND starts_at > now() + interval '2 hours'
                   AND starts_at < now() + interval '30 days'""",
                OFFICE,
                SERVICE,
            )
        finally:
            await conn.close()
        port = devstack.free_port()
        url = f"http://127.0.0.1:{port}"
        env = dict(
            os.environ,
            MAWID_ENV="dev",
            DATABASE_URL=dsn,
            REDIS_URL=redis.url,
            PORT=str(port),
            SECRET_KEY="bench-secret",
            LOG_LEVEL="WARNING",
            TRUSTED_PROXIES="127.0.0.1",
            SMS_PER_SECOND="100",
        )
        for command in ("serve", "worker"):
            # Popen returns at once; the server is awaited through /healthz.
            command_line = [sys.executable, "-m", "service.cli", command]
            processes.append(subprocess.Popen(command_line, env=env))  # noqa: ASYNC220
        await wait_http(url)
        print(
            f"{OFFICE} / {SERVICE}: {seats} seats in the next 30 days; hold {args.hold_minutes} min"
        )
        failed = await run(url, dsn, "one address", False, args.seconds, args.hold_minutes)
        failed |= await run(
            url, dsn, "50 addresses behind the proxy", True, args.seconds, args.hold_minutes
        )
        return failed
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)
        redis.stop()
        postgres.stop()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
