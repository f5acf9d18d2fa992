"""The booking use cases: book, verify a held booking's code, ask for another
code, view, cancel, reschedule, change status, release expired holds.

One transaction each, shared by the JSON API, the citizen pages and the office
pages, so that every path obeys the same rules. Each one writes the booking,
its seat, its audit row and its outbox rows together, or nothing.

A public booking (the citizen pages, the API) of a service that verifies
contacts starts `held`: its seat is taken, and a code goes to the citizen's
mobile (or address, without one). The right code confirms it; a hold whose
time is up, or whose codes were all wrong, is `expired` and its seat free
again. A contact proved on an earlier booking is not asked again for a while.
Staff booking at the counter, and services that do not verify, confirm at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

import asyncpg

from service import offers, verification
from service.config import Settings
from service.domain import errors, feedback
from service.domain.booking import (
    Status,
    booking_window,
    can_cancel,
    can_reschedule,
    can_transition,
    frees_seat,
    hash_token,
    new_manage_token,
    new_reference,
    takes_seat,
)
from service.domain.errors import N_, Nn_
from service.domain.messages import MessageChannel
from service.domain.mobile_day import MobileDay
from service.domain.models import Booking, Office, Service, Slot
from service.domain.staff import action_refusal
from service.domain.validation import (
    CitizenDetails,
    RawDetails,
    message_channel,
    validate_details,
)
from service.domain.verification import (
    Channel,
    attempts_left,
    code_channel,
    contact_hash,
    email_key,
    next_resend_at,
)
from service.notify import events
from service.store import audit, form_keys, outbox
from service.store import bookings as booking_store
from service.store import draws as draw_store
from service.store import mobile_days as mobile_day_store
from service.store import offices as office_store
from service.store import slots as slot_store
from service.store.audit import Actor
from service.store.verification import Check, Owner

_REFERENCE_TRIES = 8


@dataclass(frozen=True, slots=True)
class Rules:
    """The settings the booking use cases obey (service.config)."""

    verified_contact_days: int
    codes_per_contact_per_day: int
    reschedule_limit: int
    # Where a freed seat of an instant service goes first (service.offers).
    waitlist: offers.ListRules

    @classmethod
    def of(cls, settings: Settings) -> Rules:
        return cls(
            verified_contact_days=settings.verified_contact_days,
            codes_per_contact_per_day=settings.codes_per_contact_per_day,
            reschedule_limit=settings.reschedule_limit,
            waitlist=offers.ListRules(settings.waitlist_days, settings.waitlist_offer_hours),
        )


DEFAULT_RULES = Rules.of(Settings())

# A caller's last word on a request found well-formed, before anything is
# written: the web's per-address limit on attempts, so that a form sent back
# for a typing mistake is not counted as one (None: nothing to ask). Asked
# with no database connection held: it may wait on Redis for seconds.
Admit = Callable[[], Awaitable[None]] | None


@dataclass(frozen=True, slots=True)
class Booked:
    booking: Booking
    office: Office
    service: Service
    manage_token: str  # shown once, never stored


@dataclass(frozen=True, slots=True)
class BookingContext:
    booking: Booking
    # Seen from the booking's site: a mobile day's venue, town and zone.
    office: Office
    service: Service
    # The mobile day its slot is held at, if any.
    mobile_day: MobileDay | None = None
    # Its number asked for no more WhatsApp messages (STOP): WhatsApp is not
    # offered (read by `view`, which has the key the opt-out is kept under).
    whatsapp_opted_out: bool = False


async def office_and_service(
    conn: asyncpg.Connection, office_id: str, service_id: str
) -> tuple[Office, Service]:
    office = await office_store.get_office(conn, office_id)
    if office is None:
        raise errors.office_not_found()
    service = await office_store.get_service(conn, office_id, service_id)
    if service is None:
        raise errors.service_not_found()
    return office, service


async def _seat_refusal(
    conn: asyncpg.Connection, slot_id: int, service: Service, now: datetime
) -> errors.Refusal:
    """Why take_seat said no; read after the fact, only to pick the message."""
    slot = await slot_store.get_slot(conn, slot_id)
    if slot is None or slot.service_id != service.id or slot.office_id != service.office_id:
        return errors.slot_not_found()
    if slot.mobile_day_id is not None and not await mobile_day_store.open_for_booking(
        conn, slot.mobile_day_id, now
    ):
        return errors.mobile_day_not_open()
    window = booking_window(now, service.earliest_hours, service.latest_days)
    if slot.starts_at < window.earliest:
        return errors.too_late()
    if slot.starts_at > window.latest:
        return errors.Conflict("not_open_yet", errors.N_("This time cannot be booked yet."))
    return errors.slot_full()


async def _take_seat(
    conn: asyncpg.Connection, slot_id: int, service: Service, now: datetime
) -> Slot:
    window = booking_window(now, service.earliest_hours, service.latest_days)
    slot = await slot_store.take_seat(
        conn, slot_id, service.office_id, service.id, window.earliest, window.latest, now
    )
    if slot is None:
        raise await _seat_refusal(conn, slot_id, service, now)
    return slot


@asynccontextmanager
async def _seat_refusals(
    conn: asyncpg.Connection, slot_id: int, service: Service, now: datetime
) -> AsyncIterator[None]:
    """Around a transaction that takes a seat: the oversell trigger's refusal
    (the guard in take_seat should have said no first) becomes the same
    refusal as the guard's, read once the transaction has rolled back."""
    try:
        yield
    except asyncpg.CheckViolationError as exc:
        if not slot_store.oversell_refused(exc):
            raise
        raise await _seat_refusal(conn, slot_id, service, now) from None


