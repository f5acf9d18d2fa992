"""Races: mixed writers at once on one office, counting the answers by class.

On consulate-paris, for --seconds: citizens book passport times through the
JSON API (the code read from the dev message sink, /dev/messages.json), then
cancel or move their bookings; agents change bookings' statuses on the office
pages; managers change the opening hours, close and reopen days, change the
civil-status duration and erase bookings (signed in as the demo admin: an
erasure is an admin's); a change that strands bookings is sent again with the
list shown, cancelling or keeping them. Everyone works on the same three
working days (the first with enough free times at least two days after the
first bookable one, as the office's availability gives them) and on the first
six free times of each: every writer's transaction meets the others' locks.

By default it starts a `mawid dev` stack of its own (embedded Postgres and
Redis, the demo data, the web server and the worker, with the per-address
limits off: everyone here comes from one address) in a temporary directory,
and stops it with a Ctrl-C at the end. --url races a running dev stack
instead (it must serve /dev/messages.json; its limits, if on, answer 429s;
the run leaves the office's hours and the civil-status duration changed).

Prints the answers by action and status class (the statuses in brackets),
the slowest answers, then every 5xx answer: there must be none (a deadlock
between two writers is a 500 for one of them). Exits 1 when there was one, 0
otherwise. Requests without an answer within TIMEOUT seconds are listed too
(they should be none, but are slow answers, not failed ones). After either,
the stack's directory is kept and the error lines of its logs printed.

    .venv/bin/python bench/races.py [--seconds 60] [--citizens 12] [--agents 3] [--managers 2]
    .venv/bin/python bench/races.py --url http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import asyncio
import html
import itertools
import json
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from _stack import DevStack, dev_env, wait_ready

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.devstack import free_port  # noqa: E402

OFFICE = "consulate-paris"
SERVICE = "passport"  # what citizens book
CHANGED_SERVICE = "civil-status"  # whose duration managers change
MANAGER = ("manager@mawid.test", "dev-manager-password")
AGENT = ("agent@mawid.test", "dev-agent-password")
ADMIN = ("admin@mawid.test", "dev-admin-password")  # erasing is an admin's
DAYS = 3  # working days raced on
SLOTS_PER_DAY = 6  # the first free times of each, booked and moved to
LEAST_DAYS_AHEAD = 2
HOURS = (
    "mon-fri 09:00-12:30 13:30-16:00 x4",  # the demo's
    "mon-fri 09:00-12:30 13:30-16:00 x1",
    "mon-fri 09:00-12:00 13:30-16:00 x2",
)
STATUSES = ("cancelled", "no_show", "checked_in", "done")
DURATIONS = ("15", "20", "30")
# Seconds a request may take: long, since an office change can hold the
# office for tens of seconds and a 500 after the client gave up is not seen.
TIMEOUT = 120
LIMITS = ("book", "verify", "resend", "reschedule", "cancel", "manage", "availability")
# A log line of an error: the web server's, and Postgres' with its statement.
ERROR_LINE = re.compile(r" (ERROR|CRITICAL) | (ERROR|FATAL|STATEMENT): ")


@dataclass
class Tally:
    """Answers by (action, status); status 0 is a request without an answer."""

    answers: Counter[tuple[str, int]] = field(default_factory=Counter)
    failed: list[tuple[str, int, str]] = field(default_factory=list)
    slowest: dict[str, float] = field(default_factory=dict)

    def add(self, action: str, status: int, text: str, seconds: float) -> None:
        self.answers[action, status] += 1
        self.slowest[action] = max(seconds, self.slowest.get(action, 0.0))
        if status == 0 or status >= 500:
            excerpt = " ".join(text.split())[:200]
            self.failed.append((action, status, excerpt))
            print(f"  {status or 'no answer'} {action}: {excerpt}", flush=True)


@dataclass
class Race:
    """What the writers share: where, until when, the times to book, the
    bookings made and the tally."""

    url: str
    until: float
    days: list[date]
    slots: list[int]
    rng: random.Random
    tally: Tally = field(default_factory=Tally)
    booked: list[str] = field(default_factory=list)
    emails: itertools.count[int] = field(default_factory=itertools.count)


@dataclass
class Staff:
    session: aiohttp.ClientSession
    csrf: str


async def send(
    race: Race, session: aiohttp.ClientSession, action: str, method: str, path: str, **kw: Any
) -> tuple[int, str]:
    """One request, its answer counted under `action`: (status, body)."""
    began = time.monotonic()
    try:
        async with session.request(method, race.url + path, allow_redirects=False, **kw) as resp:
            text = await resp.text()
    except (aiohttp.ClientError, TimeoutError) as error:
        race.tally.add(action, 0, repr(error), time.monotonic() - began)
        return 0, ""
    race.tally.add(action, resp.status, text, time.monotonic() - began)
    return resp.status, text


async def login(race: Race, session: aiohttp.ClientSession, email: str, password: str) -> Staff:
    _, page = await send(race, session, "login-page", "GET", "/office/login")
    token = csrf_of(page)
    form = {"_csrf": token, "email": email, "password": password}
    status, _ = await send(race, session, "login", "POST", "/office/login", data=form)
    if status != 303:
        raise SystemExit(f"{email} could not sign in ({status})")
    # The token goes with the CSRF cookie, which signing in keeps.
    return Staff(session, token)


def csrf_of(page: str) -> str:
    found = re.search(r'name="_csrf" value="([^"]+)"', page)
    return found[1] if found else ""


async def free_times(race: Race, session: aiohttp.ClientSession, first: date, last: date) -> Any:
    query = f"service={SERVICE}&from={first}&to={last}"
    path = f"/api/v1/offices/{OFFICE}/availability?{query}"
    status, text = await send(race, session, "availability", "GET", path)
    return json.loads(text)["slots"] if status == 200 else []


def by_day(slots: Any) -> dict[date, list[int]]:
    """The office's own free times (not a mobile day's) by local day."""
    days: dict[date, list[int]] = defaultdict(list)
    for slot in slots:
        if slot["mobile_day"] is None:
            days[date.fromisoformat(slot["start"][:10])].append(slot["id"])
    return days


async def choose_days(race: Race, session: aiohttp.ClientSession) -> None:
    """The first DAYS days with SLOTS_PER_DAY free times or more, at least
    LEAST_DAYS_AHEAD days after the first day the office offers."""
    # The machine's date only bounds the question: the office answers with
    # its own bookable days.
    first = date.today()
    days = by_day(await free_times(race, session, first, first + timedelta(30)))
    if not days:
        raise SystemExit(f"{OFFICE} offers no {SERVICE} times in the next 30 days")
    earliest = min(days) + timedelta(LEAST_DAYS_AHEAD)
    chosen = [d for d in sorted(days) if d >= earliest and len(days[d]) >= SLOTS_PER_DAY]
    race.days = chosen[:DAYS]
    if len(race.days) < DAYS:
        raise SystemExit(f"{OFFICE}: fewer than {DAYS} days with {SLOTS_PER_DAY} free times")
    race.slots = [s for d in race.days for s in days[d][:SLOTS_PER_DAY]]


async def refresh_times(race: Race, session: aiohttp.ClientSession) -> None:
    """The raced days' first free times again, every few seconds."""
    await asyncio.sleep(3)
    days = by_day(await free_times(race, session, race.days[0], race.days[-1]))
    fresh = [s for d in race.days for s in days.get(d, [])[:SLOTS_PER_DAY]]
    if fresh:  # all three days closed at once: keep the old ones
        race.slots = fresh


