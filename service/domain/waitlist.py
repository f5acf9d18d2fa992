"""The waiting list of an instant service: which days one may ask for, which
freed seats go to the list rather than back on sale, and when an offer's
message leaves and its time ends. Pure: no I/O.

A seat freed (a cancellation, an expired hold, a declined or expired offer)
that starts within the next WAITLIST_DAYS, and that the public could book
(inside the service's booking window), goes to the first entry of the list,
in order of joining, that accepts its local day and part of day. Nobody
suitable: the seat goes back on sale at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from service.domain.messages import QuietHours, quiet_window


def horizon(now: datetime, waitlist_days: int) -> datetime:
    """Seats starting up to this instant go to the list first."""
    return now + timedelta(days=waitlist_days)


def goes_to_list(
    starts_at: datetime, now: datetime, earliest: datetime, latest: datetime, waitlist_days: int
) -> bool:
    """Whether a freed seat starting at `starts_at` is offered to the list:
    bookable now (between the booking window's `earliest` and `latest`) and
    within the list's horizon. WAITLIST_DAYS=0 turns the list off."""
    return waitlist_days > 0 and earliest <= starts_at <= min(latest, horizon(now, waitlist_days))


@dataclass(frozen=True, slots=True)
class OfferTiming:
    # When the offer's message is due.
    send_at: datetime
    # When the offer passes to the next entry.
    expires_at: datetime


def offer_timing(
    now: datetime, hours: int, starts_at: datetime, quiet: QuietHours, zone: ZoneInfo
) -> OfferTiming:
    """A short offer made at night would pass down the list while everyone
    sleeps: inside the office's quiet hours its message waits for their end
    (when that still leaves the offer's hours before the appointment) and
    its time counts from then. Never past the appointment itself."""
    send_at = now
    window = quiet_window(now, quiet, zone)
    if window is not None and window[1] + timedelta(hours=hours) <= starts_at:
        send_at = window[1]
    return OfferTiming(send_at, min(send_at + timedelta(hours=hours), starts_at))
