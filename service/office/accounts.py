"""Staff accounts, login and sessions, API tokens, and the demo accounts.

Secrets (passwords, session ids, API tokens) are stored only hashed: passwords
with argon2id, the others with a keyed hash whose purpose prefix keeps one kind
from ever matching as another.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from service.domain import errors
from service.domain.booking import hash_token
from service.domain.errors import N_
from service.domain.fields import TOKEN_LABEL_MAX
from service.domain.staff import (
    ALERT_AFTER,
    KNOWN_PLACE_FOR,
    Role,
    StaffMember,
    check_deactivation,
    check_new_account,
    login_wait,
    looks_like_api_token,
    new_api_token,
    new_password,
    new_session_id,
    normalise_email,
    password_problem,
    session_expiry,
    session_needs_touch,
    throttle_keys,
    throttle_since,
)
from service.store import staff as staff_store

# argon2id (the library's default type) with its RFC 9106 "low memory"
# parameters: about 0.1 s and 64 MiB per hash.
_HASHER = PasswordHasher()
# Verified against when the e-mail is unknown, so that a login for a missing
# account costs as much as one for a real account (no timing oracle).
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$SUAC6KyVAJcw3GLf/xd4mA$"
    "Wwca+2emoFbS5k/Kj2AyRjU9Sb/5fccw2dXxbxXADbs"
)


async def hash_password(password: str) -> str:
    # Off the event loop: 0.1 s of CPU would stall every other request.
    return await asyncio.to_thread(_HASHER.hash, password)


async def _verify_password(stored: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return _HASHER.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


def secret_hash(purpose: str, value: str, secret_key: str) -> bytes:
    # The purpose prefix keeps a session id from ever matching as an API token.
    return hash_token(f"{purpose}:{value}", secret_key)


# Accounts ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewAccount:
    member: StaffMember
    password: str  # shown once, never stored


async def add_staff(
    conn: asyncpg.Connection,
    email: str,
    role: Role,
    offices: Collection[str],
    now: datetime,
    *,
    creator: StaffMember | None = None,
    password: str | None = None,
    demo: bool = False,
) -> NewAccount:
    """Create an account; raise ValidationFailed with a message for people."""
    address = normalise_email(email)
    if address is None:
        raise errors.ValidationFailed(message=N_("Enter a valid e-mail address."))
    check_new_account(creator, role, offices)
    unknown = await staff_store.unknown_offices(conn, offices)
    if unknown:
        raise errors.ValidationFailed(
            message=N_("No such office: %(offices)s."),
            params={"offices": ", ".join(sorted(unknown))},
        )
    chosen = password or new_password()
    problem = password_problem(chosen)
    if problem:
        raise errors.ValidationFailed(message=problem)
    member = await staff_store.insert(
        conn, address, role, offices, await hash_password(chosen), now, demo=demo
    )
    if member is None:
        raise errors.ValidationFailed(message=N_("An account with this e-mail already exists."))
    return NewAccount(member, chosen)


async def deactivate_staff(
    pool: asyncpg.Pool, office_id: str, staff_id: int, actor: StaffMember, now: datetime
) -> bool:
    """Deactivate an account of this office; False if it already was inactive.

    NotFound when the account does not work for this office (admins work for
    none in particular: only the CLI or another page could reach them);
    Forbidden when `actor` may not.
    """
    async with pool.acquire() as conn, conn.transaction():
        found = await staff_store.member(conn, staff_id)
        if found is None or office_id not in found.member.offices:
            raise errors.NotFound()
        check_deactivation(actor, found.member)
        if not found.active:
            return False
        await staff_store.deactivate(conn, staff_id, now)
    return True


@dataclass(frozen=True, slots=True)
class DemoAccount:
    email: str
    password: str
    role: Role
    offices: tuple[str, ...]


# Published in the README and printed by `mawid dev`: refused at login outside
# dev and test (staff.demo), so a demo seed in production opens nothing.
DEMO_STAFF = (
    DemoAccount("admin@mawid.test", "dev-admin-password", Role.ADMIN, ()),
    DemoAccount("manager@mawid.test", "dev-manager-password", Role.MANAGER, ("consulate-paris",)),
    DemoAccount("agent@mawid.test", "dev-agent-password", Role.AGENT, ("consulate-paris",)),
)


async def seed_demo_staff(conn: asyncpg.Connection, now: datetime) -> None:
    """One account per role; existing accounts are left alone (idempotent)."""
    for account in DEMO_STAFF:
        if await staff_store.credentials(conn, account.email) is not None:
            continue
        await add_staff(
            conn,
            account.email,
            account.role,
            account.offices,
            now,
            password=account.password,
            demo=True,
        )


# Login, sessions, tokens ---------------------------------------------------------


def _wrong_credentials() -> errors.Unauthorized:
    # One answer for an unknown address, a wrong password, a deactivated
    # account and a demo account outside dev: nothing to learn from it.
    return errors.Unauthorized(
        "login_refused", N_("The e-mail address or the password is wrong.")
    )


def _throttled(wait: timedelta) -> errors.TooManyRequests:
    seconds = max(1, math.ceil(wait.total_seconds()))
    return errors.TooManyRequests(
        "login_throttled",
        N_("Too many failed attempts. You can try again in %(seconds)s s."),
        retry_after=seconds,
        params={"seconds": str(seconds)},
    )


@dataclass(frozen=True, slots=True)
class LoggedIn:
    member: StaffMember
    session_id: str  # goes into the cookie, stored only hashed


@dataclass(frozen=True, slots=True)
class LoginAlert:
    """Failed sign-ins its holder should hear of (see ALERT_AFTER)."""

    email: str
    failures: int
    at: datetime


async def login(
    pool: asyncpg.Pool,
    email: str,
    password: str,
    ip: str | None,
    *,
    secret_key: str,
    now: datetime,
    allow_demo: bool,
    alert: Callable[[LoginAlert], None] | None = None,
) -> LoggedIn:
    """A new session, or Unauthorized (wrong credentials) or TooManyRequests
    (the attempt comes before its wait is over: the password is not even
    checked; see service.domain.staff on login throttling).

    `alert` is told, once per throttling window, of an account that failed
    ALERT_AFTER times; it must not block (it only schedules the e-mail)."""
    keys = throttle_keys(email, ip)
    pair, account, address = (
        secret_hash("throttle", k, secret_key) for k in (keys.pair, keys.account, keys.address)
    )
    place = secret_hash("place", keys.pair, secret_key)
    async with pool.acquire() as conn:
        known = await staff_store.is_known_place(conn, place, now - KNOWN_PLACE_FOR)
        # The attempt counts as a failure before the password is checked, so
        # parallel guesses cannot all pass the check while none is counted yet.
        counts, wait = await staff_store.count_then_record(
            conn,
            [pair, account, address],
            throttle_since(now),
            now,
            lambda counts: login_wait(*counts, known=known, now=now),
        )
        if wait > timedelta(0):
            # Refused without checking the password, so guessing goes no
            # faster by ignoring the answer; not counted, so the wait does
            # not grow while the holder waits it out.
            raise _throttled(wait)
        login_address = normalise_email(email) or ""
        found = await staff_store.credentials(conn, login_address) if login_address else None
        ok = await _verify_password(found.password_hash if found else _DUMMY_HASH, password)
        usable = found is not None and found.active and (allow_demo or not found.member.demo) and ok
        if not usable or found is None:
            failures = counts[1].count + 1
            if found is not None and failures >= ALERT_AFTER and alert is not None:
                if await staff_store.claim_login_alert(
                    conn, found.member.id, now, throttle_since(now)
                ):
                    alert(LoginAlert(found.member.email, failures, now))
            raise _wrong_credentials()
        session_id = new_session_id()
        async with conn.transaction():
            # The pair's mistakes are forgiven; the account's and the
            # address's other failures (someone else's guesses) stay counted.
            await staff_store.clear_failures(conn, pair)
            await staff_store.forget_attempt(conn, account, now)
            await staff_store.forget_attempt(conn, address, now)
            await staff_store.remember_place(
                conn, place, account, now, now - KNOWN_PLACE_FOR
            )
            await staff_store.mark_login(conn, found.member.id, now)
            await staff_store.create_session(
                conn,
                secret_hash("session", session_id, secret_key),
                found.member.id,
                now,
                session_expiry(now, now),
            )
            if _HASHER.check_needs_rehash(found.password_hash):
                await staff_store.set_password_hash(
                    conn, found.member.id, await hash_password(password)
                )
    return LoggedIn(found.member, session_id)


async def session_member(
    pool: asyncpg.Pool, session_id: str, *, secret_key: str, now: datetime
) -> StaffMember | None:
    if not 20 <= len(session_id) <= 100:
        return None
    id_hash = secret_hash("session", session_id, secret_key)
    async with pool.acquire() as conn:
        row = await staff_store.session(conn, id_hash, now)
        if row is None:
            return None
        if session_needs_touch(row.last_seen_at, now):
            await staff_store.touch_session(conn, id_hash, now, session_expiry(row.created_at, now))
    return row.member


async def logout(pool: asyncpg.Pool, session_id: str, *, secret_key: str) -> None:
    async with pool.acquire() as conn:
        await staff_store.delete_session(conn, secret_hash("session", session_id, secret_key))


async def token_member(
    pool: asyncpg.Pool, token: str, *, secret_key: str, now: datetime
) -> StaffMember | None:
    if not looks_like_api_token(token):
        return None
    async with pool.acquire() as conn:
        return await staff_store.token_member(conn, secret_hash("api", token, secret_key), now)


async def create_api_token(
    pool: asyncpg.Pool, member: StaffMember, label: str, *, secret_key: str, now: datetime
) -> str:
    token = new_api_token()
    async with pool.acquire() as conn:
        await staff_store.create_token(
            conn, member.id, secret_hash("api", token, secret_key), label[:TOKEN_LABEL_MAX], now
        )
    return token
