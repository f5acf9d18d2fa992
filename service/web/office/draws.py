"""Office pages of fair allocation: a service's mode and its request windows
(open one, see its state, entries and seed hash, then its public record),
and the staff's request for a citizen at the counter or on the phone, which
goes into the same window and draw as the public ones (service.draw)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import date, time
from typing import Any, Protocol

from aiohttp import web
from multidict import MultiDictProxy

from service import draw
from service.domain import errors
from service.domain.calendar import local_instant
from service.domain.draw import WindowPlan
from service.domain.errors import N_
from service.domain.fields import parse_day
from service.domain.staff import Permission, StaffMember
from service.office.common import actor_of
from service.web.draw import posted_wish, read_wish, ticked_parts
from service.web.i18n import gettext
from service.web.keys import POOL_KEY, SETTINGS_KEY
from service.web.office import pages
from service.web.sessions import authorise
from service.web.templating import request_language

routes = web.RouteTableDef()

_NOTICES = {
    "mode": N_("Saved: the allocation mode of this service."),
    "opened": N_("The request window is open; its seed's hash is published."),
}
_WALL = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def _base(request: web.Request) -> str:
    return f"/office/{pages.office_id(request)}/services/{request.match_info['service']}/draws"


async def _page(
    request: web.Request,
    member: StaffMember,
    values: dict[str, str],
    problems: dict[str, str],
    status: int = 200,
) -> web.Response:
    found = await draw.service_draws(
        request.app[POOL_KEY], pages.office_id(request), request.match_info["service"]
    )
    language = request_language(request)
    context = await pages.base_context(request, member, found.office.id)
    key = request.query.get("notice", "")
    context.update(
        svc=found.service,
        mode=found.mode.value,
        windows=found.windows,
        values=values,
        problems={k: gettext(language, v) for k, v in problems.items()},
        notice=gettext(language, _NOTICES[key]) if key in _NOTICES else None,
    )
    return pages.render(request, "draws.html", context, status=status, switch_to=_base(request))


@routes.get("/office/{office}/services/{service}/draws")
async def draws_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_SERVICES)
    return await _page(request, member, {}, {})


@routes.post("/office/{office}/services/{service}/draws/mode")
async def mode_submit(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_SERVICES)
    form = await pages.form(request)
    try:
        await draw.set_mode(
            request.app[POOL_KEY], pages.office_id(request), request.match_info["service"],
            form.get("mode"), pages.now(request),
        )  # fmt: skip
    except errors.ValidationFailed as invalid:
        return await _page(request, member, form, dict(invalid.fields), 422)
    except errors.Conflict as refused:
        return await _page(request, member, form, {"allocation_mode": refused.message}, 409)
    raise web.HTTPSeeOther(f"{_base(request)}?notice=mode")


def _plan(form: dict[str, str], zone: Any, now: Any) -> WindowPlan:
    problems: dict[str, str] = {}
    closes_day = parse_day(form.get("closes_day", ""))
    wall = _WALL.match(form.get("closes_time", ""))
    first, last = parse_day(form.get("first_day", "")), parse_day(form.get("last_day", ""))
    for name, value in (("closes_day", closes_day), ("first_day", first), ("last_day", last)):
        if value is None:
            problems[name] = N_("Enter a day as YYYY-MM-DD.")
    closes_at = None
    if wall is None:
        problems["closes_time"] = N_("Enter a time as HH:MM.")
    elif closes_day is not None:
        closes_at = local_instant(closes_day, time(int(wall[1]), int(wall[2])), zone)
        if closes_at is None:
            problems["closes_time"] = N_("This time does not exist on that day (clock change).")
    if problems:
        raise errors.ValidationFailed(problems)
    assert closes_at is not None and isinstance(first, date) and isinstance(last, date)
    return WindowPlan(opens_at=now, closes_at=closes_at, first_day=first, last_day=last)


@routes.post("/office/{office}/services/{service}/draws")
async def window_submit(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_SERVICES)
    form = await pages.form(request)
    found = await draw.service_draws(
        request.app[POOL_KEY], pages.office_id(request), request.match_info["service"]
    )
    now = pages.now(request)
    try:
        await draw.open_window(
            request.app[POOL_KEY], found.office.id, found.service.id,
            _plan(form, found.office.zone, now), created_by=f"staff:{member.id}", now=now,
        )  # fmt: skip
    except errors.ValidationFailed as invalid:
        return await _page(request, member, form, dict(invalid.fields), 422)
    except errors.Conflict as refused:
        return await _page(request, member, form, {"first_day": refused.message}, 409)
    raise web.HTTPSeeOther(f"{_base(request)}?notice=opened")


# The staff's request -------------------------------------------------------------


async def _request_page(
    request: web.Request,
    member: StaffMember,
    values: dict[str, str],
    problems: dict[str, str],
    *,
    days: list[str] | None = None,
    parts: list[str] | None = None,
    created: draw.Receipt | None = None,
    status: int = 200,
) -> web.Response:
    found = await draw.request_form(
        request.app[POOL_KEY], pages.office_id(request), request.match_info["service"],
        pages.now(request),
    )  # fmt: skip
    window = found.windows[0] if found.windows else None
    context = await entry_form_context(
        request, member, found.office.id, values, problems, days, parts, created
    )
    context.update(
        svc=found.service,
        window=window,
        days=found.days,
    )
    return pages.render(request, "draw_request.html", context, status=status)


async def entry_form_context(
    request: web.Request,
    member: StaffMember,
    office_id: str,
    values: dict[str, str],
    problems: dict[str, str],
    days: list[str] | None,
    parts: list[str] | None,
    created: draw.Receipt | None,
) -> dict[str, Any]:
    """What the staff's form for an entry shows (a draw's request, a place
    on a waiting list): the details and wish as typed, the problems in the
    reader's language, and the receipt's link of the entry just filed."""
    language = request_language(request)
    context = await pages.base_context(request, member, office_id)
    base_url = request.app[SETTINGS_KEY].base_url
    context.update(
        chosen_days=set(days or []),
        chosen_parts=ticked_parts(parts),
        values=values,
        problems={k: gettext(language, v) for k, v in problems.items()},
        created=created,
        created_url=f"{base_url}{draw.receipt_url(created.entry_id, created.token)}"
        if created
        else "",
    )
    return context


@routes.get("/office/{office}/services/{service}/draws/request")
async def request_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.BOOK_FOR_CITIZEN)
    return await _request_page(request, member, {}, {})


class StaffEntryPage(Protocol):
    """The staff's form for an entry, with what was typed and what went
    wrong, or with the entry just filed."""

    async def __call__(
        self,
        request: web.Request,
        member: StaffMember,
        values: dict[str, str],
        problems: dict[str, str],
        *,
        days: list[str] | None = None,
        parts: list[str] | None = None,
        created: draw.Receipt | None = None,
        status: int = 200,
    ) -> web.Response: ...


# Files a parsed staff form: (the form, its fields, its days, its parts).
StaffSend = Callable[
    [MultiDictProxy[Any], dict[str, str], list[str], list[str]], Awaitable[draw.Receipt]
]


async def submit_staff_entry(
    request: web.Request, member: StaffMember, send: StaffSend, page: StaffEntryPage
) -> web.Response:
    """Parse and file the staff's form for an entry (a draw's request, a
    place on a waiting list): the form again with the entry filed, or with
    what went wrong and nothing written."""
    posted = await request.post()
    form = {k: v for k, v in posted.items() if isinstance(v, str)}
    days, parts = posted_wish(posted)
    try:
        receipt = await send(posted, form, days, parts)
    except errors.ValidationFailed as invalid:
        return await page(
            request, member, form, dict(invalid.fields), days=days, parts=parts, status=422
        )
    except errors.Conflict as refused:
        return await page(
            request, member, form, {"name": refused.message}, days=days, parts=parts, status=409
        )
    return await page(request, member, {}, {}, created=receipt)


@routes.post("/office/{office}/services/{service}/draws/request")
async def request_submit(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.BOOK_FOR_CITIZEN)

    async def send(
        posted: MultiDictProxy[Any], form: dict[str, str], days: list[str], parts: list[str]
    ) -> draw.Receipt:
        window_id, wanted = read_wish(posted, days)
        return await draw.request(
            request.app[POOL_KEY],
            window_id,
            pages.staff_details(form),
            wanted,
            parts,
            secret_key=request.app[SETTINGS_KEY].secret_key,
            now=pages.now(request),
            actor=actor_of(member),
            # The window must be this office's and service's: nothing else is written.
            office_id=pages.office_id(request),
            service_id=request.match_info["service"],
        )

    return await submit_staff_entry(request, member, send, _request_page)
