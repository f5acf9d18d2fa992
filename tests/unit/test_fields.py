"""What the service accepts from outside (service.domain.fields)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.calendar import local_day_bounds
from service.domain.errors import ValidationFailed
from service.domain.fields import (
    DAY_PATTERN,
    FIRST_DAY,
    ID_MAX,
    JSON_MAX_DEPTH,
    LAST_DAY,
    day_in_range,
    is_id,
    json_problem,
    parse_day,
    parse_id,
    parse_int,
    readable,
)
from service.web.inputs import day_param

# The zones furthest from UTC either way, and the one whose offset moves in Ramadan.
ZONES = [ZoneInfo(z) for z in ("Pacific/Kiritimati", "Pacific/Pago_Pago", "Africa/Casablanca")]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("Amina El Idrissi", True),
        ("أمينة الإدريسي", True),
        ("ⴰⵎⵉⵏⴰ 😀", True),  # an astral character is a pair, not a lone half
        ("a\x00b", False),
        ("\ud800", False),
        ("x\udfff", False),
        ("\udc80\ud800", False),  # reversed halves are two lone ones
        ("\x01\x1f\x7f", True),  # other controls are for the field rules to judge
    ],
)
def test_readable(text: str, ok: bool) -> None:
    assert readable(text) is ok


# ASCII and not: the two ways readable() looks at a text.
_TEXTS = st.text(st.characters(max_codepoint=0x7F)) | st.text(
    st.one_of(
        st.characters(),
        st.sampled_from(["\x00", "\ud800", "\udbff", "\udc80", "\udfff"]),
    )
)


@given(_TEXTS)
def test_readable_is_what_utf8_and_postgres_take(text: str) -> None:
    try:
        text.encode()
        encodable = True
    except UnicodeEncodeError:
        encodable = False
    assert readable(text) is (encodable and "\x00" not in text)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", 0),
        ("42", 42),
        ("99999", 99999),
        ("100000", None),
        ("\u00b2", None),  # "²".isdigit() is True, int("²") fails
        ("\u0663", None),  # Arabic-Indic three: int() reads it, we do not
        ("-1", None),
        ("+1", None),
        (" 1", None),
        ("1_000", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_int_reads_ascii_digits_in_range(raw: str | None, expected: int | None) -> None:
    assert parse_int(raw, 0, 99999) == expected


def test_parse_id_is_a_bigserial() -> None:
    assert parse_id("1") == 1
    assert parse_id(str(ID_MAX)) == ID_MAX == 2**63 - 1
    assert parse_id(str(ID_MAX + 1)) is None
    assert parse_id("99999999999999999999") is None
    assert parse_id("0") is None
    assert parse_id("0" * 25 + "1") is None  # longer than any id is written


def test_is_id_takes_json_integers_only() -> None:
    assert is_id(1) and is_id(ID_MAX)
    assert not any(is_id(v) for v in (0, -1, ID_MAX + 1, True, False, 1.0, "1", None))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2000-01-01", FIRST_DAY),
        ("2199-12-31", LAST_DAY),
        ("2027-02-01", date(2027, 2, 1)),
        ("1999-12-31", None),
        ("2200-01-01", None),
        ("0001-01-01", None),
        ("9999-12-31", None),
        ("2027-02-30", None),
        ("20270201", None),  # date.fromisoformat reads it; a query value should not
        ("2027-W05-1", None),
        ("٢٠٢٧-٠٢-٠١", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_day(raw: str | None, expected: date | None) -> None:
    assert parse_day(raw) == expected


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2300, 12, 31)))
def test_the_day_pattern_is_exactly_the_days_read(day: date) -> None:
    written = day.isoformat()
    assert (re.fullmatch(DAY_PATTERN, written) is not None) is day_in_range(day)
    assert (parse_day(written) == day) is day_in_range(day)


@pytest.mark.parametrize("raw", ["2100-02-29", "2027-02-29", "2027-04-31", "2027-13-01",
                                 "2027-00-10", "2027-01-00", "2027-02-01\n"])  # fmt: skip
def test_the_day_pattern_refuses_days_that_do_not_exist(raw: str) -> None:
    assert re.fullmatch(DAY_PATTERN, raw) is None and parse_day(raw) is None


@given(st.dates(min_value=FIRST_DAY, max_value=LAST_DAY), st.sampled_from(ZONES))
def test_every_day_read_has_local_bounds_in_every_zone(day: date, zone: ZoneInfo) -> None:
    # What the calendar overflowed on at 0001-01-01 and 9999-12-31.
    start, end = local_day_bounds(day, zone)
    assert timedelta(hours=22) <= end - start <= timedelta(hours=26)
    # The pages step a week past the day they show.
    local_day_bounds(day + timedelta(days=7), zone)
    local_day_bounds(day - timedelta(days=7), zone)


def test_the_date_message_names_the_range_read() -> None:
    with pytest.raises(ValidationFailed) as refused:
        day_param("1999-12-31", "from")
    assert f"between {FIRST_DAY} and {LAST_DAY}" in refused.value.fields["from"]


def _nested(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


def test_json_problem() -> None:
    assert json_problem({"name": "Ali", "slot_id": 3, "tags": [1, None, {"a": "b"}]}) is None
    assert json_problem({"name": _nested(JSON_MAX_DEPTH - 1)}) is None
    assert json_problem({"name": _nested(JSON_MAX_DEPTH)}) == ("name", "depth")
    assert json_problem({"email": "a\x00b@example.com"}) == ("email", "text")
    assert json_problem({"deep": {"er": ["\ud800"]}}) == ("deep", "text")
    assert json_problem({"ok": 1, "k\udc80": 1}) == ("", "text")
    assert json_problem({"ok": {"k\x00": 1}}) == ("ok", "text")
    assert json_problem("\x00") == ("", "text")
