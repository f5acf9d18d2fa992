"""The `mawid` command: serve, worker, migrate, seed, dev, staff add, draw verify."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import uvloop
from aiohttp import web

from service import logs
from service.config import ConfigError, Settings
from service.db import MigrationChanged, create_pool, migrate
from service.domain.errors import Refusal
from service.domain.staff import Role
from service.office.accounts import DEMO_STAFF, NewAccount, add_staff

log = logging.getLogger("mawid")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as problem:
        # One line naming the variable, no traceback: this is an operator's typo.
        print(f"mawid: {problem}", file=sys.stderr)
        raise SystemExit(2) from None


def _require_urls(settings: Settings) -> None:
    for name, value in (("DATABASE_URL", settings.database_url), ("REDIS_URL", settings.redis_url)):
        if not value:
            print(f"mawid: {name} is not set (use `mawid dev` for a local stack)", file=sys.stderr)
            raise SystemExit(2)


def _migrate(dsn: str) -> list[str]:
    try:
        return asyncio.run(migrate(dsn))
    except MigrationChanged as problem:
        print(f"mawid: {problem}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(settings: Settings) -> None:
    _require_urls(settings)
    if settings.web_processes <= 1:
        _serve(settings, reuse_port=False)
        return
    # Several processes on one port (SO_REUSEPORT: the kernel spreads the
    # connections), each with its own pool and read cache; this one only
    # waits for them and passes a stop on.
    import multiprocessing

    context = multiprocessing.get_context("fork")
    children = [
        context.Process(target=_serve, args=(settings, True), daemon=False)
        for _ in range(settings.web_processes)
    ]
    for child in children:
        child.start()

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            if child.pid is not None:
                os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        child.join()


def _serve(settings: Settings, reuse_port: bool) -> None:
    from service.app import create_app
    from service.web.accesslog import runner_options

    app = create_app(settings)
    app.on_startup.append(freeze_startup_objects)
    # uvloop's event loop: the socket reads and writes, the ready queue and
    # the timers of every request run in C (bench/read_path.py measures it).
    web.run_app(
        app,
        loop=uvloop.new_event_loop(),
        host=settings.host,
        port=settings.port,
        print=None,
        reuse_port=reuse_port,
        **runner_options(),
    )


async def freeze_startup_objects(app: web.Application) -> None:
    # Templates, translations, routes and pools live as long as the process:
    # kept out of the collector's full passes, which otherwise walk them all
    # every few seconds under load and stall every request of that moment.
    gc.freeze()


def cmd_worker(settings: Settings) -> None:
    from service.worker.settings import run_worker

    _require_urls(settings)
    run_worker(settings)


def cmd_migrate(settings: Settings) -> None:
    if not settings.database_url:
        print("mawid: DATABASE_URL is not set", file=sys.stderr)
        raise SystemExit(2)
    applied = _migrate(settings.database_url)
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")


async def _seed(settings: Settings, only_if_empty: bool, now: datetime) -> int | None:
    from service.demo_draws import seed_demo_draws
    from service.seed import seed_demo

    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            if only_if_empty and await conn.fetchval("SELECT count(*) FROM offices"):
                return None
            slots = await seed_demo(conn, now, settings.slot_horizon_days)
        await seed_demo_draws(
            pool, now, secret_key=settings.secret_key, offer_hours=settings.draw_offer_hours
        )
        return slots
    finally:
        await pool.close()


def cmd_seed(settings: Settings, demo: bool) -> None:
    if not demo:
        print("mawid seed: only --demo exists for now", file=sys.stderr)
        raise SystemExit(2)
    if not settings.database_url:
        print("mawid: DATABASE_URL is not set", file=sys.stderr)
        raise SystemExit(2)
    slots = asyncio.run(_seed(settings, only_if_empty=False, now=datetime.now(UTC)))
    print(f"demo data loaded: {slots} upcoming slots")


def cmd_dev(settings: Settings) -> None:
    """Everything for a laptop: embedded Postgres and Redis when no URL is set,
    migrations, demo data once, then the web server and the worker as children,
    all supervised: whichever dies is started again (service.devstack.supervise).
    """
    try:
        from service import devstack
        from service.devstack.supervise import AppUnit, ServerUnit, Supervisor
    except ModuleNotFoundError as missing:
        # The embedded servers come with the dev extra only (not in the
        # production image): one line saying so, no traceback.
        print(f"mawid dev: {missing}", file=sys.stderr)
        raise SystemExit(2) from None
    from service.clock import clock_for
    from service.worker.jobs import SEND_TIMEOUT

    print(f"Mawid (dev) will be at {settings.base_url}/  (Ctrl-C stops everything)", flush=True)
    if settings.is_dev:
        print("\n".join(demo_staff_lines(settings.base_url)), flush=True)
    env = dict(os.environ)
    env.setdefault("MAWID_ENV", "dev")
    servers: list[ServerUnit] = []
    supervisor: Supervisor | None = None
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        if stopping:
            print("  still stopping", flush=True)
        stopping = True

    def say(line: str) -> None:
        print(f"mawid dev: {line}", flush=True)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        if not settings.database_url or not settings.redis_url:
            settings.dev_dir.mkdir(parents=True, exist_ok=True)
        if not settings.database_url:
            # Fixed ports kept in the dev dir, so URLs stay the same across runs.
            postgres = devstack.start_dev_postgres(settings.dev_dir)
            servers.append(ServerUnit(postgres))
            env["DATABASE_URL"] = postgres.dev_dsn
        if not settings.redis_url:
            redis = devstack.start_dev_redis(settings.dev_dir)
            servers.append(ServerUnit(redis))
            env["REDIS_URL"] = redis.url
        ready = settings.with_(database_url=env["DATABASE_URL"], redis_url=env["REDIS_URL"])
        applied = _migrate(ready.database_url)
        if applied:
            print(f"  migrations applied: {', '.join(applied)}", flush=True)
        seeded = asyncio.run(_seed(ready, only_if_empty=True, now=clock_for(ready)()))
        if seeded is not None:
            print(f"  demo data loaded ({seeded} upcoming slots)", flush=True)
        mawid = [sys.executable, "-m", "service.cli"]
        apps = [
            AppUnit("web server", [*mawid, "serve"], env),
            # A worker asked to stop finishes its sends in flight first; each
            # is bounded by the job timeout.
            AppUnit("worker", [*mawid, "worker"], env, stop_timeout=SEND_TIMEOUT + 10),
        ]
        supervisor = Supervisor(servers, apps, say)
        supervisor.start_apps()
        print(f"  web and worker running: open {settings.base_url}/", flush=True)
        if settings.metrics_port:
            print(
                f"  metrics: {settings.base_url}/metrics (web), "
                f"http://{settings.metrics_host}:{settings.metrics_port}/metrics (worker)",
                flush=True,
            )
        supervisor.watch(lambda: stopping)
    finally:
        if supervisor is not None:
            supervisor.stop()
        else:
            for server in reversed(servers):
                server.wait_stopped()
        print("Mawid (dev) stopped.", flush=True)


# Staff accounts and the dev banner ------------------------------------------------------


def demo_staff_lines(base_url: str) -> list[str]:
    """What `mawid dev` prints first: where to sign in and as whom (dev only)."""
    lines = [f"  staff sign-in: {base_url}/office/login  (demo accounts, dev only)"]
    for account in DEMO_STAFF:
        where = ", ".join(account.offices) or "every office"
        lines.append(
            f"    {account.role.value:<8} {account.email:<22} {account.password}  ({where})"
        )
    return lines


async def _staff_add(
    database_url: str, email: str, role: Role, offices: list[str], now: datetime
) -> NewAccount:
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            return await add_staff(conn, email, role, offices, now)
    finally:
        await pool.close()


def cmd_staff_add(settings: Settings, email: str, role: str, offices: list[str]) -> None:
    """`mawid staff add EMAIL --office ID --role ROLE`: the password is printed
    once, to the operator's terminal, and stored only as its argon2id hash."""
    if not settings.database_url:
        print("mawid: DATABASE_URL is not set", file=sys.stderr)
        raise SystemExit(2)
    try:
        created = asyncio.run(
            _staff_add(settings.database_url, email, Role(role), offices, datetime.now(UTC))
        )
    except Refusal as refused:
        print(f"mawid staff add: {refused}", file=sys.stderr)
        raise SystemExit(2) from None
    where = ", ".join(sorted(created.member.offices)) or "every office"
    print(f"created {created.member.role.value} {created.member.email} ({where})")
    print(f"password (shown once): {created.password}")


