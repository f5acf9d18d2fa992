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


# The only number types an SMS goes to. Everything else is refused, whatever
# the country: landlines (the SMS fails, 30006), and the types SMS pumping
# uses (premium rate, shared cost, personal numbers, pagers, UAN, VoIP,
# voicemail) or that cannot be told apart (unknown).
SMS_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
# Every office's SMS may go to Moroccan mobiles, besides its own country's.
HOME_COUNTRY = "MA"


def can_receive_sms(e164: str) -> bool:
    """Mobile (or possibly mobile) numbers only; SMS to a landline fail (30006)."""
    number = phonenumbers.parse(e164, None)
    return phonenumbers.number_type(number) in SMS_TYPES


def served_countries(
    office_country: str, extra: tuple[str, ...] | list[str] = ()
) -> frozenset[str]:
    """The countries whose mobiles an office's SMS go to: its own, Morocco,
    and its own list (a consulate in Brussels may serve NL and LU)."""
    return frozenset({office_country.upper(), HOME_COUNTRY, *(c.upper() for c in extra)})


def sms_refusal(e164: str, served: frozenset[str]) -> str | None:
    """Why no SMS may go to `e164` from an office serving `served`, or None.

    "type": not a mobile (or a costly or unknown kind of number); "country":
    a mobile of a country the office does not serve. A satellite number
    (+8816...) belongs to no country (region 001), so it is refused too.
    """
    number = phonenumbers.parse(e164, None)
    if phonenumbers.number_type(number) not in SMS_TYPES:
        return "type"
    if phonenumbers.region_code_for_number(number) not in served:
        return "country"
    return None


def international_format(e164: str) -> str:
    number = phonenumbers.parse(e164, None)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def is_country(code: str) -> bool:
    return code.upper() in phonenumbers.SUPPORTED_REGIONS
