"""The office JSON API under /api/v1/offices/{office}/...: the same use cases
as the office pages, authorised the same way (see service.web.sessions)."""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web

from service import bookings
from service.domain import errors
from service.domain.calendar import local_date
from service.domain.errors import N_
from service.domain.feedback import Satisfaction
from service.domain.models import Office
from service.domain.office_day import parse_week, week_label, week_of
from service.domain.staff import (
    MAX_REASON_LENGTH,
    Permission,
    mask_document,
    parse_office_action,
)
from service.office.common import office_or_404
from service.office.schedule import BookingHistory, booking_history, change_status, day_schedule
from service.office.stats import week_stats
from service.store.schedule import DayEntry
from service.web.api import booking_fields, iso, parse_reference, text_members
from service.web.inputs import day_param, json_body
from service.web.keys import CLOCK_KEY, POOL_KEY, SETTINGS_KEY
from service.web.sessions import authorise

routes = web.RouteTableDef()


def entry_json(entry: DayEntry, office: Office) -> dict[str, Any]:
    b = entry.booking
    return {
        "reference": b.reference,
        "status": b.status,
        "service": {"id": b.service_id, "name": entry.service_name},
        "start": iso(b.starts_at, office),
        "end": iso(b.ends_at, office),
        "name": b.citizen_name,
        "phone": b.phone,
        "email": b.email,
        "language": b.language,
        "document_number": mask_document(b.document_number),
        "cancel_reason": b.cancel_reason,
    }


def _record_json(row: Any, office: Office) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in dict(row).items():
        out[key] = iso(value, office) if hasattr(value, "astimezone") else value
    return out


@routes.get("/api/v1/offices/{office}/schedule")
async def schedule(request: web.Request) -> web.Response:
    await authorise(request, Permission.VIEW_SCHEDULE)
    pool = request.app[POOL_KEY]
    raw = request.query.get("date")
    day: date | None = day_param(raw, "date") if raw is not None else None
    if day is None:
        async with pool.acquire() as conn:
            office = await office_or_404(conn, request.match_info["office"])
        day = local_date(request.app[CLOCK_KEY](), office.zone)
    result = await day_schedule(pool, request.match_info["office"], day)
    office = result.office
    return web.json_response(
        {
            "office": office.id,
            "date": result.day.isoformat(),
            "timezone": office.timezone,
            "bookings": [entry_json(e, office) for e in result.entries],
            "load": [
                {"start": iso(x.starts_at, office), "booked": x.booked, "counters": x.counters}
                for x in result.load
            ],
        }
    )


@routes.post("/api/v1/offices/{office}/bookings/{reference}/status")
async def set_status(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.CHANGE_STATUS)
    reference = parse_reference(request.match_info["reference"])
    body = await json_body(request)
    text_members(body, {"reason": MAX_REASON_LENGTH})
    target, reason = parse_office_action(body.get("status"), body.get("reason"))
    booking = await change_status(
        request.app[POOL_KEY],
        request.match_info["office"],
        reference,
        target,
        reason,
        member,
        request.app[CLOCK_KEY](),
        feedback_delay=request.app[SETTINGS_KEY].feedback_delay,
        rules=bookings.Rules.of(request.app[SETTINGS_KEY]),
    )
    history = await booking_history(request.app[POOL_KEY], booking.office_id, booking.reference)
    return web.json_response(_booking_json(history))


def _booking_json(history: BookingHistory) -> dict[str, Any]:
    """A booking as staff see it: document masked, with the cancel reason."""
    b = history.booking
    return {
        **booking_fields(b, history.office),
        "document_number": mask_document(b.document_number),
        "cancel_reason": b.cancel_reason,
    }


@routes.get("/api/v1/offices/{office}/bookings/{reference}")
async def booking(request: web.Request) -> web.Response:
    await authorise(request, Permission.VIEW_BOOKING)
    reference = parse_reference(request.match_info["reference"])
    history = await booking_history(request.app[POOL_KEY], request.match_info["office"], reference)
    body = _booking_json(history)
    body["messages"] = [_record_json(m, history.office) for m in history.messages]
    body["audit"] = [
        {
            "at": iso(a["at"], history.office),
            "actor": a["actor_kind"],
            "actor_id": a["actor_id"],
            "actor_email": a["actor_email"],
            "action": a["action"],
            "before": a["before_status"],
            "after": a["after_status"],
        }
        for a in history.audit
    ]
    return web.json_response(body)


@routes.get("/api/v1/offices/{office}/stats")
async def stats(request: web.Request) -> web.Response:
    await authorise(request, Permission.VIEW_STATS)
    pool = request.app[POOL_KEY]
    raw = request.query.get("week")
    if raw:
        monday = parse_week(raw)
        if monday is None:
            raise errors.ValidationFailed({"week": N_("Enter a week as YYYY-Www, like 2027-W05.")})
    else:
        async with pool.acquire() as conn:
            office = await office_or_404(conn, request.match_info["office"])
        monday = week_of(local_date(request.app[CLOCK_KEY](), office.zone))
    week = await week_stats(
        pool,
        request.match_info["office"],
        monday,
        request.app[SETTINGS_KEY].sms_price_per_segment,
    )
    s = week.stats
    return web.json_response(
        {
            "office": week.office.id,
            "week": week_label(week.monday),
            "appointments": s.appointments,
            "bookings_made": s.bookings_made,
            "cancellations": s.cancellations,
            "no_shows": s.no_shows,
            "attended": s.attended,
            "no_show_rate": s.no_show_rate,
            "median_lead_time_hours": s.median_lead_time_hours,
            "sms_segments": s.sms_segments,
            "sms_estimated_cost": s.sms_cost,
            "whatsapp_messages": s.whatsapp,
            "satisfaction": _satisfaction_json(week.feedback.overall),
            "satisfaction_by_service": {
                service: _satisfaction_json(x) for service, x in week.feedback.by_service.items()
            },
            "comments": week.feedback.comments,
        }
    )


def _satisfaction_json(x: Satisfaction) -> dict[str, Any]:
    return {
        "responses": x.responses,
        "average_rating": x.average,
        "came_back_share": x.came_back_share,
    }
