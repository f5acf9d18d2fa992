from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from service.domain.messages import (
    DEFAULT_QUIET,
    MAX_ATTEMPTS,
    MAX_RATE_LIMIT_WAITS,
    QuietHours,
    adjust_for_quiet_hours,
    backoff,
    next_attempt_at,
    outside_quiet_hours,
    plan_event,
    quiet_window,
    reminder_times,
    resend_at,
    skip_reason,
    wants_email_fallback,
)

PARIS = ZoneInfo("Europe/Paris")
CASA = ZoneInfo("Africa/Casablanca")
TORONTO = ZoneInfo("America/Toronto")
ZONES = [
    ZoneInfo(z)
    for z in (
        "Europe/Paris",
        "Europe/Madrid",
        "Europe/Brussels",
        "Europe/Rome",
        "Europe/Amsterdam",
        "Europe/Berlin",
        "America/Toronto",
        "Africa/Casablanca",
    )
]


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone).astimezone(UTC)  # type: ignore[misc]


# Instants around the DST changes of 2026-2028 and Casablanca's Ramadan shifts,
# where the bugs live, plus anywhere in those years.
_TRANSITIONS = [
    datetime(2027, 2, 7, 2, tzinfo=UTC),
    datetime(2027, 3, 14, 2, tzinfo=UTC),
    datetime(2027, 3, 28, 1, tzinfo=UTC),
    datetime(2027, 10, 31, 1, tzinfo=UTC),
    datetime(2027, 3, 14, 7, tzinfo=UTC),
    datetime(2027, 11, 7, 6, tzinfo=UTC),
    datetime(2026, 3, 29, 1, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
]
near_transition = st.builds(
    lambda base, minutes: base + timedelta(minutes=minutes),
    st.sampled_from(_TRANSITIONS),
    st.integers(min_value=-4 * 24 * 60, max_value=4 * 24 * 60),
)
anywhere = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
appointments = st.one_of(near_transition, anywhere).map(
    lambda d: d.replace(second=0, microsecond=0)
)
walls = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
quiets = st.one_of(
    st.just(DEFAULT_QUIET),
    st.builds(QuietHours, walls, walls),
)
offsets = st.lists(st.integers(min_value=1, max_value=14 * 24 * 60), min_size=1, max_size=4)


def wall_of(instant: datetime, zone: ZoneInfo) -> time:
    return instant.astimezone(zone).time().replace(tzinfo=None)


# Quiet hours ------------------------------------------------------------------


def test_quiet_hours_contains_wraps_midnight() -> None:
    q = DEFAULT_QUIET
    assert q.contains(time(21, 0))
    assert q.contains(time(23, 59))
    assert q.contains(time(0, 0))
    assert q.contains(time(7, 59))
    assert not q.contains(time(8, 0))
    assert not q.contains(time(20, 59))
    assert not QuietHours(time(8), time(8)).contains(time(8))
    day = QuietHours(time(12), time(14))
    assert day.contains(time(13)) and not day.contains(time(14))


def test_reminder_in_quiet_hours_moves_to_their_end() -> None:
    appt = local(CASA, 2027, 4, 20, 12, 0)
    due = local(CASA, 2027, 4, 20, 6, 0)  # 6 h before, inside 21:00-08:00
    assert adjust_for_quiet_hours(due, appt, DEFAULT_QUIET, CASA) == local(CASA, 2027, 4, 20, 8, 0)


def test_reminder_moves_to_quiet_start_when_the_end_is_too_late() -> None:
    appt = local(CASA, 2027, 4, 20, 8, 30)
    due = appt - timedelta(hours=3)  # 05:30, end 08:00 is only 30 min before
    assert adjust_for_quiet_hours(due, appt, DEFAULT_QUIET, CASA) == local(CASA, 2027, 4, 19, 21, 0)


def test_end_exactly_one_hour_before_is_allowed() -> None:
    appt = local(PARIS, 2027, 5, 3, 9, 0)
    due = local(PARIS, 2027, 5, 3, 6, 0)
    assert adjust_for_quiet_hours(due, appt, DEFAULT_QUIET, PARIS) == local(PARIS, 2027, 5, 3, 8, 0)


def test_quiet_end_uses_the_zone_offset_of_that_day_in_ramadan() -> None:
    # During Ramadan 2027 Casablanca is UTC+0: 08:00 local is 08:00 UTC.
    appt = local(CASA, 2027, 2, 15, 12, 0)
    due = local(CASA, 2027, 2, 15, 5, 0)
    moved = adjust_for_quiet_hours(due, appt, DEFAULT_QUIET, CASA)
    assert moved == datetime(2027, 2, 15, 8, 0, tzinfo=UTC)
    # And UTC+1 after it.
    appt = local(CASA, 2027, 3, 16, 12, 0)
    moved = adjust_for_quiet_hours(local(CASA, 2027, 3, 16, 5), appt, DEFAULT_QUIET, CASA)
    assert moved == datetime(2027, 3, 16, 7, 0, tzinfo=UTC)


def test_quiet_window_across_spring_forward_has_the_right_length() -> None:
    # Night of 27-28 March 2027 in Paris loses an hour: 21:00 -> 08:00 is 10 h.
    start, end = quiet_window(local(PARIS, 2027, 3, 28, 3, 30), DEFAULT_QUIET, PARIS) or (
        None,
        None,
    )
    assert start is not None and end is not None
    assert end - start == timedelta(hours=10)


def test_quiet_boundary_inside_a_gap_stays_outside_the_window() -> None:
    # 02:30 does not exist in Paris on 2027-03-28: the end goes to after the gap.
    q = QuietHours(time(22, 0), time(2, 30))
    window = quiet_window(local(PARIS, 2027, 3, 28, 1, 0), q, PARIS)
    assert window is not None
    assert window[1] == datetime(2027, 3, 28, 1, 30, tzinfo=UTC)  # 03:30 CEST
    assert not q.contains(wall_of(window[1], PARIS))


def _clock_changes(zone: ZoneInfo, year: int) -> list[datetime]:
    """The UTC instants at which `zone` changes its offset during `year`."""
    out = []
    at = datetime(year, 1, 1, tzinfo=UTC)
    while at.year == year:
        after = at + timedelta(hours=1)
        if at.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset():
            out.append(after)
        at = after
    return out


# Boundaries on, around and inside the hour the clocks repeat or skip.
_NIGHT_QUIETS = [
    DEFAULT_QUIET,
    QuietHours(time(0, 0), time(2, 15)),
    QuietHours(time(2, 30), time(8, 0)),
    QuietHours(time(22, 0), time(2, 30)),
    QuietHours(time(1, 0), time(3, 30)),
    QuietHours(time(2, 0), time(3, 0)),
    QuietHours(time(3, 0), time(2, 0)),
]
_CHANGE_NIGHTS = [
    (zone, change)
    for zone in ZONES
    for year in (2026, 2027)
    for change in _clock_changes(zone, year)
]


def test_every_demo_zone_changes_its_clocks_in_the_test_years() -> None:
    # Paris and its neighbours, Toronto twice a year; Casablanca around Ramadan.
    for zone in ZONES:
        assert len(_clock_changes(zone, 2027)) == 2, zone


def test_quiet_window_of_the_autumn_night_found_by_the_property_test() -> None:
    # 01:00Z on 31 Oct 2027 is 02:00 CET, the second pass of the repeated
    # hour; quiet hours 00:00-02:15 end at the last 02:15 (01:15Z).
    due = datetime(2027, 10, 31, 1, 0, tzinfo=UTC)
    quiet = QuietHours(time(0, 0), time(2, 15))
    assert quiet_window(due, quiet, PARIS) == (
        datetime(2027, 10, 30, 22, 0, tzinfo=UTC),
        datetime(2027, 10, 31, 1, 15, tzinfo=UTC),
    )
    appt = due + timedelta(minutes=5)
    assert adjust_for_quiet_hours(due, appt, quiet, PARIS) == datetime(
        2027, 10, 30, 22, 0, tzinfo=UTC
    )


@pytest.mark.parametrize("quiet", _NIGHT_QUIETS, ids=lambda q: f"{q.start:%H%M}-{q.end:%H%M}")
@pytest.mark.parametrize(
    ("zone", "change"), _CHANGE_NIGHTS, ids=lambda v: getattr(v, "key", None) or f"{v:%Y%m%d}"
)
def test_quiet_windows_on_every_night_the_clocks_change(
    zone: ZoneInfo, change: datetime, quiet: QuietHours
) -> None:
    """Every 10 minutes of the day around each clock change of each office
    zone: a quiet wall time is always inside a window that contains the
    instant, a window's end is outside quiet hours and after the instant,
    and a reminder is never moved into the middle of a window."""
    instant = change - timedelta(hours=12)
    while instant < change + timedelta(hours=12):
        window = quiet_window(instant, quiet, zone)
        if quiet.contains(wall_of(instant, zone)):
            assert window is not None, instant
        if window is not None:
            start, end = window
            assert start <= instant < end, instant
            assert not quiet.contains(wall_of(end, zone)), instant
            assert quiet_window(end, quiet, zone) is None, instant
            assert not quiet.contains(wall_of(start - timedelta(minutes=1), zone)), instant
            for lead in (30, 90, 24 * 60):
                appt = instant + timedelta(minutes=lead)
                moved = adjust_for_quiet_hours(instant, appt, quiet, zone)
                assert moved in (start, end), instant
                assert moved != end or moved <= appt - timedelta(hours=1), instant
            later = outside_quiet_hours(
                instant, deadline=instant + timedelta(days=2), quiet=quiet, zone=zone
            )
            assert later == end, instant
        instant += timedelta(minutes=10)


@settings(max_examples=400, deadline=None)
@given(due=appointments, quiet=quiets, zone=st.sampled_from(ZONES), lead=st.integers(1, 3000))
def test_quiet_adjustment_properties(
    due: datetime, quiet: QuietHours, zone: ZoneInfo, lead: int
) -> None:
    appt = due + timedelta(minutes=lead)
    moved = adjust_for_quiet_hours(due, appt, quiet, zone)
    window = quiet_window(due, quiet, zone)
    if window is None:
        assert moved == due
        return
    start, end = window
    assert start <= due < end
    if moved == end:
        assert moved <= appt - timedelta(hours=1)
        assert not quiet.contains(wall_of(moved, zone))
    else:
        assert moved == start
        assert end > appt - timedelta(hours=1)
        # The start of quiet hours is the last moment outside them.
        assert moved <= due
        just_before = moved - timedelta(minutes=1)
        assert not quiet.contains(wall_of(just_before, zone))


# Reminder instants -------------------------------------------------------------


def test_default_reminders_48h_and_3h_before() -> None:
    appt = local(PARIS, 2027, 5, 12, 14, 0)
    booked = appt - timedelta(days=10)
    got = reminder_times(appt, booked, (2880, 180), DEFAULT_QUIET, PARIS)
    assert got == [(2880, appt - timedelta(hours=48)), (180, appt - timedelta(hours=3))]


def test_24h_reminder_is_24_real_hours_across_dst() -> None:
    appt = local(PARIS, 2027, 3, 28, 10, 0)  # CEST, the day clocks go forward
    got = reminder_times(appt, appt - timedelta(days=5), (1440,), DEFAULT_QUIET, PARIS)
    assert got == [(1440, appt - timedelta(hours=24))]
    assert wall_of(got[0][1], PARIS) == time(9, 0)  # CET the day before


def test_24h_reminder_across_casablanca_ramadan_start() -> None:
    appt = local(CASA, 2027, 2, 7, 10, 0)  # UTC+0 since 03:00 that night
    got = reminder_times(appt, appt - timedelta(days=5), (1440,), DEFAULT_QUIET, CASA)
    assert got == [(1440, appt - timedelta(hours=24))]
    assert wall_of(got[0][1], CASA) == time(11, 0)  # still UTC+1 on the 7th at 10 UTC


def test_reminder_already_past_is_not_created() -> None:
    appt = local(PARIS, 2027, 5, 12, 14, 0)
    booked = appt - timedelta(hours=20)
    assert reminder_times(appt, booked, (2880, 180), DEFAULT_QUIET, PARIS) == [
        (180, appt - timedelta(hours=3))
    ]


def test_reminder_less_than_an_hour_after_booking_is_not_created() -> None:
    appt = local(PARIS, 2027, 5, 12, 14, 0)
    assert reminder_times(appt, appt - timedelta(minutes=230), (180,), DEFAULT_QUIET, PARIS) == []
    kept = reminder_times(appt, appt - timedelta(minutes=240), (180,), DEFAULT_QUIET, PARIS)
    assert kept == [(180, appt - timedelta(hours=3))]


def test_reminders_landing_on_one_instant_make_one_row() -> None:
    appt = local(PARIS, 2027, 5, 12, 8, 45)
    # 2 h and 3 h before are 06:45 and 05:45: inside quiet hours, whose end
    # (08:00) is too late, so both go at their start.
    got = reminder_times(appt, appt - timedelta(days=3), (120, 180), DEFAULT_QUIET, PARIS)
    assert got == [(180, local(PARIS, 2027, 5, 11, 21, 0))]


@settings(max_examples=400, deadline=None)
@given(
    appt=appointments,
    ahead=st.integers(min_value=0, max_value=90 * 24 * 60),
    offs=offsets,
    quiet=quiets,
    zone=st.sampled_from(ZONES),
)
def test_reminder_properties(
    appt: datetime, ahead: int, offs: list[int], quiet: QuietHours, zone: ZoneInfo
) -> None:
    booked = appt - timedelta(minutes=ahead)
    got = reminder_times(appt, booked, offs, quiet, zone)
    instants = [at for _, at in got]
    assert instants == sorted(set(instants))
    for offset, at in got:
        assert offset in offs
        assert booked + timedelta(hours=1) <= at < appt
        due = appt - timedelta(minutes=offset)
        if quiet_window(due, quiet, zone) is None:
            assert at == due  # real elapsed time, not wall time
        else:
            assert at != due or quiet.start == wall_of(at, zone)
    # Nothing dropped that should have been kept.
    for offset in set(offs):
        due = appt - timedelta(minutes=offset)
        target = adjust_for_quiet_hours(due, appt, quiet, zone)
        if booked + timedelta(hours=1) <= target < appt:
            assert target in instants


# Planning an event ------------------------------------------------------------


def test_confirmed_with_phone_and_email() -> None:
    now = local(PARIS, 2027, 5, 1, 10, 0)
    appt = local(PARIS, 2027, 5, 12, 15, 0)
    plan = plan_event(
        "confirmed",
        phone="+33612345678",
        email="a@example.org",
        appointment_at=appt,
        now=now,
        zone=PARIS,
    )
    kinds = [(m.kind, m.channel, m.send_at) for m in plan]
    assert kinds == [
        ("confirmation", "sms", now),
        ("confirmation", "email", now),
        ("reminder", "sms", appt - timedelta(hours=48)),
        ("reminder", "email", appt - timedelta(hours=48)),
        ("reminder", "sms", appt - timedelta(hours=3)),
        ("reminder", "email", appt - timedelta(hours=3)),
    ]
    assert all(m.appointment_at == appt for m in plan)


@pytest.mark.parametrize("event", ["cancelled_by_citizen", "cancelled_by_office"])
def test_cancellations_make_no_reminders(event: str) -> None:
    now = local(PARIS, 2027, 5, 1, 10, 0)
    plan = plan_event(
        event,  # type: ignore[arg-type]
        phone=None,
        email="a@example.org",
        appointment_at=now + timedelta(days=9),
        now=now,
        zone=PARIS,
    )
    assert [(m.kind, m.channel) for m in plan] == [(event, "email")]


def test_rescheduled_plans_message_and_new_reminders() -> None:
    now = local(CASA, 2027, 5, 1, 10, 0)
    appt = local(CASA, 2027, 5, 4, 10, 0)
    plan = plan_event(
        "rescheduled", phone="+212612345678", email=None, appointment_at=appt, now=now, zone=CASA
    )
    assert [m.kind for m in plan] == ["rescheduled", "reminder", "reminder"]


@pytest.mark.parametrize("landline", ["+212528862222", "+33140000000"])
def test_no_sms_to_a_landline_but_email_still_goes(landline: str) -> None:
    now = local(CASA, 2027, 5, 1, 10, 0)
    appt = local(CASA, 2027, 5, 12, 10, 0)
    plan = plan_event(
        "confirmed", phone=landline, email="a@example.org", appointment_at=appt, now=now, zone=CASA
    )
    assert {m.channel for m in plan} == {"email"}
    assert [m.kind for m in plan] == ["confirmation", "reminder", "reminder"]
    only_phone = plan_event(
        "cancelled_by_office", phone=landline, email=None, appointment_at=appt, now=now, zone=CASA
    )
    assert only_phone == []


@pytest.mark.parametrize("mobile", ["+212612345678", "+212712345678", "+33612345678"])
def test_sms_to_mobiles(mobile: str) -> None:
    now = local(CASA, 2027, 5, 1, 10, 0)
    plan = plan_event(
        "confirmed",
        phone=mobile,
        email=None,
        appointment_at=now + timedelta(days=9),
        now=now,
        zone=CASA,
    )
    assert {m.channel for m in plan} == {"sms"}


# Re-checks when due -----------------------------------------------------------

APPT = datetime(2027, 5, 12, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "status", "starts", "now", "reason"),
    [
        ("reminder", "confirmed", APPT, APPT - timedelta(hours=3), None),
        ("reminder", "cancelled", APPT, APPT - timedelta(hours=3), "booking_cancelled"),
        (
            "reminder",
            "confirmed",
            APPT + timedelta(days=1),
            APPT - timedelta(hours=3),
            "booking_moved",
        ),
        ("reminder", "confirmed", APPT, APPT, "appointment_started"),
        ("reminder", "checked_in", APPT, APPT - timedelta(minutes=5), "booking_inactive"),
        ("confirmation", "confirmed", APPT, APPT - timedelta(days=1), None),
        (
            "confirmation",
            "confirmed",
            APPT + timedelta(hours=1),
            APPT - timedelta(days=1),
            "superseded",
        ),
        ("cancelled_by_office", "cancelled", APPT, APPT - timedelta(days=1), None),
        ("confirmation", "cancelled", APPT, APPT - timedelta(days=1), "booking_cancelled"),
        ("rescheduled", "cancelled", APPT, APPT - timedelta(days=1), "booking_cancelled"),
        ("sms_fallback", "cancelled", APPT, APPT - timedelta(days=1), "booking_cancelled"),
        (
            "sms_fallback",
            "confirmed",
            APPT + timedelta(hours=2),
            APPT - timedelta(days=1),
            "superseded",
        ),
        ("sms_fallback", "confirmed", APPT, APPT - timedelta(days=1), None),
        ("confirmation", "checked_in", APPT, APPT - timedelta(minutes=5), "booking_inactive"),
        ("rescheduled", "expired", APPT, APPT - timedelta(days=1), "booking_inactive"),
        (
            "cancelled_by_citizen",
            "cancelled",
            APPT,
            APPT + timedelta(seconds=1),
            "appointment_started",
        ),
    ],
)
def test_skip_reason(
    kind: str, status: str, starts: datetime, now: datetime, reason: str | None
) -> None:
    got = skip_reason(
        kind, booking_status=status, booking_starts_at=starts, appointment_at=APPT, now=now
    )
    assert got == reason


