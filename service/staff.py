"""Office-side use cases: accounts, login and sessions, API tokens, the day's
schedule, a booking's history, hours and closures with the bookings they
strand, the feed, and weekly statistics.

Status changes and bookings made for citizens go through service.bookings,
the only booking path, so staff obey the same rules as the public form.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from icalendar import Calendar, Event

from service import bookings
from service.config import Settings
from service.domain import errors
from service.domain.booking import Status, hash_token
from service.domain.calendar import HoursRule, SlotPlan, local_date, local_day_bounds, plan_slots
from service.domain.errors import N_
from service.domain.models import Booking, Office, Service
from service.domain.office_day import (
    BookedSeat,
    Load,
    WeeklyStats,
    load_per_time,
    stranded,
    weekly_stats,
)
from service.domain.service_settings import ServiceSettings
from service.domain.staff import (
    AccountRefused,
    Role,
    StaffMember,
    check_deactivation,
    check_new_account,
    is_throttled,
    looks_like_api_token,
    new_api_token,
    new_feed_secret,
    new_password,
    new_session_id,
    normalise_email,
    password_problem,
    session_expiry,
    session_needs_touch,
    throttle_keys,
    throttle_since,
)
from service.domain.validation import RawDetails
from service.store import audit
from service.store import bookings as booking_store
from service.store import office_services as service_store
from service.store import offices as office_store
from service.store import schedule as schedule_store
from service.store import slots as slot_store
from service.store import staff as staff_store
from service.store.audit import Actor

# argon2id (the library's default type) with its RFC 9106 "low memory"
# parameters: about 0.1 s and 64 MiB per hash.
_HASHER = PasswordHasher()
# Verified against when the e-mail is unknown, so that a login for a missing
# account costs as much as one for a real account (no timing oracle).
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$SUAC6KyVAJcw3GLf/xd4mA$"
    "Wwca+2emoFbS5k/Kj2AyRjU9Sb/5fccw2dXxbxXADbs"
)


def actor_of(member: StaffMember) -> Actor:
    return Actor("staff", str(member.id))


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


def _secret_hash(purpose: str, value: str, secret_key: str) -> bytes:
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
    """Create an account; raise AccountRefused with a message for people."""
    address = normalise_email(email)
    if address is None:
        raise AccountRefused(N_("Enter a valid e-mail address."))
    check_new_account(creator, role, offices)
    unknown = await staff_store.unknown_offices(conn, offices)
    if unknown:
        raise AccountRefused(N_("No such office: %(offices)s."), offices=", ".join(sorted(unknown)))
    chosen = password or new_password()
    problem = password_problem(chosen)
    if problem:
        raise AccountRefused(problem)
    member = await staff_store.insert(
        conn, address, role, offices, await hash_password(chosen), now, demo=demo
    )
    if member is None:
        raise AccountRefused(N_("An account with this e-mail already exists."))
    return NewAccount(member, chosen)


async def deactivate_staff(
    pool: asyncpg.Pool, office_id: str, staff_id: int, actor: StaffMember, now: datetime
) -> bool:
    """Deactivate an account of this office; False if it already was inactive.

    NotFound when the account does not work for this office (admins work for
    none in particular: only the CLI or another page could reach them);
    AccountRefused when `actor` may not.
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


class LoginRefused(Exception):
    """`throttled` True: too many failures lately, password not even checked."""

    def __init__(self, throttled: bool) -> None:
        super().__init__("throttled" if throttled else "bad credentials")
        self.throttled = throttled


@dataclass(frozen=True, slots=True)
class LoggedIn:
    member: StaffMember
    session_id: str  # goes into the cookie, stored only hashed


