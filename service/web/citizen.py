"""HTML pages for citizens: choose, book, confirm, manage. Work without JavaScript.

Handlers parse, call the booking use cases of service/bookings.py (the only
booking path) and render. Pages under /b/{reference}/{token} carry the manage
token in their URL: they are sent with `Referrer-Policy: no-referrer` and
`Cache-Control: no-store`, and the token is never put in a cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, NoReturn, Protocol

import aiohttp_jinja2
import asyncpg
import segno
from aiohttp import web
from markupsafe import Markup

from service import bookings, draw
from service.domain import errors
from service.domain.booking import (
    Status,
    booking_window,
    calendar_uid,
    can_cancel,
    can_reschedule,
    manage_url,
    normalise_reference,
)
from service.domain.calendar import local_date
from service.domain.choosing import PartOfDay, group_by_part, pick_day
from service.domain.errors import N_
from service.domain.fields import parse_day, parse_id
from service.domain.ics import CalendarEvent, write_calendar
from service.domain.masking import mask_email, mask_phone
from service.domain.mobile_day import MobileDay, at_venue
from service.domain.models import Booking, Office, Service, Slot
from service.domain.office_day import EXCEPTIONAL_CLOSURE
from service.domain.phone import can_receive_sms, international_format, is_country, parse_phone
from service.domain.practical import opening_hours
from service.domain.validation import RawDetails, validate_details
from service.office import documents
from service.office.queue import place_in_queue
from service.store import form_keys
from service.store import mobile_days as mobile_day_store
from service.store import offices as office_store
from service.store import slots as slot_store
from service.web import i18n, limits
from service.web import mobile as mobile_pages
from service.web.errors import refusal_text, retry_after_header
from service.web.keys import CLOCK_KEY, METRICS_KEY, POOL_KEY, SETTINGS_KEY
from service.web.labels import CITIZEN_STATUS, LABELS
from service.web.readcache import ReadCache, read_cache
from service.web.security import PRIVATE_HEADERS
from service.web.templating import (
    explicit_language,
    language_context,
    message_languages,
    request_language,
)

routes = web.RouteTableDef()

# How long a resubmitted form may still open the booking it made.
FORM_KEY_REPLAY = timedelta(hours=2)
ALTERNATIVES = 6
_FORM_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{32,128}$")
_PREFIX_RE = re.compile(r"^[A-Z]{2,5}$")
_SLOT_REFUSALS = frozenset(
    {"slot_full", "too_late", "not_open_yet", "slot_not_found", "mobile_day_not_open"}
)
_NO_LONGER_FREE = N_("This time is no longer available. Please choose another time.")
# The citizen's details, as the booking form and the draw's request form
# ask them (templates/citizen/_details.html), where their messages go too.
DETAIL_FIELDS = (
    "name",
    "phone_country",
    "phone",
    "email",
    "channel",
    "document_number",
    "language",
)


# --------------------------------------------------------------------------- helpers


def _now(request: web.Request) -> datetime:
    return request.app[CLOCK_KEY]()


def _rules(request: web.Request) -> bookings.Rules:
    return bookings.Rules.of(request.app[SETTINGS_KEY])


def waitlist_url(request: web.Request, service: Service) -> str | None:
    """The form to join the service's waiting list, when it has one (an
    instant service, the list turned on: WAITLIST_DAYS)."""
    if service.allocation_mode != "instant" or request.app[SETTINGS_KEY].waitlist_days <= 0:
        return None
    return f"/offices/{service.office_id}/{service.id}/waitlist"


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    language: str | None = None,
    private: bool = False,
) -> web.Response:
    merged = dict(context)
    if language is not None:
        merged.update(language_context(request, language))
    response = aiohttp_jinja2.render_template(template, request, merged, status=status)
    if language is not None:
        response.headers["Content-Language"] = language
    if private:
        response.headers.update(PRIVATE_HEADERS)
    return response


def see_other(location: str, *, private: bool = False) -> NoReturn:
    raise web.HTTPSeeOther(location, headers=PRIVATE_HEADERS if private else None)


def form_text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def raw_details(values: Mapping[str, str]) -> RawDetails:
    """The details typed in a form of DETAIL_FIELDS."""
    return RawDetails(
        name=values["name"],
        phone=values["phone"],
        phone_country=values["phone_country"],
        email=values["email"],
        language=values["language"],
        document_number=values["document_number"],
        # A staff form does not ask it: SMS when there is a phone.
        channel=values.get("channel"),
    )


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _form_key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def form_manage_token(form_key: str, secret_key: str) -> str:
    """The manage token of the booking a form makes, derived from its one-time key.

    A second submission of the same form (double click: the browser drops the
    first answer) can then be sent to the booking's pages; the token is as
    strong as the 256-bit key and cannot be computed without the secret key.
    """
    digest = hmac.new(secret_key.encode(), b"form-token:" + form_key.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def qr_svg(reference: str, label: str) -> Markup:
    """The reference as an inline SVG QR code, for the counter's scanner."""
    svg: str = segno.make(reference, error="m", micro=False).svg_inline(
        scale=5, title=label, omitsize=True
    )
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))  # noqa: S704 - segno output


# --------------------------------------------------------------------------- week view


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    times: list[Slot] = field(default_factory=list)
    closure: str | None = None  # reason, in the reader's language
    state: str = "closed"  # open | full | unavailable | closed | closure


@dataclass(frozen=True, slots=True)
class Week:
    start: date
    days: list[Day]
    previous: date | None
    next: date | None

    @property
    def bookable(self) -> int:
        return sum(len(d.times) for d in self.days)