STATUSES = ["held", "confirmed", "checked_in", "done", "no_show", "cancelled", "expired"]
NOT_CANCELLATIONS = ["confirmation", "rescheduled", "reminder", "sms_fallback"]


@given(
    kind=st.sampled_from(NOT_CANCELLATIONS),
    status=st.sampled_from(STATUSES),
    moved=st.integers(-3000, 3000),
    before=st.integers(-600, 30000),
    appt=appointments,
)
def test_only_a_cancellation_speaks_of_a_booking_no_longer_as_planned(
    kind: str, status: str, moved: int, before: int, appt: datetime
) -> None:
    starts = appt + timedelta(minutes=moved)
    now = appt - timedelta(minutes=before)
    reason = skip_reason(
        kind, booking_status=status, booking_starts_at=starts, appointment_at=appt, now=now
    )
    as_planned = status == "confirmed" and starts == appt and now < appt
    assert (reason is None) == as_planned
    for cancellation in ("cancelled_by_citizen", "cancelled_by_office"):
        got = skip_reason(
            cancellation,
            booking_status=status,
            booking_starts_at=starts,
            appointment_at=appt,
            now=now,
        )
        assert (got is None) == (now < appt)


@pytest.mark.parametrize(
    ("kind", "channel", "status", "starts", "wanted"),
    [
        ("confirmation", "sms", "confirmed", APPT, True),
        ("confirmation", "sms", "cancelled", APPT, False),
        ("confirmation", "sms", "confirmed", APPT + timedelta(days=1), False),
        ("confirmation", "sms", "checked_in", APPT, False),
        ("reminder", "sms", "confirmed", APPT, False),
        ("rescheduled", "sms", "confirmed", APPT, False),
        ("confirmation", "email", "confirmed", APPT, False),
    ],
)
def test_email_fallback_only_for_a_confirmation_still_true(
    kind: str, channel: str, status: str, starts: datetime, wanted: bool
) -> None:
    got = wants_email_fallback(
        kind,
        channel,
        booking_status=status,
        booking_starts_at=starts,
        appointment_at=APPT,
        now=APPT - timedelta(days=1),
    )
    assert got is wanted
    late = wants_email_fallback(
        kind,
        channel,
        booking_status=status,
        booking_starts_at=starts,
        appointment_at=APPT,
        now=APPT,
    )
    assert late is False


