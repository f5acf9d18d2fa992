"""Every action the audit trail records is named on the office's booking
page in the clerk's language, not shown as its code ("offer")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.domain.booking import Status
from service.web.labels import LABELS, label_function

SERVICE = Path(__file__).resolve().parents[2] / "service"
# audit.record(conn, booking_id, actor, "action", ...) wherever the action is
# written out; the others are a booking's new status (a status change: never
# back to held) and a new booking's "book" or "hold" (bookings.BookingPlan).
RECORDED = re.compile(r'audit\.record\(\s*conn,\s*[^,]+,\s*[^,]+,\s*"([a-z_]+)"')


def recorded_actions() -> set[str]:
    found = {
        action
        for path in SERVICE.rglob("*.py")
        for action in RECORDED.findall(path.read_text(encoding="utf-8"))
    }
    return found | {s.value for s in Status if s is not Status.HELD} | {"book", "hold"}


def test_the_source_still_records_actions_where_this_test_looks() -> None:
    # The pattern must keep finding the literal actions (were the call
    # written otherwise, the test below would check nothing of them).
    assert {"verify", "reschedule", "offer", "accept_offer", "erase"} <= recorded_actions()


@pytest.mark.parametrize("action", sorted(recorded_actions()))
def test_every_recorded_action_has_a_label(action: str) -> None:
    assert action in LABELS["action"]
    assert label_function("ar")("action", action) != LABELS["action"][action]
