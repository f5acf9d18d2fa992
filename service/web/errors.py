"""Turns refusals into answers in the reader's language; nothing else leaks."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from service.domain import errors
from service.domain.errors import N_
from service.logsafe import exception_summary
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
    """JSON errors for /api; other paths keep aiohttp's own pages, but every
    unexpected exception is logged here, safely, and never by aiohttp."""
    if not request.path.startswith("/api/"):
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception as exc:
            _log_unexpected(request, exc)
            raise web.HTTPInternalServerError() from None
    try:
        return await handler(request)
    except errors.Refusal as refusal:
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
        _log_unexpected(request, exc)
        return error_response(request, 500, "internal", N_("Something went wrong on our side."))


def _log_unexpected(request: web.Request, exc: Exception) -> None:
    route = request.match_info.route.resource
    log.error(
        "unhandled error on %s %s: %s",
        request.method,
        route.canonical if route else "?",
        exception_summary(exc),
    )