def build_week(
    start: date,
    slots: list[Slot],
    closures: Mapping[date, Mapping[str, str]],
    office: Office,
    earliest: datetime,
    latest: datetime,
    language: str,
) -> list[Day]:
    """Seven days from `start`, each with its bookable times or why it has none."""
    per_day: dict[date, list[Slot]] = {}
    for slot in slots:
        per_day.setdefault(local_date(slot.starts_at, office.zone), []).append(slot)
    days: list[Day] = []
    for offset in range(7):
        day = start + timedelta(days=offset)
        if day in closures:
            reason = closures[day].get(language) or i18n.gettext(language, EXCEPTIONAL_CLOSURE)
            days.append(Day(day, closure=reason, state="closure"))
            continue
        planned = per_day.get(day, [])
        in_window = [s for s in planned if earliest <= s.starts_at <= latest]
        free = [s for s in in_window if s.remaining > 0]
        if free:
            state = "open"
        elif in_window:
            state = "full"
        elif planned:
            state = "unavailable"
        else:
            state = "closed"
        days.append(Day(day, times=free, state=state))
    return days


# How far the first look for a free day goes: where the answer usually is.
_FIRST_LOOK = timedelta(days=14)


async def _first_free_day(
    cache: ReadCache,
    office: Office,
    service: Service,
    earliest: datetime,
    latest: datetime,
    mobile_day_id: int | None,
) -> date | None:
    first, last = local_date(earliest, office.zone), local_date(latest, office.zone)
    near = min(local_date(earliest + _FIRST_LOOK, office.zone), last)
    for begin, end in ((first, near), (near + timedelta(days=1), last)):
        if begin > end:
            continue
        for day in await cache.days(office, service.id, begin, end, mobile_day_id):
            free = day.free(earliest, latest)
            if free:
                return local_date(free[0].starts_at, office.zone)
    return None


async def load_week(
    cache: ReadCache,
    office: Office,
    service: Service,
    now: datetime,
    requested: str | None,
    language: str,
    mobile_day_id: int | None = None,
) -> Week:
    """The week asked for (or the one with the first free time) of a
    service's times at the office, or at one of its mobile days (`office`
    then seen from the venue)."""
    window = booking_window(now, service.earliest_hours, service.latest_days)
    first_week = _monday(local_date(now, office.zone))
    last_week = _monday(local_date(window.latest, office.zone))
    requested_day = parse_day(requested)
    start = _monday(requested_day) if requested_day else None
    if start is None:
        free_day = await _first_free_day(
            cache, office, service, window.earliest, window.latest, mobile_day_id
        )
        start = _monday(free_day) if free_day else first_week
    start = min(max(start, first_week), last_week)
    last = start + timedelta(days=6)
    slots = [
        s
        for day in await cache.days(office, service.id, start, last, mobile_day_id)
        for s in day.slots
    ]
    # A mobile day's closed days are its venue's holidays, left out of its plan.
    closures = await cache.closures(office.id, start, last) if mobile_day_id is None else {}
    days = build_week(start, slots, closures, office, window.earliest, window.latest, language)
    return Week(
        start=start,
        days=days,
        previous=start - timedelta(days=7) if start > first_week else None,
        next=start + timedelta(days=7) if start < last_week else None,
    )


@dataclass(frozen=True, slots=True)
class Chooser:
    """A week page: its days, the one opened, that day's times by part of day,
    and on the first page (no week or day asked for) the first free time."""

    week: Week
    day: Day | None
    parts: list[PartOfDay[Slot]]
    first: Slot | None
    url: str


def week_to_load(query: Mapping[str, str]) -> str | None:
    """The `week` argument of load_week for a page asked with ?day= or ?week=."""
    return query.get("day") or query.get("week")


def shape_chooser(
    week: Week,
    office: Office,
    query: Mapping[str, str],
    url: str,
    *,
    exclude_slot: int | None = None,
) -> Chooser:
    """Open a day of `week` for the page at `url`. `exclude_slot` (the time a
    rescheduled booking has now) is not offered."""
    if exclude_slot is not None:
        days = []
        for d in week.days:
            times = [t for t in d.times if t.id != exclude_slot]
            state = "full" if d.state == "open" and not times else d.state
            days.append(replace(d, times=times, state=state))
        week = replace(week, days=days)
    chosen = pick_day([(d.day, len(d.times)) for d in week.days], parse_day(query.get("day")))
    day = next((d for d in week.days if d.day == chosen), None)
    landing = not query.get("day") and not query.get("week")
    first = next((t for d in week.days for t in d.times), None) if landing else None
    return Chooser(
        week=week,
        day=day,
        parts=group_by_part(day.times, office.timezone) if day else [],
        first=first,
        url=url,
    )


async def _read_office_service(request: web.Request) -> tuple[Office, Service]:
    """The office and service of a page that only reads (kept by the read cache)."""
    cache = read_cache(request)
    office = await cache.office(request.match_info["office"])
    if office is None:
        raise errors.office_not_found()
    service = await cache.service(office.id, request.match_info["service"])
    if service is None:
        raise errors.service_not_found()
    return office, service


async def _office_service(request: web.Request, conn: asyncpg.Connection) -> tuple[Office, Service]:
    office = await office_store.get_office(conn, request.match_info["office"])
    if office is None:
        raise errors.office_not_found()
    service = await office_store.get_service(conn, office.id, request.match_info["service"])
    if service is None:
        raise errors.service_not_found()
    return office, service


# --------------------------------------------------------------------------- choose


