"""Draws on the web: the public record of a draw (JSON and a page anyone can
read and replay), an office's list of draws, a citizen's request (its form,
its code step, its receipt, withdrawing), and the page where a citizen
accepts or declines an offer (linked from the offer message)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any, Protocol

from aiohttp import web
from multidict import MultiDictProxy

from service import bookings, draw
from service.domain import errors, fields
from service.domain.draw import (
    OUTSIDE_WINDOW,
    PARTS_OF_DAY,
    REPLAY_SCRIPT,
    WindowPlan,
    offer_still_open,
)
from service.domain.errors import N_
from service.domain.fields import parse_day
from service.domain.staff import Permission
from service.store.audit import CITIZEN
from service.web import citizen, limits
from service.web.api import text_members
from service.web.citizen import render, see_other
from service.web.errors import refusal_text, retry_after_header
from service.web.i18n import zone_label
from service.web.inputs import json_body
from service.web.keys import CLOCK_KEY, POOL_KEY, SETTINGS_KEY
from service.web.labels import label_function
from service.web.readcache import read_cache
from service.web.sessions import authorise
from service.web.templating import explicit_language, request_language

routes = web.RouteTableDef()


def _draw_id(request: web.Request) -> int:
    draw_id = fields.parse_id(request.match_info["id"])
    if draw_id is None:
        raise draw.window_not_found()
    return draw_id


@routes.get("/api/v1/draws/{id}")
async def draw_json(request: web.Request) -> web.Response:
    return web.json_response(await draw.published(request.app[POOL_KEY], _draw_id(request)))


@routes.get("/api/v1/offices/{office}/draws")
async def office_draws(request: web.Request) -> web.Response:
    draws = await draw.office_draws(request.app[POOL_KEY], request.match_info["office"])
    return web.json_response(draws)


@routes.get("/draws/{id}")
async def draw_page(request: web.Request) -> web.Response:
    draw_id = _draw_id(request)
    window, record = await draw.published_window(request.app[POOL_KEY], draw_id)
    cache = read_cache(request)
    office = await cache.office(window.office_id)
    service = await cache.service(window.office_id, window.service_id)
    if office is None or service is None:
        raise draw.window_not_found()
    language = request_language(request)
    base = request.app[SETTINGS_KEY].base_url
    return render(
        request,
        "citizen/draw_public.html",
        {
            "record": record,
            "window": window,
            "office": office,
            "service": service,
            "zone": zone_label(office.country, office.city[language], language),
            "label": label_function(language),
            "json_url": f"{base}/api/v1/draws/{draw_id}",
            "script": REPLAY_SCRIPT,
        },
    )


# The offer -------------------------------------------------------------------------


async def _offer(request: web.Request) -> tuple[draw.Offer, str]:
    await limits.check(request, "manage")
    settings = request.app[SETTINGS_KEY]
    offer = await draw.view_offer(
        request.app[POOL_KEY],
        request.match_info["reference"],
        request.match_info["token"],
        settings.secret_key,
    )
    language = request_language(request) if explicit_language(request) else offer.language
    return offer, language


def _offer_context(request: web.Request, offer: draw.Offer, language: str) -> dict[str, Any]:
    return {
        "offer": offer,
        "open": offer.outcome == "offered"
        and offer_still_open(offer.expires_at, request.app[CLOCK_KEY]()),
        "base": f"/d/{offer.reference}/{request.match_info['token']}",
        "manage": f"/b/{offer.reference}/{request.match_info['token']}",
        "zone": zone_label(offer.office.country, offer.office.city[language], language),
        "problem": False,
    }


@routes.get("/d/{reference}/{token}")
async def offer_page(request: web.Request) -> web.Response:
    offer, language = await _offer(request)
    context = _offer_context(request, offer, language)
    return render(request, "citizen/draw_offer.html", context, language=language, private=True)


@routes.post("/d/{reference}/{token}")
async def answer_offer(request: web.Request) -> web.Response:
    offer, language = await _offer(request)
    form = await request.post()
    answer = form.get("answer")
    if answer not in ("accept", "decline"):
        raise errors.ValidationFailed({"answer": N_("Accept or decline the offer.")})
    try:
        offer = await draw.answer_offer(
            request.app[POOL_KEY],
            offer.reference,
            request.match_info["token"],
            answer == "accept",
            secret_key=request.app[SETTINGS_KEY].secret_key,
            now=request.app[CLOCK_KEY](),
            rules_=bookings.Rules.of(request.app[SETTINGS_KEY]),
        )
    except errors.Conflict:
        context = _offer_context(request, offer, language)
        context["problem"] = True
        return render(
            request, "citizen/draw_offer.html", context, language=language, status=409, private=True
        )
    see_other(f"/d/{offer.reference}/{request.match_info['token']}", private=True)


# The office API: a service's mode, and opening a window (managers) -------------------


def _instant(raw: object, field: str) -> datetime:
    """An ISO 8601 instant with its UTC offset, as the API writes them."""
    if isinstance(raw, str) and len(raw) <= 40:
        try:
            instant = datetime.fromisoformat(raw)
        except ValueError:
            instant = None
        # Within the days any form takes: 0001-01-01T00:00+01:00 is not an
        # instant in UTC at all.
        if (
            instant is not None
            and instant.tzinfo is not None
            and fields.day_in_range(instant.date())
        ):
            return instant.astimezone(UTC)
    raise errors.ValidationFailed(
        {field: N_("Enter an instant with its offset, like 2027-06-01T09:00:00+02:00.")}
    )


def _day(raw: object, field: str) -> date:
    day = fields.parse_day(raw) if isinstance(raw, str) else None
    if day is None:
        raise errors.ValidationFailed({field: N_("Enter a day as YYYY-MM-DD.")})
    return day


@routes.post("/api/v1/offices/{office}/services/{service}/allocation")
async def set_allocation(request: web.Request) -> web.Response:
    await authorise(request, Permission.MANAGE_SERVICES)
    body = await json_body(request)
    text_members(body, {"mode": 10})
    mode = await draw.set_mode(
        request.app[POOL_KEY],
        request.match_info["office"],
        request.match_info["service"],
        body.get("mode"),
        request.app[CLOCK_KEY](),
    )
    return web.json_response({"service": request.match_info["service"], "mode": mode.value})


@routes.post("/api/v1/offices/{office}/services/{service}/draws")
async def open_window(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.MANAGE_SERVICES)
    body = await json_body(request)
    text_members(body, {"opens_at": 40, "closes_at": 40, "first_day": 10, "last_day": 10})
    now = request.app[CLOCK_KEY]()
    plan = WindowPlan(
        opens_at=_instant(body["opens_at"], "opens_at") if body.get("opens_at") else now,
        closes_at=_instant(body.get("closes_at"), "closes_at"),
        first_day=_day(body.get("first_day"), "first_day"),
        last_day=_day(body.get("last_day"), "last_day"),
    )
    window = await draw.open_window(
        request.app[POOL_KEY],
        request.match_info["office"],
        request.match_info["service"],
        plan,
        created_by=f"staff:{member.id}",
        now=now,
    )
    record = await draw.published(request.app[POOL_KEY], window.id)
    return web.json_response(record, status=201)


# A citizen's request ---------------------------------------------------------------


async def request_form_context(
    request: web.Request,
    values: dict[str, str],
    *,
    days: list[str] | None = None,
    parts: list[str] | None = None,
    field_errors: dict[str, str] | None = None,
    problem: str | None = None,
) -> dict[str, Any]:
    """The request form: the open window (if any) with its days and seed
    hash, and the details fields of the booking form."""
    now = request.app[CLOCK_KEY]()
    office_id, service_id = request.match_info["office"], request.match_info["service"]
    view = await draw.request_form(request.app[POOL_KEY], office_id, service_id, now)
    context = citizen.book_context(
        request, view.office, view.service, None, values, "",
        field_errors=field_errors, problem=problem,
    )  # fmt: skip
    window = view.windows[0] if view.windows else None
    context.update(
        window=window,
        drawn=view.drawn,
        days=view.days,
        chosen_days=set(days or []),
        chosen_parts=ticked_parts(parts),
    )
    return context


def _blank_values(request: web.Request, country: str) -> dict[str, str]:
    return dict.fromkeys(citizen.DETAIL_FIELDS, "") | {
        "language": request_language(request),
        "phone_country": country,
    }


@routes.get("/offices/{office}/{service}/draw")
async def request_form(request: web.Request) -> web.Response:
    office_id, service_id = request.match_info["office"], request.match_info["service"]
    context = await request_form_context(request, {})
    if context["service"].allocation_mode != "draw":
        # First come, first served: its times are on sale on its own page.
        see_other(f"/offices/{office_id}/{service_id}")
    context["values"] = _blank_values(request, context["office"].country)
    return render(request, "citizen/draw_request.html", context, private=True)


def posted_wish(form: MultiDictProxy[Any]) -> tuple[list[str], list[str]]:
    """The days and parts of day a request form ticked, as typed (bounded:
    a window spans at most 62 days, a day two parts)."""
    days = [d for d in form.getall("days", []) if isinstance(d, str)][:62]
    parts = [p for p in form.getall("parts", []) if isinstance(p, str)][:2]
    return days, parts


def ticked_parts(parts: list[str] | None) -> set[str]:
    """The parts of day an entry form shows ticked: both on a blank form;
    on one sent back, those that were sent, none if none (its error asks
    for a choice), not both again as if they had been chosen."""
    return set(PARTS_OF_DAY if parts is None else parts)


def read_days(days: list[str], outside: str = OUTSIDE_WINDOW) -> list[date]:
    """The days a form ticked, or the refusal (`outside`) for one that is
    not a day."""
    parsed = [parse_day(d) for d in days]
    wanted = [day for day in parsed if day is not None]
    if len(wanted) != len(parsed):
        raise errors.ValidationFailed({"days": outside})
    return wanted


def read_wish(form: MultiDictProxy[Any], days: list[str]) -> tuple[int, list[date]]:
    """The window a request form names and its days, or the refusal: the
    citizen's form and the counter's read them alike."""
    window_id = fields.parse_id(citizen.form_text(form, "window"))
    if window_id is None:
        raise draw.window_closed()
    return window_id, read_days(days)


# Sends a parsed entry form: (the form, its details, its days, its parts).
Send = Callable[
    [MultiDictProxy[Any], dict[str, str], list[str], list[str]], Awaitable[draw.Receipt]
]


class EntryForm(Protocol):
    """The context of an entry form's page, with what was typed and what
    went wrong."""

    async def __call__(
        self,
        request: web.Request,
        values: dict[str, str],
        *,
        days: list[str] | None = None,
        parts: list[str] | None = None,
        field_errors: dict[str, str] | None = None,
        problem: str | None = None,
    ) -> dict[str, Any]: ...


async def submit_entry(
    request: web.Request,
    detail_fields: tuple[str, ...],
    send: Send,
    form_context: EntryForm,
    template: str,
) -> web.Response:
    """Parse and send an entry form (a draw's request, a place on a waiting
    list): on to its receipt, or the form again with what went wrong, in
    the citizen's language."""
    form = await request.post()
    values = {name: citizen.form_text(form, name) for name in detail_fields}
    days, parts = posted_wish(form)
    field_errors, problem, refused = None, None, None
    try:
        receipt = await send(form, values, days, parts)
    except errors.ValidationFailed as failed:
        status, field_errors = 422, dict(failed.fields)
    except (errors.Conflict, errors.TooManyRequests) as refusal:
        status = 409 if isinstance(refusal, errors.Conflict) else 429
        problem = refusal_text(request_language(request), refusal)
        refused = refusal
    else:
        see_other(draw.receipt_url(receipt.entry_id, receipt.token), private=True)
    context = await form_context(
        request, values, days=days, parts=parts, field_errors=field_errors, problem=problem
    )
    response = render(request, template, context, status=status, private=True)
    if refused is not None:
        # Refused by the limit, the form comes back with what was typed.
        response.headers.update(retry_after_header(refused))
    return response


