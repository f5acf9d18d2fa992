"""Fair allocation, the use cases: a service's mode, request windows, a
citizen's (or staff's) request, the draw at the close, offers and their
confirmation, and the waiting list that takes every freed seat.

An offer is a held booking (created_by 'draw') whose hold ends at the
offer's expiry (service.offers): it takes its seat through the same guarded
statement as any booking, the worker's hold sweep frees it when it lapses,
and its message is an outbox row like any other. The database refuses any
other booking of a draw service (migration 0050), so a freed seat can only
go to the list.

An entry without a window is a place on an instant service's waiting list
(service.waitlist): its receipt, code step, withdrawal and offer page are
the ones here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from service import bookings, offers, verification
from service.domain import draw as rules
from service.domain import errors
from service.domain.booking import (
    Status,
    hash_token,
    new_manage_token,
    token_matches,
)
from service.domain.calendar import local_date, local_day_bounds
from service.domain.errors import N_
from service.domain.messages import (
    DRAW_NOT_SERVED,
    DRAW_OFFER,
    ENTRY_RECEIVED,
    PlannedMessage,
    contact_channels,
)
from service.domain.models import Office, Service
from service.domain.validation import CitizenDetails, RawDetails
from service.domain.verification import Channel, code_channel, contact_hash
from service.notify import events
from service.store import audit, outbox
from service.store import bookings as booking_store
from service.store import draws as store
from service.store import offices as office_store
from service.store import slots as slot_store
from service.store.audit import Actor
from service.store.draws import Window

DRAW_CREATOR = "draw"
RULE = "ranking = entry ids sorted by SHA-256(seed_bytes || entry_id_utf8) as hex, ascending"
# An offer is not made for a slot starting sooner than this: the citizen
# needs time to see the message and come.
OFFER_LEAD = timedelta(hours=24)


def window_closed() -> errors.Conflict:
    return errors.Conflict("window_closed", N_("This request window is not open."))


def already_requested() -> errors.Conflict:
    return errors.Conflict(
        "already_requested",
        N_(
            "There is already a request for this person, phone number or email address "
            "in this window."
        ),
    )


def request_lapsed() -> errors.Conflict:
    return errors.Conflict(
        "request_lapsed",
        N_("This request was not confirmed in time and is not in the draw. Please ask again."),
    )


def already_waiting() -> errors.Conflict:
    return errors.Conflict(
        "already_waiting",
        N_(
            "This person, phone number or email address is already on the waiting list "
            "of this service."
        ),
    )


def not_withdrawable() -> errors.Conflict:
    return errors.Conflict(
        "not_withdrawable",
        N_("This request can no longer be withdrawn: answer the offer instead."),
    )


def window_not_found() -> errors.NotFound:
    return errors.NotFound("draw_not_found", N_("This draw does not exist."))


def offer_not_open() -> errors.Conflict:
    return errors.Conflict("offer_not_open", N_("This offer is no longer open."))


def _document_hash(document: str, secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), f"document:{document}".encode(), hashlib.sha256).digest()


# Modes and windows -------------------------------------------------------------------


async def set_mode(
    pool: asyncpg.Pool, office_id: str, service_id: str, raw: object, now: datetime
) -> rules.Mode:
    """Set a service's mode. Back to instant only once no window's period
    is still ahead: its seats belong to the draw and its waiting list."""
    mode = rules.parse_mode(raw)
    async with pool.acquire() as conn, conn.transaction():
        if await store.mode_of(conn, office_id, service_id) is None:
            raise errors.service_not_found()
        if mode is rules.Mode.INSTANT and await store.overlapping(
            conn, office_id, service_id, now, datetime.max.replace(tzinfo=now.tzinfo)
        ):
            raise errors.Conflict(
                "draw_ahead",
                N_("A window of this service still has days ahead; its seats stay with the draw."),
            )
        await store.set_mode(conn, office_id, service_id, mode)
    return mode


async def open_window(
    pool: asyncpg.Pool,
    office_id: str,
    service_id: str,
    plan: rules.WindowPlan,
    *,
    created_by: str,
    now: datetime,
) -> Window:
    """Open a window (the service must be in draw mode); its seed is drawn
    now and only the seed's hash is public until the draw."""
    async with pool.acquire() as conn, conn.transaction():
        office = await office_store.get_office(conn, office_id)
        if office is None:
            raise errors.office_not_found()
        mode = await store.mode_of(conn, office_id, service_id)
        if mode is None:
            raise errors.service_not_found()
        if mode is not rules.Mode.DRAW:
            raise errors.Conflict(
                "not_draw_mode", N_("Set this service to allocate by draw before opening a window.")
            )
        zone = ZoneInfo(office.timezone)
        period_start, _ = local_day_bounds(plan.first_day, zone)
        _, period_end = local_day_bounds(plan.last_day, zone)
        rules.check_window(plan, now, period_start)
        if await store.overlapping(conn, office_id, service_id, period_start, period_end):
            raise errors.Conflict(
                "window_overlaps", N_("Another window already covers some of these days.")
            )
        seed = rules.new_seed()
        return await store.insert_window(
            conn,
            office_id=office_id,
            service_id=service_id,
            opens_at=max(plan.opens_at, now),
            closes_at=plan.closes_at,
            first_day=plan.first_day,
            last_day=plan.last_day,
            period_start=period_start,
            period_end=period_end,
            seed=seed,
            seed_sha256=rules.seed_sha256(seed),
            created_by=created_by,
            now=now,
        )


