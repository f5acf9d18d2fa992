"""Turns refusals into answers in the reader's language, in one place each:
JSON under /api/, a page in the site's layout everywhere else. Nothing else
leaks: an unexpected exception is logged here, safely, and never by aiohttp.

Handlers raise a service.domain.errors.Refusal and let it go; they catch one
only to show it inside the form that was sent (a booking form with a slot
taken meanwhile, a staff form with a refused account).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import aiohttp_jinja2
from aiohttp import web

from service.db import unavailable
from service.domain import errors
from service.domain.errors import N_
from service.logsafe import exception_summary
from service.web import inputs
from service.web.i18n import gettext, negotiate, ngettext
from service.web.outage import OUTAGE_KEY
from service.web.security import PRIVATE_HEADERS
from service.web.templating import language_context, remember_choice, request_language

log = logging.getLogger(__name__)


# Every missing page says the same: a 404 page tells nobody what exists.
_NOT_FOUND_TITLE = N_("Page not found")
_NOT_FOUND_TEXT = N_(
    "This page does not exist, or the link is incomplete. "
    "If you followed a link from a message, copy the whole link."
)
_TITLES = {403: N_("Not allowed"), 503: N_("Temporarily unavailable")}
_OTHER_TITLE = N_("This cannot be done")


def refusal_text(language: str, refusal: errors.Refusal) -> str:
    """The refusal's message in `language`, in the form its count asks for,
    its %(name)s filled in."""
    return _translate(language, _message(refusal), refusal.params, refusal.count)


def _message(refusal: errors.Refusal) -> errors.Message:
    return refusal.message if refusal.plural is None else (refusal.message, refusal.plural)


def _translate(
    language: str,
    message: errors.Message,
    params: Mapping[str, str] | None = None,
    count: int = 1,
) -> str:
    if isinstance(message, str):
        text = gettext(language, message)
    else:
        text = ngettext(language, *message, count)
    return text % params if params else text


def retry_after_header(refusal: errors.Refusal) -> dict[str, str]:
    """The Retry-After header of a refusal that says when to try again."""
    if refusal.retry_after is not None:
        return {"Retry-After": str(refusal.retry_after)}
    return {}


# JSON --------------------------------------------------------------------------------


def api_language(request: web.Request) -> str:
    """The API speaks the Accept-Language of the call (no cookie, no ?lang=)."""
    return negotiate(request.headers.get("Accept-Language"))


def error_response(
    request: web.Request,
    status: int,
    code: str,
    message: errors.Message,
    *,
    fields: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    count: int = 1,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """{"error": code, "message": ..., "fields": {...}} in the caller's language."""
    language = api_language(request)
    body: dict[str, object] = {
        "error": code,
        "message": _translate(language, message, params, count),
    }
    if fields:
        body["fields"] = {name: _translate(language, text, params) for name, text in fields.items()}
    return web.json_response(
        body, status=status, headers={"Content-Language": language, **(headers or {})}
    )


def refusal_json(request: web.Request, refusal: errors.Refusal) -> web.Response:
    return error_response(
        request,
        refusal.status,
        refusal.code,
        _message(refusal),
        fields=refusal.fields,
        params=refusal.params,
        count=refusal.count,
        headers=retry_after_header(refusal),
    )


# Pages -------------------------------------------------------------------------------


def refusal_page(request: web.Request, refusal: errors.Refusal) -> web.Response:
    """The refusal as a page in the site's layout, in the page language."""
    language = request_language(request)
    if refusal.status == 404:
        title, message = _NOT_FOUND_TITLE, gettext(language, _NOT_FOUND_TEXT)
    else:
        title = _TITLES.get(refusal.status, _OTHER_TITLE)
        message = refusal_text(language, refusal)
    office = request.path == "/office" or request.path.startswith("/office/")
    context = {
        # Given here: a refusal from a middleware (the CSRF check) comes
        # before aiohttp_jinja2's context processors have run.
        **language_context(request, language),
        "title": title,
        "message": message,
        "home_url": "/office/" if office else "/",
        "home_label": N_("Offices") if office else N_("Book an appointment"),
    }
    response = aiohttp_jinja2.render_template("error.html", request, context, status=refusal.status)
    # The URL refused may carry a secret (a manage link, a feed address).
    response.headers.update(PRIVATE_HEADERS)
    response.headers.update(retry_after_header(refusal))
    response.headers["Content-Language"] = language
    remember_choice(request, response)
    return response