@routes.post("/offices/{office}/{service}/draw")
async def request_submit(request: web.Request) -> web.Response:
    await limits.check(request, "availability")
    settings = request.app[SETTINGS_KEY]

    async def send(
        form: MultiDictProxy[Any], values: dict[str, str], days: list[str], parts: list[str]
    ) -> draw.Receipt:
        window_id, wanted = read_wish(form, days)
        return await draw.request(
            request.app[POOL_KEY], window_id, citizen.raw_details(values), wanted, parts,
            secret_key=settings.secret_key, now=request.app[CLOCK_KEY](), actor=CITIZEN,
            office_id=request.match_info["office"], service_id=request.match_info["service"],
            rules_=bookings.Rules.of(settings), admit=limits.attempt(request),
        )  # fmt: skip

    return await submit_entry(
        request, citizen.DETAIL_FIELDS, send, request_form_context, "citizen/draw_request.html"
    )


async def _request(request: web.Request) -> draw.Request:
    await limits.check(request, "manage")
    return await draw.view_request(
        request.app[POOL_KEY],
        request.match_info["entry"],
        request.match_info["token"],
        request.app[SETTINGS_KEY].secret_key,
        request.app[CLOCK_KEY](),
    )


def _request_language(request: web.Request, req: draw.Request) -> str:
    return request_language(request) if explicit_language(request) else req.entry.language


