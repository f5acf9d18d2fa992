"""The waiting list's rules: which freed seats go to the list, and when an
offer's message leaves and its time ends (quiet hours, the appointment)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from service.domain.messages import DEFAULT_QUIET, QuietHours, quiet_window
from service.domain.waitlist import goes_to_list, horizon, offer_timing

NOW = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")
CASABLANCA = ZoneInfo("Africa/Casablanca")


def test_a_seat_goes_to_the_list_only_inside_the_horizon_and_the_booking_window() -> None:
    earliest, latest = NOW + timedelta(hours=2), NOW + timedelta(days=60)
    assert goes_to_list(NOW + timedelta(days=3), NOW, earliest, latest, 14)
    assert goes_to_list(horizon(NOW, 14), NOW, earliest, latest, 14)
    assert not goes_to_list(horizon(NOW, 14) + timedelta(seconds=1), NOW, earliest, latest, 14)
    # Too soon for anyone to book it: it stays where it is.
    assert not goes_to_list(NOW + timedelta(hours=1), NOW, earliest, latest, 14)
    # Past the booking window (a service bookable 7 days ahead).
    assert not goes_to_list(NOW + timedelta(days=8), NOW, earliest, NOW + timedelta(days=7), 14)
    # WAITLIST_DAYS=0: no list at all.
    assert not goes_to_list(NOW + timedelta(days=3), NOW, earliest, latest, 0)


def test_an_offer_by_day_leaves_now_for_its_hours() -> None:
    start = NOW + timedelta(days=2)
    timing = offer_timing(NOW, 2, start, DEFAULT_QUIET, PARIS)
    assert (timing.send_at, timing.expires_at) == (NOW, NOW + timedelta(hours=2))


def test_an_offer_at_night_waits_for_the_morning_and_its_hours_count_from_then() -> None:
    # 23:30 in Paris; quiet hours end at 08:00 (07:00 UTC).
    night = datetime(2027, 2, 1, 22, 30, tzinfo=UTC)
    start = datetime(2027, 2, 4, 8, 0, tzinfo=UTC)
    timing = offer_timing(night, 2, start, DEFAULT_QUIET, PARIS)
    assert timing.send_at == datetime(2027, 2, 2, 7, 0, tzinfo=UTC)
    assert timing.expires_at == datetime(2027, 2, 2, 9, 0, tzinfo=UTC)


def test_an_offer_never_outlives_its_appointment() -> None:
    # The seat starts at 08:30 in Paris: no time to wait for the morning.
    night = datetime(2027, 2, 1, 22, 30, tzinfo=UTC)
    start = datetime(2027, 2, 2, 7, 30, tzinfo=UTC)
    timing = offer_timing(night, 2, start, DEFAULT_QUIET, PARIS)
    assert timing.send_at == night
    assert timing.expires_at == night + timedelta(hours=2)
    soon = offer_timing(NOW, 2, NOW + timedelta(minutes=30), DEFAULT_QUIET, PARIS)
    assert soon.expires_at == NOW + timedelta(minutes=30)


@given(
    now=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
    ),
    ahead=st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=14)),
    hours=st.integers(min_value=1, max_value=72),
    zone=st.sampled_from([PARIS, CASABLANCA, ZoneInfo("America/Toronto")]),
    quiet=st.sampled_from(
        [DEFAULT_QUIET, QuietHours(time(22, 0), time(7, 0)), QuietHours(time(0), time(0))]
    ),
)
def test_offer_timing_holds_its_promises(
    now: datetime, ahead: timedelta, hours: int, zone: ZoneInfo, quiet: QuietHours
) -> None:
    start = now + ahead
    timing = offer_timing(now, hours, start, quiet, zone)
    assert now <= timing.send_at <= timing.expires_at <= start
    # Never more than its hours from the message, and all of them unless
    # the appointment comes first.
    assert timing.expires_at == min(timing.send_at + timedelta(hours=hours), start)
    # A message moved to the morning leaves at the end of the quiet hours,
    # outside them; one that is not moved leaves at once.
    if timing.send_at != now:
        window = quiet_window(now, quiet, zone)
        assert window is not None and timing.send_at == window[1]
        assert quiet_window(timing.send_at, quiet, zone) is None
        assert timing.expires_at == timing.send_at + timedelta(hours=hours)
