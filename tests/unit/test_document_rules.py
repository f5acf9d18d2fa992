"""Document files: every (from, to) pair of the machine, the refusal's reason,
the form's parsing, the "ready" message's timing against quiet hours, the
reminder's due date and a document's age in local days; and the messages
themselves in ar/fr/en within their SMS budgets."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain import errors
from service.domain.documents import (
    MESSAGE_LIFETIME,
    OPENS_FILE,
    TRANSITIONS,
    FileState,
    age_in_days,
    file_refusal,
    next_states,
    parse_file_action,
    plan_document_message,
    reminder_due,
)
from service.domain.messages import (
    DOCUMENT_READY,
    DOCUMENT_UNCOLLECTED,
    SKIP_DOCUMENT_MOVED,
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
STATES: list[FileState | None] = [None, *FileState]
BOOKING_STATUSES = ["held", "confirmed", "checked_in", "done", "no_show", "cancelled", "expired"]
# The one path a file takes, and the two refusals.
ALLOWED = {
    (None, FileState.RECEIVED),
    (FileState.RECEIVED, FileState.IN_PRODUCTION),
    (FileState.RECEIVED, FileState.REFUSED),
    (FileState.IN_PRODUCTION, FileState.READY),
    (FileState.IN_PRODUCTION, FileState.REFUSED),
    (FileState.READY, FileState.COLLECTED),
}


@pytest.mark.parametrize(
    ("current", "target", "status"),
    list(itertools.product(STATES, list(FileState), BOOKING_STATUSES)),
)
def test_every_move_of_the_machine(
    current: FileState | None, target: FileState, status: str
) -> None:
    refused = file_refusal(current, target, produces_document=True, booking_status=status)
    opens_ok = current is not None or status in OPENS_FILE
    if (current, target) in ALLOWED and opens_ok:
        assert refused is None
    else:
        assert isinstance(refused, errors.Conflict)
        assert refused.status == 409
        if (current, target) in ALLOWED:
            assert refused.code == "not_received"
        else:
            assert refused.code in ("bad_file_transition", "not_received")


@pytest.mark.parametrize(("current", "target"), list(itertools.product(STATES, list(FileState))))
def test_no_file_for_a_service_that_produces_no_document(
    current: FileState | None, target: FileState
) -> None:
    refused = file_refusal(current, target, produces_document=False, booking_status="done")
    assert refused is not None and refused.code == "no_document"


def test_the_table_and_the_offered_moves_agree() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == ALLOWED
    assert next_states(None) == [FileState.RECEIVED]
    assert next_states(FileState.RECEIVED) == [FileState.IN_PRODUCTION, FileState.REFUSED]
    assert next_states(FileState.COLLECTED) == [] == next_states(FileState.REFUSED)


def test_the_database_trigger_lists_the_same_moves() -> None:
    from pathlib import Path

    sql = (Path(__file__).parents[2] / "migrations" / "0085_documents.sql").read_text()
    for a, b in ALLOWED - {(None, FileState.RECEIVED)}:
        assert f"('{a}', '{b}')" in sql


@pytest.mark.parametrize(
    ("state", "reason", "expected"),
    [
        ("received", None, (FileState.RECEIVED, None)),
        ("ready", "  ignored  ", (FileState.READY, None)),
        ("refused", "  Photo  not\tcompliant ", (FileState.REFUSED, "Photo not compliant")),
    ],
)
def test_a_file_action_is_parsed(state: str, reason: str | None, expected: object) -> None:
    assert parse_file_action(state, reason) == expected


@pytest.mark.parametrize(
    ("state", "reason", "field"),
    [
        (None, None, "state"),
        ("lost", None, "state"),
        (3, None, "state"),
        ("refused", None, "reason"),
        ("refused", "   ", "reason"),
        ("refused", "x" * 301, "reason"),
    ],
)
def test_a_bad_file_action_is_refused_with_its_field(
    state: object, reason: object, field: str
) -> None:
    with pytest.raises(errors.ValidationFailed) as refused:
        parse_file_action(state, reason)
    assert field in refused.value.fields


QUIET = QuietHours(time(21, 0), time(8, 0))
APPOINTMENT = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)


@given(
    now=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
    ),
    kind=st.sampled_from([DOCUMENT_READY, DOCUMENT_UNCOLLECTED]),
)
def test_document_messages_never_go_in_quiet_hours(now: datetime, kind: str) -> None:
    planned = plan_document_message(
        kind,  # type: ignore[arg-type]
        phone="+33612345678",
        email="a@example.org",
        appointment_at=APPOINTMENT,
        now=now,
        quiet=QUIET,
        zone=PARIS,
    )
    assert [(m.channel, m.kind) for m in planned] == [("sms", kind), ("email", kind)]
    for m in planned:
        assert m.send_at >= now
        assert quiet_window(m.send_at, QUIET, PARIS) is None
        # Outside quiet hours it goes at once.
        if quiet_window(now, QUIET, PARIS) is None:
            assert m.send_at == now
        # Its deadline bounds its retries.
        assert m.appointment_at == now + MESSAGE_LIFETIME


@pytest.mark.parametrize(
    ("phone_channel", "expected"),
    [
        ("sms", [("sms", "+33612345678"), ("email", "a@example.org")]),
        ("whatsapp", [("whatsapp", "+33612345678"), ("email", "a@example.org")]),
        ("email", [("email", "a@example.org")]),
    ],
)
def test_the_document_message_goes_by_the_channel_the_citizen_chose(
    phone_channel: str, expected: list[tuple[str, str]]
) -> None:
    planned = plan_document_message(
        DOCUMENT_READY,
        phone="+33612345678",
        email="a@example.org",
        appointment_at=APPOINTMENT,
        now=APPOINTMENT,
        zone=PARIS,
        phone_channel=phone_channel,
    )
    assert [(m.channel, m.recipient) for m in planned] == expected


def test_a_landline_gets_no_document_sms() -> None:
    planned = plan_document_message(
        DOCUMENT_READY,
        phone="+33142345678",
        email=None,
        appointment_at=APPOINTMENT,
        now=APPOINTMENT,
        zone=PARIS,
    )
    assert planned == []


def test_only_document_kinds_are_planned() -> None:
    with pytest.raises(ValueError):
        plan_document_message(
            "reminder", phone=None, email="a@b.org", appointment_at=APPOINTMENT,
            now=APPOINTMENT, zone=PARIS,
        )  # fmt: skip


def test_a_document_message_goes_while_the_document_waits() -> None:
    now = APPOINTMENT + timedelta(days=3)
    args = {"booking_status": "done", "booking_starts_at": APPOINTMENT, "now": now}
    deadline = now + timedelta(days=1)
    for kind in (DOCUMENT_READY, DOCUMENT_UNCOLLECTED):
        assert quiet_applies(kind)
        # The appointment is behind: that does not stop it.
        assert skip_reason(kind, appointment_at=deadline, file_state="ready", **args) is None
        for moved in ("collected", "refused", None):
            reason = skip_reason(kind, appointment_at=deadline, file_state=moved, **args)
            assert reason == SKIP_DOCUMENT_MOVED
        assert skip_reason(kind, appointment_at=now, file_state="ready", **args) == SKIP_LAPSED


@given(
    ready=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
    ),
    hours=st.integers(min_value=0, max_value=24 * 40),
    days=st.integers(min_value=1, max_value=30),
)
def test_the_reminder_is_due_after_its_days_and_the_age_counts_local_days(
    ready: datetime, hours: int, days: int
) -> None:
    now = ready + timedelta(hours=hours)
    assert reminder_due(ready, now, days) == (hours >= 24 * days)
    age = age_in_days(ready, now, PARIS)
    assert age == (now.astimezone(PARIS).date() - ready.astimezone(PARIS).date()).days
    assert age >= 0 and (age <= hours // 24 + 1)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("kind", [DOCUMENT_READY, DOCUMENT_UNCOLLECTED])
@pytest.mark.parametrize("by_appointment", [False, True])
def test_the_document_sms_fits_and_says_where_when_and_what_to_bring(
    renderer: Renderer, lang: str, kind: str, by_appointment: bool
) -> None:
    for when in WORST_DATES:
        data = replace(
            worst_case(kind, lang, when),
            pickup_from="13:30",
            pickup_until="15:45",
            pickup_by_appointment=by_appointment,
        )
        sms = renderer.sms(data)
        assert sms.count.segments <= SMS_BUDGET[lang], (lang, sms.count, sms.body)
        assert "13:30-15:45" in sms.body
        assert data.office_name in sms.body
        # One link: where to book the pickup when it takes an appointment,
        # else the manage page (which shows the file's state).
        assert (f"{BASE_URL}/o/MTL" in sms.body) == by_appointment
        manage = f"{BASE_URL}/b/MTL-7KQ9X3/{data.manage_token}"
        assert (manage in sms.body) == (not by_appointment)
        if lang not in ("ar", "zgh"):
            assert is_gsm7(sms.body), sms.body
        # What to bring: an identity document.
        assert {
            "ar": "بطاقة التعريف",
            "fr": "pièce d'identité",
            "en": "ID",
            "es": "documento de identidad",
            "zgh": "ⵜⴰⴽⴰⵔⴹⴰ ⵏ ⵜⵎⴰⴳⵉⵜ",
        }[lang] in sms.body


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("kind", [DOCUMENT_READY, DOCUMENT_UNCOLLECTED])
def test_the_document_email_has_no_invitation_and_no_appointment_time(
    renderer: Renderer, lang: str, kind: str
) -> None:
    data = replace(worst_case(kind, lang, WORST_DATES[1]), pickup_by_appointment=True)
    email = renderer.email(data, to="a@example.org", sender="c@example.org", reply_to=None)
    assert not list(email.message.iter_attachments())
    assert "14:00" in email.text and "16:00" in email.text
    assert f"{BASE_URL}/o/MTL" in email.text
    assert f"{BASE_URL}/b/MTL-7KQ9X3/" in email.text
    assert "MTL-7KQ9X3" in email.message["Subject"]
