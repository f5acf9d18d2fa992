"""The pure rules of abuse resistance: names and e-mail addresses, where SMS
may go, codes and their checks, contact keys, rates and client addresses,
and the per-number SMS cap."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.config import ConfigError, Settings
from service.domain.errors import ValidationFailed
from service.domain.limits import Rate, client_address, parse_networks, parse_rate
from service.domain.messages import plan_code, skip_reason, sms_cap_decision
from service.domain.phone import served_countries, sms_refusal
from service.domain.validation import (
    NAME_MAX,
    RawDetails,
    clean_name,
    name_problem,
    normalise_email,
    strip_invisible,
    validate_details,
)
from service.domain.verification import (
    MAX_ATTEMPTS,
    MAX_RESENDS,
    code_channel,
    code_matches,
    contact_hash,
    email_key,
    hash_code,
    new_code,
    next_resend_at,
    normalise_code,
)
from tests.unit.test_booking_rules import PASSPORT

LEGALIZATION = replace(PASSPORT, id="legalization", document_required=False)
NOW = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"


def details(**fields: object) -> RawDetails:
    base: dict[str, object] = {"name": "Amina El Idrissi", "email": "a@example.org"}
    base.update(fields)
    return RawDetails(**base)  # type: ignore[arg-type]


def refused_fields(raw: RawDetails, country: str = "FR", extra: tuple[str, ...] = ()) -> set[str]:
    with pytest.raises(ValidationFailed) as refused:
        validate_details(raw, LEGALIZATION, country, extra)
    return set(refused.value.fields)


# Names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Amina El Idrissi",
        "أمينة الإدريسي",
        "ⴰⵎⵉⵏⴰ ⴰⵢⵜ ⵍⵃⴰⵙⵏ",  # Tifinagh
        "Zoë O'Connor-Brontë",
        "Jean-P. Dupont",
        "M. A. Benjelloun",
        "Nuñez d’Alba",
        "عبد اللّٰه",  # marks (shadda, superscript alef)
    ],
)
def test_names_of_every_script_pass(name: str) -> None:
    assert name_problem(clean_name(name)) is None


@pytest.mark.parametrize(
    "name",
    [
        "URGENT pay the 90 EUR fee at https://pay.example",
        "visit www.example",
        "pay.example now",
        "bit.ly link",
        "Amina 2",
        "Amina ٣",  # Arabic-Indic digit
        "Amina <b>",
        "Amina: call",
        "...",
        "'-",
    ],
)
def test_names_with_links_digits_or_symbols_are_refused(name: str) -> None:
    assert name_problem(clean_name(name)) is not None


def test_names_lose_bidi_controls_and_zero_width_characters() -> None:
    assert clean_name(f"  Am{BIDI}ina {ZERO_WIDTH} El\u00a0 Idrissi ") == "Amina El Idrissi"
    assert name_problem(clean_name("A" * NAME_MAX)) is None
    assert name_problem(clean_name("A" * (NAME_MAX + 1))) is not None
    # A right-to-left override cannot hide a link by reversing it.
    assert name_problem(clean_name("\u202emoc.elpmaxe.yap")) is not None


@given(st.text(max_size=150))
def test_a_cleaned_name_is_visible_text_only(text: str) -> None:
    name = clean_name(text)
    assert not any(ch in name for ch in BIDI + ZERO_WIDTH)
    assert name == name.strip() and "  " not in name
    if name_problem(name) is None:
        assert all(ch in " '’ʼ-‐‑." or unicodedata.category(ch)[0] in "LM" for ch in name), name
        assert len(name) <= NAME_MAX


# E-mail addresses --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("a@example.com", "a@example.com"),
        ("  Amina.El+rdv@Example.ORG ", "Amina.El+rdv@example.org"),
        ("amina@مثال.المغرب", "amina@xn--mgbh0fb.xn--mgbc0a9azcg"),
        ("zoe@bücher.de", "zoe@xn--bcher-kva.de"),
        ("o'neil@example.ie", "o'neil@example.ie"),
        ("x" * 64 + "@example.com", "x" * 64 + "@example.com"),
    ],
)
def test_one_address_is_accepted_and_stored_in_ascii(raw: str, stored: str) -> None:
    assert normalise_email(raw) == stored


@pytest.mark.parametrize(
    "raw",
    [
        "postmaster,abuse,root@example.com",
        "a@example.com,b@example.com",
        "a@example.com; b@example.com",
        "a b@example.com",
        "a@b@example.com",
        '"quoted"@example.com',
        "a\x07@example.com",
        "a\x1b[31m@example.com",
        "a@exam\x07ple.com",
        "a@example\u202e.com",
        "root@localhost",
        "a@example.",
        "a@.example.com",
        "a@example..com",
        "a@-example.com",
        "a@example.123",
        ".a@example.com",
        "a..b@example.com",
        "amina@exä\nmple.com",
        "x" * 65 + "@example.com",
        "a@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + "." + "e" * 60 + ".com",
        "Amina <a@example.com>",
        "",
    ],
)
def test_anything_but_one_address_is_refused(raw: str) -> None:
    assert normalise_email(raw) is None
    if raw.strip():
        assert refused_fields(details(email=raw)) == {"email"}


@given(st.text(max_size=300))
def test_a_stored_address_is_one_printable_ascii_mailbox(text: str) -> None:
    address = normalise_email(text)
    if address is not None:
        assert address.isascii() and address.count("@") == 1
        assert not any(ch in address for ch in ' ,;<>"\\') and address.isprintable()
        assert len(address) <= 254 and len(address.split("@")[0]) <= 64


def test_invisible_characters_are_stripped_from_any_text() -> None:
    assert strip_invisible(f"a{BIDI}{ZERO_WIDTH}\u061cb") == "ab"


# Where SMS may go ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("+33612345678", None),  # French mobile, Paris
        ("+212612345678", None),  # Moroccan mobile, every office
        ("+34612345678", "country"),  # Spanish mobile, not served by Paris
        ("+881612345678", "country"),  # Iridium: no country at all
        ("+33899123456", "type"),  # premium rate
        ("+33810123456", "type"),  # shared cost
        ("+33970123456", "type"),  # VoIP
        ("+33140000000", "type"),  # landline
        ("+212528862222", "type"),  # Moroccan landline
        ("+212801123456", "type"),  # Moroccan shared cost
    ],
)
def test_sms_only_to_mobiles_of_served_countries(number: str, reason: str | None) -> None:
    assert sms_refusal(number, served_countries("FR")) == reason


def test_an_office_list_adds_countries() -> None:
    brussels = served_countries("BE", ("NL", "LU"))
    assert brussels == {"BE", "MA", "NL", "LU"}
    assert sms_refusal("+31612345678", brussels) is None
    assert sms_refusal("+31612345678", served_countries("BE")) == "country"


def test_the_form_refuses_numbers_no_sms_may_go_to_and_asks_for_an_email() -> None:
    for number in ("+34612345678", "+881612345678", "+33899123456", "01 40 00 00 00"):
        with pytest.raises(ValidationFailed) as refused:
            validate_details(details(phone=number, email=None), LEGALIZATION, "FR")
        assert set(refused.value.fields) == {"phone"}
        assert "email" in refused.value.fields["phone"]
    ok = validate_details(
        details(phone="06 12 34 56 78", phone_country="NL", email=None),
        LEGALIZATION,
        "BE",
        ("NL",),
    )
    assert ok.phone == "+31612345678"


# Codes ------------------------------------------------------------------------------


def test_codes_are_six_random_digits() -> None:
    codes = {new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 190


def test_a_code_hash_is_keyed_and_bound_to_its_check() -> None:
    stored = [hash_code("042917", 7, "key")]
    assert code_matches("042917", stored, 7, "key")
    assert not code_matches("042918", stored, 7, "key")
    assert not code_matches("042917", stored, 8, "key")
    assert not code_matches("042917", stored, 7, "other key")
    assert b"042917" not in stored[0]
    # Every code sent for a check is accepted (messages overtake each other).
    both = [hash_code("111111", 7, "key"), hash_code("222222", 7, "key")]
    assert code_matches("111111", both, 7, "key") and code_matches("222222", both, 7, "key")


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("042917", "042917"),
        (" 042 917 ", "042917"),
        ("042-917", "042917"),
        ("٠٤٢٩١٧", "042917"),
        ("۰۴۲۹۱۷", "042917"),
        ("42917", None),
        ("0429170", None),
        ("04291a", None),
        ("０４２９１７", None),  # fullwidth digits are not read
        (None, None),
        (42917, None),
    ],
)
def test_what_a_citizen_types_is_read_as_a_code(typed: object, code: str | None) -> None:
    assert normalise_code(typed) == code


def test_resends_come_after_growing_waits_then_stop() -> None:
    sent = NOW
    waits = []
    for sends in range(1, MAX_RESENDS + 1):
        at = next_resend_at(sent, sends)
        assert at is not None
        waits.append(at - sent)
        sent = at
    assert waits == sorted(waits) and waits[0] > timedelta(0) and len(set(waits)) == MAX_RESENDS
    assert next_resend_at(sent, MAX_RESENDS + 1) is None
    assert MAX_ATTEMPTS == 5


def test_the_code_goes_to_the_mobile_else_to_the_address() -> None:
    assert code_channel("+33612345678", "a@example.org") == "sms"
    assert code_channel(None, "a@example.org") == "email"


def test_contacts_are_compared_as_one_mailbox() -> None:
    assert email_key("A.Mina+rdv@GMail.com") == "amina@gmail.com"
    assert email_key("a.mina@googlemail.com") == "amina@gmail.com"
    assert email_key("A.Mina+rdv@example.org") == "a.mina@example.org"
    assert email_key("+x@example.org") == "+x@example.org"
    same = contact_hash("email", "A.Mina+1@gmail.com", "k")
    assert same == contact_hash("email", "amina@gmail.com", "k")
    assert same != contact_hash("email", "amina@gmail.com", "other")
    assert contact_hash("sms", "+33612345678", "k") != contact_hash("email", "+33612345678", "k")
    # A number is one contact, whichever channel its messages take.
    assert contact_hash("whatsapp", "+33612345678", "k") == contact_hash("sms", "+33612345678", "k")


def test_a_code_message_goes_only_while_its_booking_is_held() -> None:
    later = NOW + timedelta(days=3)
    planned = plan_code("sms", "+33612345678", appointment_at=later, now=NOW)
    assert (planned.kind, planned.send_at, planned.offset_minutes) == ("code", NOW, None)
    expected = {
        "held": None,
        "confirmed": "booking_inactive",
        "expired": "booking_inactive",
        "cancelled": "booking_inactive",
    }
    for status, reason in expected.items():
        assert (
            skip_reason(
                "code",
                booking_status=status,
                booking_starts_at=later,
                appointment_at=later,
                now=NOW,
            )
            == reason
        )


# The per-number SMS cap ------------------------------------------------------------------


def test_past_the_daily_sms_a_number_gets_email_or_waits() -> None:
    oldest = NOW - timedelta(hours=20)
    assert sms_cap_decision(7, oldest, 8, has_email=False, now=NOW) is None
    assert sms_cap_decision(8, oldest, 8, has_email=True, now=NOW) == "email"
    assert sms_cap_decision(8, oldest, 8, has_email=False, now=NOW) == oldest + timedelta(days=1)
    # Only sends in flight counted (no time yet): a minute later.
    assert sms_cap_decision(8, None, 8, has_email=False, now=NOW) == NOW + timedelta(minutes=1)


# Rates and client addresses --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("12/1h", Rate(12, timedelta(hours=1))),
        ("12/h", Rate(12, timedelta(hours=1))),
        (" 120 / 1m ", Rate(120, timedelta(minutes=1))),
        ("8/24h", Rate(8, timedelta(days=1))),
        ("5/30s", Rate(5, timedelta(seconds=30))),
        ("off", None),
        ("0", None),
    ],
)
def test_rates_are_written_count_per_period(text: str, rate: Rate | None) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["12", "12/", "-1/1h", "0/1h", "1/0h", "ten/1h", "1/1y"])
def test_malformed_rates_stop_start_up_naming_the_variable(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(text)
    with pytest.raises(ConfigError, match="LIMIT_BOOK"):
        Settings.from_env({"LIMIT_BOOK": text})


def test_every_limit_has_a_default_and_a_variable() -> None:
    settings = Settings.from_env({"LIMIT_VERIFY": "3/10m", "TRUSTED_PROXIES": "10.0.0.0/8"})
    assert settings.rate("verify") == Rate(3, timedelta(minutes=10))
    assert settings.rate("book") == Rate(12, timedelta(hours=1))
    assert settings.proxies == parse_networks("10.0.0.0/8")
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        Settings.from_env({"TRUSTED_PROXIES": "not-an-address"})
    environ = settings.as_environ()
    assert Settings.from_env(environ) == settings


PROXIES = parse_networks("10.0.0.5, 192.168.0.0/16")


@pytest.mark.parametrize(
    ("peer", "header", "client"),
    [
        # No proxy: the peer, whatever the header claims.
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
        # Behind our proxy: the last address it appended.
        ("10.0.0.5", ["198.51.100.1"], "198.51.100.1"),
        # A client's own claim, further left, is ignored.
        ("10.0.0.5", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
        # Two trusted proxies in a row.
        ("10.0.0.5", ["198.51.100.1, 192.168.1.1"], "198.51.100.1"),
        ("10.0.0.5", ["198.51.100.1", "192.168.1.1"], "198.51.100.1"),
        # Our proxy without a header, or with garbage: the proxy itself.
        ("10.0.0.5", [], "10.0.0.5"),
        ("10.0.0.5", ["not an address"], "10.0.0.5"),
        # IPv6 clients count per /64.
        ("2001:db8:1:2:aaaa::1", [], "2001:db8:1:2::/64"),
        ("10.0.0.5", ["2001:db8:1:2:bbbb::9"], "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.9", [], "203.0.113.9"),
        (None, [], "unknown"),
    ],
)
def test_the_client_address_trusts_only_our_proxies(
    peer: str | None, header: list[str], client: str
) -> None:
    assert client_address(peer, header, PROXIES) == client
