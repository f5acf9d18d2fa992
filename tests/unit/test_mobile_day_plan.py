"""A mobile day's slots and counters from its hours, in the venue's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.errors import ValidationFailed
from service.domain.mobile_day import (
    MobileDay,
    MobileHours,
    parse_mobile_day_form,
    plan_mobile_day,
)

ZONES = ["America/Edmonton", "America/Vancouver", "Europe/Paris", "Africa/Casablanca"]


def mobile_day(zone: str, days: list[date], counters: int = 2) -> MobileDay:
    return MobileDay(
        id=7,
        office_id="consulate-montreal",
        town={"ar": "x", "fr": "x", "en": "x"},
        country="CA",
        address="venue",
        timezone=zone,
        holiday_countries=("MA",),
        booking_opens_at=datetime(2027, 1, 1, tzinfo=UTC),
        hours=tuple(MobileHours(d, time(9), time(11), counters) for d in days),
        service_ids=("passport",),
    )


@given(
    zone=st.sampled_from(ZONES),
    first=st.dates(min_value=date(2027, 1, 1), max_value=date(2030, 12, 31)),
    gaps=st.lists(st.integers(min_value=1, max_value=40), max_size=3),
    holiday=st.booleans(),
)
def test_slots_keep_the_venues_wall_clock_and_skip_its_holidays(
    zone: str, first: date, gaps: list[int], holiday: bool
) -> None:
    days = [first]
    for gap in gaps:
        days.append(days[-1] + timedelta(days=gap))
    closed = [days[0]] if holiday else []
    durations = {"passport": timedelta(minutes=30), "cnie": timedelta(minutes=20)}
    plans, cells = plan_mobile_day(mobile_day(zone, days), durations, closed, first)
    venue = ZoneInfo(zone)
    # Only the offered service, four 30-minute slots on each open date, at
    # 09:00-11:00 the venue's time, each with the day's counters.
    assert {p.service_id for p in plans} <= {"passport"}
    open_days = [d for d in days if d not in closed]
    assert sorted({p.starts_at.astimezone(venue).date() for p in plans}) == open_days
    for p in plans:
        local = p.starts_at.astimezone(venue)
        assert time(9) <= local.time() < time(11) and local.minute in (0, 30)
        assert p.capacity == 2 and p.pooled
    assert len(plans) == 4 * len(open_days)
    # Counters: one cell per 5 minutes of the hours, nothing outside them.
    assert len(cells) == 24 * len(open_days)
    assert all(time(9) <= c.starts_at.astimezone(venue).time() < time(11) for c in cells)


def test_dates_before_today_are_not_planned() -> None:
    days = [date(2027, 2, 15), date(2027, 2, 16)]
    plans, cells = plan_mobile_day(
        mobile_day("America/Edmonton", days), {"passport": timedelta(minutes=30)}, [], days[1]
    )
    edmonton = ZoneInfo("America/Edmonton")
    assert {p.starts_at.astimezone(edmonton).date() for p in plans} == {days[1]}
    assert {c.starts_at.astimezone(edmonton).date() for c in cells} == {days[1]}
    assert plan_mobile_day(mobile_day("America/Edmonton", days), {}, [], date(2027, 3, 1)) == (
        [],
        [],
    )


FORM = {
    "town_fr": "Edmonton", "town_ar": "إدمونتون", "town_en": "Edmonton", "country": "ca",
    "address": "  Salle   communautaire, Edmonton ", "timezone": "America/Edmonton",
    "holidays": "ma ca-ab", "first_day": "2027-03-13", "days": "2", "opens": "09:00",
    "closes": "16:00", "counters": "2", "service-passport": "1", "service-cnie": "1",
    "opens_on": "2027-02-20", "opens_time": "09:00", "alert_km": "150",
}  # fmt: skip


def test_the_managers_form_makes_a_mobile_day_on_the_venues_clock() -> None:
    made = parse_mobile_day_form(FORM, "consulate-montreal", ["passport", "cnie", "legalization"])
    assert made.address == "Salle communautaire, Edmonton" and made.country == "CA"
    assert made.holiday_countries == ("MA", "CA-AB")
    assert made.dates == [date(2027, 3, 13), date(2027, 3, 14)]
    assert made.service_ids == ("passport", "cnie")
    # 09:00 in Edmonton (UTC-7 in February).
    assert made.booking_opens_at == datetime(2027, 2, 20, 16, tzinfo=UTC)
    # Subscribers within 150 km hear of it; the venue is found from its town
    # (service.office.mobile_days) unless the manager gives its position.
    assert made.alert_km == 150 and made.place is None
    placed = parse_mobile_day_form(
        {**FORM, "latitude": " 53,5461", "longitude": "-113.4938"}, "consulate-montreal", ["cnie"]
    )
    assert placed.place == (53.5461, -113.4938)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"town_ar": " "}, "town_ar"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"holidays": "MA; FR"}, "holidays"),
        ({"country": "CAN"}, "country"),
        # Shaped like regions, unknown to the holidays package.
        ({"holidays": "MA ZZ"}, "holidays"),
        ({"holidays": "CA-XX"}, "holidays"),
        ({"first_day": "13/03/2027"}, "first_day"),
        ({"days": "8"}, "days"),
        # Digits int() refuses: a superscript, more than Python reads at once.
        ({"days": "²"}, "days"),
        ({"days": "9" * 5000}, "days"),
        ({"counters": "³"}, "counters"),
        ({"counters": "9" * 5000}, "counters"),
        ({"closes": "08:00"}, "opens"),
        ({"counters": "0"}, "counters"),
        ({"service-passport": "", "service-cnie": ""}, "services"),
        ({"opens_on": "2027-03-13"}, "opens_on"),
        ({"opens_time": "9h"}, "opens_on"),
        ({"alert_km": "0"}, "alert_km"),
        ({"alert_km": "1001"}, "alert_km"),
        ({"alert_km": "１００"}, "alert_km"),
        ({"latitude": "91", "longitude": "2"}, "latitude"),
        ({"latitude": "47.9"}, "latitude"),
        ({"latitude": "nan", "longitude": "1.9"}, "latitude"),
        ({"latitude": "47.9", "longitude": "inf"}, "latitude"),
    ],
)
def test_the_managers_form_names_the_field_at_fault(change: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_mobile_day_form({**FORM, **change}, "consulate-montreal", ["passport", "cnie"])
    assert set(refused.value.fields) == {field}
