"""Rules behind the office pages: the hours editor's text format, the counters'
load per time, bookings a change of hours would strand, and the weekly
statistics. Pure: no I/O.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from service.domain.booking import ACTIVE, Status
from service.domain.calendar import HoursRule, SlotPlan
from service.domain.errors import N_, ValidationFailed
from service.domain.fields import day_in_range, parse_day

# The hours editor -----------------------------------------------------------------
#
# One rule per line, because a textarea works without JavaScript, on a phone,
# and with a screen reader, and the whole week reads at a glance:
#
#     mon-fri 09:00-12:30 13:30-16:00 x4
#     2027-02-07..2027-03-08 mon-fri 09:00-15:00 x3
#     sat 09:00-12:00 x1 service=passport
#
# A line with a date range replaces the open-ended lines on the dates it
# covers (Ramadan hours), as service.domain.calendar.rules_for_day decides.

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")
_INTERVAL_RE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_COUNTERS_RE = re.compile(r"^x(\d{1,3})$")
_SERVICE_RE = re.compile(r"^service=([a-z0-9][a-z0-9-]{1,62})$")
MAX_HOURS_LINES = 200


def _weekdays(spec: str) -> list[int] | None:
    days: list[int] = []
    for part in spec.split(","):
        first, dash, last = part.partition("-")
        if first not in DAY_NAMES or (dash and last not in DAY_NAMES):
            return None
        start = DAY_NAMES.index(first)
        end = DAY_NAMES.index(last) if dash else start
        if end < start:
            return None
        days.extend(range(start, end + 1))
    return sorted(set(days))


def _wall(hours: str, minutes: str) -> time | None:
    h, m = int(hours), int(minutes)
    if h > 23 or m > 59:
        return None
    return time(h, m)


def _parse_line(line: str, known_services: Iterable[str]) -> list[HoursRule] | str:
    words = line.lower().split()
    valid_from = valid_until = None
    if words and (found := _RANGE_RE.match(words[0])):
        try:
            valid_from, valid_until = (date.fromisoformat(found[1]), date.fromisoformat(found[2]))
        except ValueError:
            return N_("This date range is not a pair of real dates.")
        if valid_from > valid_until:
            return N_("The date range ends before it starts.")
        words = words[1:]
    if not words or (weekdays := _weekdays(words[0])) is None:
        return N_("Start with the days, like mon-fri or sat.")
    intervals: list[tuple[time, time]] = []
    counters: int | None = None
    service_id: str | None = None
    for word in words[1:]:
        if found := _INTERVAL_RE.match(word):
            opens, closes = _wall(found[1], found[2]), _wall(found[3], found[4])
            if opens is None or closes is None or opens >= closes:
                return N_("Write opening times as 09:00-12:30, opening before closing.")
            intervals.append((opens, closes))
        elif found := _COUNTERS_RE.match(word):
            counters = int(found[1])
        elif found := _SERVICE_RE.match(word):
            service_id = found[1]
            if service_id not in set(known_services):
                return N_("This office has no such service.")
        else:
            return N_("Write opening times as 09:00-12:30, opening before closing.")
    if not intervals:
        return N_("Give at least one opening time, like 09:00-12:30.")
    if counters is None or not 1 <= counters <= 100:
        return N_("End with the number of counters open, like x3 (1 to 100).")
    ordered = sorted(intervals)
    if any(a[1] > b[0] for a, b in itertools.pairwise(ordered)):
        return N_("Opening times on one line must not overlap.")
    return [
        HoursRule(weekday, opens, closes, counters, valid_from, valid_until, service_id)
        for weekday in weekdays
        for opens, closes in ordered
    ]


def parse_hours(text: str, known_services: Iterable[str]) -> list[HoursRule]:
    """Rules from the editor's text, or ValidationFailed naming each bad line:
    its fields are the line numbers (as text), in order, with their message."""
    services = list(known_services)
    rules: list[HoursRule] = []
    problems: dict[str, str] = {}
    lines = text.splitlines()
    if len(lines) > MAX_HOURS_LINES:
        raise ValidationFailed({str(MAX_HOURS_LINES + 1): N_("Too many lines.")})
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parsed = _parse_line(line, services)
        if isinstance(parsed, str):
            problems[str(number)] = parsed
        else:
            rules.extend(parsed)
    if problems:
        raise ValidationFailed(problems)
    return rules


def _days_text(weekdays: Sequence[int]) -> str:
    runs: list[list[int]] = []
    for day in sorted(weekdays):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(
        DAY_NAMES[r[0]] if len(r) == 1 else f"{DAY_NAMES[r[0]]}-{DAY_NAMES[r[-1]]}" for r in runs
    )


def format_hours(rules: Iterable[HoursRule]) -> str:
    """The editor's text for `rules`; parse_hours(format_hours(r)) gives r back."""
    groups: dict[
        tuple[date | None, date | None, str | None, int], dict[int, list[tuple[time, time]]]
    ] = {}
    for r in rules:
        key = (r.valid_from, r.valid_until, r.service_id, r.counters)
        groups.setdefault(key, {}).setdefault(r.weekday, []).append((r.opens_at, r.closes_at))
    lines: list[str] = []

    def order(key: tuple[date | None, date | None, str | None, int]) -> tuple[object, ...]:
        return (key[0] is not None, key[0] or date.min, key[2] or "", key[3])

    for key in sorted(groups, key=order):
        valid_from, valid_until, service_id, counters = key
        by_intervals: dict[tuple[tuple[time, time], ...], list[int]] = {}
        for weekday, intervals in sorted(groups[key].items()):
            by_intervals.setdefault(tuple(sorted(intervals)), []).append(weekday)
        for spans, weekdays in sorted(by_intervals.items(), key=lambda kv: kv[1]):
            words = []
            if valid_from is not None and valid_until is not None:
                words.append(f"{valid_from.isoformat()}..{valid_until.isoformat()}")
            words.append(_days_text(weekdays))
            words += [f"{a:%H:%M}-{b:%H:%M}" for a, b in spans]
            words.append(f"x{counters}")
            if service_id:
                words.append(f"service={service_id}")
            lines.append(" ".join(words))
    return "\n".join(lines)


