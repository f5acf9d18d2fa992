"""The services page's form, the rule for deactivating staff, and the range
of days the office pages accept."""

from __future__ import annotations

from datetime import date

import pytest

from service.domain.errors import Forbidden, ValidationFailed
from service.domain.office_day import day_in_range, parse_week
from service.domain.service_settings import parse_service_form
from service.domain.staff import Role, StaffMember, check_deactivation

FORM = {
    "duration_minutes": "20",
    "earliest_hours": "2",
    "latest_days": "60",
    "reschedule_cutoff_minutes": "120",
    "arrive_early_minutes": "10",
    "hold_minutes": "10",
    "verify_contact": "on",
    "bring_fr": "Passeport actuel  \r\nPhoto",
    "bring_ar": "",
    "bring_en": "Current passport",
    "active": "on",
}


def test_a_valid_form() -> None:
    settings = parse_service_form(FORM)
    assert settings.duration_minutes == 20
    assert settings.active and not settings.document_required
    assert settings.bring == {"fr": "Passeport actuel\nPhoto", "ar": "", "en": "Current passport"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("duration_minutes", "7"),  # not in steps of 5
        ("duration_minutes", "0"),
        ("duration_minutes", "485"),
        ("duration_minutes", "-5"),
        ("duration_minutes", "twenty"),
        ("earliest_hours", "721"),
        ("latest_days", "0"),
        ("reschedule_cutoff_minutes", "99999999"),
        ("bring_fr", "x" * 1001),
        ("hold_minutes", "0"),
        ("hold_minutes", "61"),
        ("hold_minutes", ""),
    ],
)
def test_each_bad_field_is_named(field: str, value: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_service_form({**FORM, field: value})
    assert set(refused.value.fields) == {field}


def test_the_window_must_not_be_empty() -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_service_form({**FORM, "earliest_hours": "48", "latest_days": "2"})
    assert set(refused.value.fields) == {"latest_days"}


def test_unticked_boxes_mean_off() -> None:
    form = {k: v for k, v in FORM.items() if k != "active"}
    assert not parse_service_form(form).active
    assert parse_service_form(FORM).verify_contact
    assert parse_service_form(FORM).hold_minutes == 10
    unverified = {k: v for k, v in FORM.items() if k != "verify_contact"}
    assert not parse_service_form(unverified).verify_contact
    assert parse_service_form({**FORM, "document_required": "on"}).document_required


ADMIN = StaffMember(1, "a@x.test", Role.ADMIN, frozenset())
PARIS = StaffMember(2, "m@x.test", Role.MANAGER, frozenset({"paris"}))
AGENT = StaffMember(3, "g@x.test", Role.AGENT, frozenset({"paris"}))
TWO_OFFICES = StaffMember(4, "t@x.test", Role.MANAGER, frozenset({"paris", "tiznit"}))
OTHER_ADMIN = StaffMember(5, "b@x.test", Role.ADMIN, frozenset())


@pytest.mark.parametrize(
    ("actor", "target", "allowed"),
    [
        (ADMIN, AGENT, True),
        (ADMIN, TWO_OFFICES, True),
        (ADMIN, OTHER_ADMIN, True),
        (ADMIN, ADMIN, False),  # never oneself
        (PARIS, AGENT, True),
        (PARIS, PARIS, False),
        (PARIS, TWO_OFFICES, False),  # also works where Paris's manager does not manage
        (PARIS, OTHER_ADMIN, False),
        (AGENT, AGENT.__class__(6, "h@x.test", Role.AGENT, frozenset({"paris"})), False),
    ],
)
def test_who_may_deactivate_whom(actor: StaffMember, target: StaffMember, allowed: bool) -> None:
    if allowed:
        check_deactivation(actor, target)
    else:
        with pytest.raises(Forbidden):
            check_deactivation(actor, target)


def test_days_the_pages_accept() -> None:
    assert day_in_range(date(2027, 2, 1))
    assert not day_in_range(date.max) and not day_in_range(date.min)
    assert parse_week("9999-W52") is None
    assert parse_week("0001-W01") is None
    assert parse_week("2199-W52") == date(2199, 12, 23)


def test_practical_information_of_a_service() -> None:
    form = {**FORM, "description_fr": " Renouveler un passeport. ", "fees_ar": "100 درهم",
            "late_en": "Past 15 minutes, book again.", "arrive_early_minutes": "15"}  # fmt: skip
    settings = parse_service_form(form)
    assert settings.description == {"ar": "", "fr": "Renouveler un passeport.", "en": ""}
    assert settings.fees["ar"] == "100 درهم" and settings.late["en"].startswith("Past 15")
    assert settings.arrive_early_minutes == 15
    with pytest.raises(ValidationFailed) as bad:
        parse_service_form({**form, "description_ar": "ا" * 201, "arrive_early_minutes": "121"})
    assert set(bad.value.fields) == {"description_ar", "arrive_early_minutes"}
    assert bad.value.fields["description_ar"] == "Keep this under 200 characters."
