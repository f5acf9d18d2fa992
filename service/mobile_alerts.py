"""Mobile day alerts, the use cases: subscribe (with the code step a held
booking and a draw request use), see a subscription by its link, prove it,
ask for another code, renew it for a year, stop it; announce a published
mobile day to the subscribers near it; anonymise the ended ones.

The rules are service.domain.mobile_alerts; the SQL service.store.mobile_alerts;
where a typed town is, service.places.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from service import bookings, verification
from service.domain import errors
from service.domain.booking import hash_token, new_manage_token, token_matches
from service.domain.calendar import local_day_bounds
from service.domain.errors import N_
from service.domain.messages import QuietHours
from service.domain.mobile_alerts import (
    CODE_MINUTES,
    SubscriptionRef,
    announcements,
    parse_form,
    renewed_until,
    standing,
)
from service.domain.mobile_day import MobileDay
from service.domain.models import Office
from service.domain.places import unknown_town
from service.domain.verification import contact_hash
from service.notify import events
from service.places import Gazetteer
from service.store import mobile_alerts as store
from service.store import offices as office_store
from service.store.mobile_alerts import Subscription

# Subscriptions anonymised per transaction by the retention run.
BATCH = 200


def place_countries(office: Office) -> tuple[str, ...]:
    """Where a consulate's subscribers live: its country and those it serves."""
    return (office.country, *office.sms_countries)


def subscription_lapsed() -> errors.Conflict:
    return errors.Conflict(
        "subscription_lapsed",
        N_("This subscription was not confirmed in time. Please ask again."),
    )


def subscription_ended() -> errors.Conflict:
    return errors.Conflict(
        "subscription_ended",
        N_("This subscription has ended. You can ask again from the consulate's page."),
    )


def already_subscribed() -> errors.Conflict:
    return errors.Conflict(
        "already_subscribed",
        N_("This phone number or email address was just subscribed. Please try again."),
    )


@dataclass(frozen=True, slots=True)
class Subscribed:
    id: int
    # The subscription's link (/m/{id}/{token}); shown once, stored hashed.
    token: str
    # Waits for the code sent to its contact.
    pending: bool


async def subscribe(
    pool: asyncpg.Pool,
    office_id: str,
    raw: Mapping[str, object],
    *,
    places: Gazetteer,
    secret_key: str,
    now: datetime,
    days: int,
    whatsapp: bool,
    rules: bookings.Rules = bookings.DEFAULT_RULES,
    admit: bookings.Admit = None,
) -> Subscribed:
    """A subscription of one contact and town to a consulate's mobile days,
    or ValidationFailed (nothing written). A contact proved lately stands at
    once; another gets a code, as a held booking's does. `admit` is asked
    once the form is found well-formed."""
    async with pool.acquire() as conn:
        office = await office_store.get_office(conn, office_id)
    # Mobile days are consulates' (the form lists only them).
    if office is None or office.kind != "consulate":
        problems = {"office": N_("Choose a consulate from the list.")}
        try:
            parse_form(raw, None, (), whatsapp=whatsapp)
        except errors.ValidationFailed as failed:
            problems.update(failed.fields)
        raise errors.ValidationFailed(problems)
    form = parse_form(raw, office.country, office.sms_countries, whatsapp=whatsapp)
    place = await places.locate(form.town, place_countries(office))
    if place is None:
        raise unknown_town("town")
    if admit is not None:
        await admit()
    key = contact_hash(form.code_channel, form.contact, secret_key)
    token = new_manage_token()
    async with pool.acquire() as conn:
        try:
            async with conn.transaction():
                phone_ok, email_ok = await verification.proved(
                    conn,
                    form.contact if form.code_channel == "sms" else None,
                    form.contact if form.code_channel == "email" else None,
                    secret_key=secret_key,
                    since=now - timedelta(days=rules.verified_contact_days),
                )
                proved = phone_ok or email_ok
                if proved:
                    await _take_place(conn, office.id, key, None, now)
                subscription_id = await store.insert(
                    conn,
                    office_id=office.id,
                    channel=form.channel,
                    contact=form.contact,
                    contact_hash=key,
                    place=(place.latitude, place.longitude),
                    language=form.language,
                    token_hash=hash_token(token, secret_key),
                    verified_at=now if proved else None,
                    expires_at=renewed_until(now, days)
                    if proved
                    else now + timedelta(minutes=CODE_MINUTES),
                    now=now,
                )
                if not proved:
                    owner = SubscriptionRef(subscription_id)
                    await verification.within_code_budget(
                        conn, form.contact, now, rules.codes_per_contact_per_day
                    )
                    await verification.open_check(conn, owner, form.code_channel, now)
                    await events.record_code(
                        conn, owner, form.code_channel, form.contact, language=form.language,
                        appointment_at=now + timedelta(minutes=CODE_MINUTES), now=now,
                    )  # fmt: skip
        except asyncpg.UniqueViolationError:
            raise already_subscribed() from None
        return Subscribed(subscription_id, token, not proved)