async def _take_seat_guarded(
    conn: asyncpg.Connection, slot_id: int, service: Service, now: datetime
) -> Slot:
    """_take_seat inside a savepoint, for a transaction that goes on after a
    refusal would have to be read (the caller's own transaction stays usable)."""
    try:
        async with conn.transaction():
            return await _take_seat(conn, slot_id, service, now)
    except asyncpg.CheckViolationError as exc:
        if not slot_store.oversell_refused(exc):
            raise
        raise await _seat_refusal(conn, slot_id, service, now) from None


async def book(
    pool: asyncpg.Pool,
    *,
    slot_id: int,
    service_id: str,
    details: RawDetails,
    secret_key: str,
    now: datetime,
    actor: Actor = audit.CITIZEN,
    form_key_hash: bytes | None = None,
    manage_token: str | None = None,
    rules: Rules = DEFAULT_RULES,
) -> Booked:
    """Book a seat: confirmed, or held until the code sent to the citizen
    comes back (see the module's docstring). `form_key_hash` (citizen form)
    makes a resubmission raise errors.already_submitted() instead of booking
    twice; `manage_token` lets the form derive the token from its key so that
    the resubmission can be shown the first booking."""
    async with pool.acquire() as conn:
        slot = await slot_store.get_slot(conn, slot_id)
        if slot is None:
            raise errors.slot_not_found()
        office, service = await office_and_service(conn, slot.office_id, service_id)
        if slot.service_id != service.id:
            raise errors.slot_not_found()
        citizen = validate_details(details, service, office.country, office.sms_countries)
        plan = await _contact_plan(conn, citizen, service, actor, secret_key, now, rules)
        # A seat held past its time is free: give it back before taking one.
        await release_expired_holds(conn, now, slot_id=slot.id, rules=rules)
        token = manage_token or new_manage_token()
        async with _seat_refusals(conn, slot.id, service, now), conn.transaction():
            if form_key_hash is not None and not await form_keys.claim(conn, form_key_hash, now):
                raise errors.already_submitted()
            taken = await _take_seat(conn, slot.id, service, now)
            booking = await _insert(conn, office, service, taken, citizen, plan, token, secret_key,
                                    actor, now)  # fmt: skip
            if form_key_hash is not None:
                await form_keys.attach(conn, form_key_hash, booking.id)
            await audit.record(conn, booking.id, actor, plan.action, None, booking.status)
            if plan.held:
                recipient = citizen.phone if plan.channel == "sms" else citizen.email
                assert recipient is not None
                # After the insert: the household cap's lock on this contact
                # is held, so two bookings of one household count each other.
                await verification.within_code_budget(
                    conn, recipient, now, rules.codes_per_contact_per_day
                )
                await verification.open_check(conn, booking.id, plan.channel, now)
                await events.record_code(
                    conn, booking.id, plan.channel, recipient, language=booking.language,
                    appointment_at=booking.starts_at, now=now,
                )  # fmt: skip
            else:
                await events.record_booking_event(conn, booking.id, "confirmed", now=now)
    return Booked(booking, await _at_site(pool, office, booking), service, token)


