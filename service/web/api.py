"""JSON API under /api/v1. Handlers parse, call one use case, render."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from aiohttp import web

from service import bookings
from service.domain import errors, fields
from service.domain.booking import booking_window, manage_url, normalise_reference
from service.domain.errors import N_
from service.domain.mobile_day import MobileDay, at_venue
from service.domain.models import LANGUAGES, Booking, Office, Service
from service.domain.validation import RawDetails
from service.store import mobile_days as mobile_day_store
from service.web import limits
from service.web.inputs import day_param, json_body
from service.web.keys import CLOCK_KEY, METRICS_KEY, POOL_KEY, SETTINGS_KEY
from service.web.readcache import read_cache

routes = web.RouteTableDef()

MAX_AVAILABILITY_DAYS = 62
# Where slots are (availability) or a booking moves (reschedule).
SITE_PROBLEM = N_("Give office, or the id of one of the office's mobile days.")
# A booking request's text members (null: not given), each with its longest
# accepted length before any trimming; the OpenAPI document says the same.
BOOKING_TEXT: dict[str, int | None] = {
    "name": fields.CITIZEN_NAME_MAX,
    "phone": None,
    "phone_country": None,
    "email": fields.EMAIL_MAX,
    "language": None,
    "document_number": None,
    "channel": None,
}


def iso(instant: datetime, office: Office) -> str:
    """An instant in the office's zone, with its offset (2027-03-15T09:00:00+01:00)."""
    return instant.astimezone(office.zone).isoformat()


def office_json(office: Office) -> dict[str, Any]:
    return {
        "id": office.id,
        "kind": office.kind,
        "name": office.name,
        "city": office.city,
        "country": office.country,
        "timezone": office.timezone,
    }


def service_json(service: Service) -> dict[str, Any]:
    return {
        "id": service.id,
        "name": service.name,
        "duration_minutes": service.duration_minutes,
        "document_required": service.document_required,
    }


def booking_fields(booking: Booking, office: Office) -> dict[str, Any]:
    """The fields a booking has in the citizen's and the office's JSON alike,
    first in both."""
    return {
        "reference": booking.reference,
        "status": booking.status,
        "office": booking.office_id,
        "service": booking.service_id,
        "start": iso(booking.starts_at, office),
        "end": iso(booking.ends_at, office),
        "timezone": office.timezone,
        "name": booking.citizen_name,
        "phone": booking.phone,
        "email": booking.email,
    }


def booking_json(booking: Booking, office: Office) -> dict[str, Any]:
    """A booking as its citizen sees it, document number in full; a held one
    says until when its seat is kept."""
    return {
        **booking_fields(booking, office),
        "language": booking.language,
        "document_number": booking.document_number,
        "channel": booking.message_channel,
        "hold_expires_at": iso(booking.hold_expires_at, office)
        if booking.hold_expires_at is not None and booking.status == "held"
        else None,
    }


def code_json(state: bookings.CodeState) -> dict[str, Any]:
    """Where a held booking's code went, until when its seat is kept, and
    when another code may be asked for (null: no more)."""
    zone = ZoneInfo(state.timezone)
    return {
        "channel": state.channel,
        "to": state.destination,
        "attempts_left": state.attempts_left,
        "hold_expires_at": state.hold_expires_at.astimezone(zone).isoformat(),
        "next_resend_at": state.next_resend_at.astimezone(zone).isoformat()
        if state.next_resend_at
        else None,
    }


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def manage_link(request: web.Request) -> tuple[str, str]:
    """The reference in the path and the manage token sent with it; 401 when
    either cannot be one (as when they do not match: bookings.authorise)."""
    token = bearer(request)
    reference = normalise_reference(request.match_info["reference"])
    if token is None or reference is None:
        raise errors.manage_link_refused()
    return reference, token


def parse_reference(raw: str) -> str:
    reference = normalise_reference(raw)
    if reference is None:
        raise errors.booking_not_found()
    return reference


def parse_slot_id(value: object) -> int:
    if not fields.is_id(value):
        raise errors.ValidationFailed({"slot_id": N_("Choose a time slot.")})
    assert isinstance(value, int)
    return value


def text_members(body: dict[str, Any], limits: dict[str, int | None]) -> None:
    """422 on each member of `limits` that is given (not null) but is not
    text, or is longer than its limit."""
    wrong: dict[str, str] = {}
    for name, longest in limits.items():
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            wrong[name] = N_("Send this as text.")
        elif longest is not None and len(value) > longest:
            wrong[name] = N_("This is longer than the service accepts.")
    if wrong:
        raise errors.ValidationFailed(wrong)


async def load_office(request: web.Request) -> Office:
    office = await read_cache(request).office(request.match_info["office"])
    if office is None:
        raise errors.office_not_found()
    return office


