"""Opening hours + closures + zone -> slot instants. Pure: no I/O.

Opening hours are wall-clock times in the office's zone. Each local date is
expanded on its own, so a 09:00 slot stays at 09:00 local across a DST change
or Morocco's Ramadan offset change, while its UTC instant moves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class HoursRule:
    weekday: int  # 0 = Monday
    opens_at: time
    closes_at: time
    counters: int
    valid_from: date | None = None
    valid_until: date | None = None
    service_id: str | None = None  # None: every service of the office

    def covers(self, day: date) -> bool:
        if self.valid_from is None or self.valid_until is None:
            return True
        return self.valid_from <= day <= self.valid_until

    @property
    def span_days(self) -> int:
        """How specific the rule's date range is; open-ended rules are the least."""
        if self.valid_from is None or self.valid_until is None:
            return 1 << 30
        return (self.valid_until - self.valid_from).days


@dataclass(frozen=True, slots=True)
class SlotPlan:
    service_id: str
    starts_at: datetime  # aware, UTC
    ends_at: datetime
    capacity: int
    # Served by the office's general hours, so it shares their counters with
    # the other services (see counter cells); False for dedicated hours.
    pooled: bool = True


# Counters shared between services are accounted for in cells of this size.
CELL = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class CounterCell:
    starts_at: datetime  # aware, UTC
    capacity: int


def cells_covering(starts_at: datetime, ends_at: datetime) -> int:
    """How many cells of the grid (aligned on the epoch, in UTC) an interval
    touches; a pooled booking takes one counter in each."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    first = (starts_at - epoch) // CELL
    last = (ends_at - epoch - timedelta(microseconds=1)) // CELL
    return int(last - first + 1)


def cell_start(instant: datetime) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((instant - epoch) // CELL) * CELL


def rules_for_day(rules: Iterable[HoursRule], day: date, service_id: str) -> list[HoursRule]:
    """The rules that apply to `service_id` on `day`.

    Among the rules whose date range covers the day, only those with the
    narrowest range count: Ramadan hours replace the usual hours for the whole
    period, including weekdays they leave closed. A rule for one service beats
    a rule for every service when both are equally specific.
    """
    covering = [
        r for r in rules if r.covers(day) and (r.service_id is None or r.service_id == service_id)
    ]
    if not covering:
        return []
    narrowest = min(r.span_days for r in covering)
    chosen = [r for r in covering if r.span_days == narrowest]
    if any(r.service_id == service_id for r in chosen):
        chosen = [r for r in chosen if r.service_id == service_id]
    return [r for r in chosen if r.weekday == day.weekday()]


def local_instant(day: date, wall: time, zone: ZoneInfo) -> datetime | None:
    """The UTC instant of a wall-clock time, or None when it does not exist.

    A wall time skipped by a forward change (02:30 on a spring-forward night)
    yields None; an ambiguous one (backward change) takes the first occurrence.
    """
    local = datetime.combine(day, wall, tzinfo=zone)
    as_utc = local.astimezone(UTC)
    if as_utc.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return as_utc


def expand_day(
    rules: Iterable[HoursRule],
    day: date,
    zone: ZoneInfo,
    service_id: str,
    duration: timedelta,
) -> list[SlotPlan]:
    """Slots of one local day for one service; overlapping rules add counters."""
    seats: dict[tuple[datetime, datetime], int] = {}
    chosen = rules_for_day(rules, day, service_id)
    pooled = all(r.service_id is None for r in chosen)
    for rule in chosen:
        start = datetime.combine(day, rule.opens_at)
        close = datetime.combine(day, rule.closes_at)
        while start + duration <= close:
            begins = local_instant(day, start.time(), zone)
            end_wall = start + duration
            ends = local_instant(end_wall.date(), end_wall.time(), zone)
            if begins is not None and ends is not None and begins < ends:
                key = (begins, ends)
                seats[key] = seats.get(key, 0) + rule.counters
            start = end_wall
    return [
        SlotPlan(service_id, begins, ends, capacity, pooled)
        for (begins, ends), capacity in sorted(seats.items())
    ]


def expand_counters(rules: Iterable[HoursRule], day: date, zone: ZoneInfo) -> list[CounterCell]:
    """The shared counters open in each 5-minute cell of one local day, from
    the office's general hours (those of no particular service)."""
    counters: dict[datetime, int] = {}
    for rule in rules_for_day([r for r in rules if r.service_id is None], day, ""):
        wall = datetime.combine(day, rule.opens_at)
        close = datetime.combine(day, rule.closes_at)
        while wall < close:
            instant = local_instant(day, wall.time(), zone)
            if instant is not None:
                cell = cell_start(instant)
                counters[cell] = counters.get(cell, 0) + rule.counters
            wall += CELL
    return [CounterCell(cell, n) for cell, n in sorted(counters.items())]


def plan_counters(
    rules: Iterable[HoursRule], closed_days: Iterable[date], zone: ZoneInfo, first: date, last: date
) -> list[CounterCell]:
    rule_list = list(rules)
    closed = set(closed_days)
    cells: list[CounterCell] = []
    for day in days(first, last):
        if day not in closed:
            cells.extend(expand_counters(rule_list, day, zone))
    return cells


def days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def plan_slots(
    rules: Iterable[HoursRule],
    closed_days: Iterable[date],
    zone: ZoneInfo,
    services: Mapping[str, timedelta],
    first: date,
    last: date,
) -> list[SlotPlan]:
    """Every slot from `first` to `last` (local dates, inclusive) for each service."""
    rule_list = list(rules)
    closed = set(closed_days)
    plans: list[SlotPlan] = []
    for day in days(first, last):
        if day in closed:
            continue
        for service_id, duration in services.items():
            plans.extend(expand_day(rule_list, day, zone, service_id, duration))
    return plans


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of a local calendar day."""
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def local_date(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()
