"""The calendar feed: its page, its rotation, and the ICS file itself, which
is data and stays language-neutral (service.office.feed)."""

from __future__ import annotations

from aiohttp import web

from service.domain import errors
from service.domain.staff import Permission, StaffMember
from service.office.feed import feed_created_at, feed_ics, rotate_feed
from service.web.keys import POOL_KEY, SETTINGS_KEY
from service.web.office import pages
from service.web.sessions import authorise

routes = web.RouteTableDef()


@routes.get("/office/{office}/feed")
async def feed_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_FEED)
    return await _feed_page(request, member, None)


async def _feed_page(request: web.Request, member: StaffMember, url: str | None) -> web.Response:
    created_at = await feed_created_at(request.app[POOL_KEY], pages.office_id(request))
    context = await pages.base_context(request, member, pages.office_id(request))
    context.update(created_at=created_at, url=url)
    return pages.render(request, "feed.html", context)


@routes.post("/office/{office}/feed")
async def feed_rotate(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_FEED)
    secret = await rotate_feed(
        request.app[POOL_KEY],
        pages.office_id(request),
        member,
        secret_key=request.app[SETTINGS_KEY].secret_key,
        now=pages.now(request),
    )
    url = f"{request.app[SETTINGS_KEY].base_url}/feeds/office/{secret}.ics"
    return await _feed_page(request, member, url)


@routes.get("/feeds/office/{secret}.ics")
async def feed(request: web.Request) -> web.Response:
    body = await feed_ics(
        request.app[POOL_KEY],
        request.match_info["secret"],
        secret_key=request.app[SETTINGS_KEY].secret_key,
        now=pages.now(request),
    )
    if body is None:
        raise errors.NotFound()
    return web.Response(
        body=body,
        content_type="text/calendar",
        charset="utf-8",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
