"""The weekly statistics page (service.office.stats)."""

from __future__ import annotations

from datetime import date

from aiohttp import web

from service.domain.calendar import local_date
from service.domain.office_day import parse_week, week_label, week_of
from service.domain.staff import Permission
from service.office.common import office_or_404
from service.office.stats import week_stats
from service.web.keys import POOL_KEY, SETTINGS_KEY
from service.web.office import pages
from service.web.sessions import authorise

routes = web.RouteTableDef()


@routes.get("/office/{office}/stats")
async def stats_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.VIEW_STATS)
    async with request.app[POOL_KEY].acquire() as conn:
        office = await office_or_404(conn, pages.office_id(request))
    monday = parse_week(request.query.get("week", "")) or week_of(
        local_date(pages.now(request), office.zone)
    )
    week = await week_stats(
        request.app[POOL_KEY], office.id, monday, request.app[SETTINGS_KEY].sms_price_per_segment
    )
    context = await pages.base_context(request, member, office.id)
    context.update(
        week=week,
        week_name=week_label(monday),
        previous=week_label(date.fromordinal(monday.toordinal() - 7)),
        next=week_label(date.fromordinal(monday.toordinal() + 7)),
        price=request.app[SETTINGS_KEY].sms_price_per_segment,
    )
    return pages.render(request, "stats.html", context)