# Retries ----------------------------------------------------------------------


@given(st.integers(1, 30), st.floats(0, 1, exclude_max=True))
def test_backoff_grows_and_is_capped(attempt: int, jitter: float) -> None:
    d = backoff(attempt, jitter)
    assert timedelta(seconds=15) <= d <= timedelta(hours=1)
    assert backoff(attempt + 1, jitter) >= d


def test_temporary_errors_stop_at_the_deadline() -> None:
    now = APPT - timedelta(minutes=10)
    at = next_attempt_at(
        now,
        attempts=1,
        rate_limited=False,
        rate_limit_waits=0,
        retry_after=None,
        deadline=APPT,
        jitter=0.5,
    )
    assert at is not None and now < at < APPT
    assert (
        next_attempt_at(
            now,
            attempts=12 - 6,
            rate_limited=False,
            rate_limit_waits=0,
            retry_after=None,
            deadline=APPT,
            jitter=0.5,
        )
        is None
    )


def test_retry_budget_is_finite() -> None:
    far = APPT + timedelta(days=365)
    assert (
        next_attempt_at(
            APPT,
            attempts=MAX_ATTEMPTS,
            rate_limited=False,
            rate_limit_waits=0,
            retry_after=None,
            deadline=far,
            jitter=0.0,
        )
        is None
    )


