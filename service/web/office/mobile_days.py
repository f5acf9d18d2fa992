"""The mobile consular days page of an office (service.office.mobile_days)."""

from __future__ import annotations

from aiohttp import web

from service.domain import errors
from service.domain.fields import parse_int
from service.domain.mobile_day import FORM_FIELDS
from service.domain.staff import Permission, StaffMember
from service.office.mobile_days import (
    create_mobile_day,
    office_mobile_days,
    withdraw_mobile_day,
)
from service.places import loaded
from service.web.keys import POOL_KEY, SETTINGS_KEY
from service.web.office import pages
from service.web.sessions import authorise

routes = web.RouteTableDef()


async def _page(
    request: web.Request,
    member: StaffMember,
    values: dict[str, str],
    problems: dict[str, str],
    status: int = 200,
    problem: str | None = None,
) -> web.Response:
    office, services, upcoming = await office_mobile_days(
        request.app[POOL_KEY], pages.office_id(request), pages.now(request)
    )
    context = await pages.base_context(request, member, office.id)
    context.update(
        services=services,
        upcoming=upcoming,
        values=values,
        problems={k: pages.translate(request, v) for k, v in problems.items()},
        fields=FORM_FIELDS,
        notice=pages.notice(request, request.query.get("notice")),
        told=parse_int(request.query.get("told"), 0, 10**9),
        problem=problem,
    )
    return pages.render(
        request, "mobile_days.html", context, status=status,
        switch_to=f"/office/{office.id}/mobile-days",
    )  # fmt: skip


@routes.get("/office/{office}/mobile-days")
async def mobile_days_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_HOURS)
    km = str(request.app[SETTINGS_KEY].mobile_alert_km)
    return await _page(request, member, {"days": "1", "counters": "2", "alert_km": km}, {})


@routes.post("/office/{office}/mobile-days")
async def mobile_days_submit(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_HOURS)
    form = await pages.form(request)
    try:
        published = await create_mobile_day(
            request.app[POOL_KEY], pages.office_id(request), form, pages.now(request),
            await loaded(),
        )  # fmt: skip
    except errors.ValidationFailed as invalid:
        return await _page(request, member, form, invalid.fields, 422)
    raise web.HTTPSeeOther(
        f"/office/{pages.office_id(request)}/mobile-days?notice=mobile_day"
        f"&told={published.announced}"
    )


@routes.post("/office/{office}/mobile-days/withdraw")
async def mobile_day_withdraw(request: web.Request) -> web.Response:
    """Withdraw a published mobile day nobody is booked at."""
    member = await authorise(request, Permission.MANAGE_HOURS)
    form = await pages.form(request)
    try:
        await withdraw_mobile_day(
            request.app[POOL_KEY], pages.office_id(request), form.get("mobile_day", ""),
            pages.now(request),
        )  # fmt: skip
    except (errors.ValidationFailed, errors.Conflict) as refused:
        status = 422 if isinstance(refused, errors.ValidationFailed) else 409
        text = next(iter(refused.fields.values()), refused.message)
        km = str(request.app[SETTINGS_KEY].mobile_alert_km)
        return await _page(
            request, member, {"days": "1", "counters": "2", "alert_km": km}, {}, status,
            problem=pages.translate(request, text),
        )  # fmt: skip
    raise web.HTTPSeeOther(
        f"/office/{pages.office_id(request)}/mobile-days?notice=mobile_day_withdrawn"
    )
