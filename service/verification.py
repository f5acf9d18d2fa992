"""Verified contact, the steps shared by whatever waits for a code (a held
booking, a draw request): open a check, issue a code when its message leaves, try a
code, ask for another, remember a proved contact.

Each function runs inside its caller's transaction, on a connection where
the caller has locked what the check belongs to (the booking or entry row), so two
requests about one check never interleave. The rules themselves are pure
(service.domain.verification); the SQL is service.store.verification.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import asyncpg

from service.domain import errors
from service.domain.errors import N_
from service.domain.verification import (
    MAX_ATTEMPTS,
    Channel,
    code_matches,
    contact_hash,
    hash_code,
    new_code,
    next_resend_at,
    normalise_code,
)
from service.store import outbox
from service.store import verification as store
from service.store.verification import Check, Owner

# The window of the per-contact budget of codes.
CODE_BUDGET_WINDOW = timedelta(hours=24)


class Outcome(StrEnum):
    VERIFIED = "verified"
    WRONG = "wrong"
    # The last attempt was wrong: the check is over.
    EXHAUSTED = "exhausted"


@dataclass(frozen=True, slots=True)
class Attempt:
    outcome: Outcome
    attempts_left: int


async def proved(
    conn: asyncpg.Connection,
    phone: str | None,
    email: str | None,
    *,
    secret_key: str,
    since: datetime,
) -> tuple[bool, bool]:
    """Whether the phone and the address were proved by a code since `since`."""
    keys: dict[Channel, bytes] = {}
    if phone:
        keys["sms"] = contact_hash("sms", phone, secret_key)
    if email:
        keys["email"] = contact_hash("email", email, secret_key)
    found = await store.remembered(conn, list(keys.values()), since)
    return keys.get("sms") in found, keys.get("email") in found


async def remember(
    conn: asyncpg.Connection, channel: Channel, contact: str, secret_key: str, now: datetime
) -> None:
    await store.remember(conn, contact_hash(channel, contact, secret_key), now)


async def within_code_budget(
    conn: asyncpg.Connection, recipient: str, now: datetime, per_day: int
) -> None:
    """Refuse another code to `recipient` past `per_day` in 24 hours, whoever
    asks: codes cost SMS, and an inbox flooded with codes helps nobody."""
    sent, oldest = await outbox.codes_to(conn, recipient, now - CODE_BUDGET_WINDOW)
    if sent >= per_day:
        wait = (oldest + CODE_BUDGET_WINDOW - now) if oldest else CODE_BUDGET_WINDOW
        raise errors.TooManyRequests(
            "codes_per_contact",
            N_(
                "Too many codes were sent to this phone number or email address today. "
                "Try again tomorrow, or book at the counter."
            ),
            retry_after=max(1, math.ceil(wait.total_seconds())),
        )


async def open_check(
    conn: asyncpg.Connection, owner: Owner, channel: Channel, now: datetime
) -> int:
    return await store.open_check(conn, owner, channel, now)


async def check_of(conn: asyncpg.Connection, owner: Owner) -> Check:
    check = await store.for_owner(conn, owner)
    if check is None:
        raise LookupError(f"{owner!r} has no contact check")
    return check


async def issue_code(conn: asyncpg.Connection, owner: Owner, secret_key: str) -> str:
    """A fresh code for the check of `owner`, its hash recorded: called
    by the worker just before the code message leaves, so the code exists in
    clear only in that message."""
    check = await check_of(conn, owner)
    code = new_code()
    await store.add_code_hash(conn, check.id, hash_code(code, check.id, secret_key))
    return code


async def try_code(
    conn: asyncpg.Connection, owner: Owner, raw: object, secret_key: str, now: datetime
) -> Attempt:
    """Try what the citizen typed. A wrong or unreadable code uses one of
    MAX_ATTEMPTS; the caller commits that even when it refuses the request."""
    check = await check_of(conn, owner)
    if check.attempts >= MAX_ATTEMPTS:
        return Attempt(Outcome.EXHAUSTED, 0)
    code = normalise_code(raw)
    if code is not None and code_matches(code, check.code_hashes, check.id, secret_key):
        await store.mark_verified(conn, check.id, now)
        return Attempt(Outcome.VERIFIED, MAX_ATTEMPTS - check.attempts)
    attempts = await store.count_attempt(conn, check.id)
    left = MAX_ATTEMPTS - attempts
    return Attempt(Outcome.WRONG if left > 0 else Outcome.EXHAUSTED, max(left, 0))


async def ask_again(conn: asyncpg.Connection, owner: Owner, now: datetime) -> Check:
    """Count a resend, or refuse it: too soon (429, with the wait) or none
    left (409). The caller queues the code message."""
    check = await check_of(conn, owner)
    at = next_resend_at(check.last_send_at, check.sends)
    if at is None:
        raise errors.Conflict(
            "resend_limit",
            N_("No more codes can be sent for this booking. Book again if you did not get one."),
        )
    if now < at:
        raise errors.TooManyRequests(
            "resend_too_soon",
            N_("Please wait a little before asking for another code."),
            retry_after=max(1, math.ceil((at - now).total_seconds())),
        )
    await store.count_send(conn, check.id, now)
    return await check_of(conn, owner)