async def code_for(race: Race, session: aiohttp.ClientSession, email: str) -> str | None:
    """The newest code the dev sink "sent" to `email`."""
    for _ in range(20):
        status, text = await send(race, session, "messages", "GET", "/dev/messages.json")
        for message in json.loads(text) if status == 200 else []:
            if message["to"] == email and message.get("body"):
                found = re.search(r"\b(\d{6})\b", message["body"])
                if found:
                    return found[1]
        await asyncio.sleep(0.3)
    return None


async def citizen(race: Race, session: aiohttp.ClientSession) -> None:
    """Book, confirm with the code (a wrong one at times), then cancel or move."""
    rng = race.rng
    email = f"race{next(race.emails)}-{rng.randrange(10**9)}@example.org"
    body = {
        "slot_id": rng.choice(race.slots),
        "service": SERVICE,
        "name": "Race Test",
        "email": email,
        "language": "fr",
        "document_number": f"AB{rng.randrange(10**7):07d}",
    }
    status, text = await send(race, session, "book", "POST", "/api/v1/bookings", json=body)
    if status != 201:
        return
    booking = json.loads(text)
    reference = booking["reference"]
    path = f"/api/v1/bookings/{reference}"
    auth = {"Authorization": f"Bearer {booking['manage_token']}"}
    if booking.get("status") == "held":
        if rng.random() < 0.3:
            await send(race, session, "resend", "POST", f"{path}/resend", headers=auth)
        code = await code_for(race, session, email)
        if code is None or rng.random() < 0.15:
            code = "000000"
        verify = {"code": code}
        await send(race, session, "verify", "POST", f"{path}/verify", json=verify, headers=auth)
    race.booked.append(reference)
    await asyncio.sleep(rng.random())
    then = rng.random()
    if then < 0.35:
        await send(race, session, "cancel", "POST", f"{path}/cancel", headers=auth)
    elif then < 0.8:
        move = {"slot_id": rng.choice(race.slots)}
        await send(
            race, session, "reschedule", "POST", f"{path}/reschedule", json=move, headers=auth
        )