@dataclass(frozen=True, slots=True)
class _ContactPlan:
    held: bool
    # Where the code goes (held bookings).
    channel: Channel
    notify_phone: bool
    notify_email: bool

    @property
    def action(self) -> str:
        return "hold" if self.held else "book"


async def _contact_plan(
    conn: asyncpg.Connection,
    citizen: CitizenDetails,
    service: Service,
    actor: Actor,
    secret_key: str,
    now: datetime,
    rules: Rules,
) -> _ContactPlan:
    """Whether the booking waits for a code, and which contacts may get its
    messages: all of them when staff typed them (the citizen is at the
    counter) or the service does not verify; otherwise only those proved by
    a code, now or within the last `verified_contact_days`."""
    # E-mail only: the code too goes to the address.
    phone = None if citizen.message_channel == "email" else citizen.phone
    channel = code_channel(phone, citizen.email)
    if actor.kind != "citizen" or not service.verify_contact:
        return _ContactPlan(False, channel, True, True)
    phone_ok, email_ok = await verification.proved(
        conn,
        citizen.phone,
        citizen.email,
        secret_key=secret_key,
        since=now - timedelta(days=rules.verified_contact_days),
    )
    held = not (phone_ok if channel == "sms" else email_ok)
    return _ContactPlan(held, channel, phone_ok, email_ok)


async def _insert(
    conn: asyncpg.Connection,
    office: Office,
    service: Service,
    taken: Slot,
    citizen: CitizenDetails,
    plan: _ContactPlan,
    token: str,
    secret_key: str,
    actor: Actor,
    now: datetime,
) -> Booking:
    for _ in range(_REFERENCE_TRIES):
        try:
            booking = await booking_store.insert(
                conn,
                booking_store.NewBooking(
                    reference=new_reference(office.reference_prefix),
                    office_id=office.id,
                    service_id=service.id,
                    slot_id=taken.id,
                    starts_at=taken.starts_at,
                    ends_at=taken.ends_at,
                    status=Status.HELD if plan.held else Status.CONFIRMED,
                    citizen_name=citizen.name,
                    phone=citizen.phone,
                    email=citizen.email,
                    language=citizen.language,
                    document_number=citizen.document_number,
                    manage_token_hash=hash_token(token, secret_key),
                    created_by=actor.kind if actor.id is None else f"staff:{actor.id}",
                    email_key=email_key(citizen.email) if citizen.email else None,
                    hold_expires_at=now + timedelta(minutes=service.hold_minutes)
                    if plan.held
                    else None,
                    notify_phone=plan.notify_phone,
                    notify_email=plan.notify_email,
                    message_channel=citizen.message_channel,
                ),
                now,
            )
        except asyncpg.UniqueViolationError:
            raise errors.already_booked() from None
        except asyncpg.CheckViolationError as exc:
            if draw_store.draw_only_refused(exc):
                raise errors.draw_only() from None
            contact = booking_store.household_cap_field(exc)
            if contact is None:
                raise
            raise household_cap(contact, office.household_cap) from None
        if booking is not None:
            return booking
    raise RuntimeError("could not draw a free reference")  # pragma: no cover - 30**6 per prefix


