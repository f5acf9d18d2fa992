"""Feedback after the visit, the pure rules: one message on one channel,
after the delay and never in quiet hours; what the form accepts; what of a
comment is kept; the figures; and the message in each language."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain import errors
from service.domain.feedback import (
    MESSAGE_LIFETIME,
    REDACTED,
    Answer,
    Response,
    Satisfaction,
    feedback_stats,
    parse_answer,
    plan_feedback,
    scrub_comment,
)
from service.domain.messages import (
    FEEDBACK,
    SKIP_INACTIVE,
    SKIP_LAPSED,
    QuietHours,
    quiet_applies,
    quiet_window,
    skip_reason,
)
from service.domain.sms import is_gsm7
from service.notify.render import Renderer
from tests.unit.test_messages_render import BASE_URL, LANGS, SMS_BUDGET, WORST_DATES, worst_case

PARIS = ZoneInfo("Europe/Paris")
QUIET = QuietHours(time(21, 0), time(8, 0))
DONE = datetime(2027, 2, 1, 10, 30, tzinfo=UTC)


def test_one_message_preferring_the_free_channel() -> None:
    both = plan_feedback(phone="+33612345678", email="a@example.org", done_at=DONE, zone=PARIS)
    assert [(m.kind, m.channel, m.recipient) for m in both] == [
        (FEEDBACK, "email", "a@example.org")
    ]
    sms = plan_feedback(phone="+33612345678", email=None, done_at=DONE, zone=PARIS)
    assert [(m.channel, m.recipient) for m in sms] == [("sms", "+33612345678")]
    # The phone by the channel the citizen chose for it; none for "e-mail only".
    whatsapp = plan_feedback(
        phone="+33612345678", email=None, done_at=DONE, zone=PARIS, phone_channel="whatsapp"
    )
    assert [(m.channel, m.recipient) for m in whatsapp] == [("whatsapp", "+33612345678")]
    none = plan_feedback(
        phone="+33612345678", email=None, done_at=DONE, zone=PARIS, phone_channel="email"
    )
    assert none == []
    # A landline and no address: nobody to ask.
    assert plan_feedback(phone="+33142345678", email=None, done_at=DONE, zone=PARIS) == []


@given(
    done=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
    ),
    hours=st.integers(min_value=0, max_value=48),
)
def test_the_message_waits_its_delay_and_quiet_hours(done: datetime, hours: int) -> None:
    delay = timedelta(hours=hours)
    [m] = plan_feedback(
        phone=None, email="a@example.org", done_at=done, delay=delay, quiet=QUIET, zone=PARIS
    )
    assert m.send_at >= done + delay
    assert quiet_window(m.send_at, QUIET, PARIS) is None
    if quiet_window(done + delay, QUIET, PARIS) is None:
        assert m.send_at == done + delay
    assert m.appointment_at == done + delay + MESSAGE_LIFETIME > m.send_at


@pytest.mark.parametrize(
    "status", ["held", "confirmed", "checked_in", "done", "no_show", "cancelled", "expired"]
)
def test_the_message_goes_only_for_a_done_booking_before_its_deadline(status: str) -> None:
    now = DONE + timedelta(hours=3)
    deadline = now + timedelta(days=1)
    args = {"booking_starts_at": DONE - timedelta(minutes=30), "now": now}
    expected = None if status == "done" else SKIP_INACTIVE
    assert skip_reason(FEEDBACK, booking_status=status, appointment_at=deadline, **args) == expected
    assert skip_reason(FEEDBACK, booking_status=status, appointment_at=now, **args) == SKIP_LAPSED
    assert quiet_applies(FEEDBACK)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (("5", "no", ""), Answer(5, False, None)),
        ((" 1 ", "yes", "  Long wait  "), Answer(1, True, "Long wait")),
        (("3", "no", "\u202eطابور طويل"), Answer(3, False, "طابور طويل")),
        (("4", "yes", "x" * 1000), Answer(4, True, "x" * 1000)),
    ],
)
def test_an_answer_is_parsed(raw: tuple[object, object, object], expected: Answer) -> None:
    assert parse_answer(*raw) == expected


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        ((None, None, None), {"rating", "came_back"}),
        (("0", "no", ""), {"rating"}),
        (("6", "no", ""), {"rating"}),
        (("4.5", "no", ""), {"rating"}),
        (("٥", "no", ""), {"rating"}),
        (("3", "maybe", ""), {"came_back"}),
        (("3", "no", "x" * 1001), {"comment"}),
        (("x", "x", "x" * 1001), {"rating", "came_back", "comment"}),
    ],
)
def test_a_bad_answer_names_each_field(
    raw: tuple[object, object, object], fields: set[str]
) -> None:
    with pytest.raises(errors.ValidationFailed) as refused:
        parse_answer(*raw)
    assert set(refused.value.fields) == fields


@pytest.mark.parametrize(
    ("comment", "kept", "gone"),
    [
        ("Très bien, merci à Mme Alaoui", "Très bien, merci à Mme", ["Alaoui"]),
        ("Write to amina.elidrissi@example.org", "Write to", ["amina", "example"]),
        ("Call me at +33 6 12 34 56 78 please", "Call me at", ["12 34", "+33"]),
        ("My passport AB1234567 is late", "My passport", ["AB1234567"]),
        ("أنا أمينة الإدريسي، الرقم 0612345678", "أنا", ["0612345678", "أمينة"]),
        ("2 hours of waiting, 3 counters", "2 hours of waiting, 3 counters", []),
    ],
)
def test_a_comment_keeps_nothing_that_names_its_author(
    comment: str, kept: str, gone: list[str]
) -> None:
    out = scrub_comment(
        comment, ("Amina El Idrissi", "+33612345678", None, "AB1234567", "Alaoui", "أمينة")
    )
    assert kept in out
    for part in gone:
        assert part.lower() not in out.lower(), out
    if gone:
        assert REDACTED in out


def test_the_weeks_figures() -> None:
    day = date(2027, 2, 1)
    answers = [
        Response("passport", day, 5, False, "Rapide"),
        Response("passport", day + timedelta(days=1), 2, True, None),
        Response("cnie", day, 4, True, "Bien"),
        Response("passport", day + timedelta(days=2), 4, False, None),
    ]
    stats = feedback_stats(answers)
    assert stats.overall == Satisfaction(4, 3.8, 0.5)
    assert stats.by_service == {
        "cnie": Satisfaction(1, 4.0, 1.0),
        "passport": Satisfaction(3, 3.7, 0.333),
    }
    assert stats.comments == ["Rapide", "Bien"]
    assert feedback_stats([]).overall == Satisfaction(0, None, None)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.mark.parametrize("lang", LANGS)
def test_the_feedback_message_links_to_its_form(renderer: Renderer, lang: str) -> None:
    for when in WORST_DATES:
        data = worst_case(FEEDBACK, lang, when)
        sms = renderer.sms(data)
        assert sms.count.segments <= SMS_BUDGET[lang], (sms.count, sms.body)
        assert sms.body.endswith(f"{BASE_URL}/f/MTL-7KQ9X3/{data.manage_token}")
        if lang not in ("ar", "zgh"):
            assert is_gsm7(sms.body)
    email = renderer.email(data, to="a@example.org", sender="c@example.org", reply_to=None)
    assert f"{BASE_URL}/f/MTL-7KQ9X3/{data.manage_token}" in email.text
    assert not list(email.message.iter_attachments())
