"""What an event carries beyond its messages (service.domain.messages, used by
service.notify.events): the office's reason, and the reminders it voids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from service.domain.messages import EVENTS, Event, plan_event, voided_reminders

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2027, 5, 1, 8, 0, tzinfo=UTC)
APPT = NOW + timedelta(days=9)


def plan(event: Event, reason: str | None) -> list[tuple[str, str | None]]:
    planned = plan_event(
        event,
        phone="+33612345678",
        email="a@example.org",
        appointment_at=APPT,
        now=NOW,
        zone=PARIS,
        reason=reason,
    )
    return [(m.kind, m.reason) for m in planned]


def test_only_the_offices_cancellation_carries_its_reason() -> None:
    assert plan("cancelled_by_office", "Fermeture exceptionnelle") == [
        ("cancelled_by_office", "Fermeture exceptionnelle"),
        ("cancelled_by_office", "Fermeture exceptionnelle"),
    ]
    assert plan("cancelled_by_citizen", "plus besoin") == [
        ("cancelled_by_citizen", None),
        ("cancelled_by_citizen", None),
    ]


@pytest.mark.parametrize("event", ["confirmed", "rescheduled"])
def test_reminders_never_carry_a_reason(event: Event) -> None:
    planned = plan(event, "whatever")
    assert [k for k, _ in planned].count("reminder") == 4
    assert all(reason is None for _, reason in planned)


def test_which_reminders_an_event_voids() -> None:
    assert {e: voided_reminders(e) for e in EVENTS} == {
        "confirmed": None,
        "rescheduled": "booking_moved",
        "cancelled_by_citizen": "booking_cancelled",
        "cancelled_by_office": "booking_cancelled",
    }
