"""Practical information citizens read before they come: the office's phone,
e-mail, way there, step-free access and opening hours (Ramadan hours too),
and the rules of the form managers edit them with. Each service's own part
(description, fees, what to bring, when to arrive, if late) is edited with the
service's settings (service.domain.service_settings). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, time, timedelta

from service.domain.calendar import HoursRule
from service.domain.errors import N_, ValidationFailed
from service.domain.fields import DESCRIPTION_MAX, EMAIL_MAX, PRACTICAL_TEXT_MAX
from service.domain.holidays import ramadan_periods
from service.domain.models import STORED_LANGUAGES, no_text
from service.domain.phone import parse_phone
from service.domain.validation import is_email

# The limits the database also checks (migration 0020).
MAX_TEXT = PRACTICAL_TEXT_MAX
MAX_DESCRIPTION = DESCRIPTION_MAX
MAX_EMAIL = EMAIL_MAX
ARRIVE_EARLY_MINUTES = (0, 120)


@dataclass(frozen=True, slots=True)
class OfficeInfo:
    phone: str = ""  # E.164, or "" when the office gives none
    email: str = ""
    directions: dict[str, str] = field(default_factory=no_text)
    access: dict[str, str] = field(default_factory=no_text)
    # Written by the demo seed: the pages say it is example text.
    demo: bool = False


def clean_text(raw: str | None) -> str:
    """A manager's text: lines kept, trailing spaces and blank ends dropped."""
    return "\n".join(line.rstrip() for line in (raw or "").splitlines()).strip()


def texts_by_language(
    form: Mapping[str, str], name: str, limit: int, problems: dict[str, str]
) -> dict[str, str]:
    """`{name}_ar`, `{name}_fr`, `{name}_en` of a form, each checked against
    `limit` (es and zgh readers see the French and the Arabic text)."""
    texts = dict.fromkeys(STORED_LANGUAGES, "")
    for language in STORED_LANGUAGES:
        text = clean_text(form.get(f"{name}_{language}"))
        if len(text) > limit:
            problems[f"{name}_{language}"] = (
                N_("Keep this under 200 characters.")
                if limit == MAX_DESCRIPTION
                else N_("Keep this under 1000 characters.")
            )
        texts[language] = text
    return texts


def parse_office_info(form: Mapping[str, str], country: str) -> OfficeInfo:
    """The practical information a submitted form asks for; ValidationFailed
    names each field at fault. A phone without its + is read in `country`."""
    problems: dict[str, str] = {}
    raw_phone = (form.get("phone") or "").strip()
    phone = parse_phone(raw_phone, country) if raw_phone else ""
    if phone is None:
        problems["phone"] = N_("Enter the office's phone number, with its country code.")
    email = (form.get("email") or "").strip().lower()
    if email and (len(email) > MAX_EMAIL or not is_email(email)):
        problems["email"] = N_("Enter a valid e-mail address.")
    directions = texts_by_language(form, "directions", MAX_TEXT, problems)
    access = texts_by_language(form, "access", MAX_TEXT, problems)
    if problems or phone is None:
        raise ValidationFailed(problems)
    return OfficeInfo(phone, email, directions, access)


# Opening hours as citizens read them --------------------------------------------------

# How far ahead special hours (Ramadan) are announced on the office's page.
ANNOUNCE_AHEAD = timedelta(days=60)


@dataclass(frozen=True, slots=True)
class DayHours:
    """Days of the week (0 = Monday) that share the same opening periods;
    no periods: closed on those days."""

    weekdays: tuple[int, ...]
    periods: tuple[tuple[time, time], ...]


@dataclass(frozen=True, slots=True)
class WeekHours:
    days: list[DayHours]
    # The dates these hours replace the usual ones (None: the usual hours).
    first: date | None = None
    last: date | None = None
    ramadan: bool = False


def _week(rules: Iterable[HoursRule]) -> list[DayHours]:
    periods: dict[int, set[tuple[time, time]]] = {day: set() for day in range(7)}
    for rule in rules:
        periods[rule.weekday].add((rule.opens_at, rule.closes_at))
    days: list[DayHours] = []
    for day in range(7):
        spans = tuple(sorted(periods[day]))
        # Consecutive days with the same hours read as one line ("Mon–Fri").
        if days and days[-1].periods == spans and days[-1].weekdays[-1] == day - 1:
            days[-1] = DayHours((*days[-1].weekdays, day), spans)
        else:
            days.append(DayHours((day,), spans))
    return days


def is_ramadan(first: date, last: date) -> bool:
    """Whether most of [first, last] falls in a month of Ramadan."""
    overlap = 0
    for begins, ends in ramadan_periods(first.year - 1, last.year):
        start, end = max(first, begins), min(last, ends)
        overlap += max((end - start).days + 1, 0)
    return overlap * 2 > (last - first).days + 1


def opening_hours(rules: Iterable[HoursRule], today: date) -> list[WeekHours]:
    """The office's usual week, then each set of dated hours (Ramadan hours)
    that is on now or starts within ANNOUNCE_AHEAD. Hours kept for one service
    only are left out: the page speaks of the office."""
    general = [r for r in rules if r.service_id is None]
    weeks = [WeekHours(_week(r for r in general if r.valid_from is None))]
    dated: dict[tuple[date, date], list[HoursRule]] = {}
    for rule in general:
        if rule.valid_from is not None and rule.valid_until is not None:
            dated.setdefault((rule.valid_from, rule.valid_until), []).append(rule)
    for (first, last), chosen in sorted(dated.items()):
        if last >= today and first <= today + ANNOUNCE_AHEAD:
            weeks.append(WeekHours(_week(chosen), first, last, is_ramadan(first, last)))
    return weeks
