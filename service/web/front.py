"""The one middleware every request passes through.

In this order: the request's id (for every line it logs and every outbox row
it writes), texts no column could store refused (service.web.inputs), the
CSRF check of an unsafe request (service.web.security), a page's language
and template context (service.web.templating), the handler; then every
refusal answered in the reader's language (service.web.errors), the security
headers and the request id on every answer, and the request kept for its
batch's metrics and access line, by route pattern (service.web.accesslog).

One middleware rather than one per concern: each layer costs every request
a coroutine and a frame, and together they cost the cheapest answers (a
cached week, /healthz) a tenth of their rate. The concerns stay in their
modules as plain functions; this module only orders them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping

from aiohttp import web
from multidict import istr

from service.logs import REQUEST_ID, accepted_request_id, current_request_id, new_request_id
from service.web import errors, inputs, security, templating
from service.web.accesslog import ANSWERED_KEY, route_pattern

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID_HEADER = istr("X-Request-Id")
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@web.middleware
async def front(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = accepted_request_id(request.headers.get(REQUEST_ID_HEADER))
    # Not reset afterwards: aiohttp's access logger, called after this
    # returns, leaves the requests that have one to service.web.accesslog;
    # each request runs in a task (and a context) of its own.
    REQUEST_ID.set(request_id)
    started = time.perf_counter()
    status = 500
    try:
        try:
            response = await _checked(request, handler)
        except Exception as exc:
            response = errors.answer(request, exc, api=request.path.startswith("/api/"))
        status = response.status
        if not response.prepared:
            _add_headers(response.headers, request_id)
        return response
    except web.HTTPException as answered:
        # A redirect, or another answer of aiohttp's that errors.answer leaves be.
        status = answered.status
        _add_headers(answered.headers, request_id)
        raise
    except asyncio.CancelledError:
        # A server told to cancel the handler of a client that hung up
        # (aiohttp's test server is): the client's doing, not a failure.
        if errors.client_gone(request):
            status = errors.CLIENT_CLOSED
        raise
    finally:
        request.app[ANSWERED_KEY].add(
            request.method,
            route_pattern(request),
            status,
            time.perf_counter() - started,
            request_id,
        )


async def prepare_stream(request: web.Request, response: web.StreamResponse) -> None:
    """Sends a streamed answer's headers (Server-Sent Events): sent before
    this middleware sees the answer, they get its own headers here."""
    _add_headers(response.headers, current_request_id() or new_request_id())
    await response.prepare(request)


def _add_headers(headers: MutableMapping[str, str], request_id: str) -> None:
    headers[REQUEST_ID_HEADER] = request_id
    security.add_security_headers(headers)


async def _checked(request: web.Request, handler: Handler) -> web.StreamResponse:
    inputs.refuse_unreadable(request)
    # An address without the method is aiohttp's 404 or 405 whatever the
    # form says: nothing there acts on it, so no form check comes first.
    if request.method not in _READ_METHODS and request.match_info.http_exception is None:
        await inputs.refuse_unreadable_form(request)
        await security.check_csrf(request)
    if not templating.is_page(request.path):
        templating.static_request(request)
        response = await handler(request)
        templating.static_answer(request, response)
        return response
    language = templating.enter_page(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        # Redirects after a form carry the cookies drawn for it too.
        templating.remember_choice(request, exc)
        security.issue_cookie(request, exc)
        raise
    templating.leave_page(request, response, language)
    security.issue_cookie(request, response)
    return response
