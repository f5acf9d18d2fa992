"""A booking's personal data for admins: export it as JSON (right of
access), erase it after a confirmation step (right to erasure). Both are
recorded in the booking's audit log (service.personal_data)."""

from __future__ import annotations

import json

from aiohttp import web

from service import personal_data
from service.domain import errors
from service.domain.booking import normalise_reference
from service.domain.staff import Permission
from service.store.audit import Actor
from service.web.keys import POOL_KEY, SETTINGS_KEY
from service.web.office import pages
from service.web.sessions import authorise

routes = web.RouteTableDef()


def _reference(request: web.Request) -> str:
    reference = normalise_reference(request.match_info["reference"])
    if reference is None:
        raise errors.NotFound()
    return reference


@routes.get("/office/{office}/bookings/{reference}/export.json")
async def export(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_PERSONAL_DATA)
    reference = _reference(request)
    record = await personal_data.export(
        request.app[POOL_KEY], reference, Actor("staff", str(member.id)), pages.office_id(request)
    )
    return web.Response(
        text=json.dumps(record, indent=2, ensure_ascii=False, default=str),
        content_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{reference}.json"',
            "Cache-Control": "no-store",
        },
    )


@routes.get("/office/{office}/bookings/{reference}/erase")
async def erase_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_PERSONAL_DATA)
    context = await pages.base_context(request, member, pages.office_id(request))
    context.update(reference=_reference(request), erased=False)
    return pages.render(request, "erase.html", context)


@routes.post("/office/{office}/bookings/{reference}/erase")
async def erase(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_PERSONAL_DATA)
    await pages.form(request)
    reference = _reference(request)
    await personal_data.erase(
        request.app[POOL_KEY],
        reference,
        Actor("staff", str(member.id)),
        pages.now(request),
        secret_key=request.app[SETTINGS_KEY].secret_key,
        office_id=pages.office_id(request),
    )
    context = await pages.base_context(request, member, pages.office_id(request))
    context.update(reference=reference, erased=True)
    return pages.render(request, "erase.html", context)
