"""Verified contact: one-time codes, their keyed hashes, the rules of a check
(attempts, resends, waits), and the keys under which contacts are compared
and remembered. Pure: no I/O.

A check proves that whoever books holds the phone or mailbox they gave. The
code is drawn by the worker just before the message leaves (like manage
tokens, it is never stored in clear: only its keyed hash is), so the web
process never knows it. Any code sent for a check is accepted until the
check's deadline, since a resent SMS may overtake the first one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Literal

Channel = Literal["sms", "email"]

CODE_DIGITS = 6
# Wrong codes a check allows in all, whatever the resends; then it fails.
MAX_ATTEMPTS = 5
# Codes that may be asked for again after the first.
MAX_RESENDS = 3
# The wait before each resend, counted from the previous send: growing, so
# that a script gains little by asking again.
RESEND_WAITS = (timedelta(seconds=60), timedelta(seconds=120), timedelta(seconds=240))
assert len(RESEND_WAITS) == MAX_RESENDS

# Providers that ignore dots in the local part (and the alias of one).
_DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}
# Digits a phone keyboard may type in Arabic: ٠١٢٣٤٥٦٧٨٩ and ۰۱۲۳۴۵۶۷۸۹.
_DIGITS = str.maketrans(
    "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669"
    "\u06f0\u06f1\u06f2\u06f3\u06f4\u06f5\u06f6\u06f7\u06f8\u06f9",
    "01234567890123456789",
)


def new_code() -> str:
    """Six random digits (leading zeros kept)."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def hash_code(code: str, check_id: int, secret_key: str) -> bytes:
    """Keyed, and bound to its check: the same digits of another check, or a
    leaked table without the key, prove nothing."""
    message = f"code:{check_id}:{code}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).digest()


def normalise_code(raw: object) -> str | None:
    """What the citizen typed, as six ASCII digits, or None. Spaces and
    dashes are ignored, Arabic-Indic digits read as digits."""
    if not isinstance(raw, str) or len(raw) > 40:
        return None
    text = "".join(ch for ch in raw.translate(_DIGITS) if ch not in " -\u00a0\t")
    if len(text) != CODE_DIGITS or not text.isascii() or not text.isdigit():
        return None
    return text


def code_matches(code: str, hashes: list[bytes], check_id: int, secret_key: str) -> bool:
    candidate = hash_code(code, check_id, secret_key)
    # Every hash is compared, so the time taken says nothing about which one.
    found = False
    for stored in hashes:
        found |= hmac.compare_digest(candidate, bytes(stored))
    return found


def attempts_left(attempts: int) -> int:
    return max(MAX_ATTEMPTS - attempts, 0)


def next_resend_at(last_send_at: datetime, sends: int) -> datetime | None:
    """When the next code may be asked for, after `sends` codes (the first
    included); None once the resends are used up."""
    resends_done = sends - 1
    if resends_done >= MAX_RESENDS:
        return None
    return last_send_at + RESEND_WAITS[resends_done]


def code_channel(phone: str | None, email: str | None) -> Channel:
    """Where the code goes: to the mobile when there is one (form validation
    only keeps numbers that can take SMS), else to the address."""
    if phone:
        return "sms"
    if email:
        return "email"
    raise ValueError("a booking has a phone or an e-mail address")


def email_key(email: str) -> str:
    """An address as the household cap compares it: lower case, without a
    +tag, and without dots where the provider ignores them (so that
    A.Mina+1@GMail.com and amina@gmail.com are one mailbox)."""
    local, _, domain = email.rpartition("@")
    domain = domain.lower()
    local = local.lower().split("+", 1)[0] or local.lower()
    if domain in _DOTLESS_DOMAINS:
        local = local.replace(".", "")
    return f"{local}@{_DOMAIN_ALIASES.get(domain, domain)}"


def contact_hash(
    channel: Literal["sms", "whatsapp", "email"], contact: str, secret_key: str
) -> bytes:
    """The key a verified contact is remembered under: a keyed hash of the
    E.164 number or of the address's key, never the contact itself.  A
    number is one contact whether its messages go by SMS or by WhatsApp."""
    if channel == "email":
        kind, value = "email", email_key(contact)
    else:
        kind, value = "sms", contact
    return hmac.new(
        secret_key.encode(), f"contact:{kind}:{value}".encode(), hashlib.sha256
    ).digest()
