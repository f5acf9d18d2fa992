"""Booking states, transitions, references, tokens and rules. Pure: no I/O."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit


class Status(StrEnum):
    HELD = "held"
    CONFIRMED = "confirmed"
    CHECKED_IN = "checked_in"
    DONE = "done"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


# Statuses that hold a seat on their slot (and count for the one-booking-per-
# document rule; the partial unique index in 0001_init.sql lists the same).
ACTIVE = frozenset({Status.HELD, Status.CONFIRMED, Status.CHECKED_IN})

TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.HELD: frozenset({Status.CONFIRMED, Status.EXPIRED, Status.CANCELLED}),
    Status.CONFIRMED: frozenset({Status.CHECKED_IN, Status.NO_SHOW, Status.CANCELLED}),
    Status.CHECKED_IN: frozenset({Status.DONE, Status.NO_SHOW}),
    Status.DONE: frozenset(),
    Status.NO_SHOW: frozenset({Status.CHECKED_IN}),
    Status.CANCELLED: frozenset(),
    Status.EXPIRED: frozenset(),
}


def can_transition(current: Status, target: Status) -> bool:
    return target in TRANSITIONS[current]


def frees_seat(current: Status, target: Status) -> bool:
    return current in ACTIVE and target not in ACTIVE


def takes_seat(current: Status, target: Status) -> bool:
    return current not in ACTIVE and target in ACTIVE


# Crockford-like alphabet without 0/O, 1/I/L and U (avoids accidental words).
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERENCE_LENGTH = 6  # 30**6 ~ 7.3e8 per office prefix
_REFERENCE_RE = re.compile(rf"^[A-Z]{{2,5}}-[{REFERENCE_ALPHABET}]{{{REFERENCE_LENGTH}}}$")


def new_reference(prefix: str) -> str:
    body = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))
    return f"{prefix}-{body}"


def normalise_reference(raw: str) -> str | None:
    """Upper-cases and checks a reference typed or pasted by a person."""
    candidate = raw.strip().upper()
    return candidate if _REFERENCE_RE.match(candidate) else None


def calendar_uid(reference: str, base_url: str) -> str:
    """The one iCalendar UID of a booking, whichever file carries it (the
    confirmation page's download, every email's attachment), so that calendar
    apps update a single entry instead of adding another."""
    return f"{reference}@{urlsplit(base_url).hostname or 'mawid.invalid'}"


def manage_url(base_url: str, reference: str, token: str) -> str:
    """The manage page's address: in the API's answer, on the confirmation
    page, and in every message (each with a token issued for it alone)."""
    return f"{base_url}/b/{reference}/{token}"


def book_again_url(base_url: str, reference_prefix: str) -> str:
    """The office's page by its short address (/o/PAR), for cancellation
    messages: short enough for an Arabic SMS within its segment budget."""
    return f"{base_url}/o/{reference_prefix}"


def new_manage_token() -> str:
    """128 random bits, URL-safe (22 characters, short enough for an SMS link);
    shown once, stored only as a hash."""
    return secrets.token_urlsafe(16)


def hash_token(token: str, secret_key: str) -> bytes:
    """Keyed hash: a leaked table alone does not let anyone test guesses."""
    return hmac.new(secret_key.encode(), token.encode(), hashlib.sha256).digest()


def token_matches(token: str, stored: bytes, secret_key: str) -> bool:
    return hmac.compare_digest(hash_token(token, secret_key), stored)


_DOCUMENT_SEPARATORS = re.compile(r"[\s\-_./]+")
_DOCUMENT_RE = re.compile(r"^[A-Z0-9]{4,30}$")


def normalise_document(raw: str) -> str | None:
    """Upper case without spaces or dashes; None when it cannot be a document."""
    candidate = _DOCUMENT_SEPARATORS.sub("", raw).upper()
    return candidate if _DOCUMENT_RE.match(candidate) else None


@dataclass(frozen=True, slots=True)
class Window:
    earliest: datetime
    latest: datetime


def booking_window(now: datetime, earliest_hours: int, latest_days: int) -> Window:
    return Window(now + timedelta(hours=earliest_hours), now + timedelta(days=latest_days))


def can_cancel(now: datetime, starts_at: datetime) -> bool:
    """Citizens may cancel until the appointment starts."""
    return now < starts_at


def can_mark_no_show(now: datetime, starts_at: datetime) -> bool:
    return now >= starts_at


def can_reschedule(now: datetime, starts_at: datetime, cutoff_minutes: int) -> bool:
    return now <= starts_at - timedelta(minutes=cutoff_minutes)