@routes.get("/", name="citizen_start")
async def start(request: web.Request) -> web.Response:
    language = request_language(request)

    async def page() -> web.Response:
        offices = await read_cache(request).offices()
        by_country: dict[str, list[Office]] = {}
        prefectures: list[Office] = []
        for office in offices:
            if office.kind == "consulate":
                by_country.setdefault(office.country, []).append(office)
            else:
                prefectures.append(office)
        countries = sorted(
            ((i18n.country_name(code, language), group) for code, group in by_country.items()),
            key=lambda item: i18n.collation_key(item[0]),
        )
        prefectures.sort(key=lambda o: i18n.collation_key(o.name[language]))
        async with request.app[POOL_KEY].acquire() as conn:
            mobile = await mobile_pages.upcoming_views(conn, _now(request), language)
        # Those open for booking near the top, by country; the others below.
        open_by_country: dict[str, list[mobile_pages.MobileDayView]] = {}
        for view in mobile:
            if view.open:
                open_by_country.setdefault(view.day.country, []).append(view)
        return render(
            request,
            "citizen/start.html",
            {
                "countries": countries,
                "prefectures": prefectures,
                "mobile_open": sorted(
                    (
                        (i18n.country_name(code, language), views)
                        for code, views in open_by_country.items()
                    ),
                    key=lambda item: i18n.collation_key(item[0]),
                ),
                "mobile_soon": [v for v in mobile if not v.open],
            },
        )

    return await kept_page(request, language, None, page)


async def kept_page(
    request: web.Request,
    language: str,
    office_id: str | None,
    page: Callable[[], Awaitable[web.Response]],
) -> web.Response:
    """A public page, the same for every reader of its address in a language,
    from the read cache's rendered pages (service.web.readcache)."""

    async def rendered() -> bytes:
        body = (await page()).body
        assert isinstance(body, bytes)
        return body

    # The address as it came: building the normalised one costs more than
    # the kept page; two spellings of one address only keep it twice.
    key = (request.raw_path, language)
    cache = read_cache(request)
    body = cache.kept_page(key, office_id) or await cache.page(key, office_id, rendered)
    return web.Response(body=body, content_type="text/html", charset="utf-8")


@routes.get("/offices/{office}")
async def office_page(request: web.Request) -> web.Response:
    """The office's services, each with what it takes, and how to come."""
    language = request_language(request)
    async with request.app[POOL_KEY].acquire() as conn:
        office = await office_store.get_office(conn, request.match_info["office"])
        if office is None:
            raise errors.office_not_found()
        services = await office_store.list_services(conn, office.id)
        info = await office_store.office_info(conn, office.id)
        rules = await office_store.hours_rules(conn, office.id)
        mobile = await mobile_pages.upcoming_views(conn, _now(request), language, office.id)
    return render(
        request,
        "citizen/office.html",
        {
            "office": office,
            "mobile_days": mobile,
            "services": services,
            "info": info,
            "phone_display": international_format(info.phone) if info.phone else None,
            "hours": opening_hours(rules, local_date(_now(request), office.zone)),
            "zone": i18n.zone_label(office.country, office.city[language], language),
            "offered": [i18n.LANGUAGE_NAMES[code] for code in office.languages],
            **language_context(request, language, office.languages),
        },
    )


@routes.get("/o/{prefix}")
async def office_short_link(request: web.Request) -> web.Response:
    """The office's page by its reference prefix: the short "book again" link
    of cancellation messages (service.domain.booking.book_again_url)."""
    prefix = request.match_info["prefix"].upper()
    office = None
    if _PREFIX_RE.match(prefix):
        async with request.app[POOL_KEY].acquire() as conn:
            office = await office_store.get_office_by_prefix(conn, prefix)
    if office is None:
        raise errors.office_not_found()
    see_other(f"/offices/{office.id}")


@routes.get("/offices/{office}/{service}")
async def slots_page(request: web.Request) -> web.Response:
    await limits.check(request, "availability")
    language = request_language(request)

    async def page() -> web.Response:
        office, service = await _read_office_service(request)
        if service.allocation_mode == "draw":
            # Its seats are never on sale: one asks for a seat in its draw.
            see_other(f"/offices/{office.id}/{service.id}/draw")
        week = await load_week(
            read_cache(request),
            office,
            service,
            _now(request),
            week_to_load(request.query),
            language,
        )
        url = f"/offices/{office.id}/{service.id}"
        return render(
            request,
            "citizen/slots.html",
            {
                "office": office,
                "service": service,
                "chooser": shape_chooser(week, office, request.query, url),
                "time_url": f"{url}/book?slot=",
                "waitlist_url": waitlist_url(request, service),
                "zone": i18n.zone_label(office.country, office.city[language], language),
                **language_context(request, language, office.languages),
            },
        )

    return await kept_page(request, language, request.match_info["office"], page)


# --------------------------------------------------------------------------- book


async def _alternatives(
    conn: asyncpg.Connection,
    office: Office,
    service: Service,
    now: datetime,
    after: datetime,
    mobile_day_id: int | None = None,
) -> list[Slot]:
    """Other free times, at the office or at the mobile day of the time
    first chosen (none there before its bookings open)."""
    if mobile_day_id is not None and not await mobile_day_store.open_for_booking(
        conn, mobile_day_id, now
    ):
        return []
    window = booking_window(now, service.earliest_hours, service.latest_days)
    # After a time that cannot be booked yet, the first bookable ones.
    begin = max(after, window.earliest) if after <= window.latest else window.earliest
    found = await slot_store.available(
        conn, office.id, service.id, begin, window.latest + timedelta(seconds=1),
        window.earliest, window.latest, mobile_day_id,
    )  # fmt: skip
    return found[:ALTERNATIVES]


