"""The opening hours form of the hours page: a row per day with its periods
(opening, closing, counters), one block per set of hours: the usual week,
hours for a date range that replace it (Ramadan), hours kept for one service.
Pure: no I/O.

Fields are named s{set}-{what}: s0-from, s0-until, s0-service, s0-remove, and
s0-d{day}-p{period}-opens / -closes / -counters (day 0 = Monday). The form
works without JavaScript: "copy to other days" and "add a date range" are
submit buttons that send the form back with the change made, unsaved.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, time, timedelta

from service.domain.calendar import HoursRule
from service.domain.errors import N_, ValidationFailed
from service.domain.fields import parse_int

DAYS = range(7)
# Periods a day may have (morning, afternoon, evening and one more).
MAX_PERIODS = 4
MAX_SETS = 20
# Dated hours starting later than this are kept as they are, out of the form
# (which stays light); each appears in it a year before it starts.
FORM_AHEAD = timedelta(days=366)
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::00)?$")


@dataclass(frozen=True, slots=True)
class Period:
    """One opening period as typed: kept as text to show back with its error."""

    opens: str = ""
    closes: str = ""
    counters: str = ""

    @property
    def blank(self) -> bool:
        return not (self.opens.strip() or self.closes.strip() or self.counters.strip())


@dataclass(frozen=True, slots=True)
class HoursSet:
    valid_from: str = ""  # "" for the usual hours
    valid_until: str = ""
    service_id: str = ""  # "" for every service
    days: tuple[tuple[Period, ...], ...] = field(default_factory=lambda: ((),) * 7)
    remove: bool = False

    @property
    def dated(self) -> bool:
        return bool(self.valid_from or self.valid_until)


def _out_of_form(rule: HoursRule, today: date) -> bool:
    if rule.valid_from is None or rule.valid_until is None:
        return False
    return rule.valid_until < today or rule.valid_from > today + FORM_AHEAD


def sets_of(rules: Iterable[HoursRule], today: date) -> list[HoursSet]:
    """The form's sets for `rules`: the usual week first (even when empty),
    then dated sets by date, each service's after. Sets over before `today`
    or starting more than FORM_AHEAD after it are not shown (kept_rules)."""
    groups: dict[tuple[date | None, date | None, str], list[HoursRule]] = {
        (None, None, ""): []
    }
    for rule in rules:
        if _out_of_form(rule, today):
            continue
        key = (rule.valid_from, rule.valid_until, rule.service_id or "")
        groups.setdefault(key, []).append(rule)

    def order(key: tuple[date | None, date | None, str]) -> tuple[object, ...]:
        return (key[0] is not None, key[0] or date.min, key[2])

    sets = []
    for key in sorted(groups, key=order):
        valid_from, valid_until, service_id = key
        days = tuple(
            tuple(
                Period(f"{r.opens_at:%H:%M}", f"{r.closes_at:%H:%M}", str(r.counters))
                for r in sorted(groups[key], key=lambda r: r.opens_at)
                if r.weekday == day
            )
            for day in DAYS
        )
        sets.append(
            HoursSet(
                valid_from.isoformat() if valid_from else "",
                valid_until.isoformat() if valid_until else "",
                service_id,
                days,
            )
        )
    return sets


def kept_rules(rules: Iterable[HoursRule], today: date) -> list[HoursRule]:
    """Dated rules over before `today` or far ahead: not in the form, kept
    as they are when it is saved."""
    return [r for r in rules if _out_of_form(r, today)]


def with_blank_periods(hours_set: HoursSet) -> HoursSet:
    """Each day's periods and one empty period more to type in (up to
    MAX_PERIODS); an empty day gets one."""
    days = []
    for periods in hours_set.days:
        typed = tuple(p for p in periods if not p.blank)
        days.append(typed + (Period(),) * (1 if len(typed) < MAX_PERIODS else 0))
    return replace(hours_set, days=tuple(days))


def read_sets(form: Mapping[str, str]) -> list[HoursSet]:
    """The sets as typed (nothing checked yet)."""
    try:
        count = min(max(int(form.get("sets", "1")), 1), MAX_SETS)
    except ValueError:
        count = 1
    sets = []
    for index in range(count):
        prefix = f"s{index}-"
        days = tuple(
            tuple(
                Period(
                    form.get(f"{prefix}d{day}-p{n}-opens", ""),
                    form.get(f"{prefix}d{day}-p{n}-closes", ""),
                    form.get(f"{prefix}d{day}-p{n}-counters", ""),
                )
                for n in range(MAX_PERIODS)
            )
            for day in DAYS
        )
        sets.append(
            HoursSet(
                form.get(f"{prefix}from", "").strip(),
                form.get(f"{prefix}until", "").strip(),
                form.get(f"{prefix}service", "").strip(),
                days,
                remove=f"{prefix}remove" in form,
            )
        )
    return sets


def copy_day(sets: list[HoursSet], form: Mapping[str, str], index: int) -> list[HoursSet]:
    """Set `index` with the periods of its s{i}-copy-from day given to every
    day ticked in s{i}-copy-to-{day}."""
    if not 0 <= index < len(sets):
        return sets
    raw = form.get(f"s{index}-copy-from", "")
    source = parse_int(raw, DAYS.start, DAYS.stop - 1)
    if source is None:
        return sets
    periods = sets[index].days[source]
    days = tuple(
        periods if day != source and f"s{index}-copy-to-{day}" in form else current
        for day, current in enumerate(sets[index].days)
    )
    return [replace(s, days=days) if n == index else s for n, s in enumerate(sets)]


def _wall(raw: str) -> time | None:
    found = _TIME_RE.match(raw.strip())
    if not found or int(found[1]) > 23 or int(found[2]) > 59:
        return None
    return time(int(found[1]), int(found[2]))


def _date(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        return None


def rules_of(sets: list[HoursSet], known_services: Iterable[str]) -> list[HoursRule]:
    """The rules the form asks for, or ValidationFailed naming each field at
    fault (the first field of the period, day or dates concerned)."""
    services = set(known_services)
    problems: dict[str, str] = {}
    rules: list[HoursRule] = []
    for index, hours_set in enumerate(sets):
        if hours_set.remove:
            continue
        prefix = f"s{index}-"
        valid_from = valid_until = None
        if hours_set.dated:
            valid_from, valid_until = _date(hours_set.valid_from), _date(hours_set.valid_until)
            if valid_from is None or valid_until is None:
                problems[f"{prefix}from"] = N_("Give the first and the last day, as dates.")
            elif valid_until < valid_from:
                problems[f"{prefix}from"] = N_("The last day comes before the first.")
        elif index > 0 and not hours_set.service_id:
            # Only the first block is the usual week; the others replace it.
            problems[f"{prefix}from"] = N_("Give the dates these hours are for, or their service.")
        if hours_set.service_id and hours_set.service_id not in services:
            problems[f"{prefix}service"] = N_("This office has no such service.")
        service_id = hours_set.service_id or None
        for day, periods in enumerate(hours_set.days):
            spans: list[tuple[time, time]] = []
            for n, period in enumerate(periods):
                if period.blank:
                    continue
                name = f"{prefix}d{day}-p{n}"
                opens, closes = _wall(period.opens), _wall(period.closes)
                counters = period.counters.strip()
                if opens is None or closes is None or opens >= closes:
                    problems[f"{name}-opens"] = N_(
                        "Give an opening and a closing time, opening first."
                    )
                    continue
                open_counters = parse_int(counters, 1, 100)
                if open_counters is None:
                    problems[f"{name}-counters"] = N_("Give the counters open: 1 to 100.")
                    continue
                spans.append((opens, closes))
                rule = HoursRule(day, opens, closes, open_counters, valid_from, valid_until)
                rules.append(replace(rule, service_id=service_id))
            if any(a[1] > b[0] for a, b in itertools.pairwise(sorted(spans))):
                problems.setdefault(f"{prefix}d{day}-p0-opens", N_("The periods of a day overlap."))
    if problems:
        raise ValidationFailed(problems)
    return rules
