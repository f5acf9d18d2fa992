"""The opening hours form (service.domain.hours_form): what the page shows is
what saving it gives back, copying a day, and each mistake named on its field."""

from __future__ import annotations

from datetime import date, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.calendar import HoursRule
from service.domain.errors import ValidationFailed
from service.domain.hours_form import (
    MAX_PERIODS,
    copy_day,
    kept_rules,
    read_sets,
    rules_of,
    sets_of,
    with_blank_periods,
)

TODAY = date(2027, 2, 1)
SERVICES = ["passport", "cnie"]


def fields_of(sets: list) -> dict[str, str]:  # type: ignore[type-arg]
    """The form a browser sends back for `sets`, as the page renders them."""
    form = {"sets": str(len(sets))}
    for i, s in enumerate(map(with_blank_periods, sets)):
        form[f"s{i}-from"], form[f"s{i}-until"] = s.valid_from, s.valid_until
        form[f"s{i}-service"] = s.service_id
        for d, periods in enumerate(s.days):
            for n, p in enumerate(periods):
                form[f"s{i}-d{d}-p{n}-opens"] = p.opens
                form[f"s{i}-d{d}-p{n}-closes"] = p.closes
                form[f"s{i}-d{d}-p{n}-counters"] = p.counters
    return form


def key(rule: HoursRule) -> tuple[object, ...]:
    return (rule.valid_from or date.min, rule.service_id or "", rule.weekday, rule.opens_at)


@st.composite
def a_week(draw: st.DrawFn) -> list[HoursRule]:
    rules = []
    ranges = [(None, None, None), (date(2027, 2, 8), date(2027, 3, 9), None),
              (None, None, "passport")]  # fmt: skip
    for valid_from, valid_until, service in draw(st.lists(st.sampled_from(ranges), min_size=1,
                                                          unique=True)):  # fmt: skip
        for day in draw(st.sets(st.integers(0, 6))):
            cuts = sorted(draw(st.sets(st.integers(16, 40), min_size=2, max_size=2 * MAX_PERIODS)))
            cuts = cuts[: len(cuts) // 2 * 2]
            for opens, closes in zip(cuts[::2], cuts[1::2], strict=True):
                rules.append(HoursRule(
                    day, time(opens // 2, 30 * (opens % 2)), time(closes // 2, 30 * (closes % 2)),
                    draw(st.integers(1, 100)), valid_from, valid_until, service,
                ))  # fmt: skip
    return rules


@given(a_week())
def test_saving_the_form_as_shown_gives_the_same_hours(rules: list[HoursRule]) -> None:
    again = rules_of(read_sets(fields_of(sets_of(rules, TODAY))), SERVICES)
    assert sorted(again, key=key) == sorted(rules, key=key)


def test_past_and_far_dated_hours_stay_out_of_the_form_and_are_kept() -> None:
    usual = HoursRule(0, time(9), time(12), 3)
    past = HoursRule(0, time(9), time(15), 2, date(2026, 2, 18), date(2026, 3, 19))
    coming = HoursRule(0, time(9), time(15), 2, date(2027, 2, 8), date(2027, 3, 9))
    next_year = HoursRule(0, time(9), time(15), 2, date(2028, 1, 28), date(2028, 2, 26))
    far = HoursRule(0, time(9), time(15), 2, date(2029, 1, 16), date(2029, 2, 14))
    rules = [usual, past, coming, next_year, far]
    sets = sets_of(rules, TODAY)
    assert [(s.valid_from, s.valid_until) for s in sets] == [
        ("", ""), ("2027-02-08", "2027-03-09"), ("2028-01-28", "2028-02-26")
    ]  # fmt: skip
    assert kept_rules(rules, TODAY) == [past, far]


def test_a_closed_office_still_has_its_usual_week_to_fill_in() -> None:
    [usual] = sets_of([], TODAY)
    shown = with_blank_periods(usual)
    assert all(len(periods) == 1 and periods[0].blank for periods in shown.days)


def test_copying_a_day_to_others() -> None:
    form = fields_of(sets_of([HoursRule(0, time(9), time(12), 3)], TODAY))
    form |= {"s0-copy-from": "0", "s0-copy-to-5": "on", "s0-copy-to-6": "on"}
    copied = copy_day(read_sets(form), form, 0)
    rules = rules_of(copied, SERVICES)
    assert sorted((r.weekday, r.opens_at, r.counters) for r in rules) == [
        (0, time(9), 3), (5, time(9), 3), (6, time(9), 3)
    ]  # fmt: skip
    assert copy_day(read_sets(form), form, 7) == read_sets(form)  # no such block
    for day in ("7", "²", "9" * 5000):
        odd = form | {"s0-copy-from": day}
        assert copy_day(read_sets(odd), odd, 0) == read_sets(odd)  # no such day


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"s0-d0-p0-closes": "08:00"}, "s0-d0-p0-opens"),  # closes before it opens
        ({"s0-d0-p0-opens": "25:00"}, "s0-d0-p0-opens"),
        ({"s0-d0-p0-counters": ""}, "s0-d0-p0-counters"),
        ({"s0-d0-p0-counters": "101"}, "s0-d0-p0-counters"),
        ({"s0-d0-p0-counters": "²"}, "s0-d0-p0-counters"),
        ({"s0-d0-p0-counters": "9" * 5000}, "s0-d0-p0-counters"),
        ({"s0-d0-p1-opens": "11:00", "s0-d0-p1-closes": "13:00", "s0-d0-p1-counters": "1"},
         "s0-d0-p0-opens"),  # overlaps the first period
        ({"sets": "2", "s1-d1-p0-opens": "09:00", "s1-d1-p0-closes": "10:00",
          "s1-d1-p0-counters": "1"}, "s1-from"),  # a second block with no dates
        ({"sets": "2", "s1-from": "2027-03-09", "s1-until": "2027-02-08"}, "s1-from"),
        ({"sets": "2", "s1-service": "visa"}, "s1-service"),
    ],
)  # fmt: skip
def test_each_mistake_is_named_on_its_field(changes: dict[str, str], field: str) -> None:
    form = fields_of(sets_of([HoursRule(0, time(9), time(12), 3)], TODAY)) | changes
    with pytest.raises(ValidationFailed) as bad:
        rules_of(read_sets(form), SERVICES)
    assert field in bad.value.fields, bad.value.fields


def test_a_removed_block_gives_no_hours() -> None:
    form = fields_of(sets_of([HoursRule(0, time(9), time(12), 3),
                              HoursRule(0, time(9), time(15), 2, date(2027, 2, 8),
                                        date(2027, 3, 9))], TODAY))  # fmt: skip
    assert len(rules_of(read_sets(form), SERVICES)) == 2
    assert len(rules_of(read_sets(form | {"s1-remove": "on"}), SERVICES)) == 1