def _receipt_page(
    request: web.Request,
    req: draw.Request,
    *,
    field_errors: dict[str, str] | None = None,
    problem: str | None = None,
    status: int = 200,
) -> web.Response:
    """The receipt (of a draw's request, or of a place on a waiting list),
    or while the contact is unproved the code step."""
    language = _request_language(request, req)
    context: dict[str, Any] = {
        "req": req,
        "entry": req.entry,
        "on_list": req.window is None,
        "office": req.office,
        "service": req.service,
        "base": draw.receipt_url(req.entry.id, request.match_info["token"]),
        "zone": zone_label(req.office.country, req.office.city[language], language),
        "problem": problem,
        "errors": field_errors or {},
        "channels": citizen.channel_options(
            request,
            phone=req.entry.phone is not None,
            email=req.entry.email is not None,
            whatsapp_stopped=req.whatsapp_opted_out,
        ),
        "whatsapp_stopped": req.whatsapp_opted_out,
        "notice": _NOTICES.get(request.query.get("done", "")),
    }
    template = f"citizen/{'waitlist' if req.window is None else 'draw'}_receipt.html"
    if req.code is not None:
        context.update(citizen.code_step_context(request, req.code, field_errors, problem))
        template = "citizen/code.html"
    return render(request, template, context, status=status, language=language, private=True)