async def _take_place(
    conn: asyncpg.Connection, office_id: str, key: bytes, keep: int | None, now: datetime
) -> None:
    """A contact has one standing subscription per consulate: the one being
    proved replaces the others (their contact and place forgotten)."""
    for other in await store.others_standing(conn, office_id, key, keep or 0):
        await store.anonymise(conn, other, now, stop=True)


@dataclass(frozen=True, slots=True)
class SubscriptionPage:
    subscription: Subscription
    office: Office
    # pending | standing | expired | stopped | lapsed
    state: str
    # While its contact is unproved: where the code went and what is left.
    code: bookings.CodeState | None


def _state(s: Subscription, now: datetime) -> str:
    if s.stopped_at is not None:
        return "stopped"
    if s.verified_at is None:
        return "pending" if s.anonymised_at is None and now < s.expires_at else "lapsed"
    if standing(
        verified_at=s.verified_at, expires_at=s.expires_at, stopped_at=s.stopped_at,
        anonymised_at=s.anonymised_at, now=now,
    ):  # fmt: skip
        return "standing"
    return "expired"


async def _authorised(
    conn: asyncpg.Connection, subscription_id: int, token: str | None, secret_key: str
) -> Subscription:
    """The subscription, locked, if the token opens it: the one shown when
    it was made, or one its messages carried. The same refusal for an
    unknown id and a wrong token."""
    found = await store.get(conn, subscription_id, lock=True)
    if found is None or not token:
        raise errors.manage_link_refused()
    if not token_matches(token, found.token_hash, secret_key) and not await store.token_opens(
        conn, found.id, hash_token(token, secret_key)
    ):
        raise errors.manage_link_refused()
    return found


async def _page(conn: asyncpg.Connection, s: Subscription, now: datetime) -> SubscriptionPage:
    office = await office_store.get_office(conn, s.office_id)
    assert office is not None
    state = _state(s, now)
    code = None
    if state == "pending":
        assert s.contact is not None
        check = await verification.check_of(conn, SubscriptionRef(s.id))
        code = bookings.code_state_of(check, s.contact, s.expires_at, office.timezone)
    return SubscriptionPage(s, office, state, code)


async def view(
    pool: asyncpg.Pool, subscription_id: int, token: str | None, secret_key: str, now: datetime
) -> SubscriptionPage:
    async with pool.acquire() as conn, conn.transaction():
        return await _page(conn, await _authorised(conn, subscription_id, token, secret_key), now)


async def verify(
    pool: asyncpg.Pool,
    subscription_id: int,
    token: str | None,
    code: object,
    *,
    secret_key: str,
    now: datetime,
    days: int,
) -> SubscriptionPage:
    """Prove a subscription's contact with its code: each wrong code uses an
    attempt (committed, then refused); the last wrong one, or the code's
    time running out, ends the subscription. The proved contact is
    remembered for bookings and requests too."""
    async with pool.acquire() as conn:
        refusal: errors.Refusal | None = None
        async with conn.transaction():
            s = await _authorised(conn, subscription_id, token, secret_key)
            state = _state(s, now)
            if state != "pending":
                if state in ("lapsed", "stopped", "expired") and s.verified_at is None:
                    raise subscription_lapsed()
                return await _page(conn, s, now)
            assert s.contact is not None
            owner = SubscriptionRef(s.id)
            check = await verification.check_of(conn, owner)
            attempt = await verification.try_code(conn, owner, code, secret_key, now)
            if attempt.outcome is verification.Outcome.VERIFIED:
                key = contact_hash("email" if check.channel == "email" else "sms", s.contact,
                                   secret_key)  # fmt: skip
                await _take_place(conn, s.office_id, key, s.id, now)
                await store.set_standing(
                    conn, s.id, verified_at=now, expires_at=renewed_until(now, days)
                )
                await verification.remember(
                    conn, "email" if check.channel == "email" else "sms", s.contact,
                    secret_key, now,
                )  # fmt: skip
            elif attempt.outcome is verification.Outcome.WRONG:
                refusal = bookings.wrong_code(attempt.attempts_left)
            else:
                await store.anonymise(conn, s.id, now, stop=False)
                refusal = subscription_lapsed()
        if refusal is not None:
            raise refusal
        async with conn.transaction():
            return await _page(conn, await _authorised(conn, subscription_id, token, secret_key),
                               now)  # fmt: skip