async def agent(race: Race, staff: Staff) -> None:
    """A status change on one of the bookings made."""
    if not race.booked:
        await asyncio.sleep(0.2)
        return
    reference = race.rng.choice(race.booked)
    form = {"_csrf": staff.csrf, "status": race.rng.choice(STATUSES), "reason": "Race test"}
    path = f"/office/{OFFICE}/bookings/{reference}/status"
    await send(race, staff.session, "status", "POST", path, data=form)


async def change(race: Race, staff: Staff, action: str, path: str, form: dict[str, str]) -> None:
    """An office change; while it strands bookings (409, the list shown), sent
    again with that list, cancelling them (mostly) or keeping them."""
    form = {"_csrf": staff.csrf, **form}
    status, page = await send(race, staff.session, action, "POST", path, data=form)
    for _ in range(3):
        seen = re.search(r'name="seen" value="([^"]*)"', page)
        if status != 409 or seen is None:
            return
        decision = race.rng.choice(("cancel", "cancel", "keep"))
        form.update(decision=decision, reason="Race test", seen=seen[1])
        status, page = await send(race, staff.session, f"{action}-decided", "POST", path, data=form)


def form_fields(page: str, action: str) -> dict[str, str]:
    """The fields of the form posting to `action`, as the page fills them."""
    start = page.find(f'action="{action}"')
    end = page.find("</form>", start)
    if start < 0 or end < 0:
        return {}
    form = page[start:end]
    fields: dict[str, str] = {}
    for tag in re.findall(r"<input[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        if name is None:
            continue
        if 'type="checkbox"' in tag:
            if " checked" in tag:
                fields[name[1]] = "on"
        else:
            value = re.search(r'value="([^"]*)"', tag)
            fields[name[1]] = html.unescape(value[1]) if value else ""
    for name, text in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', form, re.S):
        fields[name] = html.unescape(text)
    fields.pop("_csrf", None)
    return fields


async def manager(race: Race, staff: Staff, admin: Staff) -> None:
    """One of: the civil-status duration, an erasure (signed in as an admin),
    the opening hours, a raced day closed or reopened."""
    rng, then = race.rng, race.rng.random()
    if then < 0.15:
        path = f"/office/{OFFICE}/services/{CHANGED_SERVICE}"
        status, page = await send(race, staff.session, "service-page", "GET", path)
        fields = form_fields(page, path) if status == 200 else {}
        if fields:
            fields["duration_minutes"] = rng.choice(DURATIONS)
            await change(race, staff, "service", path, fields)
    elif then < 0.25:
        if race.booked:
            path = f"/office/{OFFICE}/bookings/{rng.choice(race.booked)}/erase"
            await send(race, admin.session, "erase", "POST", path, data={"_csrf": admin.csrf})
    elif then < 0.55:
        await change(race, staff, "hours", f"/office/{OFFICE}/hours", {"hours": rng.choice(HOURS)})
    else:
        day = rng.choice(race.days)
        if rng.random() < 0.5:
            reasons = {"day": day.isoformat(), "reason_fr": "Race", "reason_en": "Race"}
            await change(race, staff, "closure", f"/office/{OFFICE}/closures", reasons)
        else:
            await change(race, staff, "reopen", f"/office/{OFFICE}/closures/{day}/remove", {})


async def keep_going(race: Race, turn: Callable[[], Awaitable[None]]) -> None:
    while time.monotonic() < race.until:
        await turn()


async def run(race: Race, seconds: float, citizens: int, agents: int, managers: int) -> float:
    """The race; the seconds it took."""
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    sessions = [
        # unsafe: cookies from an address (127.0.0.1) as well as from a name.
        aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.CookieJar(unsafe=True))
        for _ in range(citizens + agents + 2 * managers)
    ]
    try:
        public, office = sessions[:citizens], sessions[citizens:]
        accounts = [AGENT] * agents + [MANAGER] * managers + [ADMIN] * managers
        staff = [await login(race, s, *who) for s, who in zip(office, accounts, strict=True)]
        agent_staff, manager_staff = staff[:agents], staff[agents : agents + managers]
        admins = staff[agents + managers :]
        await choose_days(race, public[0])
        days = ", ".join(d.isoformat() for d in race.days)
        print(f"{OFFICE}: {len(race.slots)} {SERVICE} times on {days}", flush=True)
        began = time.monotonic()
        race.until = began + seconds
        await asyncio.gather(
            *(keep_going(race, partial(citizen, race, s)) for s in public),
            *(keep_going(race, partial(agent, race, a)) for a in agent_staff),
            *(
                keep_going(race, partial(manager, race, m, admin))
                for m, admin in zip(manager_staff, admins, strict=True)
            ),
            keep_going(race, partial(refresh_times, race, public[0])),
        )
        raced = time.monotonic() - began
        if managers:  # the raced days open again (a running stack's included)
            for day in race.days:
                path = f"/office/{OFFICE}/closures/{day}/remove"
                await change(race, manager_staff[0], "reopen-after", path, {})
        return raced
    finally:
        for session in sessions:
            await session.close()


