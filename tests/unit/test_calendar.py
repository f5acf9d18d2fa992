"""Slot expansion: wall-clock hours in the office zone, across DST and Ramadan."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain import fields
from service.domain.calendar import (
    HoursRule,
    expand_day,
    local_day_bounds,
    local_instant,
    plan_slots,
    rules_for_day,
)
from service.domain.holidays import (
    PUBLIC_HOLIDAY,
    UMM_AL_QURA_YEARS,
    holidays_for,
    ramadan_periods,
)
from service.domain.models import LANGUAGES
from service.domain.practical import is_ramadan
from service.web.i18n import gettext

ZONES = ["Europe/Paris", "Europe/Madrid", "America/Toronto", "Africa/Casablanca", "Europe/Berlin"]
WEEKDAY_HOURS = [
    HoursRule(weekday=d, opens_at=time(9), closes_at=time(12, 30), counters=3) for d in range(5)
] + [HoursRule(weekday=d, opens_at=time(13, 30), closes_at=time(16), counters=2) for d in range(5)]
RAMADAN_2027 = (date(2027, 2, 8), date(2027, 3, 8))
TIZNIT_RULES = [
    HoursRule(weekday=d, opens_at=time(8, 30), closes_at=time(12, 30), counters=2) for d in range(5)
] + [
    HoursRule(
        weekday=d,
        opens_at=time(9),
        closes_at=time(15),
        counters=2,
        valid_from=RAMADAN_2027[0],
        valid_until=RAMADAN_2027[1],
    )
    for d in range(5)
]

dates = st.dates(min_value=date(2026, 1, 1), max_value=date(2029, 12, 31))
zones = st.sampled_from(ZONES)
durations = st.sampled_from([10, 15, 20, 30, 45])


def test_tiznit_nine_oclock_across_the_ramadan_offset() -> None:
    zone = ZoneInfo("Africa/Casablanca")
    ten = timedelta(minutes=10)
    during = expand_day(TIZNIT_RULES, date(2027, 2, 15), zone, "legalization", ten)
    after = expand_day(TIZNIT_RULES, date(2027, 3, 15), zone, "legalization", ten)
    nine_during = [s for s in during if s.starts_at.astimezone(zone).time() == time(9)]
    nine_after = [s for s in after if s.starts_at.astimezone(zone).time() == time(9)]
    assert nine_during[0].starts_at.astimezone(zone).isoformat() == "2027-02-15T09:00:00+00:00"
    assert nine_after[0].starts_at.astimezone(zone).isoformat() == "2027-03-15T09:00:00+01:00"
    # Ramadan hours replace the usual ones: first slot 09:00, last ends 15:00.
    assert during[0].starts_at.astimezone(zone).time() == time(9)
    assert during[-1].ends_at.astimezone(zone).time() == time(15)
    assert after[0].starts_at.astimezone(zone).time() == time(8, 30)


def test_ramadan_rules_close_weekends_too() -> None:
    saturday = date(2027, 2, 13)
    assert rules_for_day(TIZNIT_RULES, saturday, "x") == []


def test_service_specific_rule_beats_general_rule_of_same_range() -> None:
    rules = [
        HoursRule(weekday=0, opens_at=time(9), closes_at=time(10), counters=4),
        HoursRule(weekday=0, opens_at=time(9), closes_at=time(9, 30), counters=1, service_id="a"),
    ]
    monday = date(2027, 1, 4)
    assert [r.counters for r in rules_for_day(rules, monday, "a")] == [1]
    assert [r.counters for r in rules_for_day(rules, monday, "b")] == [4]


def test_holidays_close_the_day() -> None:
    closed = {h.day for h in holidays_for(["MA"], date(2027, 1, 1), date(2027, 12, 31))}
    assert date(2027, 3, 9) in closed  # Eid al-Fitr (estimated)
    assert date(2027, 7, 30) in closed  # Throne Day
    plans = plan_slots(
        TIZNIT_RULES,
        closed,
        ZoneInfo("Africa/Casablanca"),
        {"legalization": timedelta(minutes=10)},
        date(2027, 3, 8),
        date(2027, 3, 11),
    )
    days = {p.starts_at.astimezone(ZoneInfo("Africa/Casablanca")).date() for p in plans}
    assert days == {date(2027, 3, 8), date(2027, 3, 11)}


def test_consulate_closes_for_host_country_holidays() -> None:
    closed = {h.day for h in holidays_for(["MA", "FR"], date(2027, 1, 1), date(2027, 12, 31))}
    assert date(2027, 7, 14) in closed  # Fête nationale
    assert date(2027, 3, 9) in closed


def test_a_holiday_without_a_name_in_the_pages_language_is_called_a_public_holiday() -> None:
    # The package names French holidays in French and English, not Arabic:
    # an Arabic page said "Closed: Christmas Day".
    by_day = {h.day: h for h in holidays_for(["MA", "FR"], date(2026, 12, 1), date(2027, 1, 31))}
    christmas = by_day[date(2026, 12, 25)].names
    assert christmas["ar"] == PUBLIC_HOLIDAY["ar"] and christmas["zgh"] == PUBLIC_HOLIDAY["zgh"]
    assert christmas["fr"] == "Noël" and christmas["en"] == "Christmas Day"
    # Both countries' names of New Year's Day, each joined as its language does.
    new_year = by_day[date(2027, 1, 1)].names
    assert new_year["ar"] == "رأس السنة الميلادية"  # Morocco's; France has none in Arabic
    assert new_year["fr"] == "Nouvel an ; Jour de l'an"
    assert new_year["en"] == "New Year's Day"  # one name, said once


def test_spanish_pages_name_moroccan_and_french_holidays_in_spanish() -> None:
    # The package has no Spanish names for Morocco's or France's holidays:
    # a consulate in Spain said "Fête du Trône" on its Spanish pages.
    by_day = {
        h.day: h.names for h in holidays_for(["MA", "FR"], date(2027, 1, 1), date(2027, 12, 31))
    }
    assert by_day[date(2027, 7, 30)]["es"] == "Fiesta del Trono"
    assert by_day[date(2027, 1, 1)]["es"] == "Año Nuevo"  # both countries', said once
    assert by_day[date(2027, 3, 9)]["es"] == "Aid al Fitr (fecha estimada)"
    # Two holidays of the two countries on one day, each named.
    assert by_day[date(2027, 8, 15)]["es"] == "Nacimiento del Profeta (fecha estimada); Asunción"
    # Every Moroccan and French holiday has a Spanish name of its own.
    french = {
        h.names["fr"] for h in holidays_for(["MA", "FR"], date(2026, 1, 1), date(2029, 12, 31))
    }
    spanish = {
        h.names["es"] for h in holidays_for(["MA", "FR"], date(2026, 1, 1), date(2029, 12, 31))
    }
    assert not spanish & french, spanish & french
    # Spain's own come from the package; a region we have no names for keeps
    # the fallback language's (Quebec's in French).
    spain = {
        h.day: h.names for h in holidays_for(["MA", "ES"], date(2027, 1, 1), date(2027, 1, 31))
    }
    assert spain[date(2027, 1, 6)]["es"] == "Epifanía del Señor"
    quebec = {h.day: h.names for h in holidays_for(["CA-QC"], date(2027, 6, 1), date(2027, 6, 30))}
    assert quebec[date(2027, 6, 24)]["es"] == quebec[date(2027, 6, 24)]["fr"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_public_holiday_name_is_the_catalogs(language: str) -> None:
    # Stored with each closure, so written in the domain; the pages' own
    # word for a holiday closure must not drift from it.
    assert PUBLIC_HOLIDAY[language].lower() == gettext(language, "public holiday").lower()


def test_regional_holidays() -> None:
    quebec = {h.day: h for h in holidays_for(["MA", "CA-QC"], date(2027, 1, 1), date(2027, 12, 31))}
    federal = {h.day for h in holidays_for(["CA"], date(2027, 1, 1), date(2027, 12, 31))}
    assert date(2027, 6, 24) in quebec and date(2027, 6, 24) not in federal
    assert "Québec" in quebec[date(2027, 6, 24)].names["fr"]
    assert date(2027, 7, 1) in quebec  # Canada Day, federal, still there


def test_skipped_wall_time_yields_no_instant() -> None:
    paris = ZoneInfo("Europe/Paris")
    assert local_instant(date(2027, 3, 28), time(2, 30), paris) is None
    assert local_instant(date(2027, 3, 28), time(3, 30), paris) is not None


def test_overnight_rule_across_spring_forward_skips_missing_hour() -> None:
    paris = ZoneInfo("Europe/Paris")
    rules = [HoursRule(weekday=6, opens_at=time(1), closes_at=time(4), counters=1)]
    plans = expand_day(rules, date(2027, 3, 28), paris, "s", timedelta(minutes=30))
    walls = [p.starts_at.astimezone(paris).time() for p in plans]
    assert time(2) not in walls and time(2, 30) not in walls
    assert all(p.ends_at - p.starts_at == timedelta(minutes=30) for p in plans)


@settings(max_examples=300, deadline=None)
@given(day=dates, zone_name=zones, minutes=durations)
def test_slots_keep_wall_clock_and_lie_inside_the_hours(
    day: date, zone_name: str, minutes: int
) -> None:
    zone = ZoneInfo(zone_name)
    plans = expand_day(WEEKDAY_HOURS, day, zone, "s", timedelta(minutes=minutes))
    if day.weekday() >= 5:
        assert plans == []
        return
    assert plans, "a weekday with opening hours has slots"
    for plan in plans:
        local_start = plan.starts_at.astimezone(zone)
        local_end = plan.ends_at.astimezone(zone)
        assert plan.starts_at.tzinfo is not None
        assert local_start.date() == day
        assert plan.ends_at - plan.starts_at == timedelta(minutes=minutes)
        in_morning = time(9) <= local_start.time() and local_end.time() <= time(12, 30)
        in_afternoon = time(13, 30) <= local_start.time() and local_end.time() <= time(16)
        assert in_morning or in_afternoon
        assert plan.capacity == (3 if in_morning else 2)
        # Wall-clock starts sit on the grid from the opening time.
        opening = time(9) if in_morning else time(13, 30)
        offset = (
            datetime.combine(day, local_start.time()) - datetime.combine(day, opening)
        ).total_seconds()
        assert offset % (minutes * 60) == 0
    starts = [p.starts_at for p in plans]
    assert starts == sorted(set(starts))


@settings(max_examples=200, deadline=None)
@given(day=dates, minutes=durations)
def test_casablanca_follows_ramadan_hours_and_offset(day: date, minutes: int) -> None:
    zone = ZoneInfo("Africa/Casablanca")
    plans = expand_day(TIZNIT_RULES, day, zone, "s", timedelta(minutes=minutes))
    if day.weekday() >= 5:
        assert plans == []
        return
    in_ramadan = RAMADAN_2027[0] <= day <= RAMADAN_2027[1]
    first = plans[0].starts_at.astimezone(zone)
    assert first.time() == (time(9) if in_ramadan else time(8, 30))
    # The offset comes from tzdata (UTC+0 during Ramadan 2027, UTC+1 otherwise).
    expected = datetime.combine(day, first.time(), tzinfo=zone).utcoffset()
    assert first.utcoffset() == expected
    if date(2027, 2, 14) <= day <= date(2027, 3, 13):
        assert first.utcoffset() == timedelta(0)
    last_end = plans[-1].ends_at.astimezone(zone).time()
    assert last_end <= (time(15) if in_ramadan else time(12, 30))


@settings(max_examples=200, deadline=None)
@given(day=dates, zone_name=zones)
def test_local_day_bounds_cover_exactly_one_local_day(day: date, zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    start, end = local_day_bounds(day, zone)
    assert start.astimezone(zone).date() == day
    assert (end - timedelta(microseconds=1)).astimezone(zone).date() == day
    assert timedelta(hours=23) <= end - start <= timedelta(hours=25)
    assert start.tzinfo is not None and start.utcoffset() == UTC.utcoffset(None)


@settings(max_examples=100, deadline=None)
@given(
    first=dates,
    length=st.integers(min_value=0, max_value=20),
    range_start=st.integers(min_value=-10, max_value=10),
    range_len=st.integers(min_value=0, max_value=15),
)
def test_dated_rules_apply_exactly_within_their_range(
    first: date, length: int, range_start: int, range_len: int
) -> None:
    valid_from = first + timedelta(days=range_start)
    valid_until = valid_from + timedelta(days=range_len)
    rules = [
        HoursRule(weekday=d, opens_at=time(8), closes_at=time(9), counters=1) for d in range(7)
    ] + [
        HoursRule(
            weekday=d,
            opens_at=time(10),
            closes_at=time(11),
            counters=5,
            valid_from=valid_from,
            valid_until=valid_until,
        )
        for d in range(7)
    ]
    zone = ZoneInfo("Europe/Paris")
    plans = plan_slots(
        rules, set(), zone, {"s": timedelta(hours=1)}, first, first + timedelta(days=length)
    )
    for plan in plans:
        local = plan.starts_at.astimezone(zone)
        dated = valid_from <= local.date() <= valid_until
        assert local.time() == (time(10) if dated else time(8))
        assert plan.capacity == (5 if dated else 1)
    assert len(plans) == length + 1


@settings(max_examples=100, deadline=None)
@given(first=dates, length=st.integers(min_value=0, max_value=30), data=st.data())
def test_closed_days_have_no_slots(first: date, length: int, data: st.DataObject) -> None:
    last = first + timedelta(days=length)
    closed = set(data.draw(st.lists(st.dates(min_value=first, max_value=last), max_size=10)))
    zone = ZoneInfo("America/Toronto")
    plans = plan_slots(WEEKDAY_HOURS, closed, zone, {"s": timedelta(minutes=30)}, first, last)
    slot_days = {p.starts_at.astimezone(zone).date() for p in plans}
    assert not slot_days & closed
    open_weekdays = {
        first + timedelta(days=i)
        for i in range(length + 1)
        if (first + timedelta(days=i)).weekday() < 5
    } - closed
    assert slot_days == open_weekdays


@settings(max_examples=200, deadline=None)
@given(
    minute=st.integers(min_value=0, max_value=60 * 24 * 365),
    length=st.integers(min_value=1, max_value=240),
)
def test_cells_covering_counts_every_touched_cell(minute: int, length: int) -> None:
    from service.domain.calendar import CELL, cell_start, cells_covering

    start = datetime(2027, 1, 1, tzinfo=UTC) + timedelta(minutes=minute)
    end = start + timedelta(minutes=length)
    touched = set()
    t = cell_start(start)
    while t < end:
        touched.add(t)
        t += CELL
    assert cells_covering(start, end) == len(touched)


@settings(max_examples=100, deadline=None)
@given(day=dates, zone_name=zones)
def test_counters_follow_the_general_hours(day: date, zone_name: str) -> None:
    from service.domain.calendar import CELL, expand_counters

    zone = ZoneInfo(zone_name)
    dedicated = HoursRule(
        weekday=day.weekday(),
        opens_at=time(17),
        closes_at=time(18),
        counters=9,
        service_id="passport",
    )
    cells = expand_counters([*WEEKDAY_HOURS, dedicated], day, zone)
    if day.weekday() >= 5:
        assert cells == []
        return
    # 09:00-12:30 with 3 counters, 13:30-16:00 with 2; dedicated hours add none.
    assert len(cells) == (210 + 150) // 5
    assert {c.capacity for c in cells} == {2, 3}
    for cell in cells:
        local = cell.starts_at.astimezone(zone).time()
        assert cell.capacity == (3 if local < time(12, 30) else 2)
    assert all(b.starts_at - a.starts_at >= CELL for a, b in pairwise(cells))


def test_slots_of_dedicated_hours_are_not_pooled() -> None:
    monday = date(2027, 1, 4)
    rules = [
        HoursRule(weekday=0, opens_at=time(9), closes_at=time(10), counters=4),
        HoursRule(weekday=0, opens_at=time(9), closes_at=time(10), counters=1, service_id="a"),
    ]
    paris = ZoneInfo("Europe/Paris")
    assert {p.pooled for p in expand_day(rules, monday, paris, "a", timedelta(minutes=30))} == {
        False
    }
    assert {p.pooled for p in expand_day(rules, monday, paris, "b", timedelta(minutes=30))} == {
        True
    }


@given(st.dates(fields.FIRST_DAY, fields.LAST_DAY), st.integers(0, 800))
def test_ramadan_is_known_or_absent_for_every_day_a_form_takes(first: date, length: int) -> None:
    """A manager's dated hours may run to LAST_DAY; the Umm al-Qura calendar
    stops in 2077: past it no Ramadan is known, and no page fails."""
    last = min(first + timedelta(days=length), fields.LAST_DAY)
    is_ramadan(first, last)
    periods = ramadan_periods(first.year, last.year)
    for begins, ends in periods:
        assert 28 <= (ends - begins).days <= 29
        assert begins.year <= UMM_AL_QURA_YEARS[1] + 1
    if first.year > UMM_AL_QURA_YEARS[1] + 1:
        assert periods == []
    if first.year <= 2075 and last.year >= 2026:
        assert periods


def test_ramadan_periods_are_umm_al_qura_s() -> None:
    assert ramadan_periods(2026, 2026)[0] == (date(2026, 2, 18), date(2026, 3, 19))
    assert ramadan_periods(2076, 2199)[-1] == (date(2077, 7, 21), date(2077, 8, 18))