# Requests ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Receipt:
    entry_id: str
    # None: a place on the waiting list of an instant service.
    window: Window | None
    # The receipt's link (/r/{entry}/{token}); shown once, stored hashed.
    token: str = ""
    # The request waits for the code sent to its contact.
    pending: bool = False


receipt_url = rules.receipt_url


async def request(
    pool: asyncpg.Pool,
    window_id: int,
    details: RawDetails,
    days: list[date],
    parts: list[str],
    *,
    secret_key: str,
    now: datetime,
    actor: Actor = audit.CITIZEN,
    rules_: bookings.Rules = bookings.DEFAULT_RULES,
    office_id: str | None = None,
    service_id: str | None = None,
    admit: bookings.Admit = None,
) -> Receipt:
    """One request in an open window. A citizen's counts once its contact is
    proved by a code, as a held booking's is (now, or within the last
    `verified_contact_days`): until then it waits, and lapses with its code's
    time. Staff's (counter, phone) is typed for someone present. The time of
    arrival is recorded for the trigger that refuses late entries, and for
    nothing else. `admit` is asked once the request is found well-formed."""
    async with pool.acquire() as conn:
        window = await store.get_window(conn, window_id)
        if window is None or (office_id, service_id) not in (
            (None, None),
            (window.office_id, window.service_id),
        ):
            raise window_not_found()
        office = await office_store.get_office(conn, window.office_id)
        service = await office_store.get_service(conn, window.office_id, window.service_id)
    assert office is not None and service is not None
    # Any day of the period: the form offers only those with times, but
    # a day whose times are opened later must not refuse a request. Every
    # field at fault comes back at once, details and days alike.
    citizen, wish = rules.check_entry(
        details, service, office, days, parts, rules.period_days(window.first_day, window.last_day)
    )
    if admit is not None:
        await admit()
    # A window closed meanwhile refuses the entry itself (the late-entry
    # trigger), so nothing read above needs the writes' transaction.
    async with pool.acquire() as conn, conn.transaction():
        # Requests whose code did not come back free their identity first.
        await store.lapse_pending(conn, window.id, now)
        entry_id, token, pending = await file_entry(
            conn, service, window.id, citizen, wish, actor=actor, secret_key=secret_key,
            now=now, rules_=rules_, waits_until=window.closes_at,
        )  # fmt: skip
        return Receipt(entry_id, window, token, pending)