def household_cap(contact: str, cap: int) -> errors.Conflict:
    message = (
        Nn_(
            "This phone number already has %(count)s active appointment at this office, "
            "the most allowed. Cancel it first, or book at the counter.",
            "This phone number already has %(count)s active appointments at this office, "
            "the most allowed. Cancel one first, or book at the counter.",
        )
        if contact == "phone"
        else Nn_(
            "This email address already has %(count)s active appointment at this office, "
            "the most allowed. Cancel it first, or book at the counter.",
            "This email address already has %(count)s active appointments at this office, "
            "the most allowed. Cancel one first, or book at the counter.",
        )
    )
    field = (
        N_("This phone number has the most active appointments allowed at this office.")
        if contact == "phone"
        else N_("This email address has the most active appointments allowed at this office.")
    )
    return errors.Conflict(
        "household_cap", message, fields={contact: field}, params={"count": str(cap)}, count=cap
    )


def reschedule_limit() -> errors.Conflict:
    return errors.Conflict(
        "reschedule_limit",
        N_(
            "This appointment was already moved as many times as allowed. "
            "You can cancel it and book again, or ask the office."
        ),
    )


# Held bookings ----------------------------------------------------------------------


def hold_expired() -> errors.Conflict:
    return errors.Conflict(
        "hold_expired",
        N_("The time kept for you has run out and was released. Please book again."),
    )


def not_held() -> errors.Conflict:
    return errors.Conflict("not_held", N_("This appointment is not waiting for a code."))


def wrong_code(attempts_left: int) -> errors.ValidationFailed:
    return errors.ValidationFailed(
        {"code": N_("This code is not right. Check the last message we sent and try again.")},
        code="wrong_code",
        message=N_("This code is not right. Tries left: %(left)s."),
        params={"left": str(attempts_left)},
    )


def codes_exhausted() -> errors.Conflict:
    return errors.Conflict(
        "code_attempts_exhausted",
        N_("Too many wrong codes: the time kept for you was released. Please book again."),
    )


async def _expire(
    conn: asyncpg.Connection, booking: Booking, now: datetime, rules: Rules
) -> Booking:
    """End a hold in the caller's transaction: its seat is free again (for
    the waiting list first)."""
    return await _change_status(conn, booking, Status.EXPIRED, audit.SYSTEM, now, rules=rules)


async def release_expired_holds(
    conn: asyncpg.Connection,
    now: datetime,
    *,
    slot_id: int | None = None,
    office_id: str | None = None,
    service_id: str | None = None,
    rules: Rules = DEFAULT_RULES,
) -> int:
    """Expire the holds whose time is up (of a slot, an office's service, or
    all), each in its own short transaction like a cancellation, freeing its
    seat. Run by the worker's cron and before seats are read or taken, so a
    seat is never kept past its hold. Returns how many were released."""
    released = 0
    for booking_id in await booking_store.due_holds(
        conn, now, slot_id=slot_id, office_id=office_id, service_id=service_id
    ):
        async with conn.transaction():
            booking = await booking_store.lock_due_hold(conn, booking_id, now)
            if booking is not None:
                await _expire(conn, booking, now, rules)
                released += 1
    return released


async def _held(
    conn: asyncpg.Connection, reference: str, now: datetime, rules: Rules
) -> Booking | None:
    """The booking, locked, still waiting for its code; in the caller's
    transaction. A hold found past its time is expired on the spot (None:
    the caller commits that, then refuses with hold_expired)."""
    booking = await booking_store.lock(conn, reference)
    assert booking is not None
    if Status(booking.status) is Status.EXPIRED:
        raise hold_expired()
    if Status(booking.status) is not Status.HELD:
        raise not_held()
    if booking.hold_expires_at is not None and booking.hold_expires_at <= now:
        await _expire(conn, booking, now, rules)
        return None
    return booking


def _channel(text: str) -> Channel:
    return "sms" if text == "sms" else "email"


