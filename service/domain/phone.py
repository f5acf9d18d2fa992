"""Phone numbers: parsing with a country hint, E.164 out. Pure: no I/O."""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType


def parse_phone(raw: str, country: str) -> str | None:
    """E.164 for `raw` read with `country` (ISO alpha-2) as the default region.

    `06 12 34 56 78` is +33612345678 with FR and +212612345678 with MA; a number
    written with its + prefix keeps its own country. None when invalid.
    """
    text = raw.strip()
    if not text or len(text) > 40:
        return None
    try:
        number = phonenumbers.parse(text, country.upper())
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def can_receive_sms(e164: str) -> bool:
    """Mobile (or possibly mobile) numbers only; SMS to a landline fail (30006)."""
    number = phonenumbers.parse(e164, None)
    return phonenumbers.number_type(number) in (
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def international_format(e164: str) -> str:
    number = phonenumbers.parse(e164, None)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def is_country(code: str) -> bool:
    return code.upper() in phonenumbers.SUPPORTED_REGIONS