async def file_entry(
    conn: asyncpg.Connection,
    service: Service,
    window_id: int | None,
    citizen: CitizenDetails,
    wish: rules.Wish,
    *,
    actor: Actor,
    secret_key: str,
    now: datetime,
    rules_: bookings.Rules,
    waits_until: datetime,
) -> tuple[str, str, bool]:
    """Write an entry, in a window (`window_id`) or on the service's waiting
    list (None), in the caller's transaction: (its id, its receipt's token,
    whether it waits for a code). A citizen's counts once its contact is
    proved by a code, as a held booking's is (now, or within the last
    `verified_contact_days`): until then it waits for the code, at most
    until `waits_until`. Staff's (counter, phone) is typed for someone
    present. The database refuses a second entry of one identity."""
    # E-mail only: the code too goes to the address.
    phone = None if citizen.message_channel == "email" else citizen.phone
    channel = code_channel(phone, citizen.email)
    pending_until = None
    if actor.kind == "citizen":
        phone_ok, email_ok = await verification.proved(
            conn,
            citizen.phone,
            citizen.email,
            secret_key=secret_key,
            since=now - timedelta(days=rules_.verified_contact_days),
        )
        if not (phone_ok if channel == "sms" else email_ok):
            pending_until = min(now + timedelta(minutes=service.hold_minutes), waits_until)
    entry_id = rules.new_entry_id()
    token = new_manage_token()
    new = store.NewEntry(
        id=entry_id,
        window_id=window_id,
        office_id=service.office_id,
        service_id=service.id,
        document_hash=_document_hash(citizen.document_number, secret_key)
        if citizen.document_number
        else None,
        phone_hash=contact_hash("sms", citizen.phone, secret_key) if citizen.phone else None,
        email_hash=contact_hash("email", citizen.email, secret_key) if citizen.email else None,
        citizen_name=citizen.name,
        phone=citizen.phone,
        email=citizen.email,
        language=citizen.language,
        document_number=citizen.document_number,
        days=sorted(wish.days),
        parts=sorted(wish.parts),
        created_by=actor.kind if actor.id is None else f"staff:{actor.id}",
        pending_until=pending_until,
        token_hash=hash_token(token, secret_key),
        message_channel=citizen.message_channel,
    )
    try:
        async with conn.transaction():
            await store.insert_entry(conn, new, now)
            if pending_until is None:
                await _tell_received(
                    conn, entry_id, citizen.phone, citizen.email, citizen.message_channel,
                    citizen.language, waits_until, now,
                )  # fmt: skip
            else:
                recipient = phone if channel == "sms" else citizen.email
                assert recipient is not None
                await verification.within_code_budget(
                    conn, recipient, now, rules_.codes_per_contact_per_day
                )
                await verification.open_check(conn, entry_id, channel, now)
                await events.record_code(
                    conn, entry_id, channel, recipient, language=citizen.language,
                    appointment_at=waits_until, now=now,
                )  # fmt: skip
    except asyncpg.UniqueViolationError as exc:
        if store.constraint_of(exc) in store.ONE_PER_IDENTITY:
            raise already_requested() from None
        if store.constraint_of(exc) in store.ONE_ON_LIST:
            raise already_waiting() from None
        raise
    except asyncpg.CheckViolationError as exc:
        if store.constraint_of(exc) == store.WINDOW_CLOSED:
            raise window_closed() from None
        if store.constraint_of(exc) == store.INSTANT_ONLY:
            raise errors.service_not_found() from None
        raise
    return entry_id, token, pending_until is not None


@dataclass(frozen=True, slots=True)
class RequestForm:
    office: Office
    service: Service
    # Windows taking requests now, and the drawn ones whose record is public.
    windows: list[Window]
    drawn: list[Window]
    # The days a request to the first open window may name (window_days).
    days: list[date]


async def window_days(conn: asyncpg.Connection, window: Window, office: Office) -> list[date]:
    """The days of a window's period the request form offers: those with
    times of its service at the office (a request naming only a holiday or a
    weekend could never get a seat); while none are opened yet, every day."""
    slots = await slot_store.slots_between(
        conn, window.office_id, window.service_id, window.period_start, window.period_end
    )
    if not slots:
        return rules.period_days(window.first_day, window.last_day)
    return sorted({local_date(slot.starts_at, office.zone) for slot in slots})


async def request_form(
    pool: asyncpg.Pool, office_id: str, service_id: str, now: datetime
) -> RequestForm:
    async with pool.acquire() as conn:
        office = await office_store.get_office(conn, office_id)
        if office is None:
            raise errors.office_not_found()
        service = await office_store.get_service(conn, office_id, service_id)
        if service is None:
            raise errors.service_not_found()
        windows = await store.open_windows(conn, office_id, service_id, now)
        drawn = [
            w
            for w in await store.windows_of(conn, office_id)
            if w.service_id == service_id and w.state == rules.WindowState.DRAWN
        ]
        days = await window_days(conn, windows[0], office) if windows else []
        return RequestForm(office, service, windows, drawn[:3], days)


