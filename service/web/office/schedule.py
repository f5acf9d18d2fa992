"""The day's schedule (page, print, CSV), status changes, a booking's page,
and booking for a citizen at the counter (service.office.schedule)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from aiohttp import web

from service import bookings
from service.domain import errors
from service.domain.booking import Status, booking_window, normalise_reference
from service.domain.calendar import local_date, local_day_bounds
from service.domain.errors import N_
from service.domain.fields import parse_id
from service.domain.models import Booking
from service.domain.office_day import quiet_runs
from service.domain.phone import international_format
from service.domain.staff import (
    Permission,
    StaffMember,
    mask_document,
    office_actions,
    parse_office_action,
)
from service.domain.validation import strip_invisible
from service.office.common import office_or_404
from service.office.documents import day_files
from service.office.queue import call_next, waiting_room
from service.office.schedule import (
    book_for_citizen,
    booking_history,
    change_status,
    day_schedule,
    detail_problems,
)
from service.store import offices as office_store
from service.store import slots as slot_store
from service.web.i18n import gettext
from service.web.keys import METRICS_KEY, POOL_KEY, SETTINGS_KEY
from service.web.office import pages
from service.web.office.callboard import CALL_BOARD_KEY
from service.web.sessions import authorise, signed_in
from service.web.templating import request_language

routes = web.RouteTableDef()


@routes.get("/office/")
async def home(request: web.Request) -> web.Response:
    member = await signed_in(request)
    async with request.app[POOL_KEY].acquire() as conn:
        offices = [o for o in await office_store.list_offices(conn) if member.sees_office(o.id)]
    if len(offices) == 1:
        raise web.HTTPSeeOther(f"/office/{offices[0].id}/")
    context = await pages.base_context(request, member, None)
    context["offices"] = offices
    return pages.render(request, "home.html", context)


@routes.get("/office/{office}/")
async def office_home(request: web.Request) -> web.Response:
    await authorise(request, Permission.VIEW_SCHEDULE)
    async with request.app[POOL_KEY].acquire() as conn:
        office = await office_or_404(conn, pages.office_id(request))
    today = local_date(pages.now(request), office.zone)
    raise web.HTTPSeeOther(f"/office/{office.id}/day/{today.isoformat()}")


# What "Saved" says after each action, naming the booking.
_DONE = {
    Status.CHECKED_IN: N_("%(reference)s marked as arrived."),
    Status.DONE: N_("%(reference)s marked as done."),
    Status.NO_SHOW: N_("%(reference)s marked as absent."),
    Status.CANCELLED: N_("%(reference)s cancelled; the citizen is told why."),
}


def _done_notice(request: web.Request) -> str | None:
    called = normalise_reference(request.query.get("called", ""))
    counter = request.query.get("counter", "")
    if called is not None and counter.isascii() and counter.isdigit():
        text = pages.translate(request, N_("%(reference)s called to counter %(counter)s."))
        return text % {"reference": called, "counter": counter}
    reference = normalise_reference(request.query.get("ref", ""))
    try:
        done = Status(request.query.get("done", ""))
    except ValueError:
        return None
    if reference is None or done not in _DONE:
        return None
    return pages.translate(request, _DONE[done]) % {"reference": reference}


async def _day_page(
    request: web.Request,
    member: StaffMember,
    day: date,
    *,
    error: str | None = None,
    status: int = 200,
    counter: str | None = None,
    cancelling: CancelForm | None = None,
) -> web.Response:
    schedule = await day_schedule(request.app[POOL_KEY], pages.office_id(request), day)
    context = await pages.base_context(request, member, pages.office_id(request))
    zone = schedule.office.zone
    now = pages.now(request)
    today = local_date(now, zone)
    # The waiting room is today's: who checked in, the last calls, "call next".
    room = (
        await waiting_room(request.app[POOL_KEY], schedule.office.id, now)
        if day == today and member.may(Permission.CHANGE_STATUS)
        else None
    )

    files = await day_files(
        request.app[POOL_KEY], schedule.office.id, [e.booking for e in schedule.entries]
    )

    notice = _done_notice(request) or pages.notice(request, request.query.get("notice"))
    changed = normalise_reference(request.query.get("ref", ""))
    references = {e.booking.reference for e in schedule.entries}

    def actions(booking: Booking) -> list[str]:
        offered = office_actions(Status(booking.status), booking.starts_at, now, zone)
        return [target.value for target in offered]

    context.update(
        schedule=schedule,
        day=day,
        today=today,
        previous=date.fromordinal(day.toordinal() - 1),
        next=date.fromordinal(day.toordinal() + 1),
        actions=actions,
        load=quiet_runs(schedule.load),
        mask=mask_document,
        phone=international_format,
        notice=notice,
        # The row a change jumps back to says it too: at the top of a long
        # day, the notice would be off the screen the clerk is looking at.
        notice_row=changed if notice and changed in references else None,
        error=error,
        room=room,
        counter=counter or request.query.get("counter", ""),
        files=files,
        may_move_files=member.may(Permission.CHANGE_STATUS),
        cancelling=cancelling,
    )
    return pages.render(
        request, "day.html", context, status=status,
        switch_to=f"/office/{schedule.office.id}/day/{day.isoformat()}",
    )  # fmt: skip


@routes.get("/office/{office}/day/{day}")
async def day_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.VIEW_SCHEDULE)
    return await _day_page(request, member, pages.day(request.match_info["day"]))


@routes.get("/office/{office}/day/{day}/print")
async def print_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.VIEW_SCHEDULE)
    day = pages.day(request.match_info["day"])
    schedule = await day_schedule(request.app[POOL_KEY], pages.office_id(request), day)
    context = await pages.base_context(request, member, pages.office_id(request))
    context.update(schedule=schedule, day=day, mask=mask_document, phone=international_format)
    return pages.render(request, "print.html", context)


@routes.get("/office/{office}/day/{day}/export.csv")
async def csv_export(request: web.Request) -> web.Response:
    await authorise(request, Permission.VIEW_SCHEDULE)
    day = pages.day(request.match_info["day"])
    schedule = await day_schedule(request.app[POOL_KEY], pages.office_id(request), day)
    office = schedule.office
    language = request_language(request)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["time", "end", "reference", "service", "name", "phone", "email", "document", "status",
         "site", "site_time"]
    )  # fmt: skip
    for entry in schedule.entries:
        b = entry.booking
        writer.writerow(
            [
                _csv_cell(b.starts_at.astimezone(office.zone).strftime("%H:%M")),
                _csv_cell(b.ends_at.astimezone(office.zone).strftime("%H:%M")),
                _csv_cell(b.reference),
                _csv_cell(entry.service_name.get(language, entry.service_name["en"])),
                _csv_cell(b.citizen_name),
                _csv_cell(b.phone or ""),
                _csv_cell(b.email or ""),
                _csv_cell(mask_document(b.document_number)),
                _csv_cell(b.status),
                # A mobile day's booking: the town, and the time on the venue's clock.
                _csv_cell(entry.site.get(language, entry.site["en"]) if entry.site else ""),
                _csv_cell(
                    b.starts_at.astimezone(ZoneInfo(entry.site_timezone)).strftime("%H:%M")
                    if entry.site_timezone
                    else ""
                ),
            ]
        )
    filename = f"{office.id}-{day.isoformat()}.csv"
    return web.Response(
        # BOM: Excel otherwise reads the UTF-8 (Arabic names) as Latin-1.
        body=("\ufeff" + out.getvalue()).encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def _csv_cell(value: str) -> str:
    # Rows from before the name rules may hold bidi controls or zero-width
    # characters that reorder what a spreadsheet shows: never written out.
    value = strip_invisible(value)
    # A name starting with = + - @ would run as a formula in a spreadsheet.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@dataclass(frozen=True, slots=True)
class DayAction:
    """A form posted from a row of the day view: who, at which office, on
    which booking (None: not a reference), and the day to go back to."""

    member: StaffMember
    office_id: str
    reference: str | None
    form: dict[str, str]
    back: str


@dataclass(frozen=True, slots=True)
class CancelForm:
    """A booking's cancel form sent back with a mistake in its reason."""

    reference: str
    reason: str  # as typed; the page's error says what is wrong with it