def report(tally: Tally, seconds: float) -> None:
    classes: dict[tuple[str, str], Counter[int]] = defaultdict(Counter)
    for (action, status), n in tally.answers.items():
        classes[action, f"{status // 100}xx" if status else "no answer"][status] += n
    print(f"\nanswers in {seconds:.0f} s, by action and status class:")
    for (action, kind), statuses in sorted(classes.items()):
        detail = " ".join(f"{s}:{n}" for s, n in sorted(statuses.items()))
        print(f"  {action:<16} {kind:<9} {sum(statuses.values()):>7}  ({detail})")
    slowest = sorted(tally.slowest.items(), key=lambda item: -item[1])[:5]
    print("slowest answers: " + ", ".join(f"{action} {s:.1f} s" for action, s in slowest))
    fives = [f for f in tally.failed if f[1] >= 500]
    silent = [f for f in tally.failed if f[1] == 0]
    print(f"5xx answers (must be 0): {len(fives)}")
    for action, status, excerpt in fives:
        print(f"  {action} {status}: {excerpt}")
    print(f"requests without an answer in {TIMEOUT} s: {len(silent)}")
    for action, _, excerpt in silent:
        print(f"  {action}: {excerpt}")


def error_lines(log: Path) -> list[str]:
    """A log's error lines, without their time: "ERROR service.web.errors
    [...] unhandled error on POST ...: asyncpg...DeadlockDetectedError" from
    the web server, "ERROR:  deadlock detected" and its statement from Postgres
    (terse there: `mawid dev` keeps row values out of its log)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return []
    found = (ERROR_LINE.search(line) for line in text.splitlines())
    return [m.string[m.start() + 1 :][:300] for m in found if m]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--citizens", type=int, default=12)
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--managers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None, help="for the writers' choices")
    parser.add_argument("--url", help="race this running dev stack instead of starting one")
    args = parser.parse_args()
    if args.citizens < 1:
        parser.error("--citizens must be 1 or more")

    rng = random.Random(args.seed)
    stack: DevStack | None = None
    work: Path | None = None
    url = args.url.rstrip("/") if args.url else ""
    if not url:
        work = Path(tempfile.mkdtemp(prefix="mawid-races-"))
        port = free_port()
        env = dev_env(
            work / "dev",
            port,
            LOG_LEVEL="WARNING",
            **{f"LIMIT_{name.upper()}": "off" for name in LIMITS},
        )
        stack = DevStack(work / "dev", port, env, work / "dev.log")
        url = stack.base
    race = Race(url, until=0.0, days=[], slots=[], rng=rng)
    raced = 0.0
    try:
        if stack is not None:
            stack.start()
            async with aiohttp.ClientSession() as session:
                ready = await wait_ready(session, stack)
            print(f"mawid dev ready in {ready:.0f} s at {url} (log: {stack.log})", flush=True)
        print(
            f"racing {args.citizens} citizens, {args.agents} agents and {args.managers} "
            f"managers for {args.seconds:g} s; failures as they come:",
            flush=True,
        )
        raced = await run(race, args.seconds, args.citizens, args.agents, args.managers)
    finally:
        if stack is not None:
            stack.stop()
    report(race.tally, raced)
    if not race.tally.failed:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    if stack is not None:
        print(f"the stack's directory is kept: {work}")
        for log in (stack.log, stack.dev_dir / "postgres" / "server.log"):
            print(f"errors in {log}:")
            for line in error_lines(log):
                print(f"  {line}")
    return 1 if any(status >= 500 for _, status, _ in race.tally.failed) else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
