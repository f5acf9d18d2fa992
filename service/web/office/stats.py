"""The weekly statistics page (service.office.stats)."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from service.domain.calendar import local_date
from service.domain.feedback import Satisfaction
from service.domain.office_day import parse_week, week_label, week_of
from service.domain.staff import Permission
from service.office.common import office_or_404
from service.office.stats import week_stats
from service.store import offices as office_store
from service.web.i18n import date_range, decimal, money, percent
from service.web.keys import POOL_KEY, SETTINGS_KEY
from service.web.office import pages
from service.web.sessions import authorise
from service.web.templating import request_language

routes = web.RouteTableDef()


def _shown(x: Satisfaction, language: str) -> dict[str, str]:
    """A satisfaction line's figures as the page writes them."""
    return {
        "average": "—" if x.average is None else decimal(x.average, language),
        "came_back": "—" if x.came_back_share is None else percent(x.came_back_share, language),
    }


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
    settings = request.app[SETTINGS_KEY]
    language = request_language(request)
    previous, following = monday - timedelta(days=7), monday + timedelta(days=7)
    s = week.stats
    async with request.app[POOL_KEY].acquire() as conn:
        service_names = {
            x.id: x.name[language] for x in await office_store.list_services(conn, office.id)
        }
    context = await pages.base_context(request, member, office.id)
    context.update(
        week=week,
        week_name=week_label(monday),
        dates=date_range(monday, monday + timedelta(days=6), language),
        previous=week_label(previous),
        previous_dates=date_range(previous, previous + timedelta(days=6), language),
        next=week_label(following),
        next_dates=date_range(following, following + timedelta(days=6), language),
        no_show_rate=None if s.no_show_rate is None else percent(s.no_show_rate, language),
        lead_days=None
        if s.median_lead_time_hours is None
        else decimal(s.median_lead_time_hours / 24, language),
        cost=money(s.sms_cost, settings.sms_currency, language),
        price=money(settings.sms_price_per_segment, settings.sms_currency, language),
        satisfaction=[
            (name, x, _shown(x, language))
            for name, x in [(None, week.feedback.overall)]
            + [(service_names.get(k, k), v) for k, v in week.feedback.by_service.items()]
        ],
    )
    return pages.render(request, "stats.html", context)