async def day_action(request: web.Request) -> DayAction:
    member = await authorise(request, Permission.CHANGE_STATUS)
    form = await pages.form(request)
    return DayAction(
        member,
        pages.office_id(request),
        normalise_reference(request.match_info["reference"]),
        form,
        form.get("back", ""),
    )


async def day_page_with_error(
    request: web.Request, action: DayAction, refused: errors.Refusal
) -> web.Response:
    """The day the action came from again, saying why it was refused: the
    field's words for a form at fault, else the refusal's. Without a day to
    go back to, the refusal is answered on its own."""
    if not pages.is_iso_date(action.back):
        raise refused
    if isinstance(refused, errors.ValidationFailed) and refused.fields:
        first = next(iter(refused.fields.values()))
        text = pages.translate(request, first) % refused.params
    else:
        text = pages.refusal_text(request, refused)
    day = date.fromisoformat(action.back)
    return await _day_page(request, action.member, day, error=text, status=refused.status)


@routes.post("/office/{office}/bookings/{reference}/status")
async def status_submit(request: web.Request) -> web.Response:
    """Apply an action and say what was done; a refused one is shown on the
    day's page in an error box, with the reason ("only after 15:10")."""
    action = await day_action(request)
    office_id, reference, back = action.office_id, action.reference, action.back
    try:
        if reference is None:
            raise errors.NotFound()
        target, reason = parse_office_action(action.form.get("status"), action.form.get("reason"))
        booking = await change_status(
            request.app[POOL_KEY], office_id, reference, target, reason, action.member,
            pages.now(request), feedback_delay=request.app[SETTINGS_KEY].feedback_delay,
            rules=bookings.Rules.of(request.app[SETTINGS_KEY]),
        )  # fmt: skip
    except errors.Refusal as refused:
        if reference is not None and "reason" in refused.fields and pages.is_iso_date(back):
            # The booking's cancel form again, open, with what was typed and
            # the field's own words: the clerk corrects it where it was.
            return await _day_page(
                request, action.member, date.fromisoformat(back),
                error=pages.translate(request, refused.fields["reason"]), status=refused.status,
                cancelling=CancelForm(reference, action.form.get("reason", "")),
            )  # fmt: skip
        if isinstance(refused, errors.ValidationFailed) and pages.is_iso_date(back):
            choose = N_("Choose an action; a cancellation needs a reason.")
            refused = errors.ValidationFailed(message=choose)
        return await day_page_with_error(request, action, refused)
    # Someone checked in: the waiting room's display counts them.
    request.app[CALL_BOARD_KEY].changed(office_id)
    async with request.app[POOL_KEY].acquire() as conn:
        office = await office_or_404(conn, office_id)
    target_day = back if pages.is_iso_date(back) else None
    target_day = target_day or local_date(booking.starts_at, office.zone).isoformat()
    raise web.HTTPSeeOther(
        f"/office/{office_id}/day/{target_day}?done={target.value}&ref={reference}#b-{reference}"
    )


