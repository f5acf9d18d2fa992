"""Which messages a booking event produces, when they fall due, and what to do
with them when they do.  Pure: no I/O, every instant is an aware datetime.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from service.domain.phone import can_receive_sms, sms_refusal

Event = Literal["confirmed", "rescheduled", "cancelled_by_citizen", "cancelled_by_office"]
Kind = Literal[
    "confirmation",
    "rescheduled",
    "cancelled_by_citizen",
    "cancelled_by_office",
    "reminder",
    "sms_fallback",
    "code",
    "draw_offer",
    "draw_not_served",
    "document_ready",
    "document_uncollected",
    "feedback",
    "waitlist_offer",
    "mobile_day_planned",
    "entry_received",
]
Channel = Literal["sms", "whatsapp", "email"]
# Where a booking's phone messages go, as the citizen chose: by SMS, by
# WhatsApp to the same number, or nowhere ("email": e-mail only).
MessageChannel = Literal["sms", "whatsapp", "email"]
MESSAGE_CHANNELS: tuple[MessageChannel, ...] = ("sms", "whatsapp", "email")
# The channels that send to the booking's phone number (through Twilio).
PHONE_CHANNELS: frozenset[str] = frozenset({"sms", "whatsapp"})

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
    "code",
    "document_ready",
    "document_uncollected",
    "feedback",
)
# Kinds that go by SMS (an sms_fallback is the e-mail standing in for one).
SMS_KINDS: tuple[Kind, ...] = tuple(k for k in KINDS if k != "sms_fallback")
# The verification code: it carries the office, the time and the code, and
# nothing the citizen typed; it goes only while its booking is held.
CODE: Kind = "code"
# A seat offered by a draw or its waiting list: a held booking, like a code's,
# so it too is worth sending only while the hold lasts.
DRAW_OFFER: Kind = "draw_offer"
# A draw request the draw gave no seat: it stays on the waiting list. Sent
# while the request waits there (its "held" state, see service.store.outbox).
DRAW_NOT_SERVED: Kind = "draw_not_served"
# After the visit: the citizen's document is ready for pickup, and the one
# reminder when it is not collected (service.domain.documents).  Such a row's
# `appointment_at` is not an appointment but the instant past which it no
# longer goes (its retry deadline); the appointment itself is behind.
DOCUMENT_READY: Kind = "document_ready"
DOCUMENT_UNCOLLECTED: Kind = "document_uncollected"
# A few hours after a visit: a link to the feedback form (service.domain.feedback).
FEEDBACK: Kind = "feedback"
# A mobile day just published, to a subscriber near its venue
# (service.domain.mobile_alerts). Its row's `appointment_at` is the start of
# the day's last date: past it the news is of no use.
MOBILE_DAY_PLANNED: Kind = "mobile_day_planned"
AFTER_VISIT_KINDS: frozenset[str] = frozenset({DOCUMENT_READY, DOCUMENT_UNCOLLECTED, FEEDBACK})
DOCUMENT_KINDS: frozenset[str] = frozenset({DOCUMENT_READY, DOCUMENT_UNCOLLECTED})
# A seat freed on an instant service, offered to the first suitable entry of
# its waiting list: a held booking like a draw's offer, with a shorter time.
WAITLIST_OFFER: Kind = "waitlist_offer"
# The offers: an appointment that is the citizen's only once accepted, its
# expiry carried in the row's `reason`.
OFFER_KINDS: frozenset[str] = frozenset({DRAW_OFFER, WAITLIST_OFFER})
# A draw request or a waiting-list place that counts now (its contact
# proved, or typed by staff): its receipt's link, to see it or withdraw it
# without the page the citizen may have closed. Sent while it waits.
ENTRY_RECEIVED: Kind = "entry_received"
# Messages that go only while their subject waits (held): a code, an offer,
# "not served", "received", a mobile day's news to a subscription still
# running.
WHILE_HELD_KINDS: frozenset[str] = frozenset(
    {CODE, DRAW_NOT_SERVED, MOBILE_DAY_PLANNED, ENTRY_RECEIVED} | OFFER_KINDS
)

# Messages whose worth runs out soon, soonest first: a code within its hold
# (minutes), then an offer within its time to answer (hours). Under a
# backlog of due SMS each tier takes the next send turns ahead of the next
# one and of older messages (confirmations, reminders), which keep their
# own order behind them (service.store.outbox.due).
URGENT_TIERS: tuple[tuple[Kind, ...], ...] = ((CODE,), (DRAW_OFFER, WAITLIST_OFFER))
URGENT_KINDS: tuple[Kind, ...] = tuple(kind for tier in URGENT_TIERS for kind in tier)

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
# A message after the visit whose subject is gone (the document was collected
# or refused meanwhile), or whose time has passed.
SKIP_DOCUMENT_MOVED = "document_moved"
SKIP_LAPSED = "lapsed"
# An announcement of a mobile day the office withdrew before it went.
SKIP_WITHDRAWN = "mobile_day_withdrawn"

# Past this many SMS (codes aside) in 24 hours, a number gets no more: the
# message goes by e-mail when the booking has an address, or waits.
SKIP_SMS_CAP = "sms_cap"
# A WhatsApp message to a number that asked for no more (STOP, or Twilio
# reporting it opted out): not sent; what must still reach the citizen goes
# by SMS or e-mail instead (`goes_despite_opt_out`).
SKIP_WHATSAPP_OPTED_OUT = "whatsapp_opted_out"
# Why the service itself moved a booking's (or a draw request's) phone
# messages off WhatsApp: Twilio said the number has no WhatsApp.
NOT_WHATSAPP_USER = "not_whatsapp_user"
# The messages that remind or ask rather than answer what the citizen or
# the office just did: a number that said STOP on WhatsApp gets none of
# them in its place by SMS.
REMINDING_KINDS: frozenset[str] = frozenset({"reminder", DOCUMENT_UNCOLLECTED, FEEDBACK})

# Booking statuses for which a reminder (or any message but a cancellation)
# still makes sense.
REMINDABLE = frozenset({"confirmed"})
CANCELLATION_KINDS: frozenset[str] = frozenset({"cancelled_by_citizen", "cancelled_by_office"})

# Every Moroccan office keeps this zone (DOMAIN.md).
MOROCCO_ZONE = "Africa/Casablanca"


def sms_names_zone(office_kind: str, timezone: str) -> bool:
    """Whether an SMS names the office's zone after its time ("heure de Paris").

    Always for a consulate, whose citizens may read the SMS in another zone,
    and for any office outside Morocco's zone; a prefecture's SMS saves the
    characters (its e-mails and pages still name the zone).
    """
    return office_kind == "consulate" or timezone != MOROCCO_ZONE


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
    # The office's reason, carried by its cancellation message only.
    reason: str | None = None


# min or max: which of a boundary's two candidate instants counts.
Pick = Callable[[float, float], float]


def _instant(day: date, wall: time, zone: ZoneInfo, *, pick: Pick) -> datetime:
    """The UTC instant of `wall` on `day` in `zone`, for a boundary of quiet hours.

    A wall time the clocks show twice (the hour repeated when they fall back)
    or never (the hour skipped when they spring forward) has two candidates;
    `pick` is `max` for an end (the last time the clocks show it, or the
    instant after the gap) and `min` for a start. Either way the night's
    window covers every instant whose wall time is quiet, whichever pass of a
    repeated hour it is in. Compared as timestamps: two datetimes of one zone
    compare by wall time, whatever their fold.
    """
    naive = datetime.combine(day, wall)
    first, second = (naive.replace(tzinfo=zone, fold=fold).timestamp() for fold in (0, 1))
    return datetime.fromtimestamp(pick(first, second), UTC)


def _night(day: date, quiet: QuietHours, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The window of quiet hours that starts on local `day` (start != end)."""
    # `<` and `<=` agree here: quiet_window() never asks when start == end.
    end_day = day if quiet.start < quiet.end else day + timedelta(days=1)  # pragma: no mutate
    return (
        _instant(day, quiet.start, zone, pick=min),
        _instant(end_day, quiet.end, zone, pick=max),
    )


