"""Draws on the web: the public record of a draw (JSON and a page anyone can
read and replay), an office's list of draws, and the page where a citizen
accepts or declines an offer (linked from the offer message)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service import draw
from service.domain import errors, fields
from service.domain.draw import REPLAY_SCRIPT, offer_still_open
from service.domain.errors import N_
from service.web import limits
from service.web.citizen import render, see_other
from service.web.i18n import zone_label
from service.web.keys import CLOCK_KEY, POOL_KEY, SETTINGS_KEY
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
