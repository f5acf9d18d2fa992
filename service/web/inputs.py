"""Reading a request: every text that comes in is checked here, once, before
any handler or store sees it (service.domain.fields says what is readable).

    refuse_unreadable     path, query, headers and cookies (every request)
    refuse_unreadable_form  a form body (url-encoded or multipart), which it
                          reads for the handlers (aiohttp keeps the parsed form)
    json_body(request)    the JSON body parser of the API: UTF-8, an object,
                          no NaN or Infinity, bounded depth, readable strings
    day_param             a query value read as a day (422 on its field)

Refusals, answered by service.web.errors in the reader's language:
a path segment that cannot name anything is 404; a query, form or JSON field
is 422 naming the field; a body or header that cannot be read at all is 400.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from aiohttp import web

from service.domain import errors, fields
from service.domain.errors import N_

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
UNREADABLE_FIELD = N_("Remove the invisible characters (NUL or half a character pair) from this.")


def _unreadable_field(name: str) -> errors.ValidationFailed:
    return errors.ValidationFailed({name if fields.readable(name) else "": UNREADABLE_FIELD})


def malformed_json(message: str = N_("The request body is not valid JSON.")) -> errors.Refusal:
    return errors.Refusal("malformed_json", message)


def malformed_form() -> errors.Refusal:
    return errors.Refusal("malformed_form", N_("The form could not be read."))


def refuse_unreadable(request: web.Request) -> None:
    """Path, query and headers that no column could store are refused
    before the handler runs (service.web.front)."""
    # Each part looked at once, joined: most requests have nothing to refuse.
    if not fields.readable("".join(request.match_info.values())):
        raise errors.NotFound()
    query = request.query
    if query and not fields.readable("".join((*query.keys(), *query.values()))):
        for name, value in query.items():
            if not (fields.readable(name) and fields.readable(value)):
                raise _unreadable_field(name)
    # Undecodable header bytes arrive as surrogates (aiohttp decodes with
    # surrogateescape); a token or cookie made of them would fail later.
    if not fields.readable("".join(request.headers.values())):
        raise errors.Refusal("malformed_header", N_("A request header is not readable text."))


async def refuse_unreadable_form(request: web.Request) -> None:
    """A form body (url-encoded or multipart) read for the handlers (aiohttp
    keeps the parsed form), refused when a field is not readable text."""
    if request.content_type not in FORM_TYPES:
        return
    try:
        form = await request.post()
    except (ValueError, LookupError):
        # Undecodable bytes, an unknown charset, a multipart body without
        # its boundary: UnicodeDecodeError, LookupError, ValueError.
        raise malformed_form() from None
    for name, item in form.items():
        if not fields.readable(name) or (isinstance(item, str) and not fields.readable(item)):
            raise _unreadable_field(name)


def _no_constants(name: str) -> Any:
    raise ValueError(name)


async def json_body(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object whose every string is readable."""
    raw = await request.read()
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except RecursionError:
        raise malformed_json(N_("The request body is nested too deeply.")) from None
    except ValueError:
        # JSONDecodeError, UnicodeDecodeError, NaN or Infinity, an integer
        # longer than Python reads (4300 digits): all ValueErrors.
        raise malformed_json() from None
    if not isinstance(body, dict):
        raise malformed_json(N_("The request body must be a JSON object."))
    problem = fields.json_problem(body)
    if problem is not None:
        where, what = problem
        if what == "depth":
            raise malformed_json(N_("The request body is nested too deeply."))
        raise _unreadable_field(where)
    return body


def day_param(raw: str | None, field: str) -> date:
    """A day from a query or form value; 422 on `field` when it is none."""
    day = fields.parse_day(raw)
    if day is None:
        raise errors.ValidationFailed(
            {field: N_("Enter a date as YYYY-MM-DD, between 2000-01-01 and 2199-12-31.")}
        )
    return day
