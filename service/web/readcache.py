"""What citizens read most, kept in the web process for a moment.

When an office opens a month of slots, thousands of citizens reload the same
week at once: each read would ask Postgres the same office, service,
closures and slots. The web process keeps them instead, for at most
READ_CACHE_SECONDS (product clock) each, and drops an entry as soon as
Postgres says it changed: triggers (migration 0040) notify `mawid_slots` with
the slot (or shared counter) a committed transaction changed, and
`mawid_catalog` when offices, services or closures did. Each process listens
on a connection of its own.

The bound, stated in the README: a seat taken is still offered by a process
until that process has read the commit's notification, and never longer than
READ_CACHE_SECONDS after the read that filled the entry. While the listening
connection is down nothing is kept (every read asks Postgres), and all is
dropped when it is back. A booking never trusts this cache: the seat is taken
by the guarded statement (service.store.slots.take_seat), so a seat shown
free but gone is refused with its 409 and fresh alternatives.

A read that raced a change cannot store what it read: each office has a
version bumped by every notification for it, and a read stores its result
only if the version it started with is still current.

The public pages built from these reads (the office list, a service's week,
the availability API's answer) are kept as bytes too, by address (and
language), under the same bound: a page is served again only while the
versions it was rendered under are current, so a notification drops it with
the entries it came from, and it counts as old as the oldest entry it used.

Past half its time an entry or page is read again by the first reader that
finds it so, while the others keep getting it (never past the bound): under
a rush, readers seldom wait for Postgres.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Generic, TypeVar

import asyncpg
from aiohttp import web

from service import bookings
from service.clock import micros_of
from service.domain.calendar import local_date, local_day_bounds
from service.domain.mobile_day import MobileDay
from service.domain.models import Office, Service, Slot
from service.store import mobile_days as mobile_day_store
from service.store import offices as office_store
from service.store import slots as slot_store
from service.web.keys import CLOCK_KEY, POOL_KEY, SETTINGS_KEY

log = logging.getLogger(__name__)

SLOTS_CHANNEL = "mawid_slots"
CATALOG_CHANNEL = "mawid_catalog"
# How often an idle listening connection is checked, and how soon a lost one
# is tried again.
PING_EVERY = 5.0
RECONNECT_AFTER = 1.0


def slot_json(slot: Slot, office: Office) -> bytes:
    """A slot as the availability API gives it (service.web.api): in its
    site's zone (`office` seen from the site), with its mobile day or null."""
    zone = office.zone
    return json.dumps(
        {
            "id": slot.id,
            "start": slot.starts_at.astimezone(zone).isoformat(),
            "end": slot.ends_at.astimezone(zone).isoformat(),
            "remaining": slot.remaining,
            "mobile_day": slot.mobile_day_id,
        }
    ).encode()


@dataclass(frozen=True, slots=True)
class SlotDay:
    """Every slot of a local day with seats planned (full ones too), and the
    JSON of those with a seat left, made once for all the reads of the entry."""

    slots: tuple[Slot, ...]
    open: tuple[Slot, ...]  # with a seat left, in time order
    json: tuple[bytes, ...]  # of each open slot
    joined: bytes  # all of them, comma-separated

    @classmethod
    def of(cls, slots: list[Slot], office: Office) -> SlotDay:
        open_ = tuple(s for s in slots if s.remaining > 0)
        json_ = tuple(slot_json(s, office) for s in open_)
        return cls(tuple(slots), open_, json_, b", ".join(json_))

    def _whole(self, earliest: datetime, latest: datetime) -> bool:
        return earliest <= self.open[0].starts_at and self.open[-1].starts_at <= latest

    def free(self, earliest: datetime, latest: datetime) -> list[Slot]:
        """The slots with a seat left inside [earliest, latest]."""
        if not self.open or self._whole(earliest, latest):
            return list(self.open)
        return [s for s in self.open if earliest <= s.starts_at <= latest]

    def free_json(self, earliest: datetime, latest: datetime) -> bytes:
        """free() as comma-separated JSON: most days lie wholly inside the
        booking window and answer with bytes made once."""
        if not self.open or self._whole(earliest, latest):
            return self.joined
        return b", ".join(
            j
            for s, j in zip(self.open, self.json, strict=True)
            if earliest <= s.starts_at <= latest
        )


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Kept(Generic[T]):
    at: int  # microseconds since the epoch, on the product clock
    value: T


