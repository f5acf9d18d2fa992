"""The iCalendar files Mawid writes. Pure: bytes from plain values.

Three callers, one writer: the citizen's download on the manage page, the
attachment of every e-mail (service.notify.render), and the office's feed
(service.office.feed). What each puts in an event (times in UTC or in the
office's zone, a manage link or none, a citizen's UID or the feed's) is the
caller's choice; the shape of the file is decided here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from icalendar import Calendar, Event

APPOINTMENTS = "-//Mawid//Appointments//EN"
OFFICE_FEED = "-//Mawid//office feed//EN"


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    uid: str
    stamp: datetime
    start: datetime
    end: datetime
    summary: str
    description: str
    location: str | None = None
    url: str | None = None
    status: str | None = None  # CONFIRMED or CANCELLED
    # Orders successive updates of one event (higher wins).
    sequence: int | None = None


def write_calendar(
    events: Iterable[CalendarEvent],
    *,
    prodid: str = APPOINTMENTS,
    method: str | None = None,
    name: str | None = None,
    timezone: str | None = None,
) -> bytes:
    """A VCALENDAR with `events`; `method` PUBLISH or CANCEL for an invitation,
    `name` and `timezone` for a feed a calendar app subscribes to.

    Times in a zone other than UTC get their VTIMEZONE, so that any calendar
    app shows them at the right hour.
    """
    calendar = Calendar()
    calendar.add("prodid", prodid)
    calendar.add("version", "2.0")
    if method is not None:
        calendar.add("method", method)
    if name is not None:
        calendar.add("x-wr-calname", name)
    if timezone is not None:
        calendar.add("x-wr-timezone", timezone)
    for item in events:
        event = Event()
        event.add("uid", item.uid)
        if item.sequence is not None:
            event.add("sequence", item.sequence)
        event.add("dtstamp", item.stamp)
        event.add("dtstart", item.start)
        event.add("dtend", item.end)
        event.add("summary", item.summary)
        if item.location is not None:
            event.add("location", item.location)
        event.add("description", item.description)
        if item.url is not None:
            event.add("url", item.url)
        if item.status is not None:
            event.add("status", item.status)
        calendar.add_component(event)
    calendar.add_missing_timezones()
    ical: bytes = calendar.to_ical()
    return ical
