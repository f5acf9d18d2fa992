"""Checks on what a citizen typed, before anything is written. Pure: no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.domain.booking import normalise_document
from service.domain.errors import N_, ValidationFailed
from service.domain.fields import CITIZEN_NAME_MAX, EMAIL_MAX
from service.domain.models import LANGUAGES, Service
from service.domain.phone import is_country, parse_phone

_EMAIL_RE = re.compile(r"^[^@\s<>\"]{1,64}@[^@\s<>\"]{1,189}\.[^@\s<>\".]{2,63}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class CitizenDetails:
    name: str
    phone: str | None
    email: str | None
    language: str
    document_number: str | None


@dataclass(frozen=True, slots=True)
class RawDetails:
    name: object = None
    phone: object = None
    phone_country: object = None
    email: object = None
    language: object = None
    document_number: object = None


def is_email(text: str) -> bool:
    """An address we can send to: one @, a dot in the domain, no spaces or
    brackets, within the lengths SMTP allows. Citizens' and staff's alike."""
    return len(text) <= EMAIL_MAX and _EMAIL_RE.match(text) is not None


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def validate_details(raw: RawDetails, service: Service, office_country: str) -> CitizenDetails:
    """Normalised details, or ValidationFailed listing every field at fault."""
    errors: dict[str, str] = {}

    name = " ".join(_text(raw.name).split())
    if not name:
        errors["name"] = N_("Enter your full name.")
    elif len(name) > CITIZEN_NAME_MAX or _CONTROL_RE.search(name):
        errors["name"] = N_("Enter a name of at most 200 characters.")

    country = _text(raw.phone_country).upper() or office_country
    phone: str | None = None
    if raw.phone_country not in (None, "") and not is_country(country):
        errors["phone_country"] = N_("Choose a country from the list.")
    elif _text(raw.phone):
        phone = parse_phone(_text(raw.phone), country)
        if phone is None:
            errors["phone"] = N_("Enter a valid phone number, like 06 12 34 56 78.")

    email: str | None = _text(raw.email) or None
    if email is not None and not is_email(email):
        errors["email"] = N_("Enter a valid email address, like name@example.com.")
        email = None

    if "phone" not in errors and "email" not in errors and phone is None and email is None:
        errors["phone"] = N_("Give a phone number or an email address so that we can reach you.")

    language = _text(raw.language) or "fr"
    if language not in LANGUAGES:
        errors["language"] = N_("Choose Arabic, French or English.")

    document: str | None = None
    if _text(raw.document_number):
        document = normalise_document(_text(raw.document_number))
        if document is None:
            errors["document_number"] = N_(
                "Enter the document number as printed: 4 to 30 letters and digits."
            )
    elif service.document_required:
        errors["document_number"] = N_("Enter the number of your identity document.")

    if errors:
        raise ValidationFailed(errors)
    return CitizenDetails(name, phone, email, language, document)