def test_rate_limit_does_not_use_the_retry_budget() -> None:
    far = APPT + timedelta(days=365)
    at = next_attempt_at(
        APPT,
        attempts=MAX_ATTEMPTS,
        rate_limited=True,
        rate_limit_waits=3,
        retry_after=timedelta(seconds=2),
        deadline=far,
        jitter=0.0,
    )
    assert at == APPT + timedelta(seconds=2)


@given(near_transition, st.integers(0, 1000))
def test_no_retry_is_ever_scheduled_after_the_deadline(now: datetime, minutes: int) -> None:
    deadline = now + timedelta(minutes=minutes)
    for attempts in range(1, MAX_ATTEMPTS + 1):
        at = next_attempt_at(
            now,
            attempts=attempts,
            rate_limited=False,
            rate_limit_waits=0,
            retry_after=None,
            deadline=deadline,
            jitter=0.99,
        )
        assert at is None or at < deadline
    assume(True)


# Quiet hours for retries and recovered rows -------------------------------------


def test_reminder_retry_at_night_waits_for_the_end_of_quiet_hours() -> None:
    # A reminder hits a 5xx at 20:59:50 in Paris; its backoff lands after 21:00.
    now = local(PARIS, 2027, 5, 11, 20, 59, 50)
    appt = local(PARIS, 2027, 5, 12, 15, 0)
    at = next_attempt_at(
        now,
        attempts=1,
        rate_limited=False,
        rate_limit_waits=0,
        retry_after=None,
        deadline=appt,
        jitter=0.5,
        quiet=DEFAULT_QUIET,
        zone=PARIS,
    )
    assert at == local(PARIS, 2027, 5, 12, 8, 0)
    # A 429 at 20:55 told to wait 35 minutes: not at 21:30 either.
    rate_limited = next_attempt_at(
        local(PARIS, 2027, 5, 11, 20, 55),
        attempts=1,
        rate_limited=True,
        rate_limit_waits=0,
        retry_after=timedelta(minutes=35),
        deadline=appt,
        jitter=0.0,
        quiet=DEFAULT_QUIET,
        zone=PARIS,
    )
    assert rate_limited == local(PARIS, 2027, 5, 12, 8, 0)