@dataclass(frozen=True, slots=True)
class ServiceDraws:
    """A service's mode and its windows, each with its counted entries."""

    office: Office
    service: Service
    mode: rules.Mode
    windows: list[tuple[Window, int]]


async def service_draws(pool: asyncpg.Pool, office_id: str, service_id: str) -> ServiceDraws:
    async with pool.acquire() as conn:
        office = await office_store.get_office(conn, office_id)
        if office is None:
            raise errors.office_not_found()
        service = await office_store.get_service(conn, office_id, service_id)
        mode = await store.mode_of(conn, office_id, service_id)
        if service is None or mode is None:
            raise errors.service_not_found()
        windows = [w for w in await store.windows_of(conn, office_id) if w.service_id == service_id]
        counts = await store.count_entries(conn, [w.id for w in windows])
        return ServiceDraws(office, service, mode, [(w, counts.get(w.id, 0)) for w in windows])


# A request's own page: the receipt, its code step, withdrawing -----------------------


@dataclass(frozen=True, slots=True)
class Request:
    """A draw's request, or a place on an instant service's waiting list
    (no window): the same receipt, code step and withdrawal."""

    entry: store.Entry
    window: Window | None
    office: Office
    service: Service
    # While its contact is unproved: where the code went and what is left.
    code: bookings.CodeState | None
    # Its number asked for no more WhatsApp messages (STOP).
    whatsapp_opted_out: bool = False


async def _authorised_entry(
    conn: asyncpg.Connection, entry_id: str, token: str | None, secret_key: str
) -> store.Entry:
    """The entry, locked, if the token opens it; the same refusal for an
    unknown id and a wrong token."""
    entry = None
    if rules.is_entry_id(entry_id):
        entry = await store.get_entry(conn, entry_id, lock=True)
    if entry is None or not token:
        raise errors.manage_link_refused()
    # The receipt's own token, or one a message of the request carried.
    shown = entry.token_hash is not None and token_matches(token, entry.token_hash, secret_key)
    if not shown and not await store.token_opens(conn, entry.id, hash_token(token, secret_key)):
        raise errors.manage_link_refused()
    return entry


async def _request_of(conn: asyncpg.Connection, entry: store.Entry) -> Request:
    window = None
    if entry.window_id is not None:
        window = await store.get_window(conn, entry.window_id)
        assert window is not None
    office = await office_store.get_office(conn, entry.office_id)
    service = await office_store.get_service(conn, entry.office_id, entry.service_id)
    assert office is not None and service is not None
    code = None
    if entry.verified_at is None and entry.outcome == rules.Outcome.WAITING:
        assert entry.pending_until is not None
        check = await verification.check_of(conn, entry.id)
        destination = entry.phone if check.channel == "sms" else entry.email
        assert destination is not None
        code = bookings.code_state_of(check, destination, entry.pending_until, office.timezone)
    return Request(entry, window, office, service, code)


async def view_request(
    pool: asyncpg.Pool, entry_id: str, token: str | None, secret_key: str, now: datetime
) -> Request:
    async with pool.acquire() as conn, conn.transaction():
        entry = await _authorised_entry(conn, entry_id, token, secret_key)
        if await _lapse_pending(conn, entry, now):
            entry = await _authorised_entry(conn, entry_id, token, secret_key)
        req = await _request_of(conn, entry)
        if await bookings.whatsapp_opted_out(conn, entry.phone, secret_key):
            req = replace(req, whatsapp_opted_out=True)
        return req


