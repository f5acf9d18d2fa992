"""The feedback form after a visit (service.feedback): one page, no
JavaScript, in the booking's language unless the reader chose another.
Under /f/{reference}/{token}, private like the manage pages."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service import feedback
from service.domain import errors
from service.domain.booking import normalise_reference
from service.domain.errors import N_
from service.domain.feedback import MAX_COMMENT
from service.web import i18n, limits
from service.web.citizen import render, see_other
from service.web.keys import CLOCK_KEY, POOL_KEY, SETTINGS_KEY
from service.web.templating import explicit_language, request_language

routes = web.RouteTableDef()

_NOTICES = {
    "thanks": N_("Thank you: your opinion is recorded."),
    "stopped": N_("Done: you will get no more messages asking for your opinion."),
}
FIELD_ORDER = ("rating", "came_back", "comment")


def _reference(request: web.Request) -> str:
    reference = normalise_reference(request.match_info["reference"])
    if reference is None:
        raise errors.booking_not_found()
    return reference


async def _page(
    request: web.Request,
    *,
    values: dict[str, str] | None = None,
    problems: dict[str, str] | None = None,
    problem: str | None = None,
    status: int = 200,
) -> web.Response:
    await limits.check(request, "manage")
    form = await feedback.open_form(
        request.app[POOL_KEY],
        _reference(request),
        request.match_info["token"],
        request.app[SETTINGS_KEY].secret_key,
    )
    ctx = form.context
    language = request_language(request) if explicit_language(request) else ctx.booking.language
    context: dict[str, Any] = {
        "booking": ctx.booking,
        "office": ctx.office,
        "service": ctx.service,
        "zone": i18n.zone_label(ctx.office.country, ctx.office.city[language], language),
        "given": form.given,
        "done": ctx.booking.status == "done",
        "base": f"/f/{ctx.booking.reference}/{request.match_info['token']}",
        "values": values or {},
        "errors": problems or {},
        "field_order": FIELD_ORDER,
        "problem": problem,
        "notice": _NOTICES.get(request.query.get("done", "")),
        "max_comment": MAX_COMMENT,
    }
    return render(
        request, "citizen/feedback.html", context, status=status, language=language, private=True
    )


@routes.get("/f/{reference}/{token}")
async def feedback_form(request: web.Request) -> web.Response:
    return await _page(request)


@routes.post("/f/{reference}/{token}")
async def feedback_submit(request: web.Request) -> web.Response:
    posted = await request.post()
    values = {k: v for k, v in posted.items() if isinstance(v, str)}
    try:
        await feedback.answer(
            request.app[POOL_KEY],
            _reference(request),
            request.match_info["token"],
            request.app[SETTINGS_KEY].secret_key,
            (values.get("rating"), values.get("came_back"), values.get("comment")),
            request.app[CLOCK_KEY](),
        )
    except errors.ValidationFailed as invalid:
        return await _page(request, values=values, problems=invalid.fields, status=422)
    except errors.Conflict as refused:
        return await _page(request, problem=refused.message, status=409)
    see_other(f"{request.path}?done=thanks", private=True)


@routes.post("/f/{reference}/{token}/stop")
async def feedback_stop(request: web.Request) -> web.Response:
    await feedback.stop_messages(
        request.app[POOL_KEY],
        _reference(request),
        request.match_info["token"],
        request.app[SETTINGS_KEY].secret_key,
        request.app[CLOCK_KEY](),
    )
    base = request.path.removesuffix("/stop")
    see_other(f"{base}?done=stopped", private=True)
