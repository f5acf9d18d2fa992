"""Choosing a time: day parts in the office's zone, the day to open, masked contacts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from service.domain.choosing import group_by_part, part_of_day, pick_day
from service.domain.masking import mask_email, mask_phone

ZONES = ["Europe/Paris", "Africa/Casablanca", "America/Toronto", "Asia/Dubai"]


@dataclass(frozen=True)
class Time:
    starts_at: datetime


def test_noon_on_the_office_wall_clock_begins_the_afternoon() -> None:
    paris = ZoneInfo("Europe/Paris")
    assert part_of_day(datetime(2027, 2, 1, 11, 59, tzinfo=paris), "Europe/Paris") == "morning"
    assert part_of_day(datetime(2027, 2, 1, 12, 0, tzinfo=paris), "Europe/Paris") == "afternoon"
    # One instant, two offices: what counts is each office's own clock.
    instant = datetime(2027, 2, 1, 11, 30, tzinfo=UTC)
    assert part_of_day(instant, "Europe/Paris") == "afternoon"
    assert part_of_day(instant, "America/Toronto") == "morning"


def test_groups_keep_order_and_leave_out_empty_parts() -> None:
    paris = ZoneInfo("Europe/Paris")
    times = [Time(datetime(2027, 2, 1, h, m, tzinfo=paris)) for h, m in [(14, 0), (9, 0), (9, 30)]]
    groups = group_by_part(times, "Europe/Paris")
    assert [g.part for g in groups] == ["morning", "afternoon"]
    assert [t.starts_at.hour for t in groups[0].times] == [9, 9]
    assert groups[0].times[0].starts_at < groups[0].times[1].starts_at
    only_morning = group_by_part(times[1:], "Europe/Paris")
    assert [g.part for g in only_morning] == ["morning"]
    assert group_by_part([], "Europe/Paris") == []


@given(
    st.lists(
        st.datetimes(
            min_value=datetime(2026, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
        ),
        max_size=40,
    ),
    st.sampled_from(ZONES),
)
def test_every_time_lands_in_exactly_one_part_in_order(
    instants: list[datetime], zone: str
) -> None:
    times = [Time(i) for i in instants]
    groups = group_by_part(times, zone)
    flat = [t for g in groups for t in g.times]
    assert sorted(flat, key=lambda t: t.starts_at) == sorted(times, key=lambda t: t.starts_at)
    for g in groups:
        assert g.times
        assert all(part_of_day(t.starts_at, zone) == g.part for t in g.times)
        assert g.times == sorted(g.times, key=lambda t: t.starts_at)
    mornings = [t for g in groups if g.part == "morning" for t in g.times]
    afternoons = [t for g in groups if g.part == "afternoon" for t in g.times]
    for m in mornings:
        assert m.starts_at.astimezone(ZoneInfo(zone)).hour < 12
    for a in afternoons:
        assert a.starts_at.astimezone(ZoneInfo(zone)).hour >= 12


WEEK = [date(2027, 2, 1) + timedelta(days=n) for n in range(7)]


def test_the_day_asked_for_opens_even_when_full() -> None:
    counts = list(zip(WEEK, [0, 3, 0, 5, 0, 0, 0], strict=True))
    assert pick_day(counts, date(2027, 2, 3)) == date(2027, 2, 3)
    assert pick_day(counts, None) == date(2027, 2, 2)
    # A day of another week is not on the page: the first free one opens.
    assert pick_day(counts, date(2027, 3, 3)) == date(2027, 2, 2)
    assert pick_day(list(zip(WEEK, [0] * 7, strict=True)), None) is None


@given(st.lists(st.integers(min_value=0, max_value=50), min_size=7, max_size=7), st.integers(0, 9))
def test_the_opened_day_is_on_the_page_and_free_unless_asked(
    free: list[int], asked: int
) -> None:
    counts = list(zip(WEEK, free, strict=True))
    requested = WEEK[0] + timedelta(days=asked)
    chosen = pick_day(counts, requested)
    if requested in WEEK:
        assert chosen == requested
    elif any(free):
        assert chosen == WEEK[next(i for i, n in enumerate(free) if n)]
    else:
        assert chosen is None


def test_phones_keep_the_country_code_first_and_last_two_digits() -> None:
    assert mask_phone("+33612345678") == "+33 6 •• •• •• 78"
    assert mask_phone("+212612345678") == "+212 6 •• •• •• 78"
    assert mask_phone("+447400123456") == "+44 7••• ••••56"


def test_emails_keep_the_first_letter_and_the_domain() -> None:
    assert mask_email("fatima@example.com") == "f•••@example.com"
    assert mask_email("a@b.ma") == "a•••@b.ma"
    assert "fatima" not in mask_email("fatima.zahra@example.com")
    assert mask_email("broken") == "•••"