def quiet_window(
    instant: datetime, quiet: QuietHours, zone: ZoneInfo
) -> tuple[datetime, datetime] | None:
    """The (start, end) instants of the quiet window containing `instant`, or None.

    A night's window runs from the first time the clocks show its start to
    the last time they show its end, so `start <= instant < end` holds on
    the nights the clocks change too (both passes of a repeated hour are
    inside, and a boundary in a skipped hour moves to the gap's edge).
    """
    if quiet.start == quiet.end:
        return None
    day = instant.astimezone(zone).date()
    for night in (day - timedelta(days=1), day, day + timedelta(days=1)):
        start, end = _night(night, quiet, zone)
        if start <= instant < end:
            # When the clocks skip all of a day's waking hours (quiet 03:00 to
            # 02:00 on a spring-forward night), one window runs into the next.
            before = night - timedelta(days=1)
            # Stepping two days would do too: no zone changes its clocks on
            # two nights in a row, so the skipped night has no neighbour to join.
            while (earlier := _night(before, quiet, zone))[1] >= start:
                start, before = earlier[0], before - timedelta(days=1)  # pragma: no mutate
            after = night + timedelta(days=1)
            while (following := _night(after, quiet, zone))[0] <= end:
                end, after = following[1], after + timedelta(days=1)  # pragma: no mutate
            return start, end
    return None


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


