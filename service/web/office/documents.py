"""Document files (service.office.documents): the day view's action, the
office's list of uncollected documents by age, and the same in the JSON API."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service.domain import errors
from service.domain.calendar import local_date
from service.domain.documents import MAX_REFUSAL_REASON, age_in_days, parse_file_action
from service.domain.models import Office
from service.domain.staff import Permission
from service.office.common import office_or_404
from service.office.documents import move_file, set_document_settings, uncollected
from service.store.documents import DocumentFile
from service.web.api import iso, parse_reference, text_members
from service.web.inputs import json_body
from service.web.keys import CLOCK_KEY, POOL_KEY
from service.web.office import pages
from service.web.office.schedule import day_action, day_page_with_error
from service.web.sessions import authorise

routes = web.RouteTableDef()


@routes.post("/office/{office}/bookings/{reference}/document")
async def file_submit(request: web.Request) -> web.Response:
    """Move a booking's file from the day view; a refused move is said on
    the day's page."""
    action = await day_action(request)
    try:
        if action.reference is None:
            raise errors.NotFound()
        target, reason = parse_file_action(action.form.get("state"), action.form.get("reason"))
        moved = await move_file(
            request.app[POOL_KEY], action.office_id, action.reference, target, reason,
            action.member, pages.now(request),
        )  # fmt: skip
    except errors.Refusal as refused:
        return await day_page_with_error(request, action, refused)
    if not pages.is_iso_date(action.back):
        raise web.HTTPSeeOther(f"/office/{action.office_id}/bookings/{moved.reference}")
    raise web.HTTPSeeOther(
        f"/office/{action.office_id}/day/{action.back}"
        f"?notice=file_moved&ref={moved.reference}#b-{moved.reference}"
    )


@routes.post("/office/{office}/services/{service}/documents")
async def document_settings_submit(request: web.Request) -> web.Response:
    """The manager's per-service choice (checkboxes: present means on)."""
    await authorise(request, Permission.MANAGE_SERVICES)
    form = await pages.form(request)
    office_id, service_id = pages.office_id(request), request.match_info["service"]
    await set_document_settings(
        request.app[POOL_KEY],
        office_id,
        service_id,
        produces_document="produces_document" in form,
        pickup_by_appointment="pickup_by_appointment" in form,
    )
    raise web.HTTPSeeOther(f"/office/{office_id}/services/{service_id}?notice=documents_saved")


@routes.get("/office/{office}/documents")
async def uncollected_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.VIEW_SCHEDULE)
    listing = await uncollected(request.app[POOL_KEY], pages.office_id(request))
    now = pages.now(request)
    context = await pages.base_context(request, member, pages.office_id(request))
    zone = listing.office.zone
    context.update(
        documents=[(d, age_in_days(d.ready_at, now, zone)) for d in listing.documents],
        today=local_date(now, zone),
    )
    return pages.render(request, "documents.html", context)


def file_json(reference: str, file: DocumentFile, office: Office) -> dict[str, Any]:
    return {
        "reference": reference,
        "state": file.state,
        "refusal_reason": file.refusal_reason,
        "received_at": iso(file.received_at, office),
        "ready_at": iso(file.ready_at, office) if file.ready_at else None,
        "collected_at": iso(file.collected_at, office) if file.collected_at else None,
    }


@routes.post("/api/v1/offices/{office}/bookings/{reference}/document")
async def file_api(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.CHANGE_STATUS)
    reference = parse_reference(request.match_info["reference"])
    body = await json_body(request)
    text_members(body, {"reason": MAX_REFUSAL_REASON})
    target, reason = parse_file_action(body.get("state"), body.get("reason"))
    pool = request.app[POOL_KEY]
    moved = await move_file(
        pool,
        request.match_info["office"],
        reference,
        target,
        reason,
        member,
        request.app[CLOCK_KEY](),
    )
    async with pool.acquire() as conn:
        office = await office_or_404(conn, request.match_info["office"])
    return web.json_response(file_json(moved.reference, moved.file, office))


@routes.get("/api/v1/offices/{office}/documents/uncollected")
async def uncollected_api(request: web.Request) -> web.Response:
    await authorise(request, Permission.VIEW_SCHEDULE)
    listing = await uncollected(request.app[POOL_KEY], request.match_info["office"])
    now = request.app[CLOCK_KEY]()
    office = listing.office
    return web.json_response(
        {
            "office": office.id,
            "documents": [
                {
                    "reference": d.reference,
                    "service": d.service_id,
                    "ready_at": iso(d.ready_at, office),
                    "age_days": age_in_days(d.ready_at, now, office.zone),
                    "reminded": d.reminded_at is not None,
                }
                for d in listing.documents
            ],
        }
    )
