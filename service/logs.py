"""Log lines: plain text in dev, JSON lines in production, each with a request id.

The request id is set by the web process for each request (taken from an
`X-Request-Id` header when it looks like one, else drawn), stored on the
outbox rows the request writes, and set again by the worker's job that sends
them, so one booking's story can be followed across processes. Lines carry
ids, kinds, codes and route patterns only: personal data never reaches them
(service.logsafe for exceptions).
"""

from __future__ import annotations

import json
import logging
import random
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO

from service.domain.fields import REQUEST_ID_MAX
from service.logsafe import exception_summary

REQUEST_ID: ContextVar[str | None] = ContextVar("mawid_request_id", default=None)
FORMATS = ("text", "json")
# An access line's message: method, route pattern, status, milliseconds.
ACCESS_FORMAT = "%s %s %s %.1fms"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
# What a caller's X-Request-Id may be: a proxy's id, never free text.
_ACCEPTED = re.compile(rf"[A-Za-z0-9._:-]{{8,{REQUEST_ID_MAX}}}")


def new_request_id() -> str:
    # Unique, not secret: the Mersenne Twister spares the system call that
    # uuid4() makes on every request.
    return f"{random.getrandbits(128):032x}"


def accepted_request_id(header: str | None) -> str:
    """The caller's request id when it is a plain token, else a new one."""
    if header and _ACCEPTED.fullmatch(header):
        return header
    return new_request_id()


def current_request_id() -> str | None:
    return REQUEST_ID.get()


@contextmanager
def request_scope(request_id: str | None) -> Iterator[None]:
    """Lines logged inside carry `request_id` (a worker job's, for instance)."""
    token = REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        REQUEST_ID.reset(token)


class RequestIdFilter(logging.Filter):
    """Gives every record a `request_id` (unless the caller passed one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get() or "-"
        return True


# ".000+00:00" to ".999+00:00", the end of a line's time.
_MILLISECONDS = tuple(f"{millis:03d}+00:00" for millis in range(1000))
# A JSON string (quotes included) as JSONEncoder(ensure_ascii=False) writes it.
_text = json.encoder.encode_basestring


class ExceptionSummaryFilter(logging.Filter):
    """An exception logged by any library keeps its type and frames only
    (service.logsafe): aiohttp's message for a request line it could not
    read quotes that line, manage token included; drivers quote key values."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            # Formatters write exc_text, once set, instead of the exception.
            record.exc_text = exception_summary(record.exc_info[1])
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    # Made once: json.dumps with an argument builds an encoder on every call.
    _encoder = json.JSONEncoder(ensure_ascii=False)

    def __init__(self) -> None:
        super().__init__()
        # The last second written, as text: formatting a datetime costs
        # more than the rest of an access line.
        self._second = -1
        self._second_text = ""

    def _time(self, created: float) -> str:
        """datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")"""
        if created < 0:
            return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        # A float's whole part subtracted from it leaves its fraction exactly.
        second = int(created)
        micros = round((created - second) * 1_000_000)
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        if second != self._second:
            self._second = second
            self._second_text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        return self._second_text + _MILLISECONDS[micros // 1000]

    def line(
        self,
        created: float,
        level: str,
        logger: str,
        message: str,
        request_id: str,
        more: dict[str, str] | None = None,
    ) -> str:
        when = self._time(created)
        if not more:
            # What the encoder writes for the same fields, spelt out: an access
            # line per request is written this way, without a dict to encode.
            return (
                f'{{"time": "{when}", "level": {_text(level)}, "logger": {_text(logger)}, '
                f'"message": {_text(message)}, "request_id": {_text(request_id)}}}'
            )
        fields: dict[str, object] = {
            "time": when,
            "level": level,
            "logger": logger,
            "message": message,
            "request_id": request_id,
            **more,
        }
        return self._encoder.encode(fields)

    def access_lines(
        self, logger: str, answers: Iterable[tuple[float, str, str, int, float, str]], end: str
    ) -> str:
        """For each (created, method, route, status, seconds, request_id), the
        line(created, "INFO", logger, ACCESS_FORMAT % (...), request_id) +
        end: a batch of access lines. What lines share (the logger, a route's
        message up to its duration) is escaped once a batch, not once a line."""
        head = f'", "level": "INFO", "logger": {_text(logger)}, "message": '
        messages: dict[tuple[str, str, int], str] = {}
        lines: list[str] = []
        for created, method, route, status, seconds, request_id in answers:
            message = messages.get((method, route, status))
            if message is None:
                # Without its closing quote: the duration's digits need no escaping.
                message = _text(f"{method} {route} {status} ")[:-1]
                messages[(method, route, status)] = message
            lines.append(
                f'{{"time": "{self._time(created)}{head}{message}{seconds * 1000:.1f}ms", '
                f'"request_id": {_text(request_id)}}}{end}'
            )
        return "".join(lines)

    def format(self, record: logging.LogRecord) -> str:
        more: dict[str, str] = {}
        if record.exc_info:
            more["exception"] = record.exc_text or self.formatException(record.exc_info)
        if record.stack_info:
            more["stack"] = self.formatStack(record.stack_info)
        return self.line(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            getattr(record, "request_id", None) or "-",
            more,
        )


def handler(log_format: str, stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing to `stream` (stderr) in `log_format` (text or json),
    with request ids."""
    out = logging.StreamHandler(stream or sys.stderr)
    out.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    out.addFilter(RequestIdFilter())
    out.addFilter(ExceptionSummaryFilter())
    return out


def configure(level: str, log_format: str) -> None:
    """The process's logging, once, at start-up (`mawid` commands)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler(log_format))
    root.setLevel(level)