def book_context(
    request: web.Request,
    office: Office,
    service: Service,
    slot: Slot | None,
    values: Mapping[str, str],
    form_key: str,
    *,
    field_errors: Mapping[str, str] | None = None,
    problem: str | None = None,
    alternatives: list[Slot] | None = None,
) -> dict[str, Any]:
    language = request_language(request)
    phone_display = None
    phone_country = values.get("phone_country") or office.country
    if values.get("phone") and is_country(phone_country):
        parsed = parse_phone(values["phone"], phone_country)
        phone_display = international_format(parsed) if parsed else None
    return {
        "office": office,
        "service": service,
        "slot": slot,
        "values": values,
        "form_key": form_key,
        "errors": dict(field_errors or {}),
        "problem": problem,
        "alternatives": alternatives or [],
        "countries": i18n.phone_countries(language),
        "phone_country": phone_country,
        "phone_display": phone_display,
        "languages": message_languages(office.languages),
        "zone": i18n.zone_label(office.country, office.city[language], language),
        **language_context(request, language, office.languages),
        "field_order": DETAIL_FIELDS,
        "channels": channel_options(request, phone=True, email=True),
        "waitlist_url": waitlist_url(request, service),
    }


def channel_options(
    request: web.Request, *, phone: bool, email: bool, whatsapp_stopped: bool = False
) -> list[str]:
    """The channels a citizen may choose for their messages: WhatsApp only
    when it is configured (service.config.Settings.whatsapp_enabled), and
    not for a number that asked for no more (`whatsapp_stopped`)."""
    whatsapp = request.app[SETTINGS_KEY].whatsapp_enabled and not whatsapp_stopped
    options = ["sms", "whatsapp"] if phone and whatsapp else ["sms"] if phone else []
    return [*options, "email"] if email else options


@routes.get("/offices/{office}/{service}/book")
async def book_form(request: web.Request) -> web.Response:
    await limits.check(request, "availability")
    now = _now(request)
    language = request_language(request)
    slot_id = parse_id(request.query.get("slot"))
    async with request.app[POOL_KEY].acquire() as conn:
        office, service = await _office_service(request, conn)
        if slot_id:
            await bookings.release_expired_holds(conn, now, slot_id=slot_id, rules=_rules(request))
        slot = await slot_store.get_slot(conn, slot_id) if slot_id else None
        if slot is None or slot.service_id != service.id or slot.office_id != office.id:
            see_other(f"/offices/{office.id}/{service.id}")
        # A mobile day's time: its venue, town and zone.
        office = await mobile_day_store.at_site(conn, office, slot.id)
        window = booking_window(now, service.earliest_hours, service.latest_days)
        problem = None
        alternatives: list[Slot] = []
        if slot.mobile_day_id is not None and not await mobile_day_store.open_for_booking(
            conn, slot.mobile_day_id, now
        ):
            problem = errors.mobile_day_not_open().message
        elif slot.remaining <= 0 or not window.earliest <= slot.starts_at <= window.latest:
            problem = _NO_LONGER_FREE
            alternatives = await _alternatives(
                conn, office, service, now, slot.starts_at, slot.mobile_day_id
            )
    values = dict.fromkeys(DETAIL_FIELDS, "") | {
        "language": language,
        "phone_country": office.country,
    }
    context = book_context(
        request, office, service, slot, values, secrets.token_urlsafe(32),
        problem=problem, alternatives=alternatives,
    )  # fmt: skip
    return render(request, "citizen/book.html", context, private=True)


@routes.post("/offices/{office}/{service}/book")
async def book_submit(request: web.Request) -> web.Response:
    # A form sent back for a typing mistake costs what a read costs: only a
    # form that could book counts toward the booking limit (LIMIT_BOOK), so
    # a family behind one address is not locked out by its typos.
    await limits.check(request, "availability")
    form = await request.post()
    values = {name: form_text(form, name) for name in DETAIL_FIELDS}
    form_key = form_text(form, "form_key")
    if not _FORM_KEY_RE.match(form_key):
        # A form from before this field existed, or a tampered one: it still
        # books, just without protection against a second click.
        form_key = secrets.token_urlsafe(32)
    key_hash = _form_key_hash(form_key)
    settings = request.app[SETTINGS_KEY]
    now = _now(request)
    pool = request.app[POOL_KEY]
    slot_id = parse_id(form_text(form, "slot"))
    async with pool.acquire() as conn:
        office, service = await _office_service(request, conn)
        slot = await slot_store.get_slot(conn, slot_id) if slot_id else None
        if slot is not None:
            office = await mobile_day_store.at_site(conn, office, slot.id)
    if slot is None or slot.office_id != office.id or slot.service_id != service.id:
        async with pool.acquire() as conn:
            alternatives = await _alternatives(conn, office, service, now, now)
        context = book_context(
            request, office, service, None, values, form_key,
            problem=N_("Choose a time slot."), alternatives=alternatives,
        )  # fmt: skip
        return render(request, "citizen/book.html", context, status=422, private=True)
    token = form_manage_token(form_key, settings.secret_key)
    try:
        # Checked before the attempt is counted: a mistake is not an attempt.
        validate_details(raw_details(values), service, office.country, office.sms_countries)
        await limits.check(request, "book")
        attempt = bookings.book(
            pool,
            slot_id=slot.id,
            service_id=service.id,
            details=raw_details(values),
            secret_key=settings.secret_key,
            now=now,
            form_key_hash=key_hash,
            manage_token=token,
            rules=bookings.Rules.of(settings),
        )
        booked = await request.app[METRICS_KEY].count_booking(attempt)
    except errors.ValidationFailed as failed:
        context = book_context(
            request, office, service, slot, values, form_key, field_errors=failed.fields
        )
        return render(request, "citizen/book.html", context, status=422, private=True)
    except errors.TooManyRequests as refused:
        # The form again, with what was typed: the citizen sends it later.
        context = book_context(
            request, office, service, slot, values, form_key,
            problem=refusal_text(request_language(request), refused),
        )  # fmt: skip
        context["slot_kept"] = True  # the time is still free: sent later, it may book
        response = render(request, "citizen/book.html", context, status=429, private=True)
        response.headers.update(retry_after_header(refused))
        return response
    except errors.Refusal as refusal:
        if refusal.code == "already_submitted":
            async with pool.acquire() as conn:
                reference = await form_keys.booking_reference(conn, key_hash, now - FORM_KEY_REPLAY)
            if reference is None:
                context = book_context(
                    request, office, service, slot, values, secrets.token_urlsafe(32),
                    problem=refusal.message,
                )  # fmt: skip
                return render(request, "citizen/book.html", context, status=409, private=True)
            see_other(f"/b/{reference}/{token}/confirmation", private=True)
        if refusal.code in ("already_booked", "household_cap"):
            context = book_context(
                request, office, service, slot, values, form_key,
                field_errors=refusal.fields or {"document_number": refusal.message},
            )  # fmt: skip
            return render(request, "citizen/book.html", context, status=409, private=True)
        if refusal.code not in _SLOT_REFUSALS:
            raise
        async with pool.acquire() as conn:
            alternatives = await _alternatives(
                conn, office, service, now, slot.starts_at, slot.mobile_day_id
            )
        context = book_context(
            request, office, service, slot, values, form_key,
            problem=refusal.message, alternatives=alternatives,
        )  # fmt: skip
        return render(request, "citizen/book.html", context, status=409, private=True)
    base = f"/b/{booked.booking.reference}/{booked.manage_token}"
    if Status(booked.booking.status) is Status.HELD:
        see_other(f"{base}/code", private=True)
    see_other(f"{base}/confirmation", private=True)