async def verify(
    pool: asyncpg.Pool,
    reference: str,
    token: str | None,
    code: object,
    secret_key: str,
    now: datetime,
    rules: Rules = DEFAULT_RULES,
) -> BookingContext:
    """Confirm a held booking with its code. Each wrong code uses one of the
    check's attempts (committed, then refused); the last wrong one releases
    the seat. The proved contact is remembered for later bookings."""
    async with pool.acquire() as conn:
        await authorise(conn, reference, token, secret_key)
        refusal: errors.Refusal | None = None
        async with conn.transaction():
            booking = await _held(conn, reference, now, rules)
            if booking is None:
                refusal = hold_expired()
            else:
                check = await verification.check_of(conn, booking.id)
                attempt = await verification.try_code(conn, booking.id, code, secret_key, now)
                if attempt.outcome is verification.Outcome.VERIFIED:
                    await _confirm(conn, booking, _channel(check.channel), secret_key, now)
                elif attempt.outcome is verification.Outcome.WRONG:
                    refusal = wrong_code(attempt.attempts_left)
                else:
                    await _expire(conn, booking, now, rules)
                    refusal = codes_exhausted()
        if refusal is not None:
            raise refusal
        confirmed = await booking_store.by_reference(conn, reference)
        assert confirmed is not None
        return await booking_context(conn, confirmed)


async def _confirm(
    conn: asyncpg.Connection, booking: Booking, channel: Channel, secret_key: str, now: datetime
) -> None:
    await booking_store.confirm_hold(conn, booking.id, channel, now)
    contact = booking.phone if channel == "sms" else booking.email
    assert contact is not None
    await verification.remember(conn, channel, contact, secret_key, now)
    await audit.record(
        conn, booking.id, audit.CITIZEN, "verify", Status.HELD, Status.CONFIRMED,
        {"channel": channel},
    )  # fmt: skip
    await events.record_booking_event(conn, booking.id, "confirmed", now=now)


@dataclass(frozen=True, slots=True)
class CodeState:
    """What the code page shows: where the code went, until when the seat
    is kept, and when another code may be asked for (None: no more)."""

    channel: Channel
    destination: str
    hold_expires_at: datetime
    attempts_left: int
    next_resend_at: datetime | None
    # The office's zone, in which the page and the API show the instants.
    timezone: str


def code_state_of(check: Check, destination: str, until: datetime, timezone: str) -> CodeState:
    """The code step's state, for a held booking or a pending draw request."""
    return CodeState(
        channel=_channel(check.channel),
        destination=destination,
        hold_expires_at=until,
        attempts_left=attempts_left(check.attempts),
        next_resend_at=next_resend_at(check.last_send_at, check.sends),
        timezone=timezone,
    )


async def code_state(conn: asyncpg.Connection, booking: Booking) -> CodeState:
    office = await office_store.get_office(conn, booking.office_id)
    assert office is not None
    check = await verification.check_of(conn, booking.id)
    destination = booking.phone if check.channel == "sms" else booking.email
    assert destination is not None and booking.hold_expires_at is not None
    return code_state_of(check, destination, booking.hold_expires_at, office.timezone)


async def resend(
    pool: asyncpg.Pool,
    reference: str,
    token: str | None,
    secret_key: str,
    now: datetime,
    rules: Rules = DEFAULT_RULES,
) -> CodeState:
    """Queue another code for a held booking: at most MAX_RESENDS, each after
    a longer wait, within the contact's daily budget of codes."""
    async with pool.acquire() as conn:
        await authorise(conn, reference, token, secret_key)
        async with conn.transaction():
            booking = await _held(conn, reference, now, rules)
            if booking is not None:
                await code_again(
                    conn, booking.id, booking.phone, booking.email, language=booking.language,
                    appointment_at=booking.starts_at, now=now, rules=rules,
                )  # fmt: skip
                return await code_state(conn, booking)
        raise hold_expired()


async def code_again(
    conn: asyncpg.Connection,
    owner: Owner,
    phone: str | None,
    email: str | None,
    *,
    language: str,
    appointment_at: datetime,
    now: datetime,
    rules: Rules,
) -> None:
    """Count a resend for the check of `owner` (a held booking, a pending
    draw request or subscription) and queue its code message, within the contact's budget."""
    check = await verification.ask_again(conn, owner, now)
    channel = _channel(check.channel)
    recipient = phone if channel == "sms" else email
    assert recipient is not None
    await verification.within_code_budget(conn, recipient, now, rules.codes_per_contact_per_day)
    await events.record_code(
        conn, owner, channel, recipient, language=language, appointment_at=appointment_at, now=now
    )


