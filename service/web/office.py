"""HTML pages for staff under /office/. Handlers authorise first (see
service.web.sessions), parse, call one use case from service.staff, render.

Pages follow the same language choice as the citizen pages (?lang=, cookie,
Accept-Language, else French): clerks in Morocco and at consulates abroad work
in French or Arabic. Messages are gettext ids (N_), translated here at the
edge; dates and times are shown in the office's zone. The CSV export and the
ICS feed are data and stay language-neutral.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from yarl import URL

from service import staff
from service.domain import errors
from service.domain.booking import Status, booking_window, can_transition, normalise_reference
from service.domain.calendar import local_date, local_day_bounds
from service.domain.errors import N_
from service.domain.models import LANGUAGES
from service.domain.office_day import (
    HoursSyntaxError,
    day_in_range,
    format_hours,
    parse_hours,
    parse_week,
    week_label,
    week_of,
)
from service.domain.service_settings import parse_service_form, settings_of
from service.domain.staff import (
    OFFICE_TARGETS,
    AccountRefused,
    Permission,
    Role,
    StaffMember,
    mask_document,
    parse_office_action,
)
from service.domain.validation import RawDetails
from service.store import offices as office_store
from service.store import slots as slot_store
from service.store import staff as staff_store
from service.web.i18n import LANG_QUERY, LANGUAGE_NAMES, gettext
from service.web.keys import CLOCK_KEY, POOL_KEY, SETTINGS_KEY
from service.web.sessions import (
    authorise,
    current_member,
    end_session,
    signed_in,
    start_session,
)
from service.web.templating import request_language

routes = web.RouteTableDef()

_NOTICES = {
    "status_changed": N_("Saved."),
    "bad_transition": N_("This change is not possible for this appointment."),
    "not_found": N_("No such booking at this office."),
    "invalid": N_("Choose an action; a cancellation needs a reason."),
    "saved": N_("Saved. Slots were regenerated."),
    "unchanged": N_("Nothing changed: the office was already set this way."),
    "deactivated": N_("The account is deactivated: its sessions and API tokens no longer work."),
    "feed_rotated": N_("A new feed address was made; the old one no longer works."),
}

# Stored codes as the pages name them. Unknown codes (a newer migration, say)
# fall back to the code itself rather than breaking the page.
_LABELS: dict[str, dict[str, str]] = {
    "status": {
        "held": N_("Waiting for confirmation"),
        "confirmed": N_("Confirmed"),
        "checked_in": N_("Checked in"),
        "done": N_("Done"),
        "no_show": N_("No-show"),
        "cancelled": N_("Cancelled"),
        "expired": N_("Expired"),
    },
    "channel": {"sms": N_("SMS"), "email": N_("E-mail")},
    "kind": {
        "confirmation": N_("Confirmation"),
        "rescheduled": N_("Moved"),
        "cancelled_by_citizen": N_("Cancelled by the citizen"),
        "cancelled_by_office": N_("Cancelled by the office"),
        "reminder": N_("Reminder"),
        "sms_fallback": N_("SMS instead of e-mail"),
    },
    "message_status": {
        "pending": N_("Waiting"),
        "sending": N_("Sending"),
        "sent": N_("Sent"),
        "delivered": N_("Delivered"),
        "undelivered": N_("Not delivered"),
        "failed": N_("Failed"),
        "skipped": N_("Not sent"),
        "cancelled": N_("Cancelled"),
    },
    "actor": {"citizen": N_("Citizen"), "staff": N_("Staff"), "system": N_("System")},
    "action": {
        "book": N_("Booked"),
        "reschedule": N_("Moved"),
        "checked_in": N_("Checked in"),
        "done": N_("Done"),
        "no_show": N_("No-show"),
        "cancelled": N_("Cancelled"),
        "confirmed": N_("Confirmed"),
        "expired": N_("Expired"),
    },
    "role": {"admin": N_("Administrator"), "manager": N_("Manager"), "agent": N_("Agent")},
    "source": {"holiday": N_("public holiday"), "manual": N_("manual")},
}


def _t(request: web.Request, message: str) -> str:
    return gettext(request_language(request), message)


def _notice(request: web.Request, key: str | None) -> str | None:
    text = _NOTICES.get(key or "")
    return _t(request, text) if text else None


def _refusal(request: web.Request, refused: AccountRefused) -> str:
    text = _t(request, refused.message)
    return text % refused.params if refused.params else text


def _label_function(language: str) -> Any:
    def label(group: str, code: str | None) -> str:
        if not code:
            return ""
        known = _LABELS[group].get(code)
        return gettext(language, known) if known else code.replace("_", " ")

    return label


def _render(
    request: web.Request,
    name: str,
    context: dict[str, Any],
    status: int = 200,
    switch_to: str | None = None,
) -> web.Response:
    if request.method != "GET":
        # A page answering a form post: the language switch must lead to a
        # page that can be fetched (some posts have no GET twin), not a 405.
        context["language_links"] = _language_links(request, switch_to or request.path)
    response = aiohttp_jinja2.render_template(f"office/{name}", request, context, status=status)
    # Pages carry personal data: never keep them in shared caches or history.
    response.headers["Cache-Control"] = "no-store"
    return response


def _language_links(request: web.Request, path: str) -> list[dict[str, Any]]:
    language = request_language(request)
    return [
        {
            "code": code,
            "name": LANGUAGE_NAMES[code],
            "url": str(URL(path).update_query({LANG_QUERY: code})),
            "current": code == language,
        }
        for code in LANGUAGES
    ]


def _now(request: web.Request) -> datetime:
    return request.app[CLOCK_KEY]()


def _office_id(request: web.Request) -> str:
    return request.match_info["office"]


def _day(raw: str) -> date:
    if not _is_iso_date(raw):
        raise web.HTTPNotFound(text="404: not a date")
    return date.fromisoformat(raw)


async def _form(request: web.Request) -> dict[str, str]:
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def _base_context(
    request: web.Request, member: StaffMember, office_id: str | None
) -> dict[str, Any]:
    office = None
    if office_id is not None:
        async with request.app[POOL_KEY].acquire() as conn:
            office = await staff.office_or_404(conn, office_id)
    return {
        "member": member,
        "office": office,
        "Permission": Permission,
        "Role": Role,
        "label": _label_function(request_language(request)),
    }


# Login and account -------------------------------------------------------------------


def _safe_next(raw: str | None) -> str:
    # Only our own office pages: never an open redirect to another site.
    if raw and raw.startswith("/office/") and "//" not in raw and "\\" not in raw:
        return raw
    return "/office/"


@routes.get("/office/login")
async def login_page(request: web.Request) -> web.Response:
    if await current_member(request) is not None:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
    return _render(
        request,
        "login.html",
        {"next": _safe_next(request.query.get("next")), "email": "", "problem": None},
    )


@routes.post("/office/login")
async def login_submit(request: web.Request) -> web.Response:
    form = await _form(request)
    settings = request.app[SETTINGS_KEY]
    email = form.get("email", "")[:254]
    target = _safe_next(form.get("next"))
    try:
        done = await staff.login(
            request.app[POOL_KEY],
            email,
            form.get("password", "")[:1024],
            request.remote,
            secret_key=settings.secret_key,
            now=_now(request),
            allow_demo=settings.env in ("dev", "test"),
        )
    except staff.LoginRefused as refused:
        problem = _t(
            request,
            N_("Too many failed attempts. Wait 15 minutes and try again.")
            if refused.throttled
            else N_("The e-mail address or the password is wrong."),
        )
        return _render(
            request,
            "login.html",
            {"next": target, "email": email, "problem": problem},
            status=429 if refused.throttled else 401,
            switch_to=str(URL("/office/login").with_query(next=target)),
        )
    response = web.HTTPSeeOther(target)
    start_session(request, response, done.session_id)
    raise response


@routes.post("/office/logout")
async def logout(request: web.Request) -> web.Response:
    session_id = request.cookies.get("mawid_staff")
    if session_id:
        await staff.logout(
            request.app[POOL_KEY], session_id, secret_key=request.app[SETTINGS_KEY].secret_key
        )
    response = web.HTTPSeeOther("/office/login")
    end_session(response)
    raise response


@routes.get("/office/")
async def home(request: web.Request) -> web.Response:
    member = await signed_in(request)
    async with request.app[POOL_KEY].acquire() as conn:
        offices = [o for o in await office_store.list_offices(conn) if member.sees_office(o.id)]
    if len(offices) == 1:
        raise web.HTTPSeeOther(f"/office/{offices[0].id}/")
    context = await _base_context(request, member, None)
    context["offices"] = offices
    return _render(request, "home.html", context)


@routes.get("/office/account")
async def account(request: web.Request) -> web.Response:
    member = await signed_in(request)
    return await _account_page(request, member, None)


async def _account_page(
    request: web.Request, member: StaffMember, new_token: str | None
) -> web.Response:
    async with request.app[POOL_KEY].acquire() as conn:
        tokens = await staff_store.tokens_of(conn, member.id)
    context = await _base_context(request, member, None)
    context.update(tokens=tokens, new_token=new_token)
    return _render(request, "account.html", context, switch_to="/office/account")


@routes.post("/office/account/tokens")
async def create_token(request: web.Request) -> web.Response:
    member = await signed_in(request)
    form = await _form(request)
    token = await staff.create_api_token(
        request.app[POOL_KEY],
        member,
        " ".join(form.get("label", "").split())[:100],
        secret_key=request.app[SETTINGS_KEY].secret_key,
        now=_now(request),
    )
    # Shown in this answer only; a reload will not show it again.
    return await _account_page(request, member, token)


@routes.post("/office/account/tokens/{token_id:\\d+}/revoke")
async def revoke_token(request: web.Request) -> web.Response:
    member = await signed_in(request)
    async with request.app[POOL_KEY].acquire() as conn:
        await staff_store.revoke_token(
            conn, member.id, int(request.match_info["token_id"]), _now(request)
        )
    raise web.HTTPSeeOther("/office/account")


# The day ------------------------------------------------------------------------------


@routes.get("/office/{office}/")
async def office_home(request: web.Request) -> web.Response:
    await authorise(request, Permission.VIEW_SCHEDULE)
    async with request.app[POOL_KEY].acquire() as conn:
        office = await staff.office_or_404(conn, _office_id(request))
    today = local_date(_now(request), office.zone)
    raise web.HTTPSeeOther(f"/office/{office.id}/day/{today.isoformat()}")


def _actions(status: str) -> list[str]:
    current = Status(status)
    return [
        t.value
        for t in (Status.CHECKED_IN, Status.DONE, Status.NO_SHOW, Status.CANCELLED)
        if t in OFFICE_TARGETS and can_transition(current, t)
    ]


@routes.get("/office/{office}/day/{day}")
async def day_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.VIEW_SCHEDULE)
    day = _day(request.match_info["day"])
    schedule = await staff.day_schedule(request.app[POOL_KEY], _office_id(request), day)
    context = await _base_context(request, member, _office_id(request))
    today = local_date(_now(request), schedule.office.zone)
    context.update(
        schedule=schedule,
        day=day,
        today=today,
        previous=date.fromordinal(day.toordinal() - 1),
        next=date.fromordinal(day.toordinal() + 1),
        actions=_actions,
        mask=mask_document,
        notice=_notice(request, request.query.get("notice")),
    )
    return _render(request, "day.html", context)


@routes.get("/office/{office}/day/{day}/print")
async def print_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.VIEW_SCHEDULE)
    day = _day(request.match_info["day"])
    schedule = await staff.day_schedule(request.app[POOL_KEY], _office_id(request), day)
    context = await _base_context(request, member, _office_id(request))
    context.update(schedule=schedule, day=day, mask=mask_document)
    return _render(request, "print.html", context)


@routes.get("/office/{office}/day/{day}/export.csv")
async def csv_export(request: web.Request) -> web.Response:
    await authorise(request, Permission.VIEW_SCHEDULE)
    day = _day(request.match_info["day"])
    schedule = await staff.day_schedule(request.app[POOL_KEY], _office_id(request), day)
    office = schedule.office
    language = request_language(request)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["time", "end", "reference", "service", "name", "phone", "email", "document", "status"]
    )
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
    # A name starting with = + - @ would run as a formula in a spreadsheet.
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@routes.post("/office/{office}/bookings/{reference}/status")
async def status_submit(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.CHANGE_STATUS)
    office_id = _office_id(request)
    form = await _form(request)
    back = form.get("back", "")
    target_day = back if _is_iso_date(back) else None
    reference = normalise_reference(request.match_info["reference"])
    notice = "status_changed"
    booking = None
    try:
        if reference is None:
            raise errors.NotFound()
        target, reason = parse_office_action(form.get("status"), form.get("reason"))
        booking = await staff.change_status(
            request.app[POOL_KEY], office_id, reference, target, reason, member, _now(request)
        )
    except ValueError:
        notice = "invalid"
    except errors.NotFound:
        notice = "not_found"
    except errors.BookingError:
        notice = "bad_transition"
    if target_day is None and booking is not None:
        async with request.app[POOL_KEY].acquire() as conn:
            office = await staff.office_or_404(conn, office_id)
        target_day = local_date(booking.starts_at, office.zone).isoformat()
    if target_day is None:
        raise web.HTTPSeeOther(f"/office/{office_id}/?notice={notice}")
    anchor = f"#b-{reference}" if reference else ""
    raise web.HTTPSeeOther(f"/office/{office_id}/day/{target_day}?notice={notice}{anchor}")


def _is_iso_date(raw: str) -> bool:
    """A YYYY-MM-DD day the pages can show (see day_in_range)."""
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        return False
    return len(raw) == 10 and day_in_range(day)


@routes.get("/office/{office}/bookings/{reference}")
async def booking_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.VIEW_BOOKING)
    reference = normalise_reference(request.match_info["reference"])
    if reference is None:
        raise web.HTTPNotFound(text="404: not found")
    try:
        history = await staff.booking_history(request.app[POOL_KEY], _office_id(request), reference)
    except errors.NotFound:
        raise web.HTTPNotFound(text="404: not found") from None
    context = await _base_context(request, member, _office_id(request))
    context.update(
        history=history,
        mask=mask_document,
        actions=_actions,
        created=request.query.get("created") == "1",
    )
    return _render(request, "booking.html", context)


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
    office_id = _office_id(request)
    now = _now(request)
    async with request.app[POOL_KEY].acquire() as conn:
        office = await staff.office_or_404(conn, office_id)
        services = await office_store.list_services(conn, office.id)
        service_id = values.get("service") or request.query.get("service") or ""
        service = next((s for s in services if s.id == service_id), None)
        raw_day = values.get("date") or request.query.get("date") or ""
        day = date.fromisoformat(raw_day) if _is_iso_date(raw_day) else local_date(now, office.zone)
        slots = []
        if service is not None:
            start, end = local_day_bounds(day, office.zone)
            window = booking_window(now, service.earliest_hours, service.latest_days)
            slots = await slot_store.available(
                conn, office.id, service.id, start, end, window.earliest, window.latest
            )
    context = await _base_context(request, member, office_id)
    context.update(
        services=services,
        service=service,
        day=day,
        slots=slots,
        values=values,
        problems={k: gettext(request_language(request), v) for k, v in problems.items()},
    )
    return _render(request, "book.html", context, status=status)


@routes.post("/office/{office}/book")
async def book_submit(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.BOOK_FOR_CITIZEN)
    form = await _form(request)
    try:
        slot_id = int(form.get("slot_id", ""))
    except ValueError:
        return await _book_form(request, member, form, {"slot_id": N_("Choose a time.")}, 422)
    try:
        booking = await staff.book_for_citizen(
            request.app[POOL_KEY],
            _office_id(request),
            slot_id,
            form.get("service", ""),
            RawDetails(
                name=form.get("name"),
                phone=form.get("phone"),
                phone_country=form.get("phone_country") or None,
                email=form.get("email"),
                language=form.get("language"),
                document_number=form.get("document_number"),
            ),
            member,
            secret_key=request.app[SETTINGS_KEY].secret_key,
            now=_now(request),
        )
    except errors.ValidationFailed as invalid:
        return await _book_form(request, member, form, invalid.fields, 422)
    except errors.BookingError as refused:
        return await _book_form(request, member, form, {"slot_id": refused.message}, 409)
    raise web.HTTPSeeOther(f"/office/{booking.office_id}/bookings/{booking.reference}?created=1")


# Hours, closures, slots ---------------------------------------------------------------


@routes.get("/office/{office}/hours")
async def hours_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_HOURS)
    return await _hours_page(request, member, None, [], notice=request.query.get("notice"))


async def _hours_page(
    request: web.Request,
    member: StaffMember,
    text: str | None,
    problems: list[tuple[int, str]],
    status: int = 200,
    notice: str | None = None,
) -> web.Response:
    overview = await staff.hours_overview(request.app[POOL_KEY], _office_id(request), _now(request))
    context = await _base_context(request, member, _office_id(request))
    context.update(
        overview=overview,
        text=format_hours(overview.rules) if text is None else text,
        problems=[(line, _t(request, text)) for line, text in problems],
        notice=_notice(request, notice),
        cancelled=_count(request.query.get("cancelled")),
        kept=_count(request.query.get("kept")),
        refused=_count(request.query.get("refused")),
        today=local_date(_now(request), overview.office.zone),
    )
    return _render(
        request,
        "hours.html",
        context,
        status=status,
        switch_to=f"/office/{_office_id(request)}/hours",
    )


def _count(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and len(raw) < 6 else None


def _decision(form: dict[str, str]) -> tuple[str | None, list[str], str | None]:
    decision = form.get("decision") or None
    seen = [r for r in form.get("seen", "").split() if normalise_reference(r)]
    reason = " ".join(form.get("reason", "").split())[:300] or None
    return decision, seen, reason


async def _change(
    request: web.Request,
    member: StaffMember,
    write: staff.Change,
    form: dict[str, str],
    what: str,
    back: str = "hours",
) -> web.Response:
    """Apply an office change, or show the bookings it strands; `back` is the
    office page (hours or services) to return to."""
    decision, seen, reason = _decision(form)
    problem: str | None = None
    if decision == staff.Decision.CANCEL and not reason:
        problem = _t(request, N_("Say why the bookings are cancelled: the citizens will read it."))
        decision = None  # ask again, with the list as it is now
    outcome = await staff.change_office(
        request.app[POOL_KEY],
        _office_id(request),
        write,
        decision=decision,
        seen=seen,
        reason=reason,
        member=member,
        now=_now(request),
        horizon_days=request.app[SETTINGS_KEY].slot_horizon_days,
    )
    if outcome.applied and not outcome.changed:
        raise web.HTTPSeeOther(f"/office/{_office_id(request)}/{back}?notice=unchanged")
    if outcome.applied:
        kept = len(outcome.stranded) - outcome.cancelled
        raise web.HTTPSeeOther(
            f"/office/{_office_id(request)}/{back}?notice=saved"
            f"&cancelled={outcome.cancelled}&kept={kept}&refused={outcome.refused}"
        )
    context = await _base_context(request, member, _office_id(request))
    context.update(
        what=what,
        stranded=outcome.stranded,
        form=form,
        problem=problem,
        action=request.path,
        back=back,
    )
    return _render(
        request,
        "confirm_change.html",
        context,
        status=409,
        switch_to=f"/office/{_office_id(request)}/{back}",
    )


@routes.post("/office/{office}/hours")
async def hours_submit(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_HOURS)
    form = await _form(request)
    text = form.get("hours", "")
    async with request.app[POOL_KEY].acquire() as conn:
        services = [s.id for s in await office_store.list_services(conn, _office_id(request))]
    try:
        rules = parse_hours(text, services)
    except HoursSyntaxError as bad:
        return await _hours_page(request, member, text, bad.problems, status=422)
    write = staff.ReplaceHours(_office_id(request), rules)
    return await _change(request, member, write, form, "hours")


@routes.post("/office/{office}/closures")
async def closure_add(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_HOURS)
    form = await _form(request)
    raw = form.get("day", "")
    reasons = {k: " ".join(form.get(f"reason_{k}", "").split())[:200] for k in ("fr", "ar", "en")}
    if not _is_iso_date(raw) or not any(reasons.values()):
        return await _hours_page(
            request,
            member,
            None,
            [(0, N_("Give a date and a reason for the closure."))],
            status=422,
        )
    # Citizens read the reason in their language; one typed reason stands in
    # for the languages left empty.
    fallback = next(v for v in reasons.values() if v)
    reasons = {k: v or fallback for k, v in reasons.items()}
    write = staff.AddClosure(_office_id(request), date.fromisoformat(raw), reasons)
    return await _change(request, member, write, form, "closure")


@routes.post("/office/{office}/closures/{day}/remove")
async def closure_remove(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_HOURS)
    form = await _form(request)
    write = staff.RemoveClosure(_office_id(request), _day(request.match_info["day"]))
    return await _change(request, member, write, form, "reopening")


# Statistics, staff, feed ---------------------------------------------------------


@routes.get("/office/{office}/stats")
async def stats_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.VIEW_STATS)
    async with request.app[POOL_KEY].acquire() as conn:
        office = await staff.office_or_404(conn, _office_id(request))
    monday = parse_week(request.query.get("week", "")) or week_of(
        local_date(_now(request), office.zone)
    )
    week = await staff.week_stats(
        request.app[POOL_KEY], office.id, monday, request.app[SETTINGS_KEY].sms_price_per_segment
    )
    context = await _base_context(request, member, office.id)
    context.update(
        week=week,
        week_name=week_label(monday),
        previous=week_label(date.fromordinal(monday.toordinal() - 7)),
        next=week_label(date.fromordinal(monday.toordinal() + 7)),
        price=request.app[SETTINGS_KEY].sms_price_per_segment,
    )
    return _render(request, "stats.html", context)


@routes.get("/office/{office}/staff")
async def staff_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_STAFF)
    return await _staff_page(request, member, None, None)


async def _staff_page(
    request: web.Request,
    member: StaffMember,
    created: staff.NewAccount | None,
    refused: AccountRefused | None,
    status: int = 200,
) -> web.Response:
    async with request.app[POOL_KEY].acquire() as conn:
        people = await staff_store.for_office(conn, _office_id(request))
    context = await _base_context(request, member, _office_id(request))
    context.update(
        people=people,
        created=created,
        problem=_refusal(request, refused) if refused else None,
        notice=_notice(request, request.query.get("notice")),
    )
    return _render(
        request,
        "staff.html",
        context,
        status=status,
        switch_to=f"/office/{_office_id(request)}/staff",
    )


@routes.post("/office/{office}/staff/{staff_id:\\d+}/deactivate")
async def staff_deactivate(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_STAFF)
    try:
        done = await staff.deactivate_staff(
            request.app[POOL_KEY],
            _office_id(request),
            int(request.match_info["staff_id"]),
            member,
            _now(request),
        )
    except errors.NotFound:
        raise web.HTTPNotFound(text="404: not found") from None
    except AccountRefused as refused:
        return await _staff_page(request, member, None, refused, 403)
    notice = "deactivated" if done else "unchanged"
    raise web.HTTPSeeOther(f"/office/{_office_id(request)}/staff?notice={notice}")


# Services ---------------------------------------------------------------------------


@routes.get("/office/{office}/services")
async def services_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_SERVICES)
    return await _services_page(request, member, None, {}, {})


async def _services_page(
    request: web.Request,
    member: StaffMember,
    editing: str | None,
    values: dict[str, str],
    problems: dict[str, str],
    status: int = 200,
) -> web.Response:
    office, services = await staff.office_services(request.app[POOL_KEY], _office_id(request))
    language = request_language(request)
    context = await _base_context(request, member, office.id)
    context.update(
        services=[(svc, settings_of(svc, active)) for svc, active in services],
        editing=editing,
        values=values,
        problems={k: gettext(language, v) for k, v in problems.items()},
        notice=_notice(request, request.query.get("notice")),
        cancelled=_count(request.query.get("cancelled")),
        kept=_count(request.query.get("kept")),
        refused=_count(request.query.get("refused")),
    )
    return _render(
        request,
        "services.html",
        context,
        status=status,
        switch_to=f"/office/{_office_id(request)}/services",
    )


@routes.post("/office/{office}/services/{service}")
async def service_submit(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_SERVICES)
    service_id = request.match_info["service"]
    _, services = await staff.office_services(request.app[POOL_KEY], _office_id(request))
    if not any(svc.id == service_id for svc, _ in services):
        raise web.HTTPNotFound(text="404: no such service")
    form = await _form(request)
    try:
        settings = parse_service_form(form)
    except ValueError as invalid:
        return await _services_page(request, member, service_id, form, invalid.args[0], 422)
    write = staff.UpdateService(_office_id(request), service_id, settings)
    # A new duration or a service turned off moves or removes slots: the
    # bookings they strand are shown first, as for a change of hours.
    return await _change(request, member, write, form, "service", "services")


@routes.post("/office/{office}/staff")
async def staff_add(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_STAFF)
    form = await _form(request)
    try:
        role = Role(form.get("role", ""))
    except ValueError:
        return await _staff_page(request, member, None, AccountRefused(N_("Choose a role.")), 422)
    try:
        async with request.app[POOL_KEY].acquire() as conn:
            created = await staff.add_staff(
                conn,
                form.get("email", ""),
                role,
                [_office_id(request)] if role is not Role.ADMIN else [],
                _now(request),
                creator=member,
            )
    except AccountRefused as refused:
        return await _staff_page(request, member, None, refused, 422)
    # The password is in this answer only.
    return await _staff_page(request, member, created, None)


@routes.get("/office/{office}/feed")
async def feed_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_FEED)
    return await _feed_page(request, member, None)


async def _feed_page(request: web.Request, member: StaffMember, url: str | None) -> web.Response:
    created_at = await staff.feed_created_at(request.app[POOL_KEY], _office_id(request))
    context = await _base_context(request, member, _office_id(request))
    context.update(created_at=created_at, url=url)
    return _render(request, "feed.html", context)


@routes.post("/office/{office}/feed")
async def feed_rotate(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_FEED)
    secret = await staff.rotate_feed(
        request.app[POOL_KEY],
        _office_id(request),
        member,
        secret_key=request.app[SETTINGS_KEY].secret_key,
        now=_now(request),
    )
    url = f"{request.app[SETTINGS_KEY].base_url}/feeds/office/{secret}.ics"
    return await _feed_page(request, member, url)


@routes.get("/feeds/office/{secret}.ics")
async def feed(request: web.Request) -> web.Response:
    body = await staff.feed_ics(
        request.app[POOL_KEY],
        request.match_info["secret"],
        secret_key=request.app[SETTINGS_KEY].secret_key,
        now=_now(request),
    )
    if body is None:
        raise web.HTTPNotFound(text="404: not found")
    return web.Response(
        body=body,
        content_type="text/calendar",
        charset="utf-8",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