# --------------------------------------------------------------------------- manage


async def _booking(request: web.Request) -> bookings.BookingContext:
    reference = normalise_reference(request.match_info["reference"])
    token = request.match_info["token"]
    if reference is None:
        raise errors.booking_not_found()
    try:
        return await bookings.view(
            request.app[POOL_KEY], reference, token, request.app[SETTINGS_KEY].secret_key
        )
    except errors.Refusal:
        # A wrong token and an unknown reference look the same.
        raise errors.booking_not_found() from None


def _manage_language(request: web.Request, ctx: bookings.BookingContext) -> str:
    """A link opened from a message speaks the booking's language unless told otherwise."""
    return request_language(request) if explicit_language(request) else ctx.booking.language


async def _managed(request: web.Request) -> tuple[bookings.BookingContext, str]:
    """The booking a manage page is about, and the language to show it in.
    Counts one try of a manage link for the client's limit."""
    await limits.check(request, "manage")
    ctx = await _booking(request)
    return ctx, _manage_language(request, ctx)


def _booking_page_context(
    request: web.Request, ctx: bookings.BookingContext, language: str
) -> dict[str, Any]:
    booking = ctx.booking
    token = request.match_info["token"]
    now = _now(request)
    active = Status(booking.status) in (Status.HELD, Status.CONFIRMED)
    return {
        "booking": booking,
        "office": ctx.office,
        "service": ctx.service,
        "base": f"/b/{booking.reference}/{token}",
        "manage_link": manage_url(request.app[SETTINGS_KEY].base_url, booking.reference, token),
        "phone_display": international_format(booking.phone) if booking.phone else None,
        "zone": i18n.zone_label(ctx.office.country, ctx.office.city[language], language),
        "qr": qr_svg(booking.reference, i18n.gettext(language, N_("QR code of your reference"))),
        "can_cancel": active and can_cancel(now, booking.starts_at),
        "can_reschedule": Status(booking.status) is Status.CONFIRMED
        # A draw service's seats are the draw's: its bookings keep their time.
        and ctx.service.allocation_mode != "draw"
        and can_reschedule(now, booking.starts_at, ctx.service.reschedule_cutoff_minutes)
        and booking.citizen_reschedules < request.app[SETTINGS_KEY].reschedule_limit,
        "status_label": CITIZEN_STATUS.get(booking.status, booking.status),
        "channels": channel_options(
            request,
            phone=booking.phone is not None,
            email=booking.email is not None,
            whatsapp_stopped=ctx.whatsapp_opted_out,
        ),
        "whatsapp_stopped": ctx.whatsapp_opted_out,
        "errors": {},
    }


CHANNEL_SAVED = N_("Your choice is saved: your next messages go that way.")
_DONE_NOTICES = {
    "cancelled": N_("Your appointment is cancelled."),
    "rescheduled": N_("Your appointment has been moved."),
    "channel": CHANNEL_SAVED,
}


@routes.get("/b/{reference}/{token}/confirmation")
async def confirmation(request: web.Request) -> web.Response:
    ctx, language = await _managed(request)
    if Status(ctx.booking.status) in (Status.HELD, Status.EXPIRED):
        # Not booked until the code comes back: the code page says where it stands.
        see_other(f"/b/{ctx.booking.reference}/{request.match_info['token']}/code", private=True)
    context = _booking_page_context(request, ctx, language)
    context["sent_to"] = _sent_to(ctx.booking)
    return render(request, "citizen/confirmation.html", context, language=language, private=True)


def _sent_to(booking: Booking) -> dict[str, str]:
    """Where the confirmation goes, half hidden: the channels its messages
    are planned on (service.domain.messages.plan_event)."""
    sent: dict[str, str] = {}
    phone_channel = booking.message_channel
    if (
        booking.phone
        and booking.notify_phone
        and phone_channel != "email"
        and can_receive_sms(booking.phone)
    ):
        sent[phone_channel] = mask_phone(booking.phone)
    if booking.email and booking.notify_email:
        sent["email"] = mask_email(booking.email)
    return sent