# Answering an exception --------------------------------------------------------------


def answer(request: web.Request, exc: Exception, *, api: bool) -> web.StreamResponse:
    """What an exception out of a handler (or out of the checks before it)
    answers: every refusal, and aiohttp's own (no route, too large, method
    not allowed), as JSON under /api/ and as the site's page elsewhere, in
    the reader's language. Postgres not answering is a 503 (logged once per
    outage, service.web.outage); anything else is logged safely and
    answered 500 the same way. A redirect goes on as it is."""
    headers: dict[str, str] = {}
    closing = False
    if isinstance(exc, errors.Refusal):
        refusal = exc
    elif isinstance(exc, web.HTTPException):
        said = _as_refusal(exc)
        if said is None:
            raise exc
        refusal, headers = said
    elif unavailable(exc):
        request.app[OUTAGE_KEY].noticed(exc)
        refusal = errors.database_unavailable()
    elif isinstance(exc, ConnectionResetError | web.RequestPayloadError) and client_gone(request):
        # Nobody reads this answer; counted apart from our own failures, as
        # proxies count a client that closed its request.
        log.info("client closed the connection during %s", request.method)
        refusal = _Said(CLIENT_CLOSED, "client_closed", N_("The connection was closed."))
    elif isinstance(exc, web.RequestPayloadError):
        # A body aiohttp could not decode (a broken gzip stream, say),
        # wherever it was first read: the client's doing. Its rest cannot be
        # read either: aiohttp, which reads on to the next request of the
        # connection, would log that as its own error; the connection closes.
        refusal = inputs.malformed_json() if api else inputs.malformed_form()
        request.content.feed_eof()
        closing = True
    else:
        _log_unexpected(request, exc)
        refusal = _Said(500, "internal", N_("Something went wrong on our side."))
    response = refusal_json(request, refusal) if api else refusal_page(request, refusal)
    response.headers.update(headers)
    if closing:
        response.force_close()
    return response


CLIENT_CLOSED = 499


def client_gone(request: web.BaseRequest) -> bool:
    """Whether the client hung up (a body cut short, say): anyone can do
    it, so what follows is neither our error nor worth an error line."""
    transport = request.transport
    return transport is None or transport.is_closing()


class _Said(errors.Refusal):
    """aiohttp's own refusals and our own failure, answered as refusals are:
    in the reader's language, in the site's layout on a page, rather than
    aiohttp's English plain text."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(code, message)
        self.status = status


def _as_refusal(exc: web.HTTPException) -> tuple[errors.Refusal, dict[str, str]] | None:
    """aiohttp's own refusals (no route, a body over client_max_size, a
    method the resource lacks) said as ours, with the headers they need."""
    # A static directory, or a path out of it: aiohttp forbids it; to the
    # reader there is no such page.
    if isinstance(exc, web.HTTPNotFound | web.HTTPForbidden):
        return errors.NotFound(), {}
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return _Said(413, "too_large", N_("The request body is larger than 64 KiB.")), {}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        # RFC 9110: a 405 names the methods the resource has.
        allow = ", ".join(sorted(exc.allowed_methods))
        return _Said(405, "method_not_allowed", N_("Method not allowed.")), {"Allow": allow}
    return None


def _log_unexpected(request: web.Request, exc: Exception) -> None:
    route = request.match_info.route.resource
    log.error(
        "unhandled error on %s %s: %s",
        request.method,
        route.canonical if route else "?",
        exception_summary(exc),
    )
