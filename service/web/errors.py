"""Turns refusals into answers in the reader's language; nothing else leaks."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable

from aiohttp import web

from service.domain import errors
from service.domain.errors import N_
from service.web.i18n import gettext, negotiate

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def request_language(request: web.Request) -> str:
    return negotiate(request.headers.get("Accept-Language"))


def error_response(
    request: web.Request, status: int, code: str, message: str, fields: dict[str, str] | None = None
) -> web.Response:
    language = request_language(request)
    body: dict[str, object] = {"error": code, "message": gettext(language, message)}
    if fields:
        body["fields"] = {name: gettext(language, text) for name, text in fields.items()}
    return web.json_response(body, status=status, headers={"Content-Language": language})


@web.middleware
async def api_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """JSON errors for /api and /webhooks; other paths keep aiohttp's own."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    try:
        return await handler(request)
    except errors.BookingError as refusal:
        return error_response(
            request, refusal.status, refusal.code, refusal.message, refusal.fields
        )
    except web.HTTPRequestEntityTooLarge:
        return error_response(
            request, 413, "too_large", N_("The request body is larger than 64 KiB.")
        )
    except web.HTTPNotFound:
        return error_response(request, 404, "not_found", N_("Not found."))
    except web.HTTPMethodNotAllowed:
        return error_response(request, 405, "method_not_allowed", N_("Method not allowed."))
    except web.HTTPException:
        raise
    except Exception as exc:
        # Frames only: an exception's message can quote a row (asyncpg puts key
        # values in constraint errors), and personal data never reaches logs.
        log.error(
            "unhandled %s on %s %s\n%s",
            type(exc).__name__,
            request.method,
            request.match_info.route.resource.canonical
            if request.match_info.route.resource
            else "?",
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        return error_response(request, 500, "internal", N_("Something went wrong on our side."))