async def _booking(settings: Settings, command: str, reference: str, by: str) -> str:
    from service import personal_data
    from service.clock import clock_for
    from service.store.audit import Actor

    pool = await create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        actor = Actor("system", f"cli:{by}"[:100] if by else "cli")
        if command == "export":
            record = await personal_data.export(pool, reference, actor)
            return json.dumps(record, indent=2, ensure_ascii=False, default=str)
        await personal_data.erase(
            pool, reference, actor, clock_for(settings)(), secret_key=settings.secret_key
        )
        return f"booking {reference.upper()} anonymised"
    finally:
        await pool.close()


def cmd_booking(settings: Settings, command: str, reference: str, by: str) -> None:
    """`mawid booking export|erase REFERENCE`: the right of access and the
    right to erasure, for an operator answering a citizen's request."""
    if not settings.database_url:
        print("mawid: DATABASE_URL is not set", file=sys.stderr)
        raise SystemExit(2)
    try:
        print(asyncio.run(_booking(settings, command, reference, by)))
    except Refusal as refused:
        print(f"mawid booking {command}: {refused}", file=sys.stderr)
        raise SystemExit(1) from None


async def fetch_and_verify(base_url: str, draw_id: int) -> tuple[int, list[str]]:
    """Read a draw's public record from a running instance and replay it:
    (its number of entries, the problems found; none means it replays)."""
    import aiohttp

    from service.domain.draw import verify

    url = f"{base_url.rstrip('/')}/api/v1/draws/{draw_id}"
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        if resp.status != 200:
            return 0, [f"GET {url} answered {resp.status}"]
        record = await resp.json()
    entries = record.get("entries")
    return (len(entries) if isinstance(entries, list) else 0), verify(record)


