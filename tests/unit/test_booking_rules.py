"""Booking states, references, tokens, documents, phones, validation."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.booking import (
    ACTIVE,
    REFERENCE_ALPHABET,
    REFERENCE_LENGTH,
    TRANSITIONS,
    Status,
    calendar_uid,
    can_cancel,
    can_reschedule,
    can_transition,
    frees_seat,
    hash_token,
    new_manage_token,
    new_reference,
    normalise_document,
    normalise_reference,
    takes_seat,
    token_matches,
)
from service.domain.errors import ValidationFailed
from service.domain.models import Service
from service.domain.phone import can_receive_sms, parse_phone
from service.domain.validation import RawDetails, validate_details

PASSPORT = Service(
    office_id="consulate-paris",
    id="passport",
    name={"ar": "", "fr": "", "en": ""},
    duration_minutes=15,
    document_required=True,
    earliest_hours=2,
    latest_days=60,
    reschedule_cutoff_minutes=120,
    bring={"ar": "", "fr": "", "en": ""},
)


def test_reference_shape_and_alphabet() -> None:
    assert not set("01OIL") & set(REFERENCE_ALPHABET)
    refs = {new_reference("PAR") for _ in range(2000)}
    assert len(refs) == 2000, "random references do not repeat in practice"
    for ref in refs:
        assert re.fullmatch(r"PAR-[23456789ABCDEFGHJKMNPQRSTVWXYZ]{6}", ref)
        assert normalise_reference(ref.lower()) == ref


def test_references_are_not_sequential() -> None:
    """Drawn at random from the whole alphabet at every position: a counter,
    or a generator that only varies the last characters, fails this."""
    refs = [new_reference("PAR") for _ in range(3000)]
    assert len(set(refs)) == len(refs)
    bodies = [r.removeprefix("PAR-") for r in refs]
    assert all(len(b) == REFERENCE_LENGTH and set(b) <= set(REFERENCE_ALPHABET) for b in bodies)
    for position in range(REFERENCE_LENGTH):
        seen = Counter(b[position] for b in bodies)
        # 3000 draws of 30 letters: every letter comes up (about 100 times each).
        assert set(seen) == set(REFERENCE_ALPHABET), position
        assert max(seen.values()) < 200, position
    # Consecutive references share no more of their start than chance allows.
    shared = sum(a[:3] == b[:3] for a, b in itertools.pairwise(bodies))
    assert shared < 5
    assert normalise_reference("PAR-0OI1L2") is None


def test_manage_token_has_at_least_128_bits_and_only_its_hash_matches() -> None:
    token = new_manage_token()
    assert len(token) >= 22  # 128 bits in base64url
    stored = hash_token(token, "k")
    assert token.encode() not in stored
    assert token_matches(token, stored, "k")
    assert not token_matches(token + "x", stored, "k")
    assert not token_matches(token, stored, "other-key")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ab 123-456", "AB123456"),
        ("  x1234567 ", "X1234567"),
        ("AB.12_34/56", "AB123456"),
        ("abc", None),
        ("ÉÉÉÉ", None),
        ("", None),
    ],
)
def test_document_normalisation(raw: str, expected: str | None) -> None:
    assert normalise_document(raw) == expected


def test_transitions() -> None:
    assert can_transition(Status.CONFIRMED, Status.CHECKED_IN)
    assert can_transition(Status.CHECKED_IN, Status.DONE)
    assert not can_transition(Status.CANCELLED, Status.CONFIRMED)
    assert not can_transition(Status.DONE, Status.CANCELLED)
    for status in (Status.DONE, Status.CANCELLED, Status.EXPIRED):
        assert TRANSITIONS[status] == frozenset()


# Every transition the state machine allows, and what it does to the seat:
# written out by hand so that a change to either table shows up here.
SEAT_EFFECT = {
    (Status.HELD, Status.CONFIRMED): "keeps",
    (Status.HELD, Status.EXPIRED): "frees",
    (Status.HELD, Status.CANCELLED): "frees",
    (Status.CONFIRMED, Status.CHECKED_IN): "keeps",
    (Status.CONFIRMED, Status.NO_SHOW): "frees",
    (Status.CONFIRMED, Status.CANCELLED): "frees",
    (Status.CHECKED_IN, Status.DONE): "frees",
    (Status.CHECKED_IN, Status.NO_SHOW): "frees",
    (Status.NO_SHOW, Status.CHECKED_IN): "takes",
}


def test_allowed_transitions_are_exactly_these() -> None:
    allowed = {(a, b) for a in Status for b in Status if can_transition(a, b)}
    assert allowed == set(SEAT_EFFECT)


@pytest.mark.parametrize(("current", "target"), sorted(SEAT_EFFECT))
def test_each_transition_frees_keeps_or_takes_its_seat(current: Status, target: Status) -> None:
    effect = SEAT_EFFECT[(current, target)]
    assert frees_seat(current, target) is (effect == "frees")
    assert takes_seat(current, target) is (effect == "takes")


def test_active_statuses_are_the_ones_that_hold_a_seat() -> None:
    assert frozenset({Status.HELD, Status.CONFIRMED, Status.CHECKED_IN}) == ACTIVE


def test_cut_offs() -> None:
    start = datetime(2027, 3, 1, 9, tzinfo=UTC)
    assert can_cancel(start - timedelta(seconds=1), start)
    assert not can_cancel(start, start)
    assert can_reschedule(start - timedelta(hours=2), start, 120)
    assert not can_reschedule(start - timedelta(hours=2) + timedelta(seconds=1), start, 120)


def test_phone_with_country_hint() -> None:
    assert parse_phone("06 12 34 56 78", "FR") == "+33612345678"
    assert parse_phone("06 12 34 56 78", "MA") == "+212612345678"
    assert parse_phone("+212 6 12 34 56 78", "FR") == "+212612345678"
    assert parse_phone("0033 6 12 34 56 78", "FR") == "+33612345678"
    assert parse_phone("12", "FR") is None
    assert parse_phone("not a phone", "MA") is None
    assert can_receive_sms("+212612345678")
    assert not can_receive_sms("+212528123456")  # Moroccan landline


def test_validation_lists_every_field() -> None:
    with pytest.raises(ValidationFailed) as refused:
        validate_details(
            RawDetails(name=" ", phone="12", email="nope", language="de", document_number=""),
            PASSPORT,
            "FR",
        )
    assert set(refused.value.fields) == {"name", "phone", "email", "language", "document_number"}


def test_validation_needs_a_contact() -> None:
    with pytest.raises(ValidationFailed) as refused:
        validate_details(
            RawDetails(name="Amina", language="fr", document_number="AB123456"), PASSPORT, "FR"
        )
    assert set(refused.value.fields) == {"phone"}


def test_validation_normalises() -> None:
    details = validate_details(
        RawDetails(
            name="  Amina   El  Idrissi ",
            phone="06 12 34 56 78",
            phone_country="ma",
            email=" a@example.com ",
            language="ar",
            document_number="ab-123 456",
        ),
        PASSPORT,
        "FR",
    )
    assert details.name == "Amina El Idrissi"
    assert details.phone == "+212612345678"
    assert details.email == "a@example.com"
    assert details.document_number == "AB123456"


@given(st.text(max_size=300))
def test_validation_never_crashes(text: str) -> None:
    try:
        validate_details(
            RawDetails(name=text, phone=text, email=text, language=text, document_number=text),
            PASSPORT,
            "MA",
        )
    except ValidationFailed as refused:
        assert refused.fields


def test_manage_tokens_are_22_characters_of_128_random_bits() -> None:
    tokens = {new_manage_token() for _ in range(200)}
    assert len(tokens) == 200
    assert {len(t) for t in tokens} == {22}
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", t) for t in tokens)


def test_calendar_uid_names_the_site_or_a_reserved_domain() -> None:
    assert calendar_uid("PAR-ABC234", "https://rdv.example.ma") == "PAR-ABC234@rdv.example.ma"
    assert calendar_uid("PAR-ABC234", "") == "PAR-ABC234@mawid.invalid"