@routes.post("/office/{office}/calls")
async def call_submit(request: web.Request) -> web.Response:
    """Call the next citizen waiting to the agent's counter (the display
    shows it); nobody waiting, or no such counter, is said on today's page."""
    member = await authorise(request, Permission.CHANGE_STATUS)
    office_id = pages.office_id(request)
    form = await pages.form(request)
    now = pages.now(request)
    try:
        call = await call_next(request.app[POOL_KEY], office_id, form.get("counter"), member, now)
    except errors.Refusal as refused:
        async with request.app[POOL_KEY].acquire() as conn:
            office = await office_or_404(conn, office_id)
        text = (
            pages.translate(request, next(iter(refused.fields.values())))
            % {"counters": refused.params.get("counters", "")}
            if isinstance(refused, errors.ValidationFailed)
            else pages.refusal_text(request, refused)
        )
        return await _day_page(
            request, member, local_date(now, office.zone), error=text,
            status=refused.status, counter=form.get("counter"),
        )  # fmt: skip
    request.app[CALL_BOARD_KEY].changed(office_id)
    async with request.app[POOL_KEY].acquire() as conn:
        office = await office_or_404(conn, office_id)
    today = local_date(now, office.zone).isoformat()
    raise web.HTTPSeeOther(
        f"/office/{office_id}/day/{today}?called={call.reference}&counter={call.counter}#waiting"
    )