def test_retry_whose_quiet_hours_end_at_the_appointment_gives_up() -> None:
    now = local(PARIS, 2027, 5, 11, 20, 59, 50)
    appt = local(PARIS, 2027, 5, 12, 8, 0)
    at = next_attempt_at(
        now,
        attempts=1,
        rate_limited=False,
        rate_limit_waits=0,
        retry_after=None,
        deadline=appt,
        jitter=0.5,
        quiet=DEFAULT_QUIET,
        zone=PARIS,
    )
    assert at is None


def test_quiet_hours_apply_to_reminders_only_when_a_row_is_taken_back() -> None:
    night = local(CASA, 2027, 5, 11, 23, 0)
    appt = local(CASA, 2027, 5, 12, 11, 0)
    morning = local(CASA, 2027, 5, 12, 8, 0)
    kw = {"appointment_at": appt, "quiet": DEFAULT_QUIET, "zone": CASA}
    assert resend_at("reminder", night, **kw) == morning  # type: ignore[arg-type]
    assert resend_at("confirmation", night, **kw) == night  # type: ignore[arg-type]
    assert resend_at("confirmation", appt, **kw) is None  # type: ignore[arg-type]
    early = {**kw, "appointment_at": local(CASA, 2027, 5, 12, 7, 30)}
    assert resend_at("reminder", night, **early) is None  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(
    now=appointments,
    quiet=quiets,
    zone=st.sampled_from(ZONES),
    lead=st.integers(1, 3000),
    attempts=st.integers(1, MAX_ATTEMPTS),
    rate_limited=st.booleans(),
    jitter=st.floats(0, 1, exclude_max=True),
)
def test_no_retry_in_quiet_hours_nor_at_or_after_the_appointment(
    now: datetime,
    quiet: QuietHours,
    zone: ZoneInfo,
    lead: int,
    attempts: int,
    rate_limited: bool,
    jitter: float,
) -> None:
    appt = now + timedelta(minutes=lead)
    kw = {
        "attempts": attempts,
        "rate_limited": rate_limited,
        "rate_limit_waits": 0,
        "retry_after": None,
        "deadline": appt,
        "jitter": jitter,
    }
    plain = next_attempt_at(now, **kw)  # type: ignore[arg-type]
    at = next_attempt_at(now, quiet=quiet, zone=zone, **kw)  # type: ignore[arg-type]
    if at is None:
        return
    assert plain is not None and plain <= at < appt
    assert quiet_window(at, quiet, zone) is None
    # Held back exactly to the end of the window the plain time fell in.
    window = quiet_window(plain, quiet, zone)
    assert at == (plain if window is None else window[1])
    assert outside_quiet_hours(plain, deadline=appt, quiet=quiet, zone=zone) == at


