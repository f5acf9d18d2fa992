"""The office's page of a service's waiting list: its length and entries in
order (no name nor contact), and staff adding someone at the counter or on
the phone, to the same list under the same rule as the citizens' form
(service.waitlist)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from service import bookings, draw, waitlist
from service.domain.draw import OUTSIDE_LIST
from service.domain.staff import Permission, StaffMember
from service.office.common import actor_of
from service.web.draw import read_days
from service.web.keys import POOL_KEY, SETTINGS_KEY
from service.web.office import pages
from service.web.office.draws import entry_form_context, submit_staff_entry
from service.web.sessions import authorise

routes = web.RouteTableDef()


async def _page(
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
    rules_ = bookings.Rules.of(request.app[SETTINGS_KEY])
    office_id, service_id = pages.office_id(request), request.match_info["service"]
    now = pages.now(request)
    found = await waitlist.service_list(request.app[POOL_KEY], office_id, service_id, now, rules_)
    context = await entry_form_context(
        request, member, found.office.id, values, problems, days, parts, created
    )
    context.update(svc=found.service, waitlist=found, days=found.days)
    return pages.render(request, "waitlist.html", context, status=status)


@routes.get("/office/{office}/services/{service}/waitlist")
async def waitlist_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.BOOK_FOR_CITIZEN)
    return await _page(request, member, {}, {})


@routes.post("/office/{office}/services/{service}/waitlist")
async def add_submit(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.BOOK_FOR_CITIZEN)

    async def send(
        posted: MultiDictProxy[Any], form: dict[str, str], days: list[str], parts: list[str]
    ) -> draw.Receipt:
        return await waitlist.join(
            request.app[POOL_KEY],
            pages.office_id(request),
            request.match_info["service"],
            pages.staff_details(form),
            read_days(days, OUTSIDE_LIST),
            parts,
            secret_key=request.app[SETTINGS_KEY].secret_key,
            now=pages.now(request),
            actor=actor_of(member),
            rules_=bookings.Rules.of(request.app[SETTINGS_KEY]),
        )

    return await submit_staff_entry(request, member, send, _page)