@routes.get("/r/{entry}/{token}")
async def receipt(request: web.Request) -> web.Response:
    return _receipt_page(request, await _request(request))


@routes.post("/r/{entry}/{token}/code")
async def request_code(request: web.Request) -> web.Response:
    await limits.check(request, "verify")
    req = await _request(request)
    form = await request.post()
    settings = request.app[SETTINGS_KEY]
    token = request.match_info["token"]
    attempt = draw.verify_request(
        request.app[POOL_KEY], req.entry.id, token, citizen.form_text(form, "code"),
        settings.secret_key, request.app[CLOCK_KEY](),
    )  # fmt: skip
    return await citizen.code_step_answer(
        attempt,
        citizen.shown_again(request, _request, _receipt_page),
        _request_language(request, req),
        draw.receipt_url(req.entry.id, token),
    )  # fmt: skip


@routes.post("/r/{entry}/{token}/code/resend")
async def request_code_resend(request: web.Request) -> web.Response:
    await limits.check(request, "resend")
    req = await _request(request)
    settings = request.app[SETTINGS_KEY]
    token = request.match_info["token"]
    attempt = draw.resend_request_code(
        request.app[POOL_KEY], req.entry.id, token, settings.secret_key,
        request.app[CLOCK_KEY](), bookings.Rules.of(settings),
    )  # fmt: skip
    return await citizen.code_step_answer(
        attempt,
        citizen.shown_again(request, _request, _receipt_page),
        _request_language(request, req),
        f"{draw.receipt_url(req.entry.id, token)}?sent=1",
    )  # fmt: skip


_NOTICES = {"channel": citizen.CHANNEL_SAVED}


@routes.post("/r/{entry}/{token}/channel")
async def request_channel(request: web.Request) -> web.Response:
    req = await _request(request)
    form = await request.post()
    try:
        await draw.change_channel(
            request.app[POOL_KEY], req.entry.id, request.match_info["token"],
            citizen.form_text(form, "channel"), request.app[SETTINGS_KEY].secret_key,
            request.app[CLOCK_KEY](),
        )  # fmt: skip
    except errors.ValidationFailed as failed:
        return _receipt_page(request, req, field_errors=dict(failed.fields), status=422)
    except errors.Conflict as refusal:
        return _receipt_page(
            request, req, problem=refusal_text(_request_language(request, req), refusal),
            status=409,
        )  # fmt: skip
    base = draw.receipt_url(req.entry.id, request.match_info["token"])
    see_other(f"{base}?done=channel", private=True)


@routes.post("/r/{entry}/{token}/withdraw")
async def request_withdraw(request: web.Request) -> web.Response:
    req = await _request(request)
    try:
        await draw.withdraw(
            request.app[POOL_KEY], req.entry.id, request.match_info["token"],
            request.app[SETTINGS_KEY].secret_key,
        )  # fmt: skip
    except errors.Conflict as refusal:
        return _receipt_page(
            request, req, problem=refusal_text(_request_language(request, req), refusal),
            status=409,
        )  # fmt: skip
    see_other(draw.receipt_url(req.entry.id, request.match_info["token"]), private=True)