@routes.get("/api/v1/offices")
async def list_offices(request: web.Request) -> web.Response:
    offices = await read_cache(request).offices()
    return web.json_response([office_json(o) for o in offices])


def mobile_day_json(mobile_day: MobileDay) -> dict[str, Any]:
    zone = mobile_day.zone
    return {
        "id": mobile_day.id,
        "office": mobile_day.office_id,
        "town": mobile_day.town,
        "country": mobile_day.country,
        "address": mobile_day.address,
        "timezone": mobile_day.timezone,
        "dates": [d.isoformat() for d in mobile_day.dates],
        "hours": [
            {
                "date": h.day.isoformat(),
                "opens": h.opens_at.strftime("%H:%M"),
                "closes": h.closes_at.strftime("%H:%M"),
            }
            for h in mobile_day.hours
        ],
        "services": list(mobile_day.service_ids),
        "booking_opens_at": mobile_day.booking_opens_at.astimezone(zone).isoformat(),
    }


@routes.get("/api/v1/mobile-days")
async def list_mobile_days(request: web.Request) -> web.Response:
    """Upcoming mobile consular days of every consulate, soonest first."""
    async with request.app[POOL_KEY].acquire() as conn:
        upcoming = await mobile_day_store.upcoming(conn, request.app[CLOCK_KEY]())
    return web.json_response([mobile_day_json(m) for m in upcoming])


@routes.get("/api/v1/offices/{office}/services")
async def list_services(request: web.Request) -> web.Response:
    office = await load_office(request)
    services = await read_cache(request).services(office.id)
    return web.json_response([service_json(s) for s in services])


@routes.get("/api/v1/offices/{office}/availability")
async def availability(request: web.Request) -> web.Response:
    await limits.check(request, "availability")
    # The same bytes for every reader of the address, kept by the read
    # cache under the bound of its pages (service.web.readcache).
    cache, key = read_cache(request), ("api", request.raw_path)
    office_id = request.match_info["office"]
    body = cache.kept_page(key, office_id) or await cache.page(
        key, office_id, lambda: availability_json(request)
    )
    return web.Response(body=body, content_type="application/json")


async def availability_json(request: web.Request) -> bytes:
    cache = read_cache(request)
    office = await load_office(request)
    query = request.query
    problems: dict[str, str] = {}
    first = last = None
    try:
        first = day_param(query.get("from"), "from")
    except errors.ValidationFailed as e:
        problems.update(e.fields)
    try:
        last = day_param(query.get("to"), "to")
    except errors.ValidationFailed as e:
        problems.update(e.fields)
    if first and last and not 0 <= (last - first).days < MAX_AVAILABILITY_DAYS:
        problems["to"] = N_("Choose an end date on or after the start, at most 62 days later.")
    if not query.get("service"):
        problems["service"] = N_("Choose a service.")
    site = query.get("site", "all")
    if site not in ("all", "office") and fields.parse_id(site) is None:
        problems["site"] = SITE_PROBLEM
    if problems or first is None or last is None:
        raise errors.ValidationFailed(problems)
    service = await cache.service(office.id, query["service"])
    if service is None:
        raise errors.service_not_found()
    now = request.app[CLOCK_KEY]()
    window = booking_window(now, service.earliest_hours, service.latest_days)
    # Where the service can be booked now: the office, and its mobile days
    # open for booking that offer it (each read on its own venue's days).
    sites: list[tuple[Office, MobileDay | None]] = [(office, None)] + [
        (at_venue(office, m), m)
        for m in await cache.mobile_days(office.id)
        if service.id in m.service_ids and m.open_for_booking(now)
    ]
    if site == "office":
        sites = sites[:1]
    elif site != "all":
        sites = [(o, m) for o, m in sites if m is not None and str(m.id) == site]
        if not sites:
            raise errors.NotFound(
                "mobile_day_not_found", N_("This mobile consular day is not open for booking.")
            )
    parts: list[bytes] = []
    for seen_from, mobile_day in sites:
        days = await cache.days(
            seen_from, service.id, first, last, mobile_day.id if mobile_day else None
        )
        # The slots' JSON was made when their day was read: only joined here.
        parts.extend(day.free_json(window.earliest, window.latest) for day in days)
    head = json.dumps(
        {
            "office": office.id,
            "service": service.id,
            "timezone": office.timezone,
            "mobile_days": [
                {"id": m.id, "town": m.town, "address": m.address, "timezone": m.timezone}
                for _, m in sites
                if m is not None
            ],
        }
    )
    slots = b", ".join(part for part in parts if part)
    return b"".join((head[:-1].encode(), b', "slots": [', slots, b"]}"))