def contact_channels(
    phone: str | None, email: str | None, phone_channel: str = "sms"
) -> list[tuple[Channel, str]]:
    """The channels a booking's messages go on: the phone by the channel the
    citizen chose (`phone_channel`: SMS, WhatsApp, or none for "e-mail
    only"), and only a number that can receive an SMS (a landline fails at
    the provider, 30006, and would only cost a request); and the e-mail
    address."""
    channels: list[tuple[Channel, str]] = []
    if phone and phone_channel in PHONE_CHANNELS and can_receive_sms(phone):
        channels.append(("whatsapp" if phone_channel == "whatsapp" else "sms", phone))
    if email:
        channels.append(("email", email))
    return channels


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
    reason: str | None = None,
    phone_channel: MessageChannel = "sms",
) -> list[PlannedMessage]:
    """The outbox rows an event creates: the event's message now on every
    channel the booking has, plus reminders for a new or moved booking.
    The phone's messages go by the citizen's channel (`contact_channels`).
    An office's `reason` for cancelling goes into its cancellation message."""
    channels = contact_channels(phone, email, phone_channel)
    kind = EVENT_KIND[event]
    told = reason if event == "cancelled_by_office" else None
    planned = [
        PlannedMessage(kind, ch, to, now, appointment_at, reason=told) for ch, to in channels
    ]
    if event in ("confirmed", "rescheduled"):
        for offset, at in reminder_times(appointment_at, now, offsets_minutes, quiet, zone):
            planned.extend(
                PlannedMessage("reminder", ch, to, at, appointment_at, offset)
                for ch, to in channels
            )
    return planned



def plan_offer(
    kind: Kind,
    *,
    phone: str | None,
    email: str | None,
    phone_channel: MessageChannel,
    appointment_at: datetime,
    expires_at: datetime,
    send_at: datetime,
) -> list[PlannedMessage]:
    """The messages of an offer (a draw's or a waiting list's), due at
    `send_at` on the entry's channels; its expiry rides in `reason`, which
    the renderer shows in the office's zone."""
    return [
        PlannedMessage(kind, channel, to, send_at, appointment_at, None, expires_at.isoformat())
        for channel, to in contact_channels(phone, email, phone_channel)
    ]


def plan_code(
    channel: Channel, recipient: str, *, appointment_at: datetime, now: datetime
) -> PlannedMessage:
    """The code message of a held booking, due now (quiet hours do not apply:
    the citizen is waiting for it)."""
    return PlannedMessage(CODE, channel, recipient, now, appointment_at)


def sms_cap_decision(
    sent: int, oldest: datetime | None, cap: int, *, has_email: bool, now: datetime
) -> datetime | Literal["email"] | None:
    """What an SMS does with `sent` SMS to its number in the last 24 hours:
    None to go now; "email" to give way to the e-mail copy the booking gets
    anyway; else the instant to try again, when the oldest send leaves the
    window (a minute from now when it is another worker's send in flight)."""
    if sent < cap:
        return None
    if has_email:
        return "email"
    if oldest is None:
        return now + timedelta(minutes=1)
    return max(oldest + timedelta(hours=24), now + timedelta(minutes=1))