def cmd_draw_verify(settings: Settings, draw_id: int, url: str | None) -> None:
    entries, problems = asyncio.run(fetch_and_verify(url or settings.base_url, draw_id))
    for problem in problems:
        print(f"mawid draw verify: {problem}", file=sys.stderr)
    if problems:
        raise SystemExit(1)
    print(f"draw {draw_id} replays: {entries} entries, same seed hash, same ranking")


def build_parser() -> argparse.ArgumentParser:
    """The commands and their arguments (docker-compose.yml's are checked
    against it)."""
    parser = argparse.ArgumentParser(prog="mawid", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the web server")
    sub.add_parser("worker", help="run the arq worker (outbox, reminders, slots)")
    sub.add_parser("migrate", help="apply pending SQL migrations")
    seed = sub.add_parser("seed", help="load data")
    seed.add_argument("--demo", action="store_true", help="the demo offices and services")
    sub.add_parser("dev", help="embedded Postgres and Redis, demo data, web and worker")
    staff_cmd = sub.add_parser("staff", help="staff accounts").add_subparsers(
        dest="staff_command", required=True
    )
    staff_add = staff_cmd.add_parser("add", help="create an account; prints its password once")
    staff_add.add_argument("email")
    staff_add.add_argument("--role", required=True, choices=["admin", "manager", "agent"])
    staff_add.add_argument("--office", action="append", default=[], help="repeat for several")
    booking_cmd = sub.add_parser(
        "booking", help="one booking's personal data"
    ).add_subparsers(dest="booking_command", required=True)
    export = booking_cmd.add_parser("export", help="print everything stored about it, as JSON")
    erase = booking_cmd.add_parser("erase", help="anonymise it now (recorded in its audit log)")
    for command in (export, erase):
        command.add_argument("reference")
        command.add_argument(
            "--by", default="", help="who asked, as the audit log should name them (an id, no name)"
        )
    draw_cmd = sub.add_parser("draw", help="draws").add_subparsers(
        dest="draw_command", required=True
    )
    draw_verify = draw_cmd.add_parser(
        "verify", help="replay a published draw from a running instance's public record"
    )
    draw_verify.add_argument("id", type=int)
    draw_verify.add_argument("--url", help="the instance's address (default: BASE_URL)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = _settings()
    logs.configure(settings.log_level, settings.log_format)
    if args.command == "serve":
        cmd_serve(settings)
    elif args.command == "worker":
        cmd_worker(settings)
    elif args.command == "migrate":
        cmd_migrate(settings)
    elif args.command == "seed":
        cmd_seed(settings, args.demo)
    elif args.command == "dev":
        cmd_dev(settings)
    elif args.command == "staff":
        cmd_staff_add(settings, args.email, args.role, args.office)
    elif args.command == "booking":
        cmd_booking(settings, args.booking_command, args.reference, args.by)
    elif args.command == "draw":
        cmd_draw_verify(settings, args.id, args.url)


if __name__ == "__main__":
    main()