async def login(
    pool: asyncpg.Pool,
    email: str,
    password: str,
    ip: str | None,
    *,
    secret_key: str,
    now: datetime,
    allow_demo: bool,
) -> LoggedIn:
    account_key, ip_key = throttle_keys(email, ip)
    keys = [_secret_hash("throttle", k, secret_key) for k in (account_key, ip_key)]
    async with pool.acquire() as conn:
        # The attempt counts as a failure before the password is checked, so
        # parallel guesses cannot all pass the check while none is counted yet.
        counted = await staff_store.count_then_record(
            conn, keys, throttle_since(now), now, lambda counts: is_throttled(*counts)
        )
        if counted is None:
            # Refused without checking the password, so guessing goes no
            # faster by ignoring the answer; not recorded, so the lock ends
            # one window after the last counted failure.
            raise LoginRefused(throttled=True)
        address = normalise_email(email) or ""
        found = await staff_store.credentials(conn, address) if address else None
        ok = await _verify_password(found.password_hash if found else _DUMMY_HASH, password)
        usable = found is not None and found.active and (allow_demo or not found.member.demo) and ok
        if not usable or found is None:
            raise LoginRefused(throttled=False)
        session_id = new_session_id()
        async with conn.transaction():
            await staff_store.clear_failures(conn, keys[0])
            # A success is no failure of the address either.
            await staff_store.forget_attempt(conn, keys[1], now)
            await staff_store.mark_login(conn, found.member.id, now)
            await staff_store.create_session(
                conn,
                _secret_hash("session", session_id, secret_key),
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
    id_hash = _secret_hash("session", session_id, secret_key)
    async with pool.acquire() as conn:
        row = await staff_store.session(conn, id_hash, now)
        if row is None:
            return None
        if session_needs_touch(row.last_seen_at, now):
            await staff_store.touch_session(conn, id_hash, now, session_expiry(row.created_at, now))
    return row.member


async def logout(pool: asyncpg.Pool, session_id: str, *, secret_key: str) -> None:
    async with pool.acquire() as conn:
        await staff_store.delete_session(conn, _secret_hash("session", session_id, secret_key))


async def token_member(
    pool: asyncpg.Pool, token: str, *, secret_key: str, now: datetime
) -> StaffMember | None:
    if not looks_like_api_token(token):
        return None
    async with pool.acquire() as conn:
        return await staff_store.token_member(conn, _secret_hash("api", token, secret_key), now)


async def create_api_token(
    pool: asyncpg.Pool, member: StaffMember, label: str, *, secret_key: str, now: datetime
) -> str:
    token = new_api_token()
    async with pool.acquire() as conn:
        await staff_store.create_token(
            conn, member.id, _secret_hash("api", token, secret_key), label[:100], now
        )
    return token


# The day ---------------------------------------------------------------------------


async def office_or_404(conn: asyncpg.Connection, office_id: str) -> Office:
    office = await office_store.get_office(conn, office_id)
    if office is None:
        raise errors.office_not_found()
    return office


@dataclass(frozen=True, slots=True)
class Schedule:
    office: Office
    day: date
    entries: list[schedule_store.DayEntry]
    load: list[Load]


async def day_schedule(pool: asyncpg.Pool, office_id: str, day: date) -> Schedule:
    async with pool.acquire() as conn:
        office = await office_or_404(conn, office_id)
        start, end = local_day_bounds(day, office.zone)
        entries = await schedule_store.day_entries(conn, office.id, start, end)
        capacities = await schedule_store.capacities(conn, office.id, start, end)
    load = load_per_time(((e.booking.starts_at, e.booking.status) for e in entries), capacities)
    return Schedule(office, day, entries, load)


async def change_status(
    pool: asyncpg.Pool,
    office_id: str,
    reference: str,
    target: Status,
    reason: str | None,
    member: StaffMember,
    now: datetime,
) -> Booking:
    async with pool.acquire() as conn:
        return await bookings.set_status_by_office(
            conn, reference, office_id, target, actor_of(member), now, reason
        )


@dataclass(frozen=True, slots=True)
class BookingHistory:
    office: Office
    booking: Booking
    service: Service | None
    messages: list[asyncpg.Record]
    audit: list[asyncpg.Record]


async def booking_history(pool: asyncpg.Pool, office_id: str, reference: str) -> BookingHistory:
    async with pool.acquire() as conn:
        office = await office_or_404(conn, office_id)
        booking = await booking_store.by_reference(conn, reference)
        if booking is None or booking.office_id != office.id:
            raise errors.NotFound()
        service = await office_store.get_service(conn, office.id, booking.service_id)
        messages = await schedule_store.messages(conn, booking.id)
        trail = await audit.for_booking(conn, booking.id)
    return BookingHistory(office, booking, service, messages, trail)


async def book_for_citizen(
    pool: asyncpg.Pool,
    office_id: str,
    slot_id: int,
    service_id: str,
    details: RawDetails,
    member: StaffMember,
    *,
    secret_key: str,
    now: datetime,
) -> Booking:
    """The public booking path with staff as the actor; same capacity, window,
    one-per-document and message rules."""
    async with pool.acquire() as conn:
        slot = await slot_store.get_slot(conn, slot_id)
    if slot is None or slot.office_id != office_id:
        raise errors.slot_not_found()
    booked = await bookings.book(
        pool,
        slot_id=slot_id,
        service_id=service_id,
        details=details,
        secret_key=secret_key,
        now=now,
        actor=actor_of(member),
    )
    # The manage token is not shown to staff: it is the citizen's, and reaches
    # them in the confirmation message.
    return booked.booking


# Hours and closures ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChangeOutcome:
    """applied False: nothing written; the manager must decide about `stranded`."""

    applied: bool
    stranded: list[BookedSeat]
    cancelled: int = 0
    # Asked to cancel but kept: no longer cancellable (e.g. checked in).
    refused: int = 0
    # False: the office already was as asked, nothing was written.
    changed: bool = True


class Decision:
    KEEP = "keep"
    CANCEL = "cancel"


async def _plans(
    conn: asyncpg.Connection,
    office: Office,
    rules: list[HoursRule],
    closed: set[date],
    now: datetime,
    horizon_days: int,
) -> list[SlotPlan]:
    first = local_date(now, office.zone)
    services = await office_store.list_services(conn, office.id)
    plans = plan_slots(
        rules,
        closed,
        office.zone,
        {s.id: timedelta(minutes=s.duration_minutes) for s in services},
        first,
        first + timedelta(days=horizon_days),
    )
    return [p for p in plans if p.starts_at > now]


async def _closed_days(
    conn: asyncpg.Connection, office: Office, now: datetime, horizon_days: int
) -> set[date]:
    first = local_date(now, office.zone)
    return await office_store.closed_days(
        conn, office.id, first, first + timedelta(days=horizon_days)
    )


async def _stranded_by(
    conn: asyncpg.Connection,
    office: Office,
    rules: list[HoursRule],
    closed: set[date],
    now: datetime,
    horizon_days: int,
) -> list[BookedSeat]:
    plans = await _plans(conn, office, rules, closed, now, horizon_days)
    horizon_end = local_day_bounds(
        local_date(now, office.zone) + timedelta(days=horizon_days), office.zone
    )[1]
    seats = await schedule_store.active_seats_after(conn, office.id, now)
    # Beyond the horizon nothing is planned yet, so nothing there is stranded.
    seats = [s for s in seats if s.starts_at < horizon_end]
    lost = stranded(seats, plans, now)
    # Fewer shared counters can strand bookings whose own slot still has room
    # (the counter cells were regenerated just before, in this transaction).
    beyond = await slot_store.over_counters(conn, office.id, now) - {b.reference for b in lost}
    lost += [s for s in seats if s.reference in beyond]
    return sorted(lost, key=lambda b: (b.starts_at, b.reference))


async def _apply_change(
    conn: asyncpg.Connection,
    office: Office,
    write: Change,
    decision: str | None,
    seen: Collection[str],
    reason: str | None,
    member: StaffMember,
    now: datetime,
    horizon_days: int,
) -> ChangeOutcome:
    """Write a change of hours or closures, or nothing if bookings it strands
    have not all been shown to the manager with a decision.

    Order matters: slots are regenerated before the stranded bookings are
    listed, so a citizen booking one of the removed slots concurrently either
    committed first (and is listed here) or waits on the slot row and then
    finds it at capacity 0.
    """
    async with conn.transaction():
        # One change of an office's hours at a time.
        await conn.execute("SELECT 1 FROM offices WHERE id = $1 FOR UPDATE", office.id)
        if not await write.apply(conn):
            return ChangeOutcome(True, [], changed=False)
        rules = await office_store.hours_rules(conn, office.id)
        closed = await _closed_days(conn, office, now, horizon_days)
        await slot_store.regenerate_office(conn, office, now, horizon_days)
        lost = await _stranded_by(conn, office, rules, closed, now, horizon_days)
        unseen = {b.reference for b in lost} - set(seen)
        if lost and (decision not in (Decision.KEEP, Decision.CANCEL) or unseen):
            raise _NeedsDecision(lost)
        cancelled = refused = 0
        if decision == Decision.CANCEL:
            for seat in lost:
                try:
                    # Its own savepoint: a booking that can no longer be
                    # cancelled (checked in meanwhile) is kept, and the rest
                    # of the change still commits.
                    await bookings.set_status_by_office(
                        conn,
                        seat.reference,
                        office.id,
                        Status.CANCELLED,
                        actor_of(member),
                        now,
                        reason,
                    )
                except errors.BookingError:
                    refused += 1
                else:
                    cancelled += 1
    return ChangeOutcome(True, lost, cancelled, refused)


class _NeedsDecision(Exception):
    def __init__(self, lost: list[BookedSeat]) -> None:
        super().__init__("decision needed")
        self.lost = lost


class Change:
    """A write to the office's hours or closures, applied inside _apply_change."""

    async def apply(self, conn: asyncpg.Connection) -> bool:
        """Write the change; False when there was nothing to change."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class ReplaceHours(Change):
    office_id: str
    rules: list[HoursRule]

    async def apply(self, conn: asyncpg.Connection) -> bool:
        await office_store.replace_hours(conn, self.office_id, self.rules)
        return True


@dataclass(frozen=True, slots=True)
class AddClosure(Change):
    office_id: str
    day: date
    reasons: dict[str, str]

    async def apply(self, conn: asyncpg.Connection) -> bool:
        await office_store.add_closure(conn, self.office_id, self.day, self.reasons)
        return True


@dataclass(frozen=True, slots=True)
class RemoveClosure(Change):
    office_id: str
    day: date

    async def apply(self, conn: asyncpg.Connection) -> bool:
        return await office_store.remove_closure(conn, self.office_id, self.day)


@dataclass(frozen=True, slots=True)
class UpdateService(Change):
    office_id: str
    service_id: str
    settings: ServiceSettings

    async def apply(self, conn: asyncpg.Connection) -> bool:
        return await service_store.update(conn, self.office_id, self.service_id, self.settings)


async def office_services(
    pool: asyncpg.Pool, office_id: str
) -> tuple[Office, list[tuple[Service, bool]]]:
    async with pool.acquire() as conn:
        office = await office_or_404(conn, office_id)
        return office, await service_store.all_of_office(conn, office.id)


async def change_office(
    pool: asyncpg.Pool,
    office_id: str,
    write: Change,
    *,
    decision: str | None,
    seen: Collection[str],
    reason: str | None,
    member: StaffMember,
    now: datetime,
    horizon_days: int,
) -> ChangeOutcome:
    """Apply `write`, or (applied False) the bookings it would strand."""
    async with pool.acquire() as conn:
        office = await office_or_404(conn, office_id)
        try:
            return await _apply_change(
                conn, office, write, decision, seen, reason, member, now, horizon_days
            )
        except _NeedsDecision as pending:
            return ChangeOutcome(False, pending.lost)


@dataclass(frozen=True, slots=True)
class HoursOverview:
    office: Office
    rules: list[HoursRule]
    closures: list[asyncpg.Record]
    slot_days: list[asyncpg.Record]


async def hours_overview(
    pool: asyncpg.Pool, office_id: str, now: datetime, days: int = 28
) -> HoursOverview:
    async with pool.acquire() as conn:
        office = await office_or_404(conn, office_id)
        rules = await office_store.hours_rules(conn, office.id)
        first = local_date(now, office.zone)
        last = first + timedelta(days=days)
        closures = await schedule_store.closures_from(conn, office.id, first)
        start = local_day_bounds(first, office.zone)[0]
        end = local_day_bounds(last, office.zone)[1]
        slot_days = await schedule_store.slot_days(conn, office.id, start, end, office.timezone)
    return HoursOverview(office, rules, closures, slot_days)


# Feed ------------------------------------------------------------------------------

FEED_PAST = timedelta(days=7)
FEED_AHEAD = timedelta(days=62)


async def rotate_feed(
    pool: asyncpg.Pool, office_id: str, member: StaffMember, *, secret_key: str, now: datetime
) -> str:
    secret = new_feed_secret()
    async with pool.acquire() as conn:
        await office_or_404(conn, office_id)
        await staff_store.set_feed(
            conn, office_id, _secret_hash("feed", secret, secret_key), member.id, now
        )
    return secret


async def feed_ics(
    pool: asyncpg.Pool, secret: str, *, secret_key: str, now: datetime
) -> bytes | None:
    """The office's appointments as iCalendar, or None for an unknown secret.

    Events carry the reference, service and status but no citizen name,
    phone or document: calendar apps copy feeds to third-party clouds.
    """
    if not 20 <= len(secret) <= 100:
        return None
    async with pool.acquire() as conn:
        office_id = await staff_store.feed_office(conn, _secret_hash("feed", secret, secret_key))
        if office_id is None:
            return None
        office = await office_or_404(conn, office_id)
        rows = await schedule_store.feed_bookings(
            conn, office.id, now - FEED_PAST, now + FEED_AHEAD
        )
    calendar = Calendar()
    calendar.add("prodid", "-//Mawid//office feed//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"Mawid · {office.name['fr']}")
    calendar.add("x-wr-timezone", office.timezone)
    for row in rows:
        event = Event()
        event.add("uid", f"{row['reference']}@mawid")
        event.add("dtstamp", row["updated_at"])
        event.add("dtstart", row["starts_at"])
        event.add("dtend", row["ends_at"])
        event.add("summary", f"{row['name_fr']} · {row['reference']}")
        event.add("status", "CONFIRMED")
        event.add("description", f"Status: {row['status']}")
        calendar.add_component(event)
    ical: bytes = calendar.to_ical()
    return ical


async def feed_created_at(pool: asyncpg.Pool, office_id: str) -> datetime | None:
    async with pool.acquire() as conn:
        return await staff_store.feed_created_at(conn, office_id)


# Statistics -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Week:
    office: Office
    monday: date
    stats: WeeklyStats


async def week_stats(
    pool: asyncpg.Pool, office_id: str, monday: date, price_per_segment: float
) -> Week:
    async with pool.acquire() as conn:
        office = await office_or_404(conn, office_id)
        start = local_day_bounds(monday, office.zone)[0]
        end = local_day_bounds(monday + timedelta(days=6), office.zone)[1]
        facts = await schedule_store.appointment_facts(conn, office.id, start, end)
        made = await schedule_store.bookings_made(conn, office.id, start, end)
        segments = await schedule_store.sms_segments_sent(conn, office.id, start, end)
    return Week(office, monday, weekly_stats(facts, made, segments, price_per_segment))


# Command line and dev banner ---------------------------------------------------------


def demo_staff_lines(base_url: str) -> list[str]:
    """What `mawid dev` prints first: where to sign in and as whom (dev only)."""
    lines = [f"  staff sign-in: {base_url}/office/login  (demo accounts, dev only)"]
    for account in DEMO_STAFF:
        where = ", ".join(account.offices) or "every office"
        lines.append(
            f"    {account.role.value:<8} {account.email:<22} {account.password}  ({where})"
        )
    return lines


async def _staff_add(
    database_url: str, email: str, role: Role, offices: list[str], now: datetime
) -> NewAccount:
    from service.db import create_pool

    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            return await add_staff(conn, email, role, offices, now)
    finally:
        await pool.close()


def cmd_staff_add(settings: Settings, email: str, role: str, offices: list[str]) -> None:
    """`mawid staff add EMAIL --office ID --role ROLE`: the password is printed
    once, to the operator's terminal, and stored only as its argon2id hash."""
    import sys

    if not settings.database_url:
        print("mawid: DATABASE_URL is not set", file=sys.stderr)
        raise SystemExit(2)
    try:
        created = asyncio.run(
            _staff_add(settings.database_url, email, Role(role), offices, datetime.now(UTC))
        )
    except AccountRefused as refused:
        print(f"mawid staff add: {refused}", file=sys.stderr)
        raise SystemExit(2) from None
    where = ", ".join(sorted(created.member.offices)) or "every office"
    print(f"created {created.member.role.value} {created.member.email} ({where})")
    print(f"password (shown once): {created.password}")
