"""Citizen pages of mobile consular days: a day's venue, dates and services,
and the free times of a service there. Booking goes through the office's own
form (/offices/{office}/{service}/book?slot=), which shows the venue.

Times are shown in the venue's zone: the mobile day stands in for its office
(service.store.mobile_days.at_site) wherever a page reads the office's zone,
town or address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import aiohttp_jinja2
import asyncpg
from aiohttp import web

from service.domain import errors
from service.domain.booking import booking_window
from service.domain.calendar import local_date, local_day_bounds
from service.domain.fields import parse_id
from service.domain.mobile_day import MobileDay, at_venue
from service.domain.models import Office, Service, Slot
from service.store import mobile_days as mobile_day_store
from service.store import offices as office_store
from service.store import slots as slot_store
from service.web import i18n
from service.web.keys import CLOCK_KEY, POOL_KEY
from service.web.templating import request_language

routes = web.RouteTableDef()


@dataclass(frozen=True, slots=True)
class MobileDayView:
    """A mobile day as the lists of the start and office pages show it."""

    day: MobileDay
    office: Office
    # The office with the venue's town, address and zone.
    site: Office
    services: list[Service]
    open: bool
    zone: str  # the venue's zone as citizens name it
    hours: list[tuple[date, list[tuple[time, time]]]]


async def upcoming_views(
    conn: asyncpg.Connection, now: datetime, language: str, office_id: str | None = None
) -> list[MobileDayView]:
    views = []
    for mobile_day in await mobile_day_store.upcoming(conn, now, office_id):
        office = await office_store.get_office(conn, mobile_day.office_id)
        if office is None:
            continue
        services = [
            s
            for s in await office_store.list_services(conn, office.id)
            if s.id in mobile_day.service_ids
        ]
        by_day: dict[date, list[tuple[time, time]]] = {}
        for h in mobile_day.hours:
            by_day.setdefault(h.day, []).append((h.opens_at, h.closes_at))
        views.append(
            MobileDayView(
                day=mobile_day,
                office=office,
                site=at_venue(office, mobile_day),
                services=services,
                open=mobile_day.open_for_booking(now),
                zone=i18n.zone_label(mobile_day.country, mobile_day.town[language], language),
                hours=sorted(by_day.items()),
            )
        )
    return views


async def _view(request: web.Request, conn: asyncpg.Connection) -> MobileDayView:
    mobile_day_id = parse_id(request.match_info["id"])
    mobile_day = await mobile_day_store.get(conn, mobile_day_id) if mobile_day_id else None
    if mobile_day is None:
        raise errors.NotFound()
    language = request_language(request)
    now = request.app[CLOCK_KEY]()
    views = await upcoming_views(conn, now, language, mobile_day.office_id)
    for view in views:
        if view.day.id == mobile_day.id:
            return view
    raise errors.NotFound()  # past


@routes.get("/mobile-days/{id}")
async def mobile_day_page(request: web.Request) -> web.Response:
    async with request.app[POOL_KEY].acquire() as conn:
        view = await _view(request, conn)
    return aiohttp_jinja2.render_template("citizen/mobile_day.html", request, {"view": view})


@routes.get("/mobile-days/{id}/{service}")
async def mobile_day_times(request: web.Request) -> web.Response:
    """The free times of one service at a mobile day, by day."""
    now = request.app[CLOCK_KEY]()
    async with request.app[POOL_KEY].acquire() as conn:
        view = await _view(request, conn)
        offered = [s for s in view.services if s.id == request.match_info["service"]]
        if not offered:
            raise errors.service_not_found()
        service = offered[0]
        days: list[tuple[date, list[Slot]]] = []
        if view.open:
            window = booking_window(now, service.earliest_hours, service.latest_days)
            zone = view.day.zone
            start = local_day_bounds(view.day.dates[0], zone)[0]
            end = local_day_bounds(view.day.dates[-1] + timedelta(days=1), zone)[0]
            free = await slot_store.available(
                conn, view.office.id, service.id, start, end, window.earliest, window.latest,
                view.day.id,
            )  # fmt: skip
            by_day: dict[date, list[Slot]] = {}
            for slot in free:
                by_day.setdefault(local_date(slot.starts_at, zone), []).append(slot)
            days = sorted(by_day.items())
    return aiohttp_jinja2.render_template(
        "citizen/mobile_day_times.html",
        request,
        {
            "view": view,
            "service": service,
            "days": days,
            "time_url": f"/offices/{view.office.id}/{service.id}/book?slot=",
        },
    )