@routes.post("/api/v1/bookings")
async def create_booking(request: web.Request) -> web.Response:
    await limits.check(request, "book")
    body = await json_body(request)
    text_members(body, BOOKING_TEXT)
    if body.get("language") not in (None, *LANGUAGES):
        raise errors.ValidationFailed({"language": N_("Choose one of the languages in the list.")})
    slot_id = parse_slot_id(body.get("slot_id"))
    service_id = body.get("service")
    if not isinstance(service_id, str) or not service_id:
        raise errors.ValidationFailed({"service": N_("Choose a service.")})
    settings = request.app[SETTINGS_KEY]
    attempt = bookings.book(
        request.app[POOL_KEY],
        slot_id=slot_id,
        service_id=service_id,
        details=RawDetails(
            name=body.get("name"),
            phone=body.get("phone"),
            phone_country=body.get("phone_country"),
            email=body.get("email"),
            language=body.get("language"),
            document_number=body.get("document_number"),
            channel=body.get("channel"),
        ),
        secret_key=settings.secret_key,
        now=request.app[CLOCK_KEY](),
        rules=bookings.Rules.of(settings),
    )
    booked = await request.app[METRICS_KEY].count_booking(attempt)
    payload = booking_json(booked.booking, booked.office)
    payload["manage_token"] = booked.manage_token
    payload["manage_url"] = manage_url(
        settings.base_url, booked.booking.reference, booked.manage_token
    )
    if booked.booking.status == "held":
        async with request.app[POOL_KEY].acquire() as conn:
            state = await bookings.code_state(conn, booked.booking)
        payload["verification"] = code_json(state)
    return web.json_response(payload, status=201)


@routes.get("/api/v1/bookings/{reference}")
async def get_booking(request: web.Request) -> web.Response:
    await limits.check(request, "manage")
    reference, token = manage_link(request)
    context = await bookings.view(
        request.app[POOL_KEY], reference, token, request.app[SETTINGS_KEY].secret_key
    )
    return web.json_response(booking_json(context.booking, context.office))


@routes.post("/api/v1/bookings/{reference}/cancel")
async def cancel_booking(request: web.Request) -> web.Response:
    await limits.check(request, "cancel")
    reference, token = manage_link(request)
    context = await bookings.cancel(
        request.app[POOL_KEY],
        reference,
        token,
        request.app[SETTINGS_KEY].secret_key,
        request.app[CLOCK_KEY](),
        rules=bookings.Rules.of(request.app[SETTINGS_KEY]),
    )
    return web.json_response(booking_json(context.booking, context.office))


@routes.post("/api/v1/bookings/{reference}/reschedule")
async def reschedule_booking(request: web.Request) -> web.Response:
    await limits.check(request, "reschedule")
    reference, token = manage_link(request)
    body = await json_body(request)
    slot_id = parse_slot_id(body.get("slot_id"))
    context = await bookings.reschedule(
        request.app[POOL_KEY],
        reference,
        token,
        request.app[SETTINGS_KEY].secret_key,
        slot_id,
        request.app[CLOCK_KEY](),
        rules=bookings.Rules.of(request.app[SETTINGS_KEY]),
        site=move_site(body.get("site", "same")),
    )
    return web.json_response(booking_json(context.booking, context.office))


def move_site(raw: object) -> int | Literal["same"] | None:
    """Where a move goes: absent, the booking's own site; "office", the
    office's own times; a mobile day's id, that day's times."""
    if raw in ("same", "office"):
        return None if raw == "office" else "same"
    if isinstance(raw, int) and not isinstance(raw, bool) and fields.ID_MIN <= raw <= fields.ID_MAX:
        return raw
    raise errors.ValidationFailed({"site": SITE_PROBLEM})


@routes.post("/api/v1/bookings/{reference}/verify")
async def verify_booking(request: web.Request) -> web.Response:
    await limits.check(request, "verify")
    reference, token = manage_link(request)
    body = await json_body(request)
    context = await bookings.verify(
        request.app[POOL_KEY],
        reference,
        token,
        body.get("code"),
        request.app[SETTINGS_KEY].secret_key,
        request.app[CLOCK_KEY](),
        rules=bookings.Rules.of(request.app[SETTINGS_KEY]),
    )
    return web.json_response(booking_json(context.booking, context.office))


@routes.post("/api/v1/bookings/{reference}/resend")
async def resend_code(request: web.Request) -> web.Response:
    await limits.check(request, "resend")
    reference, token = manage_link(request)
    settings = request.app[SETTINGS_KEY]
    state = await bookings.resend(
        request.app[POOL_KEY],
        reference,
        token,
        settings.secret_key,
        request.app[CLOCK_KEY](),
        rules=bookings.Rules.of(settings),
    )
    return web.json_response(code_json(state), status=202)