@routes.get("/b/{reference}/{token}")
async def manage(request: web.Request) -> web.Response:
    ctx, language = await _managed(request)
    if Status(ctx.booking.status) is Status.HELD:
        # A draw's offer is a held booking too, answered on its own page.
        token = request.match_info["token"]
        if await draw.is_offer(request.app[POOL_KEY], ctx.booking.id):
            see_other(f"/d/{ctx.booking.reference}/{token}", private=True)
        see_other(f"/b/{ctx.booking.reference}/{token}/code", private=True)
    context = await _manage_page_context(request, ctx, language)
    context["notice"] = _DONE_NOTICES.get(request.query.get("done", ""))
    return render(request, "citizen/manage.html", context, language=language, private=True)


async def _manage_page_context(
    request: web.Request, ctx: bookings.BookingContext, language: str
) -> dict[str, Any]:
    """What the manage page shows, whether it answers a visit or a form."""
    pool = request.app[POOL_KEY]
    context = _booking_page_context(request, ctx, language)
    # Checked in today: their place in the waiting room, or their call.
    context["place"] = await place_in_queue(pool, ctx.booking, ctx.office, _now(request))
    context["file"] = await documents.citizen_file(pool, ctx.booking.id)
    context["file_labels"] = LABELS["file"]
    context["again"] = f"/o/{ctx.office.reference_prefix}"
    context["notice"] = None
    return context


@routes.post("/b/{reference}/{token}/channel")
async def channel_submit(request: web.Request) -> web.Response:
    ctx, language = await _managed(request)
    form = await request.post()
    token = request.match_info["token"]
    try:
        await bookings.change_channel(
            request.app[POOL_KEY],
            ctx.booking.reference,
            token,
            request.app[SETTINGS_KEY].secret_key,
            form_text(form, "channel"),
            _now(request),
        )
    except errors.ValidationFailed as failed:
        context = await _manage_page_context(request, ctx, language)
        context["errors"] = failed.fields
        return render(
            request, "citizen/manage.html", context, status=422, language=language, private=True
        )
    see_other(f"/b/{ctx.booking.reference}/{token}?done=channel", private=True)


@routes.get("/b/{reference}/{token}/calendar.ics")
async def calendar_file(request: web.Request) -> web.Response:
    ctx, language = await _managed(request)
    body = booking_ics(ctx, language, _now(request), request.app[SETTINGS_KEY].base_url)
    return web.Response(
        body=body,
        content_type="text/calendar",
        charset="utf-8",
        headers={
            **PRIVATE_HEADERS,
            "Content-Disposition": f'attachment; filename="{ctx.booking.reference}.ics"',
        },
    )


def booking_ics(ctx: bookings.BookingContext, language: str, now: datetime, base_url: str) -> bytes:
    """An invitation for the citizen's calendar; UTC instants, no personal data."""
    booking, office, service = ctx.booking, ctx.office, ctx.service
    bring = service.bring.get(language, "")
    lines = [
        i18n.gettext(language, N_("Reference: %(reference)s")) % {"reference": booking.reference}
    ]
    if bring:
        lines.append(i18n.gettext(language, N_("What to bring: %(items)s")) % {"items": bring})
    event = CalendarEvent(
        uid=calendar_uid(booking.reference, base_url),
        stamp=now,
        start=booking.starts_at,
        end=booking.ends_at,
        summary=f"{service.name[language]} · {booking.reference}",
        location=f"{office.name[language]}, {office.address}",
        description="\n".join(lines),
    )
    return write_calendar([event], method="PUBLISH")


@routes.get("/b/{reference}/{token}/cancel")
async def cancel_form(request: web.Request) -> web.Response:
    ctx, language = await _managed(request)
    context = _booking_page_context(request, ctx, language)
    return render(request, "citizen/cancel.html", context, language=language, private=True)


@routes.post("/b/{reference}/{token}/cancel")
async def cancel_submit(request: web.Request) -> web.Response:
    await limits.check(request, "cancel")
    ctx, language = await _managed(request)
    try:
        await bookings.cancel(
            request.app[POOL_KEY],
            ctx.booking.reference,
            request.match_info["token"],
            request.app[SETTINGS_KEY].secret_key,
            _now(request),
            rules=_rules(request),
        )
    except errors.Refusal as refusal:
        context = _booking_page_context(request, ctx, language)
        context["problem"] = refusal.message
        return render(
            request, "citizen/cancel.html", context, status=409, language=language, private=True
        )
    see_other(f"/b/{ctx.booking.reference}/{request.match_info['token']}?done=cancelled",
              private=True)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Site:
    """Where a booking may move: the office itself, or one of its mobile
    days (open for booking, offering the booking's service)."""

    key: str  # "office", or the mobile day's id: the pages' way to name it
    office: Office  # seen from the site (a mobile day's venue, town and zone)
    mobile_day: MobileDay | None

    @property
    def mobile_day_id(self) -> int | None:
        return self.mobile_day.id if self.mobile_day else None


async def _sites(request: web.Request, ctx: bookings.BookingContext) -> tuple[list[Site], Site]:
    """The sites a booking may move to, and its own."""
    cache = read_cache(request)
    base = await cache.office(ctx.booking.office_id)
    assert base is not None
    now = _now(request)
    sites = [Site("office", base, None)] + [
        Site(str(m.id), at_venue(base, m), m)
        for m in await cache.mobile_days(base.id)
        if ctx.service.id in m.service_ids and m.open_for_booking(now)
    ]
    own_key = str(ctx.mobile_day.id) if ctx.mobile_day else "office"
    own = next((site for site in sites if site.key == own_key), None)
    if own is None:
        own = Site(own_key, ctx.office, ctx.mobile_day)
        sites.append(own)
    return sites, own


def _site(sites: list[Site], own: Site, key: str | None) -> Site | None:
    """The site a page or a form names (none named: the booking's own)."""
    if not key:
        return own
    return next((site for site in sites if site.key == key), None)


