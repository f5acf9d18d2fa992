"""The hours editor's format, stranded bookings, the counters' load, weekly stats."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.calendar import HoursRule, SlotPlan
from service.domain.errors import ValidationFailed
from service.domain.office_day import (
    RUN_GAP,
    WHATSAPP_STATUSES,
    BookedSeat,
    BookingFacts,
    Load,
    format_hours,
    load_per_time,
    parse_hours,
    parse_week,
    quiet_runs,
    read_closure,
    stranded,
    week_label,
    week_of,
    weekly_stats,
)

SERVICES = ["passport", "cnie"]


def test_parse_the_documented_examples() -> None:
    rules = parse_hours(
        "mon-fri 09:00-12:30 13:30-16:00 x4\n"
        "# Ramadan\n"
        "2027-02-07..2027-03-08 mon-fri 09:00-15:00 x3\n"
        "sat 09:00-12:00 x1 service=passport\n",
        SERVICES,
    )
    assert len(rules) == 5 * 2 + 5 + 1
    assert HoursRule(0, time(9), time(12, 30), 4) in rules
    assert HoursRule(4, time(9), time(15), 3, date(2027, 2, 7), date(2027, 3, 8)) in rules
    assert HoursRule(5, time(9), time(12), 1, service_id="passport") in rules


@pytest.mark.parametrize(
    "line",
    [
        "mon-fri 09:00-12:30",  # no counters
        "mon-fri x3",  # no times
        "funday 09:00-10:00 x1",
        "fri-mon 09:00-10:00 x1",
        "mon 10:00-09:00 x1",
        "mon 09:00-11:00 10:00-12:00 x1",  # overlap
        "mon 25:00-26:00 x1",
        "mon 09:00-10:00 x0",
        "mon 09:00-10:00 x101",
        "2027-03-08..2027-02-07 mon 09:00-10:00 x1",
        "2027-02-30..2027-03-01 mon 09:00-10:00 x1",
        "mon 09:00-10:00 x1 service=visa",
        "mon 09:00-10:00 x1 extra",
    ],
)
def test_bad_lines_are_named(line: str) -> None:
    with pytest.raises(ValidationFailed) as bad:
        parse_hours("mon-fri 09:00-12:00 x2\n" + line, SERVICES)
    assert list(bad.value.fields) == ["2"]


rules_strategy = st.lists(
    st.builds(
        lambda weekday, start, length, counters, rng, service: HoursRule(
            weekday,
            time(start // 60, start % 60),
            time((start + length) // 60, (start + length) % 60),
            counters,
            rng[0] if rng else None,
            rng[1] if rng else None,
            service,
        ),
        st.integers(0, 6),
        st.integers(6 * 60, 12 * 60).map(lambda m: m - m % 5),
        st.integers(1, 10).map(lambda n: n * 30),
        st.integers(1, 100),
        st.one_of(
            st.none(),
            st.tuples(st.dates(date(2026, 1, 1), date(2028, 1, 1)), st.integers(0, 60)).map(
                lambda t: (t[0], t[0] + timedelta(days=t[1]))
            ),
        ),
        st.sampled_from([None, *SERVICES]),
    ),
    max_size=12,
    unique_by=lambda r: (r.weekday, r.valid_from, r.service_id, r.counters),
)


@given(rules_strategy)
def test_format_then_parse_gives_the_rules_back(rules: list[HoursRule]) -> None:
    assert sorted(parse_hours(format_hours(rules), SERVICES), key=repr) == sorted(rules, key=repr)


NOW = datetime(2027, 2, 1, 10, tzinfo=UTC)


def seat(ref: str, hour: int, status: str = "confirmed", day: int = 2, made: int = 0) -> BookedSeat:
    return BookedSeat(
        ref,
        "passport",
        datetime(2027, 2, day, hour, tzinfo=UTC),
        status,
        NOW - timedelta(hours=24) + timedelta(minutes=made),
        made,
    )


def plan(hour: int, day: int = 2, capacity: int = 2) -> SlotPlan:
    start = datetime(2027, 2, day, hour, tzinfo=UTC)
    return SlotPlan("passport", start, start + timedelta(minutes=30), capacity)


def test_stranded_lists_active_future_bookings_without_a_planned_slot() -> None:
    seats = [
        seat("AA-1", 9),
        seat("AA-2", 10),  # slot still planned
        seat("AA-3", 9, "cancelled"),  # inactive
        seat("AA-4", 8, day=1),  # already past
        seat("AA-5", 11, "checked_in"),
    ]
    lost = stranded(seats, [plan(10)], NOW)
    assert [s.reference for s in lost] == ["AA-1", "AA-5"]


def test_stranded_lists_the_latest_made_bookings_beyond_a_lowered_capacity() -> None:
    seats = [
        seat("AA-3", 10, made=3),
        seat("AA-1", 10, made=1),
        seat("AA-4", 10, "checked_in", made=4),  # at the counter already: keeps a seat
        seat("AA-2", 10, made=2),
        seat("AA-5", 10, "cancelled", made=5),  # holds no seat
        seat("AA-6", 11, made=6),
    ]
    lost = stranded(seats, [plan(10, capacity=2), plan(11, capacity=1)], NOW)
    assert [s.reference for s in lost] == ["AA-2", "AA-3"]
    assert stranded(seats, [plan(10, capacity=4), plan(11, capacity=1)], NOW) == []


def test_load_counts_people_against_counters_not_summed_over_services() -> None:
    at9 = datetime(2027, 2, 2, 9, tzinfo=UTC)
    at10 = at9 + timedelta(hours=1)
    loads = load_per_time(
        [(at9, "confirmed"), (at9, "done"), (at9, "cancelled"), (at10, "no_show")],
        [(at9, 4), (at9, 4), (at10, 4)],
    )
    assert [(x.booked, x.counters) for x in loads] == [(2, 4), (0, 4)]


def test_times_with_nobody_expected_are_one_row_per_run() -> None:
    at = [datetime(2027, 2, 2, 9, tzinfo=UTC) + timedelta(minutes=10 * n) for n in range(8)]
    load = [
        Load(t, b, c)
        for t, b, c in zip(at, [0, 0, 0, 2, 0, 0, 1, 0], [3, 3, 3, 3, 3, 2, 2, 2], strict=True)
    ]
    rows = [(x.starts_at, x.last_at, x.booked, x.counters) for x in quiet_runs(load)]
    assert rows == [
        (at[0], at[2], 0, 3),
        (at[3], None, 2, 3),
        (at[4], None, 0, 3),  # alone before the counters change: its own row
        (at[5], None, 0, 2),
        (at[6], None, 1, 2),
        (at[7], None, 0, 2),
    ]
    # A lunch break splits a quiet stretch: no row says there were times in it.
    noon = datetime(2027, 2, 2, 12, tzinfo=UTC)
    day = [Load(noon, 0, 2), Load(noon + timedelta(minutes=10), 0, 2)]
    day += [
        Load(noon + timedelta(hours=2), 0, 2),
        Load(noon + timedelta(hours=2, minutes=10), 0, 2),
    ]
    assert [(x.starts_at.hour, x.last_at and x.last_at.hour) for x in quiet_runs(day)] == [
        (12, 12),
        (14, 14),
    ]


@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(1, 2), st.sampled_from([5, 10, 15, 45, 60])),
        max_size=40,
    ),
)
def test_quiet_runs_keep_every_time_and_every_person(cells: list[tuple[int, int, int]]) -> None:
    start = datetime(2027, 2, 2, 8, tzinfo=UTC)
    times = list(itertools.accumulate((step for _, _, step in cells), initial=0))
    load = [
        Load(start + timedelta(minutes=m), b, c) for m, (b, c, _) in zip(times, cells, strict=False)
    ]
    rows = quiet_runs(load)
    assert sum(x.booked for x in rows) == sum(x.booked for x in load)
    # Every time falls in exactly one row, with its counters; rows stay in order.
    for x in load:
        holding = [r for r in rows if r.starts_at <= x.starts_at <= (r.last_at or r.starts_at)]
        assert len(holding) == 1 and holding[0].counters == x.counters
        assert holding[0].booked == x.booked or holding[0].last_at is not None
    assert [r.starts_at for r in rows] == sorted(r.starts_at for r in rows)
    # No two rows left that could be one; no run spans a break.
    for a, b in itertools.pairwise(rows):
        near = b.starts_at - (a.last_at or a.starts_at) <= RUN_GAP
        assert not (a.booked == b.booked == 0 and a.counters == b.counters and near)
    for r in rows:
        inside = [
            x.starts_at for x in load if r.starts_at <= x.starts_at <= (r.last_at or r.starts_at)
        ]
        assert all(b - a <= RUN_GAP for a, b in itertools.pairwise(inside))
    assert all(r.booked == 0 for r in rows if r.last_at is not None)


def test_weeks() -> None:
    assert parse_week("2027-W05") == date(2027, 2, 1)
    assert parse_week("2027-w05") == date(2027, 2, 1)
    assert parse_week("2027-W60") is None
    assert parse_week("nonsense") is None
    assert week_of(date(2027, 2, 7)) == date(2027, 2, 1)
    assert week_label(date(2027, 2, 1)) == "2027-W05"


def test_weekly_stats() -> None:
    start = datetime(2027, 2, 3, 9, tzinfo=UTC)
    facts = [
        BookingFacts("done", start - timedelta(hours=24), start),
        BookingFacts("checked_in", start - timedelta(hours=48), start),
        BookingFacts("no_show", start - timedelta(hours=72), start),
        BookingFacts("cancelled", start - timedelta(hours=96), start),
        BookingFacts("confirmed", start - timedelta(hours=120), start),
        BookingFacts("expired", start - timedelta(hours=1), start),  # a lapsed hold: ignored
    ]
    stats = weekly_stats(facts, bookings_made=7, sms_segments=11, price_per_segment=0.07)
    assert stats.appointments == 5
    assert stats.bookings_made == 7
    assert stats.cancellations == 1
    assert stats.no_show_rate == pytest.approx(1 / 3)
    assert stats.median_lead_time_hours == 72
    assert stats.sms_segments == 11
    assert stats.sms_cost == 0.77


def test_weekly_stats_of_an_empty_week() -> None:
    stats = weekly_stats([], 0, 0, 0.07)
    assert stats.no_show_rate is None
    assert stats.median_lead_time_hours is None
    assert stats.sms_cost == 0
    assert stats.whatsapp == dict.fromkeys(WHATSAPP_STATUSES, 0)
    assert set(WHATSAPP_STATUSES) == {"read", "delivered", "sent", "undelivered", "failed"}
    assert stats.whatsapp_messages == 0


def test_weekly_stats_count_whatsapp_messages_by_status() -> None:
    stats = weekly_stats([], 0, 0, 0.07, {"read": 4, "failed": 1, "sent": 2})
    assert stats.whatsapp == {"read": 4, "delivered": 0, "sent": 2, "undelivered": 0, "failed": 1}
    assert stats.whatsapp_messages == 7
    assert stats.sms_cost == 0  # WhatsApp is not billed by the segment


def test_a_closure_from_today_on_with_a_reason() -> None:
    today = date(2027, 2, 1)
    closure = read_closure({"day": "2027-02-01", "reason_fr": "  Grève\n générale "}, today)
    assert closure.day == today
    # Languages left empty stay so: their readers get a generic reason.
    assert closure.reasons == {"fr": "Grève générale", "ar": "", "en": ""}
    assert (
        len(read_closure({"day": "2027-02-02", "reason_en": "x" * 500}, today).reasons["en"]) == 200
    )


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"day": "2027-01-31", "reason_fr": "Grève"}, "This day has passed"),
        ({"day": "2027-02-30", "reason_fr": "Grève"}, "Give a date and a reason"),
        ({"reason_fr": "Grève"}, "Give a date and a reason"),
        ({"day": "2027-02-02", "reason_fr": "  "}, "Give a date and a reason"),
    ],
)
def test_a_closure_before_today_or_without_day_or_reason_is_refused(
    form: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        read_closure(form, date(2027, 2, 1))
    assert list(refused.value.fields) == ["closure-day"]
    assert refused.value.fields["closure-day"].startswith(message)