async def change_channel(
    pool: asyncpg.Pool, entry_id: str, token: str | None, channel: object, secret_key: str,
    now: datetime,
) -> None:  # fmt: skip
    """A request on the list changes where its phone messages go (SMS,
    WhatsApp, or e-mail only), as a booking does; its messages still
    waiting follow."""
    async with pool.acquire() as conn, conn.transaction():
        entry = await _authorised_entry(conn, entry_id, token, secret_key)
        if entry.outcome != rules.Outcome.WAITING:
            raise not_withdrawable()
        chosen = await bookings.checked_channel(conn, channel, entry.phone, entry.email, secret_key)
        if chosen != entry.message_channel or entry.message_channel_reason is not None:
            await store.set_message_channel(conn, entry.id, chosen, None)
        if chosen != entry.message_channel:
            await outbox.follow_channel(conn, entry.id, chosen, now)


async def _lapse_pending(conn: asyncpg.Connection, entry: store.Entry, now: datetime) -> int:
    """Lapse the entries of `entry`'s window, or of its waiting list, that
    no longer ask (a code not back in time; on a list, days past)."""
    if entry.window_id is None:
        return await store.lapse_waitlist(conn, now, entry.office_id, entry.service_id)
    return await store.lapse_pending(conn, entry.window_id, now)


async def verify_request(
    pool: asyncpg.Pool,
    entry_id: str,
    token: str | None,
    code: object,
    secret_key: str,
    now: datetime,
) -> Request:
    """Prove a request's contact with its code, as a held booking's: each
    wrong code uses an attempt (committed, then refused); the last wrong one,
    or the code's time running out, lapses the request. The proved contact
    is remembered for later requests and bookings."""
    async with pool.acquire() as conn:
        refusal: errors.Refusal | None = None
        async with conn.transaction():
            entry = await _authorised_entry(conn, entry_id, token, secret_key)
            # Shared with the draw's lock: no entry is proved while it closes.
            window = None
            if entry.window_id is not None:
                window = await store.get_window(conn, entry.window_id, share=True)
                assert window is not None
            assert entry.pending_until is not None
            if entry.verified_at is not None:
                return await _request_of(conn, entry)
            if entry.outcome != rules.Outcome.WAITING:
                raise request_lapsed()
            if window is not None and (
                window.state != rules.WindowState.OPEN or window.closes_at <= now
            ):
                raise window_closed()
            if entry.pending_until <= now:
                await _lapse_pending(conn, entry, now)
                refusal = request_lapsed()
            else:
                check = await verification.check_of(conn, entry.id)
                attempt = await verification.try_code(conn, entry.id, code, secret_key, now)
                if attempt.outcome is verification.Outcome.VERIFIED:
                    await store.mark_verified(conn, entry.id, now)
                    contact = entry.phone if check.channel == "sms" else entry.email
                    assert contact is not None
                    channel: Channel = "sms" if check.channel == "sms" else "email"
                    await verification.remember(conn, channel, contact, secret_key, now)
                    # A request's receipt is worth sending until its draw,
                    # whose own message says what came of it; a place on a
                    # list's until its last day.
                    until = window.closes_at if window is not None else end_of(entry.wish.days)
                    await _tell_received(
                        conn, entry.id, entry.phone, entry.email, entry.message_channel,
                        entry.language, until, now,
                    )  # fmt: skip
                elif attempt.outcome is verification.Outcome.WRONG:
                    refusal = bookings.wrong_code(attempt.attempts_left)
                else:
                    await store.set_outcome(
                        conn, entry.id, rules.Outcome.WAITING, rules.Outcome.LAPSED
                    )
                    refusal = request_lapsed()
        if refusal is not None:
            raise refusal
        async with conn.transaction():
            entry = await _authorised_entry(conn, entry_id, token, secret_key)
            return await _request_of(conn, entry)


async def resend_request_code(
    pool: asyncpg.Pool,
    entry_id: str,
    token: str | None,
    secret_key: str,
    now: datetime,
    rules_: bookings.Rules = bookings.DEFAULT_RULES,
) -> None:
    """Another code for a pending request, under the held booking's limits."""
    async with pool.acquire() as conn, conn.transaction():
        entry = await _authorised_entry(conn, entry_id, token, secret_key)
        window = None
        if entry.window_id is not None:
            window = await store.get_window(conn, entry.window_id)
            assert window is not None
        assert entry.pending_until is not None
        if entry.verified_at is not None or entry.outcome != rules.Outcome.WAITING:
            raise bookings.not_held()
        if entry.pending_until <= now or (window is not None and window.closes_at <= now):
            raise request_lapsed()
        await bookings.code_again(
            conn, entry.id, entry.phone, entry.email, language=entry.language,
            appointment_at=window.closes_at if window else entry.pending_until, now=now,
            rules=rules_,
        )  # fmt: skip