async def resend(
    pool: asyncpg.Pool,
    subscription_id: int,
    token: str | None,
    *,
    secret_key: str,
    now: datetime,
    rules: bookings.Rules = bookings.DEFAULT_RULES,
) -> None:
    """Another code for a pending subscription, under the held booking's limits."""
    async with pool.acquire() as conn, conn.transaction():
        s = await _authorised(conn, subscription_id, token, secret_key)
        state = _state(s, now)
        if state == "lapsed":
            raise subscription_lapsed()
        if state != "pending":
            raise bookings.not_held()
        assert s.contact is not None
        by_email = s.channel == "email"
        await bookings.code_again(
            conn, SubscriptionRef(s.id), None if by_email else s.contact,
            s.contact if by_email else None, language=s.language,
            appointment_at=s.expires_at, now=now, rules=rules,
        )  # fmt: skip


async def renew(
    pool: asyncpg.Pool,
    subscription_id: int,
    token: str | None,
    *,
    secret_key: str,
    now: datetime,
    days: int,
) -> SubscriptionPage:
    """Another year from now, for a proved subscription not stopped (one
    that ran out may be renewed until it is anonymised)."""
    async with pool.acquire() as conn, conn.transaction():
        s = await _authorised(conn, subscription_id, token, secret_key)
        if s.verified_at is None or s.stopped_at is not None or s.anonymised_at is not None:
            raise subscription_ended()
        await store.set_standing(
            conn, s.id, verified_at=s.verified_at, expires_at=renewed_until(now, days)
        )
        return await _page(conn, await _authorised(conn, subscription_id, token, secret_key), now)


async def stop(
    pool: asyncpg.Pool, subscription_id: int, token: str | None, *, secret_key: str, now: datetime
) -> SubscriptionPage:
    """No more messages: the contact and the place are forgotten at once."""
    async with pool.acquire() as conn, conn.transaction():
        s = await _authorised(conn, subscription_id, token, secret_key)
        await store.anonymise(conn, s.id, now, stop=True)
        return await _page(conn, await _authorised(conn, subscription_id, token, secret_key), now)


# Publishing ---------------------------------------------------------------------------


async def announce(
    conn: asyncpg.Connection,
    office: Office,
    mobile_day: MobileDay,
    venue: tuple[float, float],
    km: int,
    now: datetime,
) -> int:
    """Write, in the caller's transaction (the one that publishes the day),
    one message to each standing subscriber of the office within `km` of
    the venue. Returns how many were written."""
    quiet = await store.office_quiet_hours(conn, office.id)
    deadline = local_day_bounds(mobile_day.dates[-1], mobile_day.zone)[0]
    planned = announcements(
        await store.standing(conn, office.id, now),
        venue,
        km,
        now=now,
        deadline=deadline,
        quiet=QuietHours(*quiet),
        zone=mobile_day.zone,
    )
    return await store.add_announcements(conn, mobile_day.id, planned, now)


# Retention ----------------------------------------------------------------------------


async def anonymise_ended(pool: asyncpg.Pool, cutoff: datetime, now: datetime) -> int:
    """Forget the contact and place of every subscription that ended before
    `cutoff` (the retention period); returns how many."""
    done = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            due = await store.ended_before(conn, cutoff, BATCH)
            for subscription_id in due:
                await store.anonymise(conn, subscription_id, now, stop=False)
        done += len(due)
        if len(due) < BATCH:
            return done
