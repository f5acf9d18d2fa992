"""The waiting list of an instant service, the use cases: the days one may
ask for, joining (a citizen, with the code step of a draw's request; staff,
for someone at the counter), and the office's view of the list.

An entry is a draw entry without a window (migration 0110): its receipt,
code step and withdrawal are the draw request's (service.draw), its offers
are made by service.offers inside the transaction that frees a seat, and
answered on the draw's offer page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from service import bookings, draw
from service.domain import draw as draw_rules
from service.domain import errors
from service.domain import waitlist as rules
from service.domain.booking import booking_window
from service.domain.calendar import local_date
from service.domain.errors import N_
from service.domain.models import Office, Service
from service.domain.validation import RawDetails
from service.store import audit
from service.store import draws as store
from service.store import slots as slot_store
from service.store.audit import Actor
from service.store.draws import Entry


def no_waiting_list() -> errors.Conflict:
    return errors.Conflict("no_waiting_list", N_("This service has no waiting list to join now."))


@dataclass(frozen=True, slots=True)
class JoinForm:
    office: Office
    service: Service
    # The local days with times of the service inside the list's horizon,
    # in order; empty when the service has no list (a draw, or the list off).
    days: list[date]
    # The local days one may ask for: from today to the horizon's (those
    # without times are accepted, and never match a seat).
    first: date
    last: date


async def _join_form(
    conn: asyncpg.Connection, office_id: str, service_id: str, now: datetime, days_ahead: int
) -> JoinForm:
    office, service = await bookings.office_and_service(conn, office_id, service_id)
    days: list[date] = []
    window = booking_window(now, service.earliest_hours, service.latest_days)
    end = min(window.latest, rules.horizon(now, days_ahead))
    if service.allocation_mode == draw_rules.Mode.INSTANT and days_ahead > 0:
        slots = await slot_store.slots_between(conn, office.id, service.id, window.earliest, end)
        days = sorted({local_date(slot.starts_at, office.zone) for slot in slots})
    return JoinForm(
        office, service, days, local_date(now, office.zone), local_date(end, office.zone)
    )


async def join_form(
    pool: asyncpg.Pool, office_id: str, service_id: str, now: datetime, rules_: bookings.Rules
) -> JoinForm:
    async with pool.acquire() as conn:
        return await _join_form(conn, office_id, service_id, now, rules_.waitlist.days)


async def join(
    pool: asyncpg.Pool,
    office_id: str,
    service_id: str,
    details: RawDetails,
    days: list[date],
    parts: list[str],
    *,
    secret_key: str,
    now: datetime,
    actor: Actor = audit.CITIZEN,
    rules_: bookings.Rules = bookings.DEFAULT_RULES,
    admit: bookings.Admit = None,
) -> draw.Receipt:
    """Put someone on the waiting list of an office's service, for days it
    has times on and parts of those days. A citizen's place counts once
    their contact is proved by a code, as a draw request's; staff's is typed
    for someone present. The database refuses a second open place of one
    identity (document, phone, address) on the list. `admit` is asked once
    the request is found well-formed."""
    form = await join_form(pool, office_id, service_id, now, rules_)
    if not form.days:
        raise no_waiting_list()
    offered = draw_rules.period_days(form.first, form.last)
    # Every field at fault comes back at once, details and days alike.
    citizen, wish = draw_rules.check_entry(details, form.service, form.office, days, parts, offered)
    if admit is not None:
        await admit()
    async with pool.acquire() as conn, conn.transaction():
        # Places whose code did not come back, or whose days are past, free
        # their identity first.
        await store.lapse_waitlist(conn, now, office_id, service_id)
        entry_id, token, pending = await draw.file_entry(
            conn, form.service, None, citizen, wish, actor=actor, secret_key=secret_key,
            now=now, rules_=rules_, waits_until=rules.horizon(now, rules_.waitlist.days),
        )  # fmt: skip
        return draw.Receipt(entry_id, None, token, pending)


@dataclass(frozen=True, slots=True)
class ServiceList:
    """A service's waiting list as the office sees it."""

    office: Office
    service: Service
    entries: list[Entry]
    # The list takes freed seats (an instant service, the list turned on).
    open: bool
    # The days one may join it for now (JoinForm.days).
    days: list[date]


async def service_list(
    pool: asyncpg.Pool, office_id: str, service_id: str, now: datetime, rules_: bookings.Rules
) -> ServiceList:
    async with pool.acquire() as conn, conn.transaction():
        form = await _join_form(conn, office_id, service_id, now, rules_.waitlist.days)
        await store.lapse_waitlist(conn, now, office_id, service_id)
        entries = await store.waitlist(conn, office_id, service_id)
        takes_seats = (
            form.service.allocation_mode == draw_rules.Mode.INSTANT and rules_.waitlist.days > 0
        )
        return ServiceList(form.office, form.service, entries, takes_seats, form.days)
