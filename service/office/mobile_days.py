"""A manager's mobile consular days: list the upcoming ones, publish one
(announced to the subscribers near it), withdraw one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

import asyncpg

from service import bookings, mobile_alerts
from service.domain import errors
from service.domain.errors import N_
from service.domain.fields import parse_id
from service.domain.messages import SKIP_WITHDRAWN
from service.domain.mobile_day import MobileDay, parse_mobile_day_form
from service.domain.models import Office, Service
from service.office.common import office_or_404
from service.places import Gazetteer
from service.store import mobile_alerts as alert_store
from service.store import mobile_days as mobile_day_store
from service.store import offices as office_store


async def office_mobile_days(
    pool: asyncpg.Pool, office_id: str, now: datetime
) -> tuple[Office, list[Service], list[MobileDay]]:
    async with pool.acquire() as conn:
        office = await office_or_404(conn, office_id)
        services = await office_store.list_services(conn, office.id)
        return office, services, await mobile_day_store.upcoming(conn, now, office.id)


@dataclass(frozen=True, slots=True)
class Published:
    mobile_day: MobileDay
    # Subscribers within its distance, each told once (service.mobile_alerts).
    announced: int


async def venue_place(mobile_day: MobileDay, places: Gazetteer) -> tuple[float, float]:
    """Where the venue is: as the manager gave it, else its town located in
    its country (by its French, then English name), or ValidationFailed
    asking for the coordinates."""
    if mobile_day.place is not None:
        return mobile_day.place
    for name in (mobile_day.town["fr"], mobile_day.town["en"]):
        found = await places.locate(name, [mobile_day.country])
        if found is not None:
            return found.latitude, found.longitude
    raise errors.ValidationFailed(
        {
            "latitude": N_(
                "This town is not in our list of towns: give the venue's latitude and longitude."
            )
        }
    )


async def create_mobile_day(
    pool: asyncpg.Pool, office_id: str, form: Mapping[str, str], now: datetime, places: Gazetteer
) -> Published:
    """The mobile day the form describes, with its slots planned and its
    announcement written to the subscribers near it, in one transaction; or
    ValidationFailed and nothing written."""
    async with pool.acquire() as conn:
        office = await office_or_404(conn, office_id)
        services = await office_store.list_services(conn, office.id)
        mobile_day = parse_mobile_day_form(form, office.id, [s.id for s in services])
        venue = await venue_place(mobile_day, places)
        assert mobile_day.alert_km is not None
        async with conn.transaction():
            made = await mobile_day_store.create(conn, replace(mobile_day, place=venue))
            await mobile_day_store.regenerate(conn, office, made, now)
            announced = await mobile_alerts.announce(
                conn, office, made, venue, mobile_day.alert_km, now
            )
        return Published(made, announced)


def still_booked() -> errors.Conflict:
    return errors.Conflict(
        "mobile_day_booked",
        N_(
            "Citizens are booked at this mobile consular day: cancel or move their "
            "appointments before withdrawing it."
        ),
    )


async def withdraw_mobile_day(
    pool: asyncpg.Pool, office_id: str, raw_id: str, now: datetime
) -> None:
    """Withdraw a published mobile day that nobody is booked at: its seats
    closed, no longer listed, its announcements still waiting not sent. One
    transaction: a booking under way on its slots is waited for, then seen
    (refused), and none can take a seat after."""
    mobile_day_id = parse_id(raw_id)
    if mobile_day_id is None:
        raise errors.ValidationFailed({"mobile_day": N_("Choose a mobile consular day.")})
    async with pool.acquire() as conn:
        await office_or_404(conn, office_id)
        # A refusal rolls back the seats closed.
        async with conn.transaction():
            taken = await mobile_day_store.close_for_withdrawal(conn, office_id, mobile_day_id)
            if taken is None:
                raise errors.ValidationFailed({"mobile_day": N_("Choose a mobile consular day.")})
            # Holds whose time is up give their seats back first.
            for slot_id in taken:
                await bookings.release_expired_holds(conn, now, slot_id=slot_id)
            if await mobile_day_store.seats_taken(conn, mobile_day_id):
                raise still_booked()
            await mobile_day_store.mark_withdrawn(conn, mobile_day_id, now)
            await alert_store.skip_announcements(conn, mobile_day_id, SKIP_WITHDRAWN, now)
