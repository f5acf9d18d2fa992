"""Hours, closures and service settings, with the bookings a change strands
shown to the manager before anything is written (service.office.changes)."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from service import bookings, waitlist
from service.domain import errors
from service.domain.booking import normalise_reference
from service.domain.calendar import local_date
from service.domain.errors import N_
from service.domain.fields import parse_int
from service.domain.hours_form import (
    MAX_SETS,
    HoursSet,
    copy_day,
    kept_rules,
    read_sets,
    rules_of,
    sets_of,
    with_blank_periods,
)
from service.domain.office_day import format_hours, parse_hours, read_closure
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
from service.office.common import office_or_404
from service.office.documents import document_settings
from service.store import offices as office_store
from service.web.i18n import gettext
from service.web.keys import POOL_KEY, SETTINGS_KEY
from service.web.office import pages
from service.web.sessions import authorise
from service.web.templating import request_language

routes = web.RouteTableDef()

# The fields of a change that the page listing stranded bookings sends again
# with the manager's decision.
CARRIED_FIELDS = frozenset(
    {
        "hours", "day", "duration_minutes", "document_required", "earliest_hours",
        "latest_days", "reschedule_cutoff_minutes", "arrive_early_minutes", "active",
        *(f"{name}_{language}" for name in ("reason", "bring", "description", "fees", "late")
          for language in ("ar", "fr", "en")),
    }
)  # fmt: skip


@routes.get("/office/{office}/hours")
async def hours_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_HOURS)
    return await _hours_page(request, member, None, {}, notice=request.query.get("notice"))


async def _hours_page(
    request: web.Request,
    member: StaffMember,
    sets: list[HoursSet] | None,
    problems: dict[str, str],
    status: int = 200,
    notice: str | None = None,
    closure: Mapping[str, str] | None = None,
) -> web.Response:
    """The hours form (the office's hours, or `sets` as typed), closures (the
    closure form as typed, if refused) and the slots they make."""
    now = pages.now(request)
    overview = await hours_overview(request.app[POOL_KEY], pages.office_id(request), now)
    today = local_date(now, overview.office.zone)
    shown = sets if sets is not None else sets_of(overview.rules, today)
    async with request.app[POOL_KEY].acquire() as conn:
        services = await office_store.list_services(conn, overview.office.id)
    context = await pages.base_context(request, member, pages.office_id(request))
    context.update(
        overview=overview,
        sets=[with_blank_periods(s) for s in shown],
        services=services,
        problems={name: pages.translate(request, text) for name, text in problems.items()},
        notice=pages.notice(request, notice),
        **_outcome(request),
        today=today,
        closure=closure or {},
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
        rules=bookings.Rules.of(request.app[SETTINGS_KEY]),
    )
    if outcome.applied and not outcome.changed:
        raise web.HTTPSeeOther(f"/office/{pages.office_id(request)}/{back}?notice=unchanged")
    if outcome.applied:
        kept = len(outcome.stranded) - outcome.cancelled
        raise web.HTTPSeeOther(
            f"/office/{pages.office_id(request)}/{back}?notice=saved"
            f"&cancelled={outcome.cancelled}&kept={kept}&refused={outcome.refused}"
        )
    language = request_language(request)
    context = await pages.base_context(request, member, pages.office_id(request))
    context.update(
        what=what,
        stranded=outcome.stranded,
        service_names={key: name[language] for key, name in outcome.service_names.items()},
        form=form,
        carried_fields=CARRIED_FIELDS,
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
    """The hours form: save (after the list of bookings it strands, if any),
    or copy a day's periods to other days, or add a block for a date range;
    those two send the form back changed and save nothing."""
    member = await authorise(request, Permission.MANAGE_HOURS)
    form = await pages.form(request)
    office_id = pages.office_id(request)
    now = pages.now(request)
    async with request.app[POOL_KEY].acquire() as conn:
        office = await office_or_404(conn, office_id)
        services = [s.id for s in await office_store.list_services(conn, office.id)]
        current = await office_store.hours_rules(conn, office.id)
    if "sets" not in form:
        # Sent again from the list of stranded bookings: the rules as text.
        try:
            rules = parse_hours(form.get("hours", ""), services)
        except errors.ValidationFailed:
            return await _hours_page(
                request, member, None, {"s0-d0-p0-opens": N_("Check the form")}, 422
            )
        return await _change(request, member, ReplaceHours(office_id, rules), form, "hours")
    sets = read_sets(form)
    action = form.get("action", "save")
    if action.startswith("copy-"):
        index = parse_int(action[5:], 0, MAX_SETS)
        if index is None:
            return await _hours_page(request, member, sets, {}, status=422)
        copied = copy_day(sets, form, index)
        return await _hours_page(request, member, copied, {}, notice="copied")
    if action == "add" and len(sets) < MAX_SETS:
        return await _hours_page(request, member, [*sets, HoursSet()], {}, notice="added")
    try:
        rules = rules_of(sets, services)
    except errors.ValidationFailed as bad:
        return await _hours_page(request, member, sets, bad.fields, status=422)
    # Dated hours not in the form (past, or over a year ahead) stay as they were.
    rules += kept_rules(current, local_date(now, office.zone))
    write = ReplaceHours(office_id, rules)
    return await _change(request, member, write, {"hours": format_hours(rules)}, "hours")


@routes.post("/office/{office}/closures")
async def closure_add(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_HOURS)
    form = await pages.form(request)
    async with request.app[POOL_KEY].acquire() as conn:
        office = await office_or_404(conn, pages.office_id(request))
    try:
        closure = read_closure(form, local_date(pages.now(request), office.zone))
    except errors.ValidationFailed as invalid:
        return await _hours_page(request, member, None, invalid.fields, 422, closure=form)
    write = AddClosure(office.id, closure.day, closure.reasons)
    try:
        return await _change(request, member, write, form, "closure")
    except errors.ValidationFailed as refused:  # already a public holiday
        return await _hours_page(request, member, None, refused.fields, 422, closure=form)


@routes.post("/office/{office}/closures/{day}/remove")
async def closure_remove(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_HOURS)
    form = await pages.form(request)
    write = RemoveClosure(pages.office_id(request), pages.day(request.match_info["day"]))
    return await _change(request, member, write, form, "reopening")


@routes.get("/office/{office}/services")
async def services_page(request: web.Request) -> web.Response:
    """Every service of the office, each with a link to its settings."""
    member = await authorise(request, Permission.MANAGE_SERVICES)
    office, services = await office_services(request.app[POOL_KEY], pages.office_id(request))
    context = await pages.base_context(request, member, office.id)
    context.update(
        services=[(svc, settings_of(svc, active)) for svc, active in services],
        notice=pages.notice(request, request.query.get("notice")),
        **_outcome(request),
    )
    return pages.render(request, "services.html", context)


@routes.get("/office/{office}/services/{service}")
async def service_page(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_SERVICES)
    return await _service_page(request, member, {}, {})


async def _service_page(
    request: web.Request,
    member: StaffMember,
    values: dict[str, str],
    problems: dict[str, str],
    status: int = 200,
) -> web.Response:
    """One service's settings and practical information, as saved or as typed."""
    office, services = await office_services(request.app[POOL_KEY], pages.office_id(request))
    found = [(svc, active) for svc, active in services if svc.id == request.match_info["service"]]
    if not found:
        raise errors.service_not_found()
    [(service, active)] = found
    language = request_language(request)
    context = await pages.base_context(request, member, office.id)
    rules = bookings.Rules.of(request.app[SETTINGS_KEY])
    context.update(
        svc=service,
        cfg=settings_of(service, active),
        documents=await document_settings(request.app[POOL_KEY], office.id, service.id),
        notice=pages.notice(request, request.query.get("notice")),
        v=values,
        p={k: gettext(language, v) for k, v in problems.items()},
        # The list's length and entries (service.waitlist).
        waitlist=await waitlist.service_list(
            request.app[POOL_KEY], office.id, service.id, pages.now(request), rules
        ),
    )
    return pages.render(
        request,
        "service.html",
        context,
        status=status,
        switch_to=f"/office/{office.id}/services/{service.id}",
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
        return await _service_page(request, member, form, invalid.fields, 422)
    write = UpdateService(pages.office_id(request), service_id, settings)
    # A new duration or a service turned off moves or removes slots: the
    # bookings they strand are shown first, as for a change of hours.
    return await _change(request, member, write, form, "service", "services")