@routes.get("/office/{office}/bookings/{reference}")
async def booking_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.VIEW_BOOKING)
    reference = normalise_reference(request.match_info["reference"])
    if reference is None:
        raise errors.NotFound()
    history = await booking_history(request.app[POOL_KEY], pages.office_id(request), reference)
    context = await pages.base_context(request, member, pages.office_id(request))
    context.update(
        history=history,
        mask=mask_document,
        phone=international_format,
        created=request.query.get("created") == "1",
    )
    return pages.render(request, "booking.html", context)


# Booking for a citizen --------------------------------------------------------------


@routes.get("/office/{office}/book")
async def book_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.BOOK_FOR_CITIZEN)
    return await _book_form(request, member, {}, {})


async def _book_form(
    request: web.Request,
    member: StaffMember,
    values: dict[str, str],
    problems: dict[str, str],
    status: int = 200,
) -> web.Response:
    office_id = pages.office_id(request)
    now = pages.now(request)
    async with request.app[POOL_KEY].acquire() as conn:
        office = await office_or_404(conn, office_id)
        services = await office_store.list_services(conn, office.id)
        service_id = values.get("service") or request.query.get("service") or ""
        service = next((s for s in services if s.id == service_id), None)
        raw_day = values.get("date") or request.query.get("date") or ""
        day = (
            date.fromisoformat(raw_day)
            if pages.is_iso_date(raw_day)
            else local_date(now, office.zone)
        )
        slots = []
        if service is not None:
            # Seats held past their time go back before the clerk sees them.
            await bookings.release_expired_holds(
                conn, now, office_id=office.id, service_id=service.id,
                rules=bookings.Rules.of(request.app[SETTINGS_KEY]),
            )  # fmt: skip
            start, end = local_day_bounds(day, office.zone)
            window = booking_window(now, service.earliest_hours, service.latest_days)
            slots = await slot_store.available(
                conn, office.id, service.id, start, end, window.earliest, window.latest
            )
    context = await pages.base_context(request, member, office_id)
    context.update(
        services=services,
        service=service,
        day=day,
        slots=slots,
        values=values,
        problems={k: gettext(request_language(request), v) for k, v in problems.items()},
    )
    return pages.render(request, "book.html", context, status=status)


@routes.post("/office/{office}/book")
async def book_submit(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.BOOK_FOR_CITIZEN)
    form = await pages.form(request)
    slot_id = parse_id(form.get("slot_id"))
    if slot_id is None:
        problems = await detail_problems(
            request.app[POOL_KEY], pages.office_id(request), form.get("service", ""),
            pages.staff_details(form),
        )  # fmt: skip
        return await _book_form(
            request, member, form, {"slot_id": N_("Choose a time."), **problems}, 422
        )
    try:
        attempt = book_for_citizen(
            request.app[POOL_KEY],
            pages.office_id(request),
            slot_id,
            form.get("service", ""),
            pages.staff_details(form),
            member,
            secret_key=request.app[SETTINGS_KEY].secret_key,
            now=pages.now(request),
            rules=bookings.Rules.of(request.app[SETTINGS_KEY]),
        )
        booking = await request.app[METRICS_KEY].count_booking(attempt)
    except errors.ValidationFailed as invalid:
        return await _book_form(request, member, form, invalid.fields, 422)
    except errors.Refusal as refused:
        return await _book_form(request, member, form, {"slot_id": refused.message}, 409)
    raise web.HTTPSeeOther(f"/office/{booking.office_id}/bookings/{booking.reference}?created=1")