# A closure ---------------------------------------------------------------------------

CLOSURE_REASON_MAX = 200
# What citizens read as the reason of a closure whose reason was not given in
# their language (nor in its fallback, models.TEXT_FALLBACK). A reason in
# another language stood in before: French pages said "Fermé : إغلاق استثنائي".
EXCEPTIONAL_CLOSURE = N_("Exceptional closure")


@dataclass(frozen=True, slots=True)
class ClosureRequest:
    day: date
    reasons: dict[str, str]  # ar, fr, en; "" where none was typed


@dataclass(frozen=True, slots=True)
class Closure:
    """A closed day as the hours page lists it."""

    day: date
    source: str  # holiday | manual
    reasons: dict[str, str]  # every language of models.LANGUAGES, "" where none


def read_closure(form: Mapping[str, str], today: date) -> ClosureRequest:
    """The day a submitted closures form closes, and its reason by language
    (one at least).

    `today` is the office's day, in its zone. Raises ValidationFailed on
    "closure-day" for no day or no reason at all, and for a day before today:
    its appointments are over, so such a closure is a slip of the date picker
    that would be "saved" without effect. Today itself may be closed (a burst
    pipe in the morning).
    """
    day = parse_day(form.get("day"))
    reasons = {
        language: " ".join((form.get(f"reason_{language}") or "").split())[:CLOSURE_REASON_MAX]
        for language in ("fr", "ar", "en")
    }
    if day is None or not any(reasons.values()):
        raise ValidationFailed({"closure-day": N_("Give a date and a reason for the closure.")})
    if day < today:
        raise ValidationFailed(
            {"closure-day": N_("This day has passed: choose today or a later day.")}
        )
    # A language left empty stays empty: its readers get EXCEPTIONAL_CLOSURE
    # in their own language, not the text typed in another.
    return ClosureRequest(day, reasons)


# What a change strands --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BookedSeat:
    """An active booking as the hours page needs it."""

    reference: str
    service_id: str
    starts_at: datetime
    status: str
    # When the booking was made, and its id to order bookings made in the
    # same instant: the latest-made lose their seat first when a slot shrinks.
    created_at: datetime
    id: int


def stranded(
    bookings: Iterable[BookedSeat], plans: Iterable[SlotPlan], after: datetime
) -> list[BookedSeat]:
    """Active future bookings the new plan has no seat for.

    Either their slot is gone, or it stays with fewer seats than it has
    bookings (counters lowered): then the latest-made bookings beyond the new
    capacity are the ones listed, since earlier ones were promised first.
    Regeneration never deletes bookings (a slot's capacity may fall below its
    `taken`), so without this list they would silently sit in a closed hour
    or an overfull slot.
    """
    capacity = {(p.service_id, p.starts_at): p.capacity for p in plans}
    by_slot: dict[tuple[str, datetime], list[BookedSeat]] = {}
    for b in bookings:
        if Status(b.status) in ACTIVE and b.starts_at > after:
            by_slot.setdefault((b.service_id, b.starts_at), []).append(b)
    lost: list[BookedSeat] = []
    for key, seats in by_slot.items():
        # Someone already checked in is at the counter: never the one listed.
        seats.sort(key=lambda b: (b.status != Status.CHECKED_IN, b.created_at, b.id))
        lost.extend(seats[capacity.get(key, 0) :])
    return sorted(lost, key=lambda b: (b.starts_at, b.reference))


# The day's load ------------------------------------------------------------------------

# Statuses that occupy a counter at their time (done: they were served).
_AT_COUNTER = ACTIVE | {Status.DONE}