async def authorise(
    conn: asyncpg.Connection, reference: str, token: str | None, secret_key: str
) -> None:
    """Raise the same Unauthorized for a missing token, a wrong one and an
    unknown reference: the pair is the credential, and it does not open."""
    # The hash is keyed by the secret, so looking it up reveals nothing a
    # constant-time comparison would hide.
    if not token or not await booking_store.token_opens(
        conn, reference, hash_token(token, secret_key)
    ):
        raise errors.manage_link_refused()


async def booking_context(conn: asyncpg.Connection, booking: Booking) -> BookingContext:
    office, service = await office_and_service(conn, booking.office_id, booking.service_id)
    site, mobile_day = await mobile_day_store.site_of(conn, office, booking.slot_id)
    return BookingContext(booking, site, service, mobile_day)


async def _at_site(pool: asyncpg.Pool, office: Office, booking: Booking) -> Office:
    async with pool.acquire() as conn:
        return await mobile_day_store.at_site(conn, office, booking.slot_id)


async def view(
    pool: asyncpg.Pool, reference: str, token: str | None, secret_key: str
) -> BookingContext:
    async with pool.acquire() as conn:
        await authorise(conn, reference, token, secret_key)
        booking = await booking_store.by_reference(conn, reference)
        assert booking is not None
        ctx = await booking_context(conn, booking)
        if await whatsapp_opted_out(conn, booking.phone, secret_key):
            ctx = replace(ctx, whatsapp_opted_out=True)
        return ctx


async def whatsapp_opted_out(conn: asyncpg.Connection, phone: str | None, secret_key: str) -> bool:
    """Whether `phone` asked for no more WhatsApp messages (STOP)."""
    if phone is None:
        return False
    return await outbox.whatsapp_opted_out(conn, contact_hash("whatsapp", phone, secret_key))


async def checked_channel(
    conn: asyncpg.Connection,
    raw: object,
    phone: str | None,
    email: str | None,
    secret_key: str,
) -> MessageChannel:
    """A channel chosen again for contacts given before (a booking's, a
    draw request's): one they can serve, and not WhatsApp for a number
    that asked for no more."""
    problems: dict[str, str] = {}
    chosen = message_channel(raw, phone, email, problems)
    if problems:
        # The contacts are fixed here: the choice is at fault.
        raise errors.ValidationFailed({"channel": next(iter(problems.values()))})
    if chosen == "whatsapp" and await whatsapp_opted_out(conn, phone, secret_key):
        raise whatsapp_stopped()
    return chosen


def whatsapp_stopped() -> errors.ValidationFailed:
    return errors.ValidationFailed(
        {
            "channel": N_(
                "This number asked us to send no more WhatsApp messages (STOP). "
                "To get them again, send START to our WhatsApp number, "
                "or choose SMS or e-mail only."
            )
        }
    )


async def cancel(
    pool: asyncpg.Pool,
    reference: str,
    token: str | None,
    secret_key: str,
    now: datetime,
    rules: Rules = DEFAULT_RULES,
) -> BookingContext:
    """A citizen cancels, any time before the appointment starts; the seat
    goes to the waiting list first."""
    async with pool.acquire() as conn:
        await authorise(conn, reference, token, secret_key)
        async with conn.transaction():
            booking = await _lock_active(conn, reference)
            if not can_cancel(now, booking.starts_at):
                raise errors.too_late()
            changed = await _change_status(
                conn, booking, Status.CANCELLED, audit.CITIZEN, now,
                event="cancelled_by_citizen", rules=rules,
            )  # fmt: skip
        return await booking_context(conn, changed)


async def _lock_active(conn: asyncpg.Connection, reference: str) -> Booking:
    """The booking a citizen's authorised request names, locked, while it is
    still held or confirmed."""
    booking = await booking_store.lock(conn, reference)
    assert booking is not None  # authorise() found it
    if Status(booking.status) not in (Status.HELD, Status.CONFIRMED):
        raise errors.not_active()
    return booking


