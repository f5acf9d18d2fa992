"""Hours, closures and service settings, with the bookings a change strands
shown to the manager before anything is written (service.office.changes)."""

from __future__ import annotations

from datetime import date

from aiohttp import web

from service.domain import errors
from service.domain.booking import normalise_reference
from service.domain.calendar import local_date
from service.domain.errors import N_
from service.domain.fields import parse_int
from service.domain.office_day import format_hours, parse_hours
from service.domain.service_settings import parse_service_form, settings_of
from service.domain.staff import Permission, StaffMember
from service.office.changes import (
    AddClosure,
    Change,
    Decision,
    RemoveClosure,
    ReplaceHours,
    UpdateService,
    change_office,
    hours_overview,
    office_services,
)
from service.store import offices as office_store
from service.web.i18n import gettext
from service.web.keys import POOL_KEY, SETTINGS_KEY
from service.web.office import pages
from service.web.sessions import authorise
from service.web.templating import request_language

routes = web.RouteTableDef()


@routes.get("/office/{office}/hours")
async def hours_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_HOURS)
    return await _hours_page(request, member, None, [], notice=request.query.get("notice"))


async def _hours_page(
    request: web.Request,
    member: StaffMember,
    text: str | None,
    problems: list[tuple[int, str]],
    status: int = 200,
    notice: str | None = None,
) -> web.Response:
    overview = await hours_overview(
        request.app[POOL_KEY], pages.office_id(request), pages.now(request)
    )
    context = await pages.base_context(request, member, pages.office_id(request))
    context.update(
        overview=overview,
        text=format_hours(overview.rules) if text is None else text,
        problems=[(line, pages.translate(request, text)) for line, text in problems],
        notice=pages.notice(request, notice),
        **_outcome(request),
        today=local_date(pages.now(request), overview.office.zone),
    )
    return pages.render(
        request,
        "hours.html",
        context,
        status=status,
        switch_to=f"/office/{pages.office_id(request)}/hours",
    )


def _outcome(request: web.Request) -> dict[str, int | None]:
    """What the change just applied did to stranded bookings, as _change's
    redirect put it in the query."""
    return {key: _count(request.query.get(key)) for key in ("cancelled", "kept", "refused")}


def _count(raw: str | None) -> int | None:
    return parse_int(raw, 0, 99999)


def _decision(form: dict[str, str]) -> tuple[str | None, list[str], str | None]:
    decision = form.get("decision") or None
    seen = [r for r in form.get("seen", "").split() if normalise_reference(r)]
    reason = " ".join(form.get("reason", "").split())[:300] or None
    return decision, seen, reason


async def _change(
    request: web.Request,
    member: StaffMember,
    write: Change,
    form: dict[str, str],
    what: str,
    back: str = "hours",
) -> web.Response:
    """Apply an office change, or show the bookings it strands; `back` is the
    office page (hours or services) to return to."""
    decision, seen, reason = _decision(form)
    problem: str | None = None
    if decision == Decision.CANCEL and not reason:
        problem = pages.translate(
            request, N_("Say why the bookings are cancelled: the citizens will read it.")
        )
        decision = None  # ask again, with the list as it is now
    outcome = await change_office(
        request.app[POOL_KEY],
        pages.office_id(request),
        write,
        decision=decision,
        seen=seen,
        reason=reason,
        member=member,
        now=pages.now(request),
        horizon_days=request.app[SETTINGS_KEY].slot_horizon_days,
    )
    if outcome.applied and not outcome.changed:
        raise web.HTTPSeeOther(f"/office/{pages.office_id(request)}/{back}?notice=unchanged")
    if outcome.applied:
        kept = len(outcome.stranded) - outcome.cancelled
        raise web.HTTPSeeOther(
            f"/office/{pages.office_id(request)}/{back}?notice=saved"
            f"&cancelled={outcome.cancelled}&kept={kept}&refused={outcome.refused}"
        )
    context = await pages.base_context(request, member, pages.office_id(request))
    context.update(
        what=what,
        stranded=outcome.stranded,
        form=form,
        problem=problem,
        action=request.path,
        back=back,
    )
    return pages.render(
        request,
        "confirm_change.html",
        context,
        status=409,
        switch_to=f"/office/{pages.office_id(request)}/{back}",
    )


@routes.post("/office/{office}/hours")
async def hours_submit(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_HOURS)
    form = await pages.form(request)
    text = form.get("hours", "")
    async with request.app[POOL_KEY].acquire() as conn:
        services = [s.id for s in await office_store.list_services(conn, pages.office_id(request))]
    try:
        rules = parse_hours(text, services)
    except errors.ValidationFailed as bad:
        problems = [(int(line), message) for line, message in bad.fields.items()]
        return await _hours_page(request, member, text, problems, status=422)
    write = ReplaceHours(pages.office_id(request), rules)
    return await _change(request, member, write, form, "hours")


@routes.post("/office/{office}/closures")
async def closure_add(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_HOURS)
    form = await pages.form(request)
    raw = form.get("day", "")
    reasons = {k: " ".join(form.get(f"reason_{k}", "").split())[:200] for k in ("fr", "ar", "en")}
    if not pages.is_iso_date(raw) or not any(reasons.values()):
        return await _hours_page(
            request,
            member,
            None,
            [(0, N_("Give a date and a reason for the closure."))],
            status=422,
        )
    # Citizens read the reason in their language; one typed reason stands in
    # for the languages left empty.
    fallback = next(v for v in reasons.values() if v)
    reasons = {k: v or fallback for k, v in reasons.items()}
    write = AddClosure(pages.office_id(request), date.fromisoformat(raw), reasons)
    return await _change(request, member, write, form, "closure")


@routes.post("/office/{office}/closures/{day}/remove")
async def closure_remove(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_HOURS)
    form = await pages.form(request)
    write = RemoveClosure(pages.office_id(request), pages.day(request.match_info["day"]))
    return await _change(request, member, write, form, "reopening")


@routes.get("/office/{office}/services")
async def services_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_SERVICES)
    return await _services_page(request, member, None, {}, {})


async def _services_page(
    request: web.Request,
    member: StaffMember,
    editing: str | None,
    values: dict[str, str],
    problems: dict[str, str],
    status: int = 200,
) -> web.Response:
    office, services = await office_services(request.app[POOL_KEY], pages.office_id(request))
    language = request_language(request)
    context = await pages.base_context(request, member, office.id)
    context.update(
        services=[(svc, settings_of(svc, active)) for svc, active in services],
        editing=editing,
        values=values,
        problems={k: gettext(language, v) for k, v in problems.items()},
        notice=pages.notice(request, request.query.get("notice")),
        **_outcome(request),
    )
    return pages.render(
        request,
        "services.html",
        context,
        status=status,
        switch_to=f"/office/{pages.office_id(request)}/services",
    )


@routes.post("/office/{office}/services/{service}")
async def service_submit(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_SERVICES)
    service_id = request.match_info["service"]
    _, services = await office_services(request.app[POOL_KEY], pages.office_id(request))
    if not any(svc.id == service_id for svc, _ in services):
        raise errors.service_not_found()
    form = await pages.form(request)
    try:
        settings = parse_service_form(form)
    except errors.ValidationFailed as invalid:
        return await _services_page(request, member, service_id, form, invalid.fields, 422)
    write = UpdateService(pages.office_id(request), service_id, settings)
    # A new duration or a service turned off moves or removes slots: the
    # bookings they strand are shown first, as for a change of hours.
    return await _change(request, member, write, form, "service", "services")