def voided_reminders(event: Event) -> str | None:
    """Why `event` skips the booking's pending reminders, or None when it
    keeps them: a move makes new ones, a cancellation needs none."""
    if event == "confirmed":
        return None
    return SKIP_MOVED if event == "rescheduled" else SKIP_CANCELLED


def skip_reason(
    kind: str,
    *,
    booking_status: str,
    booking_starts_at: datetime,
    appointment_at: datetime,
    now: datetime,
    file_state: str | None = None,
) -> str | None:
    """Why a due message must not go out any more, or None to send it.

    A message after the visit goes until its deadline (`appointment_at`) and
    while its subject holds: a document message while the document waits
    for pickup (`file_state` ready), a feedback message while the booking
    is done.

    Only a cancellation still speaks truly of a cancelled booking; every other
    message (confirmation, reminder, "rescheduled", the email standing in for
    an SMS) tells the citizen to come at `appointment_at`, so it goes only
    while the booking is active and still starts then.
    """
    if kind in AFTER_VISIT_KINDS:
        if now >= appointment_at:
            return SKIP_LAPSED
        if kind in DOCUMENT_KINDS and file_state != "ready":
            return SKIP_DOCUMENT_MOVED
        if kind == FEEDBACK and booking_status != "done":
            return SKIP_INACTIVE
        return None
    if now >= appointment_at:
        return SKIP_STARTED
    if kind in WHILE_HELD_KINDS:
        # A code or an offer is worth sending only while its hold waits;
        # "not served" only while the request is still on the list; an
        # announcement while its subscription stands and its day is on
        # (each says "held" then, see service.store.outbox.claim).
        return None if booking_status == "held" else SKIP_INACTIVE
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
    """Whether an SMS (or a WhatsApp message that could not go by SMS either)
    that could not be delivered is repeated by email: only a confirmation,
    and only while it would still be sent itself."""
    return (
        channel in PHONE_CHANNELS
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


def goes_despite_opt_out(kind: str) -> bool:
    """Whether a WhatsApp message to a number that said STOP still reaches
    the citizen another way (SMS, else e-mail): a confirmation, a move, a
    cancellation, a code, an offer, a document ready; never a reminder,
    nor a feedback request."""
    return kind not in REMINDING_KINDS


def channel_without_whatsapp(
    phone: str | None, email: str | None, served: frozenset[str]
) -> MessageChannel | None:
    """Where a booking's phone messages go once its number turns out to have
    no WhatsApp: by SMS when this office may send one to it, else e-mail
    only when there is an address; None when neither can take them (the
    choice stays, and each message falls back on its own)."""
    if phone is not None and sms_refusal(phone, served) is None:
        return "sms"
    return "email" if email else None


def whatsapp_fallback(
    kind: str,
    *,
    phone: str,
    served: frozenset[str],
    message_channel: str,
    booking_status: str,
    booking_starts_at: datetime,
    appointment_at: datetime,
    now: datetime,
) -> Literal["sms", "email"] | None:
    """Where a WhatsApp message that will never arrive (not a WhatsApp user,
    no template, ...) goes instead: the same message by SMS when the number
    can take one from this office (`served` countries) and the booking has
    not since asked for e-mail only; else what an undelivered SMS does
    (`wants_email_fallback`: the confirmation by e-mail); None when the
    message no longer needs to go at all."""
    if (
        skip_reason(
            kind,
            booking_status=booking_status,
            booking_starts_at=booking_starts_at,
            appointment_at=appointment_at,
            now=now,
        )
        is not None
    ):
        return None
    if message_channel != "email" and sms_refusal(phone, served) is None:
        return "sms"
    return "email"


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
        at = window[1]
    return at if at < deadline else None


def quiet_applies(kind: str) -> bool:
    """Quiet hours hold back reminders, the messages after a visit and the
    announcements of a mobile day: the other messages answer something the
    citizen or the office has just done, and go at once even at night
    (plan_event does not move them either)."""
    return kind in ("reminder", MOBILE_DAY_PLANNED) or kind in AFTER_VISIT_KINDS


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