async def withdraw(
    pool: asyncpg.Pool, entry_id: str, token: str | None, secret_key: str
) -> Request:
    """Leave the draw, or after it the waiting list. An open offer is
    answered on its own page (declining passes the seat on)."""
    async with pool.acquire() as conn, conn.transaction():
        entry = await _authorised_entry(conn, entry_id, token, secret_key)
        if entry.outcome != rules.Outcome.WITHDRAWN:
            if entry.outcome != rules.Outcome.WAITING:
                raise not_withdrawable()
            await store.set_outcome(conn, entry.id, rules.Outcome.WAITING, rules.Outcome.WITHDRAWN)
        entry = await _authorised_entry(conn, entry_id, token, secret_key)
        return await _request_of(conn, entry)


# The draw and the waiting list --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tick:
    drawn: int
    offers: int
    lapsed: int


async def tick(
    pool: asyncpg.Pool,
    now: datetime,
    *,
    offer_hours: int,
    secret_key: str,
    rules_: bookings.Rules = bookings.DEFAULT_RULES,
) -> Tick:
    """The worker's cron: draw the windows that closed, end the offers that
    lapsed, and offer every free seat of a drawn window to its waiting list
    in drawn order; entries of instant services' waiting lists that no
    longer ask lapse. Idempotent: running it twice changes nothing more."""
    drawn = made = 0
    async with pool.acquire() as conn:
        for window_id in await store.due_windows(conn, now):
            async with conn.transaction():
                if await _draw(conn, window_id, now):
                    drawn += 1
        lapsed = await _end_lapsed_offers(conn, now, rules_)
        for window_id in await store.drawn_windows(conn, now):
            async with conn.transaction():
                made += await _offer_free_seats(conn, window_id, now, offer_hours)
                await _tell_not_served(conn, window_id, now)
        await store.lapse_waitlist(conn, now)
    return Tick(drawn, made, lapsed)


def end_of(days: Iterable[date]) -> datetime:
    """Past the last of `days` in every zone (UTC-12 included)."""
    return datetime.combine(max(days) + timedelta(days=2), time(), UTC)


async def _tell_received(
    conn: asyncpg.Connection,
    entry_id: str,
    phone: str | None,
    email: str | None,
    message_channel: str,
    language: str,
    until: datetime,
    now: datetime,
) -> None:
    """Once an entry counts (its contact proved, or typed by staff): its
    receipt's link, so that the citizen can see it, withdraw it or leave
    the list without the page they may have closed; sent until `until`."""
    planned = [
        PlannedMessage(ENTRY_RECEIVED, channel, to, now, until)
        for channel, to in contact_channels(phone, email, message_channel)
    ]
    await outbox.add_planned(conn, entry_id, language=language, planned=planned, now=now)


async def _tell_not_served(conn: asyncpg.Connection, window_id: int, now: datetime) -> None:
    """Once per window, after its first offers: each entry the draw did not
    serve hears that it stays on the waiting list, and at which place."""
    window = await store.get_window(conn, window_id, lock=True)
    assert window is not None
    if not await store.mark_told(conn, window.id, now):
        return
    for entry in await store.waiting(conn, window.id):
        assert entry.position is not None
        place = str(entry.position + 1)
        planned = [
            PlannedMessage(DRAW_NOT_SERVED, channel, to, now, window.period_end, None, place)
            for channel, to in contact_channels(entry.phone, entry.email, entry.message_channel)
        ]
        await outbox.add_planned(conn, entry.id, language=entry.language, planned=planned, now=now)


async def _draw(conn: asyncpg.Connection, window_id: int, now: datetime) -> bool:
    window = await store.get_window(conn, window_id, lock=True)
    if window is None or window.state == rules.WindowState.DRAWN or window.closes_at > now:
        return False
    # Requests still waiting for their code at the close stay out of it.
    await store.lapse_pending(conn, window.id)
    ids = await store.entry_ids(conn, window.id)
    if window.state == rules.WindowState.OPEN:
        await store.close(conn, window.id, rules.entries_sha256(ids), now)
    await store.set_positions(conn, window.id, rules.ranking(window.seed, ids), now)
    return True