async def change_channel(
    pool: asyncpg.Pool,
    reference: str,
    token: str | None,
    secret_key: str,
    channel: object,
    now: datetime,
) -> BookingContext:
    """A citizen changes where their phone messages go (SMS, WhatsApp, or
    e-mail only). The messages still waiting for the phone follow the
    choice: they go by the new channel, or, for e-mail only, not at all."""
    async with pool.acquire() as conn:
        await authorise(conn, reference, token, secret_key)
        async with conn.transaction():
            booking = await _lock_active(conn, reference)
            chosen = await checked_channel(conn, channel, booking.phone, booking.email, secret_key)
            if chosen != booking.message_channel or booking.message_channel_reason is not None:
                # The citizen's own choice, even of the channel the service
                # moved them to: the reason for the move is done with.
                await booking_store.set_message_channel(conn, booking.id, chosen, now)
            if chosen != booking.message_channel:
                await outbox.follow_channel(conn, booking.id, chosen, now)
                await audit.record(
                    conn, booking.id, audit.CITIZEN, "channel", booking.status, booking.status,
                    {"from": booking.message_channel, "to": chosen},
                )  # fmt: skip
            changed = await booking_store.by_reference(conn, reference)
            assert changed is not None
        return await booking_context(conn, changed)


async def reschedule(
    pool: asyncpg.Pool,
    reference: str,
    token: str | None,
    secret_key: str,
    new_slot_id: int,
    now: datetime,
    actor: Actor = audit.CITIZEN,
    rules: Rules = DEFAULT_RULES,
    site: int | Literal["same"] | None = "same",
) -> BookingContext:
    """Take the new seat and free the old one in one transaction, or change
    nothing. A citizen may move a booking `rules.reschedule_limit` times;
    staff are not counted. The new time is at the booking's own site (the
    office, or the mobile day it is held at) unless another was chosen:
    `site` None for the office's own times, or a mobile day's id; a slot
    elsewhere is not found."""
    async with pool.acquire() as conn:
        if actor.kind == "citizen":
            await authorise(conn, reference, token, secret_key)
        await release_expired_holds(conn, now, slot_id=new_slot_id, rules=rules)
        async with conn.transaction():
            booking = await booking_store.lock(conn, reference)
            if booking is None:
                raise errors.NotFound()
            office, service = await office_and_service(conn, booking.office_id, booking.service_id)
            if Status(booking.status) is not Status.CONFIRMED:
                raise errors.not_active()
            if not can_reschedule(now, booking.starts_at, service.reschedule_cutoff_minutes):
                raise errors.too_late()
            if service.allocation_mode == "draw":
                # Said before any seat is looked at; the trigger refuses the
                # move too, should the mode change under this transaction.
                raise errors.draw_only_move()
            if new_slot_id == booking.slot_id:
                raise errors.ValidationFailed(
                    {"slot_id": errors.N_("Choose a time other than your current one.")}
                )
            if actor.kind == "citizen" and not await booking_store.count_citizen_reschedule(
                conn, booking.id, rules.reschedule_limit
            ):
                raise reschedule_limit()
            await slot_store.lock_for_move(conn, [booking.slot_id, new_slot_id])
            if not await _at_chosen_site(conn, booking.slot_id, new_slot_id, site):
                raise errors.slot_not_found()
            taken = await _take_seat_guarded(conn, new_slot_id, service, now)
            await slot_store.release_seat(conn, booking)
            try:
                moved = await booking_store.move(
                    conn, booking.id, taken.id, taken.starts_at, taken.ends_at, now
                )
            except asyncpg.CheckViolationError as exc:
                if not draw_store.draw_only_refused(exc):
                    raise
                raise errors.draw_only_move() from None
            await audit.record(
                conn,
                booking.id,
                actor,
                "reschedule",
                booking.status,
                moved.status,
                {"from": booking.starts_at.isoformat(), "to": moved.starts_at.isoformat()},
            )
            await events.record_booking_event(conn, booking.id, "rescheduled", now=now)
            # The seat it left goes to the waiting list first, like a cancelled one.
            await offers.seat_freed(conn, booking, Status.CONFIRMED, now, rules.waitlist)
        moved_site, mobile_day = await mobile_day_store.site_of(conn, office, moved.slot_id)
        return BookingContext(moved, moved_site, service, mobile_day)


