"""The file of a booking whose service produces a document (passport, CNIE,
civil-status copies): its states, who may move it where, the "ready" message
and the one reminder when it is not collected.  Pure: no I/O.

    (none) -> received -> in_production -> ready -> collected
                      \\-> refused      \\-> refused

A file is opened at the counter, so only for a booking the citizen came to
(checked in or done).  The same table is enforced by a trigger in
migrations/0085_documents.sql; this one gives the refusals their words.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from service.domain import errors
from service.domain.errors import N_
from service.domain.fields import DOCUMENT_REASON_MAX
from service.domain.messages import (
    DEFAULT_QUIET,
    DOCUMENT_READY,
    DOCUMENT_UNCOLLECTED,
    Kind,
    PlannedMessage,
    QuietHours,
    contact_channels,
    outside_quiet_hours,
)


class FileState(StrEnum):
    RECEIVED = "received"
    IN_PRODUCTION = "in_production"
    READY = "ready"
    COLLECTED = "collected"
    REFUSED = "refused"


TRANSITIONS: dict[FileState | None, frozenset[FileState]] = {
    None: frozenset({FileState.RECEIVED}),
    FileState.RECEIVED: frozenset({FileState.IN_PRODUCTION, FileState.REFUSED}),
    FileState.IN_PRODUCTION: frozenset({FileState.READY, FileState.REFUSED}),
    FileState.READY: frozenset({FileState.COLLECTED}),
    FileState.COLLECTED: frozenset(),
    FileState.REFUSED: frozenset(),
}
# The booking statuses in which the citizen has handed in their file.
OPENS_FILE = frozenset({"checked_in", "done"})
MAX_REFUSAL_REASON = DOCUMENT_REASON_MAX
# A "ready" message (or its reminder) that could not leave within this long
# after it was due says nothing useful any more: the office's list shows the
# document, and the manage page its state.
MESSAGE_LIFETIME = timedelta(days=14)
DEFAULT_REMINDER_DAYS = 14


def next_states(current: FileState | None) -> list[FileState]:
    """The moves staff are offered, in the machine's order."""
    return [s for s in FileState if s in TRANSITIONS[current]]


def parse_file_action(raw_state: object, raw_reason: object) -> tuple[FileState, str | None]:
    """The target state and the refusal's reason from a form or a JSON body;
    a refusal needs a reason, the other moves take none."""
    try:
        target = FileState(raw_state) if isinstance(raw_state, str) else None
    except ValueError:
        target = None
    if target is None:
        raise errors.ValidationFailed({"state": N_("Choose the file's new state.")})
    reason = " ".join(raw_reason.split()) if isinstance(raw_reason, str) else ""
    if target is FileState.REFUSED:
        if not reason:
            raise errors.ValidationFailed({"reason": N_("Give the reason for the refusal.")})
        if len(reason) > MAX_REFUSAL_REASON:
            raise errors.ValidationFailed(
                {"reason": N_("Keep the reason under %(max)s characters.")},
                params={"max": str(MAX_REFUSAL_REASON)},
            )
        return target, reason
    return target, None


def file_refusal(
    current: FileState | None,
    target: FileState,
    *,
    produces_document: bool,
    booking_status: str,
) -> errors.Refusal | None:
    """Why staff may not move the file from `current` to `target`, or None."""
    if not produces_document:
        return errors.Conflict(
            "no_document", N_("This service does not produce a document to follow.")
        )
    if current is None and booking_status not in OPENS_FILE:
        return errors.Conflict(
            "not_received",
            N_("A file is received only from a citizen who came to the appointment."),
        )
    if target not in TRANSITIONS[current]:
        return errors.Conflict(
            "bad_file_transition", N_("The file cannot move to this state from where it is.")
        )
    return None


def plan_document_message(
    kind: Kind,
    *,
    phone: str | None,
    email: str | None,
    appointment_at: datetime,
    now: datetime,
    quiet: QuietHours = DEFAULT_QUIET,
    zone: ZoneInfo,
    phone_channel: str = "sms",
) -> list[PlannedMessage]:
    """The "ready" message or its reminder on each of the booking's channels:
    due now, or at the end of quiet hours.  Its `appointment_at` is the
    instant past which it no longer goes (MESSAGE_LIFETIME), which bounds its
    retries the way an appointment bounds a reminder's."""
    if kind not in (DOCUMENT_READY, DOCUMENT_UNCOLLECTED):
        raise ValueError(f"not a document message: {kind!r}")
    deadline = now + MESSAGE_LIFETIME
    at = outside_quiet_hours(now, deadline=deadline, quiet=quiet, zone=zone)
    assert at is not None  # quiet hours never last MESSAGE_LIFETIME
    return [
        PlannedMessage(kind, channel, to, at, deadline)
        for channel, to in contact_channels(phone, email, phone_channel)
    ]


def reminder_due(ready_at: datetime, now: datetime, days: int) -> bool:
    """Whether a document ready since `ready_at` has waited long enough for
    its one reminder."""
    return now >= ready_at + timedelta(days=days)


def remind_before(now: datetime, days: int) -> datetime:
    """Documents ready before this instant are due their reminder."""
    return now - timedelta(days=days)


def age_in_days(ready_at: datetime, now: datetime, zone: ZoneInfo) -> int:
    """Whole local days a document has waited: 0 on the day it became ready."""
    return (_local_day(now, zone) - _local_day(ready_at, zone)).days


def _local_day(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()
