"""Choosing a time: a day first, then its times by part of the day. Pure.

The week pages (booking and reschedule) show seven days with their number
of free times; the citizen opens one and reads its times split into morning
and afternoon, in the office's zone. Without a day asked for, the first day
with a free time is opened, so that the common case needs no extra tap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Generic, Literal, Protocol, TypeVar
from zoneinfo import ZoneInfo

Part = Literal["morning", "afternoon"]
PARTS: tuple[Part, ...] = ("morning", "afternoon")
# Local wall time at which the afternoon begins.
NOON = time(12, 0)


class Timed(Protocol):
    @property
    def starts_at(self) -> datetime: ...


T = TypeVar("T", bound=Timed)


@dataclass(frozen=True, slots=True)
class PartOfDay(Generic[T]):
    part: Part
    times: list[T]


def part_of_day(instant: datetime, zone: str) -> Part:
    """Morning before noon on the office's wall clock, afternoon from noon."""
    return "morning" if instant.astimezone(ZoneInfo(zone)).time() < NOON else "afternoon"


def group_by_part(times: Sequence[T], zone: str) -> list[PartOfDay[T]]:
    """The times in order, split into morning and afternoon; empty parts left out."""
    ordered = sorted(times, key=lambda t: t.starts_at)
    groups = [
        PartOfDay(part, [t for t in ordered if part_of_day(t.starts_at, zone) == part])
        for part in PARTS
    ]
    return [g for g in groups if g.times]


def pick_day(free_counts: Sequence[tuple[date, int]], requested: date | None) -> date | None:
    """The day to open: the one asked for when it is on the page (even full or
    closed, to say why), else the first with a free time, else none."""
    if requested is not None and any(day == requested for day, _ in free_counts):
        return requested
    return next((day for day, count in free_counts if count > 0), None)
