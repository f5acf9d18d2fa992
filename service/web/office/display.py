"""The waiting room (service.office.queue): the office's public display,
/office/{office}/display, in large type in French and Arabic, and "call next"
for programs (POST /api/v1/offices/{office}/calls; the day's page has the
agents' form, service.web.office.schedule).

The display works without JavaScript (a <noscript> meta refresh); with it,
static/display.js listens to /office/{office}/display/events (Server-Sent
Events) and swaps in the board this module renders, with the same template.
A call wakes the open displays of its office at once when made in the same
web process (service.web.office.callboard); each display also looks again every POLL_SECONDS,
which covers calls made through another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup, escape

from service.domain.errors import N_
from service.domain.staff import Permission
from service.office.common import office_or_404
from service.office.queue import WaitingRoom, call_next, waiting_room
from service.web.front import prepare_stream
from service.web.i18n import gettext, time_short
from service.web.inputs import json_body
from service.web.keys import CLOCK_KEY, POOL_KEY
from service.web.office.callboard import CALL_BOARD_KEY
from service.web.sessions import authorise

routes = web.RouteTableDef()

POLL_SECONDS = 5.0
# Without JavaScript the display reloads itself this often.
REFRESH_SECONDS = 15
DISPLAY_LANGUAGES = ("fr", "ar")
# The board's texts, each shown in both languages.
LABELS = {
    "now": N_("Now called"),
    "counter": N_("Counter"),
    "nobody": N_("Nobody called yet today."),
    "before": N_("Called before"),
    "reference": N_("Reference"),
    "time": N_("Time"),
    "waiting": N_("Waiting: %(count)s"),
}


def both(message: str, **params: object) -> Markup:
    """A text in French and in Arabic, each marked with its language."""
    parts = []
    for language in DISPLAY_LANGUAGES:
        text = gettext(language, message) % params if params else gettext(language, message)
        direction = ' dir="rtl"' if language == "ar" else ""
        parts.append(f'<span lang="{language}"{direction}>{escape(text)}</span>')
    return Markup(" ".join(parts))  # noqa: S704 - every part escaped above


def _board_context(room: WaitingRoom) -> dict[str, Any]:
    zone = room.office.timezone
    return {
        "office": room.office,
        "room": room,
        "both": both,
        "labels": LABELS,
        "called_at": lambda call: time_short(call.called_at, zone, "fr"),
    }


def _board_html(request: web.Request, room: WaitingRoom) -> str:
    env = aiohttp_jinja2.get_env(request.app)
    return env.get_template("office/_display_board.html").render(_board_context(room))


@routes.get("/office/{office}/display")
async def display_page(request: web.Request) -> web.Response:
    """Public: it shows references and counters only, never a name."""
    room = await waiting_room(
        request.app[POOL_KEY], request.match_info["office"], request.app[CLOCK_KEY]()
    )
    context = {
        **_board_context(room),
        "board": Markup(_board_html(request, room)),  # noqa: S704 - rendered with autoescape
        "refresh": REFRESH_SECONDS,
        "language": "fr",
    }
    response = aiohttp_jinja2.render_template("office/display.html", request, context)
    response.headers["Cache-Control"] = "no-store"
    # The board speaks both, whatever the reader's language.
    response.headers["Content-Language"] = ", ".join(DISPLAY_LANGUAGES)
    return response


@routes.get("/office/{office}/display/events")
async def display_events(request: web.Request) -> web.StreamResponse:
    """The board as Server-Sent Events: sent again whenever it changes."""
    pool, clock = request.app[POOL_KEY], request.app[CLOCK_KEY]
    board = request.app[CALL_BOARD_KEY]
    async with pool.acquire() as conn:
        office = await office_or_404(conn, request.match_info["office"])
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            # Proxies must pass each event on at once.
            "X-Accel-Buffering": "no",
        }
    )
    await prepare_stream(request, response)
    last = ""
    with contextlib.suppress(ConnectionResetError):
        await response.write(f"retry: {int(POLL_SECONDS * 1000)}\n\n".encode())
        while not board.closing.is_set():
            room = await waiting_room(pool, office.id, clock())
            html = _board_html(request, room)
            if html != last:
                data = json.dumps({"html": html}, ensure_ascii=False)
                await response.write(f"event: board\ndata: {data}\n\n".encode())
                last = html
            else:
                await response.write(b": still here\n\n")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await board.wait(office.id)
    return response


@routes.post("/api/v1/offices/{office}/calls")
async def call_api(request: web.Request) -> web.Response:
    member = await authorise(request, Permission.CHANGE_STATUS)
    office_id = request.match_info["office"]
    body = await json_body(request)
    async with request.app[POOL_KEY].acquire() as conn:
        office = await office_or_404(conn, office_id)
    call = await call_next(
        request.app[POOL_KEY], office.id, body.get("counter"), member, request.app[CLOCK_KEY]()
    )
    request.app[CALL_BOARD_KEY].changed(office.id)
    return web.json_response(
        {
            "reference": call.reference,
            "counter": call.counter,
            "called_at": call.called_at.astimezone(office.zone).isoformat(),
        },
        status=201,
    )