# Edges that mutation testing (make mutate) found unpinned -------------------


def test_quiet_hours_start_is_quiet_in_a_window_within_one_day() -> None:
    day = QuietHours(time(12), time(14))
    assert day.contains(time(12)) and not day.contains(time(11, 59))


def test_the_night_that_contains_an_instant_is_looked_up_in_the_office_zone() -> None:
    # 20:00 in Toronto is already tomorrow in UTC; a 23-hour night that
    # began yesterday evening still holds it.
    q = QuietHours(time(22), time(21))
    assert quiet_window(local(TORONTO, 2027, 2, 3, 20, 0), q, TORONTO) == (
        local(TORONTO, 2027, 2, 2, 22, 0),
        local(TORONTO, 2027, 2, 3, 21, 0),
    )


def test_a_night_whose_start_the_clocks_skip_begins_the_evening_before() -> None:
    # Chile springs forward at midnight (5 September 2027: 00:00 -> 01:00):
    # quiet hours from midnight start that night at 23:00 the day before,
    # an hour of the gap early, like an end in a gap goes an hour late.
    santiago = ZoneInfo("America/Santiago")
    q = QuietHours(time(0), time(6))
    assert quiet_window(local(santiago, 2027, 9, 4, 23, 30), q, santiago) == (
        datetime(2027, 9, 5, 3, 0, tzinfo=UTC),
        local(santiago, 2027, 9, 5, 6, 0),
    )