async def _at_chosen_site(
    conn: asyncpg.Connection, old_slot_id: int, new_slot_id: int, site: int | str | None
) -> bool:
    """Whether the new slot is at the site a move asks for ("same": the old
    slot's)."""
    old = await slot_store.get_slot(conn, old_slot_id)
    new = await slot_store.get_slot(conn, new_slot_id)
    assert old is not None
    return new is not None and new.mobile_day_id == (old.mobile_day_id if site == "same" else site)


async def _change_status(
    conn: asyncpg.Connection,
    booking: Booking,
    target: Status,
    actor: Actor,
    now: datetime,
    *,
    event: str | None = None,
    reason: str | None = None,
    rules: Rules = DEFAULT_RULES,
) -> Booking:
    current = Status(booking.status)
    if not can_transition(current, target):
        raise errors.Conflict(
            "bad_transition", errors.N_("This change is not possible for this appointment.")
        )
    if frees_seat(current, target):
        await slot_store.release_seat(conn, booking)
    elif takes_seat(current, target):
        # no_show -> checked_in: the citizen came late. Their seat is free
        # unless capacity was lowered since; never oversell to undo.
        try:
            async with conn.transaction():
                retaken = await slot_store.retake_seat(conn, booking)
        except asyncpg.CheckViolationError as exc:
            if not slot_store.oversell_refused(exc):
                raise
            retaken = False
        if not retaken:
            raise errors.slot_full()
    try:
        await booking_store.set_status(conn, booking.id, target, now, reason)
    except asyncpg.UniqueViolationError:
        # Undoing a no-show after the citizen booked the service again.
        raise errors.already_booked() from None
    await audit.record(
        conn,
        booking.id,
        actor,
        target.value,
        current.value,
        target.value,
        {"reason": reason} if reason else None,
    )
    if event is not None:
        await events.record_booking_event(conn, booking.id, event, now=now, reason=reason)
    if frees_seat(current, target):
        # After the booking left it: the seat goes to the waiting list first.
        await offers.seat_freed(conn, booking, target, now, rules.waitlist)
    changed = await booking_store.by_reference(conn, booking.reference)
    assert changed is not None
    return changed


async def end_hold(
    conn: asyncpg.Connection,
    booking: Booking,
    target: Status,
    actor: Actor,
    now: datetime,
    rules: Rules = DEFAULT_RULES,
) -> Booking:
    """End a held booking (expired or cancelled) in the caller's transaction,
    freeing its seat: for the offers, which are held bookings."""
    return await _change_status(conn, booking, target, actor, now, rules=rules)


async def set_status_by_office(
    conn: asyncpg.Connection,
    reference: str,
    office_id: str,
    target: Status,
    actor: Actor,
    now: datetime,
    reason: str | None = None,
    feedback_delay: timedelta = feedback.DEFAULT_DELAY,
    rules: Rules = DEFAULT_RULES,
) -> Booking:
    """Check-in, done, no-show or cancellation by staff; caller owns no transaction.
    Refused with the reason when staff may not do it now (action_refusal).
    Done asks the citizen for their feedback `feedback_delay` later."""
    async with conn.transaction():
        booking = await booking_store.lock(conn, reference)
        office = await office_store.get_office(conn, office_id)
        if booking is None or office is None or booking.office_id != office_id:
            raise errors.NotFound()
        current = Status(booking.status)
        refused = action_refusal(target, current, booking.starts_at, now, office.zone)
        if refused is not None:
            raise refused
        event = "cancelled_by_office" if target is Status.CANCELLED else None
        changed = await _change_status(
            conn, booking, target, actor, now, event=event, reason=reason, rules=rules
        )
        if target is Status.DONE:
            await events.record_feedback_request(conn, booking.id, now=now, delay=feedback_delay)
        return changed