async def _end_lapsed_offers(
    conn: asyncpg.Connection, now: datetime, rules_: bookings.Rules
) -> int:
    """Offers past their time: their held booking expires (its seat frees
    for the next entry) and the entry's outcome says so; offers whose
    booking was cancelled meanwhile count as declined."""
    await bookings.release_expired_holds(conn, now, rules=rules_)
    ended = 0
    for entry_id in await store.lapsed_offers(conn, now):
        async with conn.transaction():
            entry = await store.get_entry(conn, entry_id, lock=True)
            if entry is None or entry.outcome != rules.Outcome.OFFERED or entry.booking_id is None:
                continue
            reference = await store.booking_reference(conn, entry.booking_id)
            booking = await booking_store.by_reference(conn, reference) if reference else None
            if booking is not None and booking.status == Status.HELD:
                await bookings.end_hold(
                    conn, booking, Status.EXPIRED, audit.SYSTEM, now, rules=rules_
                )
            outcome = rules.Outcome.EXPIRED
            if booking is not None and booking.status == Status.CANCELLED:
                outcome = rules.Outcome.DECLINED
            elif booking is not None and booking.status == Status.CONFIRMED:
                outcome = rules.Outcome.CONFIRMED
            await store.set_outcome(conn, entry.id, rules.Outcome.OFFERED, outcome)
            ended += 1
    return ended


async def _offer_free_seats(
    conn: asyncpg.Connection, window_id: int, now: datetime, offer_hours: int
) -> int:
    window = await store.get_window(conn, window_id, lock=True)
    assert window is not None
    office = await office_store.get_office(conn, window.office_id)
    service = await office_store.get_service(conn, window.office_id, window.service_id)
    assert office is not None and service is not None
    zone = ZoneInfo(office.timezone)
    seats = [
        rules.Seat(
            seat.slot_id,
            seat.starts_at,
            local_date(seat.starts_at, zone),
            rules.part_of_day(seat.starts_at.astimezone(zone).time()),
            seat.free,
        )
        for seat in await store.free_seats(conn, window, now + OFFER_LEAD)
    ]
    if not seats:
        return 0
    waiting = await store.waiting(conn, window.id)
    if not waiting:
        return 0
    by_id = {entry.id: entry for entry in waiting}
    allocation = rules.allocate(
        [entry.id for entry in waiting], {e.id: e.wish for e in waiting}, seats
    )
    made = 0
    for entry_id, slot_id in allocation.offers.items():
        slot = await slot_store.get_slot(conn, slot_id)
        assert slot is not None
        held = await offers.hold(
            conn, by_id[entry_id], slot_id, earliest=now, latest=window.period_end,
            expires_at=rules.offer_expires_at(now, offer_hours, slot.starts_at),
            kind=DRAW_OFFER, created_by=DRAW_CREATOR, now=now,
        )  # fmt: skip
        made += held is offers.Hold.HELD
    return made


# Answering an offer -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Offer:
    entry_id: str
    reference: str
    starts_at: datetime
    expires_at: datetime
    outcome: str
    language: str
    office: Office
    service: Service
    # A seat freed on an instant service, offered by its waiting list (not a draw).
    on_list: bool = False


async def is_offer(pool: asyncpg.Pool, booking_id: int) -> bool:
    """Whether a booking is a draw's offer (its page is the offer's page)."""
    async with pool.acquire() as conn:
        return await store.entry_of_booking(conn, booking_id) is not None


async def _offer_of(conn: asyncpg.Connection, reference: str) -> tuple[store.Entry, Offer]:
    booking = await booking_store.by_reference(conn, reference)
    if booking is None:
        raise errors.booking_not_found()
    entry = await store.entry_for_booking(conn, booking.id)
    if entry is None or entry.offer_expires_at is None:
        raise errors.booking_not_found()
    office = await office_store.get_office(conn, booking.office_id)
    service = await office_store.get_service(conn, booking.office_id, booking.service_id)
    assert office is not None and service is not None
    return entry, Offer(
        entry.id,
        booking.reference,
        booking.starts_at,
        entry.offer_expires_at,
        entry.outcome,
        booking.language,
        office,
        service,
        on_list=entry.window_id is None,
    )