@dataclass(frozen=True, slots=True)
class Load:
    starts_at: datetime
    booked: int
    counters: int
    # A run of start times with nobody expected, said as one (quiet_runs):
    # the last of them.
    last_at: datetime | None = None


def load_per_time(
    bookings: Iterable[tuple[datetime, str]], capacities: Iterable[tuple[datetime, int]]
) -> list[Load]:
    """People expected at each start time against the counters open then.

    Every service's slot at a time carries the whole number of counters (the
    counters serve every service), so the counters at a time are the largest
    capacity among the slots starting then, not their sum.
    """
    counters: dict[datetime, int] = {}
    for starts_at, capacity in capacities:
        counters[starts_at] = max(counters.get(starts_at, 0), capacity)
    booked: dict[datetime, int] = {}
    for starts_at, status in bookings:
        if Status(status) in _AT_COUNTER:
            booked[starts_at] = booked.get(starts_at, 0) + 1
    times = sorted(set(counters) | set(booked))
    return [Load(t, booked.get(t, 0), counters.get(t, 0)) for t in times]


# Times further apart than this are not one run: a lunch break between two
# quiet stretches shows as the gap it is, not as "12:20–14:00".
RUN_GAP = timedelta(minutes=30)


def quiet_runs(load: Iterable[Load]) -> list[Load]:
    """The load with each run of two or more start times at which nobody is
    expected, before the same counters and at most RUN_GAP apart, as one
    row: a day of 10-minute slots listed some fifty rows, mostly zeros,
    that a clerk scrolled past."""
    rows: list[Load] = []
    for x in load:
        previous = rows[-1] if rows else None
        if (
            x.booked == 0
            and previous is not None
            and previous.booked == 0
            and previous.counters == x.counters
            and x.starts_at - (previous.last_at or previous.starts_at) <= RUN_GAP
        ):
            rows[-1] = Load(previous.starts_at, 0, x.counters, last_at=x.starts_at)
        else:
            rows.append(x)
    return rows


# Weeks and statistics -------------------------------------------------------------------

_WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")


def parse_week(raw: str) -> date | None:
    """The Monday of an ISO week written 2027-W05."""
    found = _WEEK_RE.match(raw.strip().upper())
    if not found:
        return None
    try:
        monday = date.fromisocalendar(int(found[1]), int(found[2]), 1)
    except ValueError:
        return None
    return monday if day_in_range(monday) and day_in_range(monday + timedelta(days=6)) else None


def week_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_label(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True, slots=True)
class BookingFacts:
    status: str
    created_at: datetime
    starts_at: datetime


@dataclass(frozen=True, slots=True)
class WeeklyStats:
    appointments: int  # bookings whose appointment falls in the week (no expired holds)
    bookings_made: int  # bookings created during the week, for any date
    cancellations: int  # appointments of the week that were cancelled
    no_shows: int
    attended: int  # checked in or done
    no_show_rate: float | None  # no-shows / (no-shows + attended); None before any outcome
    median_lead_time_hours: float | None  # from booking to appointment
    sms_segments: int
    sms_cost: float
    # WhatsApp messages of the week by their status now, every status of
    # WHATSAPP_STATUSES present (0 when none).
    whatsapp: dict[str, int] = field(default_factory=dict)

    @property
    def whatsapp_messages(self) -> int:
        return sum(self.whatsapp.values())


# A WhatsApp message's statuses once it has left (or could not), furthest first.
WHATSAPP_STATUSES = ("read", "delivered", "sent", "undelivered", "failed")


def weekly_stats(
    appointments: Iterable[BookingFacts],
    bookings_made: int,
    sms_segments: int,
    price_per_segment: float,
    whatsapp: Mapping[str, int] | None = None,
) -> WeeklyStats:
    facts = [a for a in appointments if Status(a.status) is not Status.EXPIRED]
    cancelled = sum(1 for a in facts if Status(a.status) is Status.CANCELLED)
    no_shows = sum(1 for a in facts if Status(a.status) is Status.NO_SHOW)
    attended = sum(1 for a in facts if Status(a.status) in (Status.CHECKED_IN, Status.DONE))
    decided = no_shows + attended
    leads = [(a.starts_at - a.created_at).total_seconds() / 3600 for a in facts]
    return WeeklyStats(
        appointments=len(facts),
        bookings_made=bookings_made,
        cancellations=cancelled,
        no_shows=no_shows,
        attended=attended,
        no_show_rate=no_shows / decided if decided else None,
        median_lead_time_hours=statistics.median(leads) if leads else None,
        sms_segments=sms_segments,
        # Rounded to the cent: it is an estimate shown to people.
        sms_cost=round(sms_segments * price_per_segment, 2),
        whatsapp={status: (whatsapp or {}).get(status, 0) for status in WHATSAPP_STATUSES},
    )
