"""The practical information page of an office (service.office.practical)."""

from __future__ import annotations

from aiohttp import web

from service.domain import errors
from service.domain.practical import OfficeInfo, parse_office_info
from service.domain.staff import Permission, StaffMember
from service.office.practical import office_info, save_office_info
from service.web.keys import POOL_KEY
from service.web.office import pages
from service.web.sessions import authorise

routes = web.RouteTableDef()

FIELDS = ("phone", "email", *(f"{n}_{lang}" for n in ("directions", "access")
                               for lang in ("fr", "ar", "en")))  # fmt: skip


def _values(info: OfficeInfo) -> dict[str, str]:
    values = {"phone": info.phone, "email": info.email}
    for language in ("ar", "fr", "en"):
        values[f"directions_{language}"] = info.directions[language]
        values[f"access_{language}"] = info.access[language]
    return values


async def _page(
    request: web.Request,
    member: StaffMember,
    values: dict[str, str] | None,
    problems: dict[str, str],
    status: int = 200,
) -> web.Response:
    office, info = await office_info(request.app[POOL_KEY], pages.office_id(request))
    context = await pages.base_context(request, member, office.id)
    context.update(
        info=info,
        values=values if values is not None else _values(info),
        problems={k: pages.translate(request, v) for k, v in problems.items()},
        fields=FIELDS,
        notice=pages.notice(request, request.query.get("notice")),
    )
    return pages.render(
        request, "info.html", context, status=status,
        switch_to=f"/office/{office.id}/info",
    )  # fmt: skip


@routes.get("/office/{office}/info")
async def info_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_SERVICES)
    return await _page(request, member, None, {})


@routes.post("/office/{office}/info")
async def info_submit(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_SERVICES)
    form = await pages.form(request)
    office, _ = await office_info(request.app[POOL_KEY], pages.office_id(request))
    try:
        info = parse_office_info(form, office.country)
    except errors.ValidationFailed as invalid:
        return await _page(request, member, form, invalid.fields, 422)
    changed = await save_office_info(request.app[POOL_KEY], office.id, info)
    notice = "info_saved" if changed else "unchanged"
    raise web.HTTPSeeOther(f"/office/{office.id}/info?notice={notice}")
