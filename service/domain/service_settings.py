"""What a manager may change about one of their office's services, and the
rules of the services page's form. Pure: no I/O.

Names and ids are not editable here: they appear in sent messages, references
to the service in links and bookings, and the seed data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from service.domain.errors import N_, ValidationFailed
from service.domain.fields import parse_int
from service.domain.models import Service
from service.domain.practical import (
    ARRIVE_EARLY_MINUTES,
    MAX_DESCRIPTION,
    MAX_TEXT,
    texts_by_language,
)

# Bounds the database also checks (0001), or the booking rules assume.
DURATION = (5, 480)
EARLIEST_HOURS = (0, 24 * 30)
LATEST_DAYS = (1, 365)
RESCHEDULE_CUTOFF_MINUTES = (0, 7 * 24 * 60)
HOLD_MINUTES = (1, 60)


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    duration_minutes: int
    document_required: bool
    earliest_hours: int
    latest_days: int
    reschedule_cutoff_minutes: int
    bring: dict[str, str]
    active: bool
    # Practical information shown to citizens (service.domain.practical).
    description: dict[str, str]
    fees: dict[str, str]
    late: dict[str, str]
    arrive_early_minutes: int
    # A public booking waits for a code (see service.bookings), its seat
    # held for hold_minutes.
    verify_contact: bool = True
    hold_minutes: int = 10


def settings_of(service: Service, active: bool) -> ServiceSettings:
    return ServiceSettings(
        duration_minutes=service.duration_minutes,
        document_required=service.document_required,
        earliest_hours=service.earliest_hours,
        latest_days=service.latest_days,
        reschedule_cutoff_minutes=service.reschedule_cutoff_minutes,
        bring=dict(service.bring),
        active=active,
        description=dict(service.description),
        fees=dict(service.fees),
        late=dict(service.late),
        arrive_early_minutes=service.arrive_early_minutes,
        verify_contact=service.verify_contact,
        hold_minutes=service.hold_minutes,
    )


def _whole(raw: str | None, bounds: tuple[int, int]) -> int | None:
    return parse_int((raw or "").strip(), *bounds)


def parse_service_form(form: Mapping[str, str]) -> ServiceSettings:
    """The settings a submitted services form asks for.

    Raises ValidationFailed naming each field at fault.
    Checkboxes: present means on (a browser sends nothing for an unticked box).
    """
    problems: dict[str, str] = {}
    duration = _whole(form.get("duration_minutes"), DURATION)
    if duration is None or duration % 5:
        problems["duration_minutes"] = N_("Give a duration of 5 to 480 minutes, in steps of 5.")
    earliest = _whole(form.get("earliest_hours"), EARLIEST_HOURS)
    if earliest is None:
        problems["earliest_hours"] = N_("Give a number of hours from 0 to 720.")
    latest = _whole(form.get("latest_days"), LATEST_DAYS)
    if latest is None:
        problems["latest_days"] = N_("Give a number of days from 1 to 365.")
    cutoff = _whole(form.get("reschedule_cutoff_minutes"), RESCHEDULE_CUTOFF_MINUTES)
    if cutoff is None:
        problems["reschedule_cutoff_minutes"] = N_("Give a number of minutes from 0 to 10080.")
    hold = _whole(form.get("hold_minutes"), HOLD_MINUTES)
    if hold is None:
        problems["hold_minutes"] = N_("Give a number of minutes from 1 to 60.")
    if earliest is not None and latest is not None and earliest >= latest * 24:
        problems["latest_days"] = N_("The latest day must come after the earliest hour.")
    early = _whole(form.get("arrive_early_minutes"), ARRIVE_EARLY_MINUTES)
    if early is None:
        problems["arrive_early_minutes"] = N_("Give a number of minutes from 0 to 120.")
    bring = texts_by_language(form, "bring", MAX_TEXT, problems)
    description = texts_by_language(form, "description", MAX_DESCRIPTION, problems)
    fees = texts_by_language(form, "fees", MAX_TEXT, problems)
    late = texts_by_language(form, "late", MAX_TEXT, problems)
    if (
        problems
        or duration is None
        or earliest is None
        or latest is None
        or cutoff is None
        or early is None
        or hold is None
    ):
        raise ValidationFailed(problems)
    return ServiceSettings(
        duration_minutes=duration,
        document_required="document_required" in form,
        earliest_hours=earliest,
        latest_days=latest,
        reschedule_cutoff_minutes=cutoff,
        bring=bring,
        active="active" in form,
        description=description,
        fees=fees,
        late=late,
        arrive_early_minutes=early,
        verify_contact="verify_contact" in form,
        hold_minutes=hold,
    )