def test_no_reminder_at_the_appointment_itself_even_in_quiet_hours() -> None:
    # An offset of 0 falls at the appointment: inside quiet hours that end
    # too late, moving it to their start would make a reminder the evening
    # before that no one asked for.
    appt = local(PARIS, 2027, 5, 12, 8, 30)
    booked = local(PARIS, 2027, 5, 1, 10, 0)
    q = QuietHours(time(21), time(9))
    assert reminder_times(appt, booked, [0], q, PARIS) == []
    assert reminder_times(appt, booked, [0, 180], q, PARIS) == [
        (180, local(PARIS, 2027, 5, 11, 21, 0))
    ]


def test_planned_messages_carry_their_recipient_offset_and_office_zone() -> None:
    now = local(PARIS, 2027, 5, 1, 10, 0)
    # 48 h before falls at 21:30 in Paris (19:30 UTC), quiet in Paris only:
    # the reminder waits for 08:00 there.
    appt = local(PARIS, 2027, 5, 12, 21, 30)
    plan = plan_event(
        "confirmed",
        phone="+33612345678",
        email="a@example.org",
        appointment_at=appt,
        now=now,
        offsets_minutes=[2880],
        zone=PARIS,
    )
    assert [(m.kind, m.channel, m.recipient, m.send_at, m.offset_minutes) for m in plan] == [
        ("confirmation", "sms", "+33612345678", now, None),
        ("confirmation", "email", "a@example.org", now, None),
        ("reminder", "sms", "+33612345678", local(PARIS, 2027, 5, 11, 8, 0), 2880),
        ("reminder", "email", "a@example.org", local(PARIS, 2027, 5, 11, 8, 0), 2880),
    ]


