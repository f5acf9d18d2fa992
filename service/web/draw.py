"""Draws on the web: the public record of a draw (JSON and a page anyone can
read and replay), an office's list of draws, and the page where a citizen
accepts or declines an offer (linked from the offer message)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web

from service import draw
from service.domain import errors, fields
from service.domain.draw import REPLAY_SCRIPT, WindowPlan, offer_still_open
from service.domain.errors import N_
from service.domain.staff import Permission
from service.web import limits
from service.web.api import text_members
from service.web.citizen import render, see_other
from service.web.i18n import zone_label
from service.web.inputs import json_body
from service.web.keys import CLOCK_KEY, POOL_KEY, SETTINGS_KEY
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
    record = await draw.published(request.app[POOL_KEY], draw_id)
    base = request.app[SETTINGS_KEY].base_url
    return render(
        request,
        "citizen/draw_public.html",
        {
            "record": record,
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
        if instant is not None and instant.tzinfo is not None:
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