@dataclass(frozen=True, slots=True)
class _Page:
    at: int
    versions: tuple[int, int]  # (catalog, office) when it was rendered
    body: bytes


# While a page renders: the instant of the oldest kept entry it was made from.
_OLDEST: ContextVar[list[int] | None] = ContextVar("read_cache_oldest", default=None)


# What a kept entry is to a reader (ReadCache._state).
_SERVED, _AGING, _STALE = object(), object(), object()


def _used(at: int) -> None:
    oldest = _OLDEST.get()
    if oldest is not None and at < oldest[0]:
        oldest[0] = at


# Pages kept per process, at most: their keys come from the address, which
# anyone can vary; past this many, all are dropped at the next store.
MAX_PAGES = 4096


@dataclass(frozen=True, slots=True)
class _Catalog:
    offices: tuple[Office, ...]
    by_id: dict[str, Office]
    services: dict[str, tuple[Service, ...]]  # office id -> active services
    # office id -> its upcoming mobile days (service.store.mobile_days.upcoming)
    mobile_days: dict[str, tuple[MobileDay, ...]]


class ReadCache:
    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Callable[[], datetime],
        max_age_seconds: float,
        rules: bookings.Rules = bookings.DEFAULT_RULES,
    ) -> None:
        self._pool = pool
        self._clock = clock
        # Entries' instants in microseconds: a datetime made and subtracted
        # on every kept page cost more than the rest of its freshness check.
        self._now_us = micros_of(clock)
        # Seats of expired holds go to the waiting list first (service.offers).
        self._rules = rules
        self._max_age_us = int(max_age_seconds * 1_000_000)
        self._half_age_us = self._max_age_us // 2
        # Nothing is kept until a listener is up (start_listening).
        self.listening = False
        self.notifications = 0
        self._catalog: _Kept[_Catalog] | None = None
        self._closures: dict[tuple[str, date, date], _Kept[dict[date, dict[str, str]]]] = {}
        # office id -> (service id, local day, mobile day or None) -> slots
        # of that day at the office or at that mobile day (its venue's day)
        self._days: dict[str, dict[tuple[str, date, int | None], _Kept[SlotDay]]] = {}
        self._versions: dict[str, int] = {}
        self._catalog_version = 0
        self._pages: dict[tuple[str, ...], _Page] = {}
        self._task: asyncio.Task[None] | None = None
        # Reads under way, by what they read: when an entry runs out under a
        # rush, the readers that find it gone wait for one read instead of
        # each asking Postgres. A notification lets the next reader start afresh.
        self._reading: dict[tuple[object, ...], asyncio.Future[Any]] = {}
        self._changed = asyncio.Event()
        self._up = asyncio.Event()

    # ------------------------------------------------------------ reading

    def _fresh_at_age(self, age_us: int) -> bool:
        # A clock set back counts as stale too.
        return self.listening and 0 <= age_us <= self._max_age_us

    def _served(self, at: int, key: tuple[object, ...]) -> bool:
        return self._state(at, key) is _SERVED

    def _state(self, at: int, key: tuple[object, ...]) -> object:
        """_SERVED: an entry read at `at` is answered as kept, while fresh,
        and past half its time only while another reader reads it again (the
        first reader past half its time reads it again itself, so that under
        a rush readers seldom wait for a read); _AGING: fresh, but this
        reader reads it again; _STALE: not to be answered. The clock read
        once: on a kept page it is most of the cost."""
        age_us = self._now_us() - at
        if not self._fresh_at_age(age_us):
            return _STALE
        if age_us > self._half_age_us and key not in self._reading:
            return _AGING
        _used(at)
        return _SERVED

    async def _once(self, key: tuple[object, ...], read: Callable[[], Awaitable[T]]) -> T:
        future = self._reading.get(key)
        if future is None:
            future = asyncio.ensure_future(read())
            self._reading[key] = future
            future.add_done_callback(lambda done: self._done_reading(key, done))
        result: T = await asyncio.shield(future)
        return result

    def _done_reading(self, key: tuple[object, ...], done: asyncio.Future[Any]) -> None:
        if self._reading.get(key) is done:
            del self._reading[key]

    def _stop_sharing(self, kind: str, office_id: str | None = None) -> None:
        for key in [
            k for k in self._reading if k[0] == kind and (office_id is None or k[1] == office_id)
        ]:
            del self._reading[key]

    async def _catalog_now(self) -> _Catalog:
        kept = self._catalog
        if kept is not None and self._served(kept.at, ("catalog",)):
            return kept.value
        return await self._once(("catalog",), self._read_catalog)

    async def _read_catalog(self) -> _Catalog:
        version = self._catalog_version
        async with self._pool.acquire() as conn:
            offices = await office_store.list_offices(conn)
            services = await office_store.list_active_services(conn)
            mobile_days = await mobile_day_store.upcoming(conn, self._clock())
        catalog = _Catalog(
            offices=tuple(offices),
            by_id={o.id: o for o in offices},
            services={o.id: tuple(s for s in services if s.office_id == o.id) for o in offices},
            mobile_days={
                o.id: tuple(m for m in mobile_days if m.office_id == o.id) for o in offices
            },
        )
        if self.listening and version == self._catalog_version:
            self._catalog = _Kept(self._now_us(), catalog)
        return catalog

    async def offices(self) -> tuple[Office, ...]:
        return (await self._catalog_now()).offices

    async def office(self, office_id: str) -> Office | None:
        return (await self._catalog_now()).by_id.get(office_id)

    async def services(self, office_id: str) -> tuple[Service, ...]:
        return (await self._catalog_now()).services.get(office_id, ())

    async def mobile_days(self, office_id: str) -> tuple[MobileDay, ...]:
        """The office's upcoming mobile days (withdrawn ones left out)."""
        return (await self._catalog_now()).mobile_days.get(office_id, ())

    async def service(self, office_id: str, service_id: str) -> Service | None:
        for service in await self.services(office_id):
            if service.id == service_id:
                return service
        return None

    async def closures(self, office_id: str, first: date, last: date) -> dict[date, dict[str, str]]:
        kept = self._closures.get((office_id, first, last))
        reading = ("closures", office_id, first, last)
        if kept is not None and self._served(kept.at, reading):
            return kept.value
        return await self._once(reading, lambda: self._read_closures(office_id, first, last))

    async def _read_closures(
        self, office_id: str, first: date, last: date
    ) -> dict[date, dict[str, str]]:
        key = (office_id, first, last)
        version = self._catalog_version
        async with self._pool.acquire() as conn:
            found = await office_store.closures_between(conn, office_id, first, last)
        if self.listening and version == self._catalog_version:
            self._closures[key] = _Kept(self._now_us(), found)
        return found

    async def days(
        self,
        office: Office,
        service_id: str,
        first: date,
        last: date,
        mobile_day_id: int | None = None,
    ) -> list[SlotDay]:
        """Each local day of [first, last] with its slots, at the office or
        at one of its mobile days (`office` then seen from the venue, its
        days the venue's); the days not kept are read in one query."""
        kept = self._days.get(office.id, {})
        count = (last - first).days + 1
        wanted = [first + timedelta(days=n) for n in range(count)]
        found: dict[date, SlotDay] = {}
        aging: list[date] = []
        now_us = self._now_us()
        for day in wanted:
            entry = kept.get((service_id, day, mobile_day_id))
            if entry is not None and self._fresh_at_age(age_us := now_us - entry.at):
                found[day] = entry.value
                if age_us > self._half_age_us:
                    aging.append(day)
                else:
                    _used(entry.at)
        missing = [day for day in wanted if day not in found]
        if not missing and aging:
            # Past half their time: read again by this reader, kept for the
            # others while it does.
            reading = ("days", office.id, service_id, aging[0], aging[-1], mobile_day_id)
            if reading in self._reading:
                for day in aging:
                    _used(kept[(service_id, day, mobile_day_id)].at)
            else:
                missing = aging
        if missing:
            begin, end = missing[0], missing[-1]
            found.update(
                await self._once(
                    ("days", office.id, service_id, begin, end, mobile_day_id),
                    lambda: self._read_days(office, service_id, begin, end, mobile_day_id),
                )
            )
        return [found[day] for day in wanted]

    async def _read_days(
        self,
        office: Office,
        service_id: str,
        first: date,
        last: date,
        mobile_day_id: int | None = None,
    ) -> dict[date, SlotDay]:
        version = self._versions.get(office.id, 0)
        zone = office.zone
        async with self._pool.acquire() as conn:
            # Holds past their time give their seats back before seats are
            # read, as on every read path; while an entry is kept, at most
            # READ_CACHE_SECONDS later (the worker's cron releases them too).
            await bookings.release_expired_holds(
                conn, self._clock(), office_id=office.id, service_id=service_id, rules=self._rules
            )
            slots = await slot_store.slots_between(
                conn,
                office.id,
                service_id,
                local_day_bounds(first, zone)[0],
                local_day_bounds(last, zone)[1],
                mobile_day_id,
            )
        per_day: dict[date, list[Slot]] = {}
        for slot in slots:
            per_day.setdefault(local_date(slot.starts_at, zone), []).append(slot)
        read: dict[date, SlotDay] = {}
        for n in range((last - first).days + 1):
            day = first + timedelta(days=n)
            read[day] = SlotDay.of(per_day.get(day, []), office)
        if self.listening and version == self._versions.get(office.id, 0):
            now_us = self._now_us()
            kept = self._days.setdefault(office.id, {})
            for day, slot_day in read.items():
                kept[(service_id, day, mobile_day_id)] = _Kept(now_us, slot_day)
        return read

    def _page_versions(self, office_id: str | None) -> tuple[int, int]:
        return self._catalog_version, self._versions.get(office_id, 0) if office_id else 0

    def kept_page(self, key: tuple[str, ...], office_id: str | None) -> bytes | None:
        """page()'s kept bytes when it would answer with them as they are:
        a handler asks first, and awaits page() only when this is None (a
        coroutine less on most reads under a rush)."""
        kept = self._pages.get(key)
        if kept is not None and kept.versions == self._page_versions(office_id):
            if self._state(kept.at, ("page", office_id, *key)) is _SERVED:
                return kept.body
        return None

    async def page(
        self, key: tuple[str, ...], office_id: str | None, render: Callable[[], Awaitable[bytes]]
    ) -> bytes:
        """The page `key` (its address and language) rendered from reads of
        the catalog and, with `office_id`, of that office's slots: the kept
        bytes while fresh and no notification came since, else `render()`.
        Readers that find it gone while it is being rendered wait for that
        rendering (unless a notification came meanwhile); if it fails, each
        renders its own (its own refusal or redirect)."""
        versions = self._page_versions(office_id)
        kept = self._pages.get(key)
        sharing = ("page", office_id, *key)
        state = _STALE
        if kept is not None and kept.versions == versions:
            state = self._state(kept.at, sharing)
            if state is _SERVED:
                return kept.body
        if state is _STALE:
            rendering = self._reading.get(sharing)
            if rendering is not None:
                body: bytes | None = await asyncio.shield(rendering)
                if body is not None:
                    return body
                return await render()
        rendering = asyncio.get_running_loop().create_future()
        self._reading[sharing] = rendering
        rendering.add_done_callback(lambda done: self._done_reading(sharing, done))
        # The page is as old as the oldest kept entry it is made from.
        oldest = [self._now_us()]
        token = _OLDEST.set(oldest)
        try:
            body = await render()
        except BaseException:
            rendering.set_result(None)
            raise
        finally:
            _OLDEST.reset(token)
        rendering.set_result(body)
        if self.listening and versions == self._page_versions(office_id):
            if len(self._pages) >= MAX_PAGES:
                self._pages.clear()
            self._pages[key] = _Page(oldest[0], versions, body)
        return body

    # ------------------------------------------------------------ forgetting

    def forget_all(self) -> None:
        self._reading.clear()
        self._catalog = None
        self._closures.clear()
        self._days.clear()
        self._pages.clear()
        self._catalog_version += 1
        for office_id in self._versions:
            self._versions[office_id] += 1

    def _on_catalog(self, *_: object) -> None:
        self.notifications += 1
        self._stop_sharing("catalog")
        self._stop_sharing("closures")
        self._stop_sharing("page")
        self._catalog = None
        self._closures.clear()
        self._catalog_version += 1
        self._changed.set()

    def _on_slots(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.notifications += 1
        office_id, service_id, epoch = payload.split(" ")
        self._versions[office_id] = self._versions.get(office_id, 0) + 1
        self._stop_sharing("days", office_id)
        self._stop_sharing("page", office_id)
        self._changed.set()
        kept = self._days.get(office_id)
        if not kept:
            return
        office = self._catalog.value.by_id.get(office_id) if self._catalog else None
        if epoch == "*" or office is None:
            del self._days[office_id]
            return
        # A mobile day's days are its venue's: dropped whole (they are few).
        for key in [k for k in kept if k[2] is not None]:
            del kept[key]
        instant = datetime.fromtimestamp(int(epoch), UTC)
        day = local_date(instant, office.zone)
        services = {s for s, _, _ in kept} if service_id == "*" else {service_id}
        # A shared counter cell just after midnight is also covered by a slot
        # that started the evening before.
        days = (day, day - timedelta(days=1)) if service_id == "*" else (day,)
        for service in services:
            for each in days:
                kept.pop((service, each, None), None)

    async def up(self) -> None:
        """Wait until the listening connection is up (tests)."""
        await self._up.wait()

    async def heard_since(self, seen: int) -> None:
        """Wait until a notification past the `seen`-th has been handled (tests)."""
        while self.notifications <= seen:
            self._changed.clear()
            await self._changed.wait()

    # ------------------------------------------------------------ listening

    async def start_listening(self, dsn: str) -> None:
        self._task = asyncio.create_task(self._listen(dsn))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self, dsn: str) -> None:
        while True:
            try:
                conn = await asyncpg.connect(dsn)
            except Exception:
                await asyncio.sleep(RECONNECT_AFTER)
                continue
            try:
                await conn.add_listener(SLOTS_CHANNEL, self._on_slots)
                await conn.add_listener(CATALOG_CHANNEL, self._on_catalog)
                self.forget_all()
                self.listening = True
                self._up.set()
                while True:
                    await asyncio.sleep(PING_EVERY)
                    async with asyncio.timeout(PING_EVERY):
                        await conn.fetchval("SELECT 1")
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("read cache: lost its listening connection; reading through")
            finally:
                self.listening = False
                self._up.clear()
                self.forget_all()
                if not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(RECONNECT_AFTER)


READ_CACHE_KEY = web.AppKey("read_cache", ReadCache)


async def _read_cache(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    cache = ReadCache(
        app[POOL_KEY], app[CLOCK_KEY], settings.read_cache_seconds, bookings.Rules.of(settings)
    )
    app[READ_CACHE_KEY] = cache
    # Without a lifetime nothing is kept, and there is nothing to listen for.
    if settings.read_cache_seconds > 0:
        await cache.start_listening(settings.database_url)
    yield
    await cache.close()


def install(app: web.Application) -> None:
    """After the pool's cleanup context: the cache reads through the pool."""
    app.cleanup_ctx.append(_read_cache)


def read_cache(request: web.Request) -> ReadCache:
    return request.app[READ_CACHE_KEY]
