"""What a citizen types, field by field: each refusal says which field and
exactly what to do (the msgid the pages translate), and what is accepted is
stored in one normal form, the document number above all (the one active
booking per document and service rests on it)."""

from __future__ import annotations

import pytest

from service.domain.errors import ValidationFailed
from service.domain.models import Service
from service.domain.validation import CitizenDetails, RawDetails, validate_details

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
LEGALIZATION = Service(
    office_id="consulate-paris",
    id="legalization",
    name={"ar": "", "fr": "", "en": ""},
    duration_minutes=10,
    document_required=False,
    earliest_hours=2,
    latest_days=60,
    reschedule_cutoff_minutes=120,
    bring={"ar": "", "fr": "", "en": ""},
)
VALID = {"name": "Amina", "email": "a@example.com", "document_number": "AB123456"}

NAME_MISSING = "Enter your full name."
NAME_TOO_LONG = "Enter a name of at most 100 characters."
NAME_LETTERS = "Enter your name in letters only: no digits, links or symbols."
NO_COUNTRY = "Choose a country from the list."
BAD_PHONE = "Enter a valid phone number, like 06 12 34 56 78."
BAD_EMAIL = "Enter one valid email address, like name@example.com."
NO_CONTACT = "Give a phone number or an email address so that we can reach you."
BAD_LANGUAGE = "Choose one of the languages in the list."
BAD_DOCUMENT = "Enter the document number as printed: 4 to 30 letters and digits."
NO_DOCUMENT = "Enter the number of your identity document."


def refusal(service: Service = PASSPORT, **typed: object) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as refused:
        validate_details(RawDetails(**{**VALID, **typed}), service, "FR")
    return dict(refused.value.fields)


def accepted(service: Service = PASSPORT, **typed: object) -> CitizenDetails:
    return validate_details(RawDetails(**{**VALID, **typed}), service, "FR")


@pytest.mark.parametrize(
    ("typed", "fields"),
    [
        ({"name": " \t "}, {"name": NAME_MISSING}),
        ({"name": None}, {"name": NAME_MISSING}),
        ({"name": "a" * 101}, {"name": NAME_TOO_LONG}),
        ({"name": "Amina\x07"}, {"name": NAME_LETTERS}),
        ({"phone_country": "ZZ", "phone": "06 12 34 56 78"}, {"phone_country": NO_COUNTRY}),
        ({"phone": "12"}, {"phone": BAD_PHONE}),
        ({"email": "a@b"}, {"email": BAD_EMAIL}),
        ({"email": "", "phone": ""}, {"phone": NO_CONTACT}),
        # A wrong address is the field to fix, not the missing contact.
        ({"email": "nope", "phone": None}, {"email": BAD_EMAIL}),
        ({"email": None, "phone": "12"}, {"phone": BAD_PHONE}),
        ({"language": "de"}, {"language": BAD_LANGUAGE}),
        ({"language": "FR"}, {"language": BAD_LANGUAGE}),
        ({"document_number": "AB1"}, {"document_number": BAD_DOCUMENT}),
        ({"document_number": "AB 12 34 €"}, {"document_number": BAD_DOCUMENT}),
        ({"document_number": "  "}, {"document_number": NO_DOCUMENT}),
        ({"document_number": None}, {"document_number": NO_DOCUMENT}),
    ],
)
def test_each_refusal_names_its_field_and_what_to_do(
    typed: dict[str, object], fields: dict[str, str]
) -> None:
    assert refusal(**typed) == fields


def test_every_field_at_fault_at_once() -> None:
    assert refusal(
        name="", phone="12", email="nope", language="xx", document_number="!", phone_country="ZZ"
    ) == {
        "name": NAME_MISSING,
        "phone_country": NO_COUNTRY,
        "email": BAD_EMAIL,
        "language": BAD_LANGUAGE,
        "document_number": BAD_DOCUMENT,
    }


@pytest.mark.parametrize(
    ("typed", "document"),
    [
        ({"document_number": "ab-123 456"}, "AB123456"),
        ({"document_number": " ab_12.34/56\t"}, "AB123456"),
        ({"document_number": "x1y2"}, "X1Y2"),
        ({"document_number": "A" * 30}, "A" * 30),
    ],
)
def test_document_numbers_are_stored_in_one_form(typed: dict[str, object], document: str) -> None:
    assert accepted(**typed).document_number == document


def test_document_lengths_at_the_edges() -> None:
    assert refusal(document_number="ABC") == {"document_number": BAD_DOCUMENT}
    assert refusal(document_number="A" * 31) == {"document_number": BAD_DOCUMENT}
    # Separators do not count towards the length.
    assert accepted(document_number="A-B-C-D").document_number == "ABCD"


def test_a_service_without_documents_takes_none_and_still_checks_one_given() -> None:
    assert accepted(LEGALIZATION, document_number="").document_number is None
    assert accepted(LEGALIZATION, document_number=None).document_number is None
    assert accepted(LEGALIZATION, document_number="ab 1234").document_number == "AB1234"
    assert refusal(LEGALIZATION, document_number="ab") == {"document_number": BAD_DOCUMENT}


def test_what_is_accepted_is_normalised() -> None:
    details = accepted(
        name="  Amina \t El\n Idrissi ",
        phone=" 06 12 34 56 78 ",
        phone_country=" ma ",
        email=" a@example.com ",
        language=" ar ",
    )
    assert details == CitizenDetails(
        name="Amina El Idrissi",
        phone="+212612345678",
        email="a@example.com",
        language="ar",
        document_number="AB123456",
    )
    # The office's country reads a national number; no language means French.
    assert accepted(phone="06 12 34 56 78", email=None, language=None) == CitizenDetails(
        "Amina", "+33612345678", None, "fr", "AB123456"
    )
    # An empty country is no choice: the office's country.
    assert accepted(phone="06 12 34 56 78", phone_country="").phone == "+33612345678"
    # A phone alone, an e-mail alone.
    assert accepted(phone="", email="a@example.com").phone is None
    assert accepted(email="", phone="06 12 34 56 78").email is None
    assert accepted(name="a" * 100).name == "a" * 100