def test_backoff_doubles_from_half_a_minute() -> None:
    assert [backoff(n, 0.0) for n in (1, 2, 3)] == [
        timedelta(seconds=15),
        timedelta(seconds=30),
        timedelta(seconds=60),
    ]
    assert backoff(1, 0.5) == timedelta(seconds=22.5)


def test_retry_times_at_their_edges() -> None:
    now = datetime(2027, 5, 1, 10, 0, tzinfo=UTC)
    far = now + timedelta(days=9)
    common = {"deadline": far, "retry_after": None, "rate_limit_waits": 0}
    # Rate limited: the wait, plus the jitter in seconds, never minus.
    assert next_attempt_at(
        now, attempts=1, rate_limited=True, jitter=0.5, **common
    ) == now + timedelta(seconds=5.5)
    # Asked to wait: after the wait, plus the backoff.
    asked = {**common, "retry_after": timedelta(minutes=2)}
    assert next_attempt_at(
        now, attempts=1, rate_limited=False, jitter=0.0, **asked
    ) == now + timedelta(minutes=2, seconds=15)
    # The last rate-limit wait allowed is the last.
    assert (
        next_attempt_at(
            now,
            attempts=1,
            rate_limited=True,
            jitter=0.0,
            **{**common, "rate_limit_waits": MAX_RATE_LIMIT_WAITS},
        )
        is None
    )
    # A retry that would land exactly on the deadline does not go.
    assert (
        next_attempt_at(
            now,
            attempts=1,
            rate_limited=False,
            jitter=0.0,
            **{**common, "deadline": now + timedelta(seconds=15)},
        )
        is None
    )
    # A zone without quiet hours is no quiet hours (21:00 UTC is night in Paris).
    night = datetime(2027, 5, 1, 21, 0, tzinfo=UTC)
    assert next_attempt_at(
        night, attempts=1, rate_limited=False, jitter=0.0, zone=PARIS, **common
    ) == night + timedelta(seconds=15)
