"""The one iCalendar writer (service.domain.ics) behind the page's download,
the e-mail attachment and the office feed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar

from service.domain.ics import OFFICE_FEED, CalendarEvent, write_calendar

START = datetime(2027, 8, 3, 7, 30, tzinfo=UTC)


def _event(**changes: object) -> CalendarEvent:
    values: dict[str, object] = {
        "uid": "PAR-ABC123@mawid.test",
        "stamp": START - timedelta(days=1),
        "start": START,
        "end": START + timedelta(minutes=20),
        "summary": "Passeport · PAR-ABC123",
        "description": "PAR-ABC123",
    }
    values.update(changes)
    return CalendarEvent(**values)  # type: ignore[arg-type]


def test_an_invitation_has_only_what_it_was_given() -> None:
    cal = Calendar.from_ical(write_calendar([_event()], method="PUBLISH"))
    assert cal["method"] == "PUBLISH" and "x-wr-calname" not in cal
    [event] = cal.walk("VEVENT")
    assert event["uid"] == "PAR-ABC123@mawid.test"
    assert event.decoded("dtstart") == START
    for absent in ("location", "url", "status", "sequence"):
        assert absent not in event
    assert not cal.walk("VTIMEZONE")


def test_times_in_a_zone_carry_their_timezone() -> None:
    paris = ZoneInfo("Europe/Paris")
    event = _event(
        start=START.astimezone(paris),
        end=(START + timedelta(minutes=20)).astimezone(paris),
        status="CANCELLED",
        sequence=4,
        url="https://mawid.test/b/x",
    )
    cal = Calendar.from_ical(write_calendar([event], method="CANCEL"))
    [zone] = cal.walk("VTIMEZONE")
    assert zone["tzid"] == "Europe/Paris"
    [parsed] = cal.walk("VEVENT")
    assert parsed["status"] == "CANCELLED" and parsed["sequence"] == 4
    assert parsed.decoded("dtstart") == START


def test_a_feed_is_named_and_holds_every_event() -> None:
    events = [_event(uid=f"R{n}@mawid") for n in range(3)]
    cal = Calendar.from_ical(
        write_calendar(events, prodid=OFFICE_FEED, name="Mawid · Paris", timezone="Europe/Paris")
    )
    assert cal["prodid"] == OFFICE_FEED and "method" not in cal
    assert cal["x-wr-calname"] == "Mawid · Paris" and cal["x-wr-timezone"] == "Europe/Paris"
    assert [e["uid"] for e in cal.walk("VEVENT")] == ["R0@mawid", "R1@mawid", "R2@mawid"]
