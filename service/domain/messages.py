"""Which messages a booking event produces, when they fall due, and what to do
with them when they do.  Pure: no I/O, every instant is an aware datetime.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from service.domain.phone import can_receive_sms

Event = Literal["confirmed", "rescheduled", "cancelled_by_citizen", "cancelled_by_office"]
Kind = Literal[
    "confirmation",
    "rescheduled",
    "cancelled_by_citizen",
    "cancelled_by_office",
    "reminder",
    "sms_fallback",
]
Channel = Literal["sms", "email"]

EVENTS: tuple[Event, ...] = (
    "confirmed",
    "rescheduled",
    "cancelled_by_citizen",
    "cancelled_by_office",
)
EVENT_KIND: dict[Event, Kind] = {
    "confirmed": "confirmation",
    "rescheduled": "rescheduled",
    "cancelled_by_citizen": "cancelled_by_citizen",
    "cancelled_by_office": "cancelled_by_office",
}
KINDS: tuple[Kind, ...] = (
    "confirmation",
    "rescheduled",
    "cancelled_by_citizen",
    "cancelled_by_office",
    "reminder",
    "sms_fallback",
)
SMS_KINDS: tuple[Kind, ...] = KINDS[:5]

DEFAULT_OFFSETS_MINUTES = (2880, 180)
# A reminder closer than this to the booking itself tells the citizen nothing
# the confirmation did not.
MIN_GAP_AFTER_BOOKING = timedelta(hours=1)
# Moving a reminder to the end of quiet hours is only worth it if the citizen
# still has this long to get there.
MIN_LEAD_BEFORE_APPOINTMENT = timedelta(hours=1)

# Skip reasons recorded on outbox rows.
SKIP_CANCELLED = "booking_cancelled"
SKIP_MOVED = "booking_moved"
SKIP_STARTED = "appointment_started"
SKIP_INACTIVE = "booking_inactive"
SKIP_SUPERSEDED = "superseded"
SKIP_OPTED_OUT = "opted_out"
# Taken back from a dead worker with no time left outside quiet hours before
# the appointment.
SKIP_QUIET = "quiet_hours"

# Booking statuses for which a reminder (or any message but a cancellation)
# still makes sense.
REMINDABLE = frozenset({"confirmed"})
CANCELLATION_KINDS: frozenset[str] = frozenset({"cancelled_by_citizen", "cancelled_by_office"})


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A nightly window, wall-clock in the office zone; start == end means none."""

    start: time
    end: time

    def contains(self, wall: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end


DEFAULT_QUIET = QuietHours(time(21, 0), time(8, 0))


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    kind: Kind
    channel: Channel
    recipient: str
    send_at: datetime
    # The appointment start the message speaks about: a reminder is only
    # valid while the booking still starts then.
    appointment_at: datetime
    offset_minutes: int | None = None


def _instant(day: date, wall: time, zone: ZoneInfo, *, later: bool) -> datetime:
    """The UTC instant of `wall` on `day` in `zone`.

    A wall time that falls in a spring-forward gap has no instant; `later`
    picks the side: True -> the instant after the gap (for an end of quiet
    hours), False -> the one before (for a start), so that the result is never
    inside the quiet window.  For a repeated (fall-back) wall time the first
    occurrence is used.
    """
    naive = datetime.combine(day, wall)
    a = naive.replace(tzinfo=zone).astimezone(UTC)
    b = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if a.astimezone(zone).replace(tzinfo=None) == naive:
        return min(a, b)
    return max(a, b) if later else min(a, b)


def quiet_window(
    instant: datetime, quiet: QuietHours, zone: ZoneInfo
) -> tuple[datetime, datetime] | None:
    """The (start, end) instants of the quiet window containing `instant`, or None."""
    local = instant.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    if not quiet.contains(wall):
        return None
    day = local.date()
    if quiet.start < quiet.end:
        start_day, end_day = day, day
    elif wall >= quiet.start:
        start_day, end_day = day, day + timedelta(days=1)
    else:
        start_day, end_day = day - timedelta(days=1), day
    start = _instant(start_day, quiet.start, zone, later=False)
    end = _instant(end_day, quiet.end, zone, later=True)
    return start, end


def adjust_for_quiet_hours(
    due: datetime, appointment_at: datetime, quiet: QuietHours, zone: ZoneInfo
) -> datetime:
    """Where a reminder due at `due` goes: unchanged outside quiet hours; else at
    their end if that leaves an hour before the appointment, else at their start.
    """
    window = quiet_window(due, quiet, zone)
    if window is None:
        return due
    start, end = window
    if end <= appointment_at - MIN_LEAD_BEFORE_APPOINTMENT:
        return end
    return start


def reminder_times(
    appointment_at: datetime,
    booked_at: datetime,
    offsets_minutes: tuple[int, ...] | list[int],
    quiet: QuietHours,
    zone: ZoneInfo,
) -> list[tuple[int, datetime]]:
    """(offset, send_at) for each reminder to create, earliest first.

    Offsets are real elapsed minutes before the appointment (24 h before is 24
    hours, whatever the clocks did).  A reminder is dropped when, after the
    quiet-hours move, it would fall less than an hour after the booking (which
    covers "already past"); two offsets landing on one instant give one row.
    """
    out: dict[datetime, int] = {}
    for offset in sorted(set(offsets_minutes), reverse=True):
        if offset <= 0:
            continue
        due = appointment_at - timedelta(minutes=offset)
        send_at = adjust_for_quiet_hours(due, appointment_at, quiet, zone)
        if send_at < booked_at + MIN_GAP_AFTER_BOOKING or send_at >= appointment_at:
            continue
        out.setdefault(send_at, offset)
    return sorted(((offset, at) for at, offset in out.items()), key=lambda p: p[1])


def plan_event(
    event: Event,
    *,
    phone: str | None,
    email: str | None,
    appointment_at: datetime,
    now: datetime,
    offsets_minutes: tuple[int, ...] | list[int] = DEFAULT_OFFSETS_MINUTES,
    quiet: QuietHours = DEFAULT_QUIET,
    zone: ZoneInfo,
) -> list[PlannedMessage]:
    """The outbox rows an event creates: the event's message now on every
    channel the booking has, plus reminders for a new or moved booking.
    SMS only to numbers that can receive them: a landline fails at the
    provider (30006) and would only cost a request."""
    channels: list[tuple[Channel, str]] = []
    if phone and can_receive_sms(phone):
        channels.append(("sms", phone))
    if email:
        channels.append(("email", email))
    kind = EVENT_KIND[event]
    planned = [PlannedMessage(kind, ch, to, now, appointment_at) for ch, to in channels]
    if event in ("confirmed", "rescheduled"):
        for offset, at in reminder_times(appointment_at, now, offsets_minutes, quiet, zone):
            planned.extend(
                PlannedMessage("reminder", ch, to, at, appointment_at, offset)
                for ch, to in channels
            )
    return planned


def skip_reason(
    kind: str,
    *,
    booking_status: str,
    booking_starts_at: datetime,
    appointment_at: datetime,
    now: datetime,
) -> str | None:
    """Why a due message must not go out any more, or None to send it.

    Only a cancellation still speaks truly of a cancelled booking; every other
    message (confirmation, reminder, "rescheduled", the email standing in for
    an SMS) tells the citizen to come at `appointment_at`, so it goes only
    while the booking is active and still starts then.
    """
    if now >= appointment_at:
        return SKIP_STARTED
    if kind in CANCELLATION_KINDS:
        return None
    if booking_status == "cancelled":
        return SKIP_CANCELLED
    if booking_starts_at != appointment_at:
        # A reminder for the new time exists; a confirmation or "rescheduled"
        # message is followed by a later "rescheduled" with the current time.
        return SKIP_MOVED if kind == "reminder" else SKIP_SUPERSEDED
    if booking_status not in REMINDABLE:
        return SKIP_INACTIVE
    return None


def wants_email_fallback(
    kind: str,
    channel: str,
    *,
    booking_status: str,
    booking_starts_at: datetime,
    appointment_at: datetime,
    now: datetime,
) -> bool:
    """Whether an SMS that could not be delivered is repeated by email: only a
    confirmation, and only while it would still be sent itself."""
    return (
        channel == "sms"
        and kind == "confirmation"
        and skip_reason(
            kind,
            booking_status=booking_status,
            booking_starts_at=booking_starts_at,
            appointment_at=appointment_at,
            now=now,
        )
        is None
    )


# Retries -------------------------------------------------------------------

MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
RATE_LIMIT_WAIT = timedelta(seconds=5)
# A rate-limited message may wait, but not forever: past this many waits it
# counts as an ordinary failure.
MAX_RATE_LIMIT_WAITS = 50


def backoff(attempt: int, jitter: float) -> timedelta:
    """Delay before retry number `attempt` (1-based): exponential, capped, with
    "equal jitter" (half fixed, half random) so retries of a burst spread out.
    `jitter` is a number in [0, 1)."""
    exp = BACKOFF_BASE * (2 ** max(attempt - 1, 0))
    half: timedelta = min(exp, BACKOFF_CAP) / 2
    return half + half * jitter


def outside_quiet_hours(
    at: datetime, *, deadline: datetime, quiet: QuietHours, zone: ZoneInfo
) -> datetime | None:
    """When a message that could not go at its planned time (a retry, a row
    taken back from a dead worker) may go instead, at `at` or later: `at`
    outside quiet hours, else their end; None when that is not before
    `deadline`.  Unlike a first send it never moves earlier, to the start of
    the window: that would undercut the backoff, or be in the past."""
    window = quiet_window(at, quiet, zone)
    if window is not None:
        end = window[1]
        if end <= at:
            # `at` is in the second pass of a repeated (fall-back) hour; the
            # window's end is from the first pass: the same wall time then.
            wall = end.astimezone(zone).replace(tzinfo=None)
            end = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
        at = max(at, end)
    return at if at < deadline else None


def quiet_applies(kind: str) -> bool:
    """Quiet hours hold back reminders only: the other messages answer
    something the citizen or the office has just done, and go at once even
    at night (plan_event does not move them either)."""
    return kind == "reminder"


def resend_at(
    kind: str, now: datetime, *, appointment_at: datetime, quiet: QuietHours, zone: ZoneInfo
) -> datetime | None:
    """When a row taken back from a dead worker goes again, or None when it
    no longer can (its appointment has started, or a reminder has no time
    left outside quiet hours before it)."""
    if quiet_applies(kind):
        return outside_quiet_hours(now, deadline=appointment_at, quiet=quiet, zone=zone)
    return now if now < appointment_at else None


def next_attempt_at(
    now: datetime,
    *,
    attempts: int,
    rate_limited: bool,
    rate_limit_waits: int,
    retry_after: timedelta | None,
    deadline: datetime,
    jitter: float,
    quiet: QuietHours | None = None,
    zone: ZoneInfo | None = None,
) -> datetime | None:
    """When to try a temporarily failed message again, or None to give up.

    A rate-limit refusal (HTTP 429) does not use the retry budget: the
    provider told us to slow down, not that the message is bad.  With `quiet`
    (and the office's `zone`), a retry that falls inside quiet hours waits for
    their end; never at or after `deadline`.
    """
    if rate_limited:
        if rate_limit_waits >= MAX_RATE_LIMIT_WAITS:
            return None
        wait = retry_after if retry_after is not None else RATE_LIMIT_WAIT
        at = now + wait + timedelta(seconds=jitter)
    else:
        if attempts >= MAX_ATTEMPTS:
            return None
        at = now + (retry_after or timedelta(0)) + backoff(attempts, jitter)
    if quiet is not None and zone is not None:
        return outside_quiet_hours(at, deadline=deadline, quiet=quiet, zone=zone)
    if at >= deadline:
        return None
    return at