async def _reschedule_page(
    request: web.Request,
    ctx: bookings.BookingContext,
    language: str,
    *,
    query: Mapping[str, str],
    site_key: str | None = None,
    problem: str | None = None,
    status: int = 200,
) -> web.Response:
    sites, own = await _sites(request, ctx)
    site = _site(sites, own, site_key) or own
    week = await load_week(
        read_cache(request), site.office, ctx.service, _now(request), week_to_load(query),
        language, site.mobile_day_id,
    )  # fmt: skip
    context = _booking_page_context(request, ctx, language)
    url = f"{context['base']}/reschedule"
    if site is not own:
        url = f"{url}/at/{site.key}"
    context.update(
        chooser=shape_chooser(week, site.office, query, url, exclude_slot=ctx.booking.slot_id),
        time_url=f"{context['base']}/reschedule/confirm?"
        + ("" if site is own else f"site={site.key}&")
        + "slot=",
        problem=problem,
        site=site,
        own=own,
        other_sites=[s for s in sites if s is not site],
        site_zone=i18n.zone_label(site.office.country, site.office.city[language], language),
    )
    return render(
        request, "citizen/reschedule.html", context, status=status, language=language,
        private=True,
    )  # fmt: skip


@routes.get("/b/{reference}/{token}/reschedule")
async def reschedule_form(request: web.Request) -> web.Response:
    ctx, language = await _managed(request)
    return await _reschedule_page(request, ctx, language, query=request.query)


@routes.get("/b/{reference}/{token}/reschedule/at/{site}")
async def reschedule_form_at(request: web.Request) -> web.Response:
    """The times of another site: a mobile day of the office, or the office
    itself for a booking at a mobile day."""
    ctx, language = await _managed(request)
    sites, own = await _sites(request, ctx)
    if _site(sites, own, request.match_info["site"]) is None:
        raise errors.NotFound()
    return await _reschedule_page(
        request, ctx, language, query=request.query, site_key=request.match_info["site"]
    )


@routes.get("/b/{reference}/{token}/reschedule/confirm")
async def reschedule_confirm(request: web.Request) -> web.Response:
    """The step between choosing a time and moving to it: from when, to when,
    yes or keep. Nothing moves until its form is sent."""
    ctx, language = await _managed(request)
    context = _booking_page_context(request, ctx, language)
    slot_id = parse_id(request.query.get("slot"))
    site_key = request.query.get("site")
    if not context["can_reschedule"]:
        return await _reschedule_page(request, ctx, language, query={})
    sites, own = await _sites(request, ctx)
    site = _site(sites, own, site_key)
    now = _now(request)
    async with request.app[POOL_KEY].acquire() as conn:
        if slot_id is not None:
            await bookings.release_expired_holds(conn, now, slot_id=slot_id, rules=_rules(request))
        slot = await slot_store.get_slot(conn, slot_id) if slot_id else None
    booking, service = ctx.booking, ctx.service
    if (
        slot is None
        or site is None
        or slot.office_id != booking.office_id
        or slot.service_id != service.id
        or slot.mobile_day_id != site.mobile_day_id
    ):
        return await _reschedule_page(
            request, ctx, language, query={}, site_key=site_key if site else None,
            problem=N_("Choose a time slot."), status=422,
        )  # fmt: skip
    day = {"day": local_date(slot.starts_at, site.office.zone).isoformat()}
    window = booking_window(now, service.earliest_hours, service.latest_days)
    if (
        slot.id == booking.slot_id
        or slot.remaining <= 0
        or not window.earliest <= slot.starts_at <= window.latest
    ):
        return await _reschedule_page(
            request, ctx, language, query=day, site_key=site.key, problem=_NO_LONGER_FREE,
            status=409,
        )  # fmt: skip
    context.update(
        slot=slot,
        day=day["day"],
        site=site,
        own=own,
        site_zone=i18n.zone_label(site.office.country, site.office.city[language], language),
    )
    return render(
        request, "citizen/reschedule_confirm.html", context, language=language, private=True
    )


@routes.post("/b/{reference}/{token}/reschedule")
async def reschedule_submit(request: web.Request) -> web.Response:
    await limits.check(request, "reschedule")
    ctx, language = await _managed(request)
    form = await request.post()
    slot_id = parse_id(form_text(form, "slot"))
    query = {name: form_text(form, name) for name in ("day", "week") if form_text(form, name)}
    sites, own = await _sites(request, ctx)
    site = _site(sites, own, form_text(form, "site"))
    if slot_id is None or site is None:
        return await _reschedule_page(
            request, ctx, language, query=query,
            problem=N_("Choose a time slot."), status=422,
        )  # fmt: skip
    try:
        await bookings.reschedule(
            request.app[POOL_KEY],
            ctx.booking.reference,
            request.match_info["token"],
            request.app[SETTINGS_KEY].secret_key,
            slot_id,
            _now(request),
            rules=bookings.Rules.of(request.app[SETTINGS_KEY]),
            site=site.mobile_day_id,
        )
    except errors.Refusal as refusal:
        problem = next(iter(refusal.fields.values()), refusal.message)
        return await _reschedule_page(
            request, ctx, language, query=query, site_key=site.key, problem=problem, status=409
        )
    see_other(f"/b/{ctx.booking.reference}/{request.match_info['token']}?done=rescheduled",
              private=True)  # fmt: skip


# --------------------------------------------------------------------------- code


