"""The waiting list of an instant service on the citizen's side: the form to
join it (days, parts of day, and the booking form's details with the
channel of the messages), which leads to the draw request's code step and a
receipt of its own at /r/{entry}/{token} (service.web.draw). Its offers are
answered on the draw's offer page, /d/{reference}/{token}."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from service import bookings, draw, waitlist
from service.domain.draw import OUTSIDE_LIST
from service.web import citizen, limits
from service.web.citizen import render, see_other
from service.web.draw import read_days, submit_entry, ticked_parts
from service.web.keys import CLOCK_KEY, POOL_KEY, SETTINGS_KEY
from service.web.templating import request_language

routes = web.RouteTableDef()


async def join_form_context(
    request: web.Request,
    values: dict[str, str],
    *,
    days: list[str] | None = None,
    parts: list[str] | None = None,
    field_errors: dict[str, str] | None = None,
    problem: str | None = None,
) -> dict[str, Any]:
    """The form: the days with times inside the list's horizon, the parts of
    the day, and the booking form's details."""
    form = await waitlist.join_form(
        request.app[POOL_KEY],
        request.match_info["office"],
        request.match_info["service"],
        request.app[CLOCK_KEY](),
        bookings.Rules.of(request.app[SETTINGS_KEY]),
    )
    context = citizen.book_context(
        request, form.office, form.service, None, values, "",
        field_errors=field_errors, problem=problem,
    )  # fmt: skip
    context.update(
        days=form.days,
        chosen_days=set(days or []),
        chosen_parts=ticked_parts(parts),
    )
    return context


@routes.get("/offices/{office}/{service}/waitlist")
async def join_page(request: web.Request) -> web.Response:
    await limits.check(request, "availability")
    values = dict.fromkeys(citizen.DETAIL_FIELDS, "")
    context = await join_form_context(request, values)
    if context["service"].allocation_mode == "draw":
        # Its freed seats go to its draw's list: one asks for a seat there.
        see_other(f"/offices/{context['office'].id}/{context['service'].id}/draw")
    values |= {"language": request_language(request), "phone_country": context["office"].country}
    return render(request, "citizen/waitlist_join.html", context, private=True)


@routes.post("/offices/{office}/{service}/waitlist")
async def join_submit(request: web.Request) -> web.Response:
    await limits.check(request, "availability")
    settings = request.app[SETTINGS_KEY]

    async def send(
        form: MultiDictProxy[Any], values: dict[str, str], days: list[str], parts: list[str]
    ) -> draw.Receipt:
        return await waitlist.join(
            request.app[POOL_KEY], request.match_info["office"], request.match_info["service"],
            citizen.raw_details(values), read_days(days, OUTSIDE_LIST), parts,
            secret_key=settings.secret_key, now=request.app[CLOCK_KEY](),
            rules_=bookings.Rules.of(settings), admit=limits.attempt(request),
        )  # fmt: skip

    return await submit_entry(
        request, citizen.DETAIL_FIELDS, send, join_form_context, "citizen/waitlist_join.html"
    )
