"""Checks on what a citizen (or a clerk for them) typed, before anything is
written. Pure: no I/O.

Names and e-mail addresses reach messages the consulate's own servers send,
so they are held to what they are: a name is letters, and an address is one
mailbox. Invisible characters that reorder or hide text (bidi controls,
zero-width characters) are removed from every text that can reach a message,
a page or an export (`strip_invisible`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import idna

from service.domain.booking import normalise_document
from service.domain.errors import N_, ValidationFailed
from service.domain.fields import EMAIL_MAX
from service.domain.messages import MESSAGE_CHANNELS, PHONE_CHANNELS, MessageChannel
from service.domain.models import LANGUAGES, Service
from service.domain.phone import is_country, parse_phone, served_countries, sms_refusal

# Names checked here are shorter than the column allows (fields.CITIZEN_NAME_MAX),
# so that rows written before these rules stay valid. Addresses: RFC 5321, a path
# of 256 octets less the angle brackets (fields.EMAIL_MAX).
NAME_MAX = 100
EMAIL_LOCAL_MAX = 64

# Bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), the
# Arabic letter mark and the implicit marks, zero-width spaces and joiners,
# word joiner and invisible operators, the BOM, the Mongolian vowel separator.
_INVISIBLE = re.compile("[\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
# Apostrophes ' ’ ʼ, hyphens - ‐ ‑, the dot; with letters, marks and spaces,
# all a name is made of.
_NAME_PUNCTUATION = frozenset("'\u2019\u02bc-\u2010\u2011.")
# A web address in a name: "http", "www." or a dot followed by Latin letters
# ("pay.example", "bit.ly"). Initials ("J.-P.", "M. A.") pass.
_LINK_LIKE = re.compile(r"http|www\.|\.[a-z]{2,}", re.IGNORECASE)
# RFC 5322 dot-atom (ASCII): no quoted local parts, no commas, no spaces.
_LOCAL_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class CitizenDetails:
    name: str
    phone: str | None
    email: str | None
    language: str
    document_number: str | None
    # Where the phone's messages go (service.domain.messages.MESSAGE_CHANNELS).
    message_channel: MessageChannel = "sms"


@dataclass(frozen=True, slots=True)
class RawDetails:
    name: object = None
    phone: object = None
    phone_country: object = None
    email: object = None
    language: object = None
    document_number: object = None
    # sms | whatsapp | email; empty: SMS when there is a phone, else e-mail.
    channel: object = None


def strip_invisible(text: str) -> str:
    """`text` without bidi controls and zero-width characters: what shows is
    what is there, in a page, a CSV cell or a plain-text e-mail."""
    return _INVISIBLE.sub("", text)


def clean_name(raw: str) -> str:
    """NFC, invisible characters removed, runs of white space made one space."""
    return " ".join(strip_invisible(unicodedata.normalize("NFC", raw)).split())


def name_problem(name: str) -> str | None:
    """Why a cleaned name is refused, as a message id, or None."""
    if not name:
        return N_("Enter your full name.")
    if len(name) > NAME_MAX:
        return N_("Enter a name of at most 100 characters.")
    if _LINK_LIKE.search(name) or not any(unicodedata.category(ch)[0] == "L" for ch in name):
        return N_("Enter your name in letters only: no digits, links or symbols.")
    for ch in name:
        if ch != " " and ch not in _NAME_PUNCTUATION and unicodedata.category(ch)[0] not in "LM":
            return N_("Enter your name in letters only: no digits, links or symbols.")
    return None


def normalise_email(raw: str) -> str | None:
    """Exactly one address, as it will be stored and sent to, or None.

    One @, a dot-atom local part of at most 64 characters, a domain with a
    dot whose labels are letters, digits and hyphens; an internationalised
    domain is accepted and kept in its ASCII (punycode) form; the whole at
    most 254 characters. No spaces, commas, quotes or control characters, so
    that nothing downstream can read it as several recipients.
    """
    text = raw.strip()
    if not text or len(text) > 4 * EMAIL_MAX or text.count("@") != 1:
        return None
    local, domain = text.split("@")
    if len(local) > EMAIL_LOCAL_MAX or not _LOCAL_RE.fullmatch(local):
        return None
    if not domain or domain.endswith(".") or any(ch.isspace() for ch in domain):
        return None
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in domain):
        return None
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        return None
    if labels[-1].isdigit():
        return None
    address = f"{local}@{ascii_domain}"
    return address if len(address) <= EMAIL_MAX else None


def is_email(text: str) -> bool:
    """An address we can send to (see normalise_email). Citizens' and staff's alike."""
    return normalise_email(text) is not None


def stripped(value: object) -> str:
    """A form value without its surrounding spaces; "" when absent or not text."""
    return value.strip() if isinstance(value, str) else ""


def validate_details(
    raw: RawDetails,
    service: Service,
    office_country: str,
    sms_countries: tuple[str, ...] | list[str] = (),
) -> CitizenDetails:
    """Normalised details, or ValidationFailed listing every field at fault.

    A phone number must be one an SMS may go to from this office (a mobile of
    its country, of Morocco or of its `sms_countries`): the form says so and
    asks for an e-mail address instead, rather than taking a number that
    would never get a message.
    """
    errors: dict[str, str] = {}

    name = clean_name(raw.name) if isinstance(raw.name, str) else ""
    problem = name_problem(name)
    if problem is not None:
        errors["name"] = problem

    phone = checked_phone(raw.phone, raw.phone_country, office_country, sms_countries, errors)
    email = checked_email(raw.email, errors)

    if "phone" not in errors and "email" not in errors and phone is None and email is None:
        errors["phone"] = N_("Give a phone number or an email address so that we can reach you.")
    channel = message_channel(raw.channel, phone, email, errors)

    language = stripped(raw.language) or "fr"
    if language not in LANGUAGES:
        errors["language"] = N_("Choose one of the languages in the list.")

    document: str | None = None
    if stripped(raw.document_number):
        document = normalise_document(stripped(raw.document_number))
        if document is None:
            errors["document_number"] = N_(
                "Enter the document number as printed: 4 to 30 letters and digits."
            )
    elif service.document_required:
        errors["document_number"] = N_("Enter the number of your identity document.")

    if errors:
        raise ValidationFailed(errors)
    return CitizenDetails(name, phone, email, language, document, channel)


def checked_phone(
    raw_phone: object,
    raw_country: object,
    office_country: str,
    sms_countries: tuple[str, ...] | list[str],
    errors: dict[str, str],
) -> str | None:
    """The E.164 number typed (read in `raw_country`, else the office's),
    if an SMS may go to it from this office; else None, and why in `errors`
    (under phone_country or phone). Empty is None without an error."""
    country = stripped(raw_country).upper() or office_country
    if raw_country not in (None, "") and not is_country(country):
        errors["phone_country"] = N_("Choose a country from the list.")
        return None
    if not stripped(raw_phone):
        return None
    phone = parse_phone(stripped(raw_phone), country)
    if phone is None:
        errors["phone"] = N_("Enter a valid phone number, like 06 12 34 56 78.")
        return None
    refusal = sms_refusal(phone, served_countries(office_country, sms_countries))
    if refusal == "type":
        errors["phone"] = N_(
            "We can only send SMS to a mobile number. "
            "Give a mobile number, or leave this empty and give an email address."
        )
    elif refusal == "country":
        errors["phone"] = N_(
            "This office does not send SMS to numbers of this country. "
            "Leave this empty and give an email address instead."
        )
    return phone if refusal is None else None


def checked_email(raw: object, errors: dict[str, str]) -> str | None:
    """The address typed (normalise_email), None when empty; a bad one is
    None and its error is in `errors`."""
    if not stripped(raw):
        return None
    email = normalise_email(stripped(raw))
    if email is None:
        errors["email"] = N_("Enter one valid email address, like name@example.com.")
    return email


def message_channel(
    raw: object, phone: str | None, email: str | None, errors: dict[str, str]
) -> MessageChannel:
    """The channel chosen for the phone's messages, checked against the
    contacts given (a refusal goes into `errors`, keyed by the field to fix)."""
    text = stripped(raw)
    if not text and not (raw is not None and not isinstance(raw, str)):
        return "sms" if phone else "email"
    channel = next((c for c in MESSAGE_CHANNELS if c == text), None)
    if channel is None:
        errors["channel"] = N_("Choose SMS, WhatsApp or e-mail only.")
        return "sms"
    if channel in PHONE_CHANNELS and phone is None and not errors:
        errors["phone"] = N_(
            "Give a mobile number to get your messages by SMS or WhatsApp, or choose e-mail only."
        )
    if channel == "email" and email is None and not errors:
        errors["email"] = N_("Give an email address to get your messages by e-mail only.")
    return channel