async def view_offer(
    pool: asyncpg.Pool, reference: str, token: str | None, secret_key: str
) -> Offer:
    async with pool.acquire() as conn, conn.transaction():
        await bookings.authorise(conn, reference, token, secret_key)
        return (await _offer_of(conn, reference))[1]


async def answer_offer(
    pool: asyncpg.Pool,
    reference: str,
    token: str | None,
    accept: bool,
    *,
    secret_key: str,
    now: datetime,
    rules_: bookings.Rules = bookings.DEFAULT_RULES,
) -> Offer:
    """Accept (the held booking is confirmed, with its confirmation
    message) or decline (the seat frees for the next entry) an open offer."""
    async with pool.acquire() as conn, conn.transaction():
        await bookings.authorise(conn, reference, token, secret_key)
        entry, offer = await _offer_of(conn, reference)
        booking = await booking_store.by_reference(conn, reference)
        assert booking is not None
        if (
            entry.outcome != rules.Outcome.OFFERED
            or booking.status != Status.HELD
            or not rules.offer_still_open(offer.expires_at, now)
        ):
            raise offer_not_open()
        if accept:
            await booking_store.confirm_hold(
                conn, booking.id, "sms" if booking.phone else "email", now
            )
            await audit.record(
                conn, booking.id, audit.CITIZEN, "accept_offer", Status.HELD, Status.CONFIRMED
            )
            await events.record_booking_event(conn, booking.id, "confirmed", now=now)
            outcome = rules.Outcome.CONFIRMED
        else:
            # The seat goes to the next suitable entry (service.offers).
            await bookings.end_hold(
                conn, booking, Status.CANCELLED, audit.CITIZEN, now, rules=rules_
            )
            outcome = rules.Outcome.DECLINED
        await store.set_outcome(conn, entry.id, rules.Outcome.OFFERED, outcome)
        return (await _offer_of(conn, reference))[1]


# The public record -----------------------------------------------------------------------


async def published(pool: asyncpg.Pool, window_id: int) -> dict[str, object]:
    """What anyone may read about a draw: no name, no contact, no document.
    Entry ids appear at the close, the seed and the ranking after the draw."""
    return (await published_window(pool, window_id))[1]


async def published_window(pool: asyncpg.Pool, window_id: int) -> tuple[Window, dict[str, object]]:
    """The window and its public record (`published`): the page shows the
    record's times and days in the office's zone and language."""
    async with pool.acquire() as conn:
        window = await store.get_window(conn, window_id)
        if window is None:
            raise window_not_found()
        doc: dict[str, object] = {
            "id": window.id,
            "office": window.office_id,
            "service": window.service_id,
            "state": window.state,
            "opens_at": window.opens_at.isoformat(),
            "closes_at": window.closes_at.isoformat(),
            "first_day": window.first_day.isoformat(),
            "last_day": window.last_day.isoformat(),
            "seed_sha256": window.seed_sha256,
            "rule": RULE,
        }
        if window.state == rules.WindowState.OPEN:
            return window, doc
        entries = await store.entries(conn, window.id)
        doc["entries"] = sorted(entry.id for entry in entries)
        doc["entries_sha256"] = window.entries_sha256
        if window.state == rules.WindowState.DRAWN:
            doc["seed"] = window.seed.hex()
            doc["ranking"] = [
                {"entry": entry.id, "outcome": entry.outcome}
                for entry in sorted(entries, key=lambda e: (e.position is None, e.position or 0))
            ]
        return window, doc


async def office_draws(pool: asyncpg.Pool, office_id: str) -> list[dict[str, object]]:
    async with pool.acquire() as conn:
        if await office_store.get_office(conn, office_id) is None:
            raise errors.office_not_found()
        return [
            {
                "id": w.id,
                "service": w.service_id,
                "opens_at": w.opens_at.isoformat(),
                "closes_at": w.closes_at.isoformat(),
                "first_day": w.first_day.isoformat(),
                "last_day": w.last_day.isoformat(),
                "state": w.state,
            }
            for w in await store.windows_of(conn, office_id)
        ]
