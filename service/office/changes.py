"""Changes to an office's hours, closures and service settings, with the
bookings they strand.

A change that strands bookings is written only once the manager has seen
every stranded booking and decided to keep or cancel them; until then nothing
is written and the list is shown (see change_office).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import asyncpg

from service import bookings
from service.domain import errors
from service.domain.booking import Status
from service.domain.calendar import HoursRule, SlotPlan, local_date, local_day_bounds, plan_slots
from service.domain.errors import N_
from service.domain.models import Office, Service
from service.domain.office_day import BookedSeat, Closure, stranded
from service.domain.service_settings import ServiceSettings
from service.domain.staff import StaffMember
from service.office.common import actor_of, office_or_404
from service.store import bookings as booking_store
from service.store import office_services as service_store
from service.store import offices as office_store
from service.store import schedule as schedule_store
from service.store import slots as slot_store


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
    # Each service's name by language, keyed by id: the list of stranded
    # bookings names their services as the page's reader knows them.
    service_names: dict[str, dict[str, str]] = field(default_factory=dict)


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
    booking_rules: bookings.Rules,
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
        await office_store.lock_for_change(conn, office.id)
        if decision == Decision.CANCEL and seen:
            # The bookings it may cancel before any seat: cancelling one
            # (the citizen, the desk, an expiring hold) locks the booking and
            # then its seat, so the change taking the seats (regeneration)
            # and then the booking was a deadlock. Only those the manager
            # saw can be cancelled here; any other stranded one is refused.
            await booking_store.lock_of_office(conn, office.id, sorted(set(seen)))
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
                        rules=booking_rules,
                    )
                except errors.Refusal:
                    refused += 1
                else:
                    cancelled += 1
    return ChangeOutcome(True, lost, cancelled, refused)


class _NeedsDecision(Exception):
    """Rolls the change back until the manager has decided (see change_office).

    Not a Refusal: it never leaves this module. Raising it is how the
    transaction that wrote the change and regenerated the slots is undone;
    change_office turns it into the outcome the page shows.
    """

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
        if not await office_store.add_closure(conn, self.office_id, self.day, self.reasons):
            # The holiday stays, and the manager is told. Replaced silently, it
            # lost its name in every language, and reopening the day later did
            # not hold: as a manual closure it was not remembered as a reopened
            # holiday, so the next holiday refresh closed it again.
            message = N_(
                "This day is already closed as a public holiday. Nothing was changed;"
                " to give it another reason, reopen it first."
            )
            raise errors.ValidationFailed({"closure-day": message})
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
    rules: bookings.Rules = bookings.DEFAULT_RULES,
) -> ChangeOutcome:
    """Apply `write`, or (applied False) the bookings it would strand."""
    async with pool.acquire() as conn:
        office = await office_or_404(conn, office_id)
        try:
            return await _apply_change(
                conn, office, write, decision, seen, reason, member, now, horizon_days, rules
            )
        except _NeedsDecision as pending:
            # Inactive services too: a kept booking of a service turned off.
            services = await service_store.all_of_office(conn, office.id)
            names = {svc.id: svc.name for svc, _ in services}
            return ChangeOutcome(False, pending.lost, service_names=names)


@dataclass(frozen=True, slots=True)
class HoursOverview:
    office: Office
    rules: list[HoursRule]
    closures: list[Closure]
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