async def _code_page(
    request: web.Request,
    ctx: bookings.BookingContext,
    language: str,
    *,
    field_errors: Mapping[str, str] | None = None,
    problem: str | None = None,
    status: int = 200,
    retry_after: int | None = None,
) -> web.Response:
    """The page of a held booking: where the code went, the field to type
    it, another code; or where the booking stands now if it is not held."""
    booking = ctx.booking
    base = f"/b/{booking.reference}/{request.match_info['token']}"
    now = _now(request)
    async with request.app[POOL_KEY].acquire() as conn:
        if booking.hold_expires_at is not None and booking.hold_expires_at <= now:
            await bookings.release_expired_holds(
                conn, now, slot_id=booking.slot_id, rules=_rules(request)
            )
            return _expired_page(request, ctx, language)
        if Status(booking.status) is Status.EXPIRED:
            return _expired_page(request, ctx, language)
        if Status(booking.status) is not Status.HELD:
            see_other(f"{base}/confirmation", private=True)
        state = await bookings.code_state(conn, booking)
    context = _booking_page_context(request, ctx, language)
    context.update(
        code_step_context(request, state, field_errors, problem), entry=None, on_list=False
    )
    response = render(
        request, "citizen/code.html", context, status=status, language=language, private=True
    )
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def code_step_context(
    request: web.Request,
    state: bookings.CodeState,
    field_errors: Mapping[str, str] | None,
    problem: str | None,
) -> dict[str, Any]:
    """What citizen/code.html shows of the code step, for a held booking or
    a draw request waiting for its code."""
    return {
        "state": state,
        "destination": (
            international_format(state.destination) if state.channel == "sms" else state.destination
        ),
        "can_resend": state.next_resend_at is not None,
        "errors": dict(field_errors or {}),
        "problem": problem,
        "sent": request.query.get("sent") == "1",
    }


class ShowCodeStep(Protocol):
    """The page of a code step, read again, with what went wrong."""

    async def __call__(
        self,
        *,
        field_errors: dict[str, str] | None = None,
        problem: str | None = None,
        status: int = 200,
    ) -> web.Response: ...


def shown_again(
    request: web.Request,
    read: Callable[[web.Request], Awaitable[Any]],
    page: Callable[..., web.Response],
) -> ShowCodeStep:
    """A code step's page (`page(request, what, ...)`) made from what `read`
    reads again: the refusal may have changed it (a code used up, a place
    ended)."""

    async def show(
        *, field_errors: dict[str, str] | None = None, problem: str | None = None,
        status: int = 200,
    ) -> web.Response:  # fmt: skip
        return page(
            request, await read(request), field_errors=field_errors, problem=problem,
            status=status,
        )  # fmt: skip

    return show


async def code_step_answer(
    attempt: Awaitable[object], show: ShowCodeStep, language: str, done: str
) -> web.Response:
    """A draw request's or a mobile-day alert's code step answered (a code
    sent back, or another one asked for): on to `done`, or its page again
    with a wrong code on its field (422), too many asks (429, with
    Retry-After) or the refusal (409)."""
    try:
        await attempt
    except errors.ValidationFailed as failed:
        return await show(field_errors=dict(failed.fields), status=422)
    except errors.TooManyRequests as refusal:
        response = await show(problem=refusal_text(language, refusal), status=429)
        response.headers.update(retry_after_header(refusal))
        return response
    except errors.Conflict as refusal:
        return await show(problem=refusal_text(language, refusal), status=409)
    see_other(done, private=True)


def _expired_page(
    request: web.Request,
    ctx: bookings.BookingContext,
    language: str,
    *,
    problem: str | None = None,
    status: int = 200,
) -> web.Response:
    context = _booking_page_context(request, ctx, language)
    context["problem"] = problem
    return render(
        request, "citizen/expired.html", context, status=status, language=language, private=True
    )


@routes.get("/b/{reference}/{token}/code")
async def code_form(request: web.Request) -> web.Response:
    ctx, language = await _managed(request)
    return await _code_page(request, ctx, language)


@routes.post("/b/{reference}/{token}/code")
async def code_submit(request: web.Request) -> web.Response:
    await limits.check(request, "verify")
    ctx, language = await _managed(request)
    form = await request.post()
    base = f"/b/{ctx.booking.reference}/{request.match_info['token']}"
    try:
        await bookings.verify(
            request.app[POOL_KEY],
            ctx.booking.reference,
            request.match_info["token"],
            form_text(form, "code"),
            request.app[SETTINGS_KEY].secret_key,
            _now(request),
            rules=_rules(request),
        )
    except errors.Refusal as refusal:
        if refusal.code == "wrong_code":
            # The field says it, and its hint how many tries are left.
            return await _code_page(request, ctx, language, field_errors=refusal.fields, status=422)
        if refusal.code in ("hold_expired", "code_attempts_exhausted"):
            ended = await _booking(request)
            return _expired_page(
                request, ended, language, problem=refusal_text(language, refusal), status=409
            )
        if refusal.code == "not_held":
            see_other(f"{base}/confirmation", private=True)
        raise
    see_other(f"{base}/confirmation", private=True)


@routes.post("/b/{reference}/{token}/code/resend")
async def code_resend(request: web.Request) -> web.Response:
    await limits.check(request, "resend")
    ctx, language = await _managed(request)
    base = f"/b/{ctx.booking.reference}/{request.match_info['token']}"
    try:
        await bookings.resend(
            request.app[POOL_KEY],
            ctx.booking.reference,
            request.match_info["token"],
            request.app[SETTINGS_KEY].secret_key,
            _now(request),
            rules=bookings.Rules.of(request.app[SETTINGS_KEY]),
        )
    except errors.TooManyRequests as refusal:
        return await _code_page(
            request, ctx, language, problem=refusal_text(language, refusal), status=429,
            retry_after=refusal.retry_after,
        )  # fmt: skip
    except errors.Refusal as refusal:
        if refusal.code == "resend_limit":
            return await _code_page(
                request, ctx, language, problem=refusal_text(language, refusal), status=409
            )
        if refusal.code in ("hold_expired", "not_held"):
            see_other(f"{base}/code", private=True)
        raise
    see_other(f"{base}/code?sent=1", private=True)
