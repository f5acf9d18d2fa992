"""Answered requests: counted in the metrics and written as access lines
without personal data or secrets, in batches.

The request line would carry manage tokens (/b/{reference}/{token}),
references and query strings; the route pattern says enough to operate.

The one middleware (service.web.front) keeps each answered request on the
event loop (when, method, route pattern, status, seconds, request id), and
the batch is counted and written at most FLUSH_EVERY seconds later (or as
soon as FLUSH_AT wait): one write to the log per batch instead of one per
request, one increment of a metric per route, status and latency bucket
instead of four locked ones per request, and no thread fighting the loop
for the interpreter lock. /metrics and a stopping app count what waits
first. aiohttp's access logger (SafeAccessLogger) writes only the requests
that never reached the middleware: a request line it could not read, an
`Expect:` it refused (417). The app's requests are written whatever
access_log a runner was given.

    runner_options()        the access_log arguments for web.run_app / AppRunner
                            (`mawid serve` and the test servers alike)
    answered_requests(app)  the app's waiting answers (flush() counts and writes them now)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

from service.logs import (
    ACCESS_FORMAT,
    ExceptionSummaryFilter,
    JsonFormatter,
    RequestIdFilter,
    current_request_id,
)
from service.metrics import Answer, Metrics
from service.web.keys import METRICS_KEY

FLUSH_EVERY = 0.25  # seconds an answer waits at most
FLUSH_AT = 512  # answers that are counted and written at once, without waiting
ACCESS_LOGGER = "aiohttp.access"
SERVER_LOGGER = "aiohttp.server"


def route_pattern(request: web.BaseRequest) -> str:
    # A request line aiohttp could not read reaches the log unrouted: its
    # Request has no match_info, and asking for it fails.
    if isinstance(request, web.Request) and request._match_info is not None:
        resource = request._match_info.route.resource
        if resource is not None:
            return resource.canonical
    return "-"


class AnsweredRequests:
    """The answered requests of one app that wait for their batch."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._logger = logging.getLogger(ACCESS_LOGGER)
        self._answers: list[Answer] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, method: str, route: str, status: int, seconds: float, request_id: str) -> None:
        self._answers.append((time.time(), method, route, status, seconds, request_id))
        if len(self._answers) >= FLUSH_AT:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_EVERY, self.flush)

    def __len__(self) -> int:
        return len(self._answers)

    def flush(self) -> None:
        """Count every waiting answer, and write its access line through the
        access logger's handlers (those up the hierarchy too, as logging
        does), one write per stream."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        answers, self._answers = self._answers, []
        if not answers:
            return
        self._metrics.count_http(answers)
        if not self._logger.isEnabledFor(logging.INFO):
            return
        records: list[logging.LogRecord] = []
        for handler in _handlers(self._logger):
            if handler.level > logging.INFO:
                continue
            if _plain_json(handler):
                _write_json(handler, self._logger.name, answers)
                continue
            if not records:
                records = [_record(self._logger, answer) for answer in answers]
            _write(handler, records)


def _record(logger: logging.Logger, answer: Answer) -> logging.LogRecord:
    created, method, route, status, seconds, request_id = answer
    record = logger.makeRecord(
        logger.name,
        logging.INFO,
        __file__,
        0,
        ACCESS_FORMAT,
        (method, route, status, seconds * 1000),
        None,
        extra={"request_id": request_id},
    )
    record.created = created
    record.msecs = (created - int(created)) * 1000
    return record


def _handlers(logger: logging.Logger) -> list[logging.Handler]:
    found: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        found.extend(current.handlers)
        current = current.parent if current.propagate else None
    return found


def _plain_json(handler: logging.Handler) -> bool:
    """A stream of JSON lines (service.logs.handler in production), whose
    filters give records their request id, which access lines have, and
    shorten exceptions, which access lines never carry."""
    return (
        type(handler) is logging.StreamHandler
        and isinstance(handler.formatter, JsonFormatter)
        and all(isinstance(f, RequestIdFilter | ExceptionSummaryFilter) for f in handler.filters)
    )


def _write_json(handler: logging.Handler, name: str, answers: list[Answer]) -> None:
    # The lines JsonFormatter would write, without a LogRecord for each.
    formatter = handler.formatter
    assert isinstance(formatter, JsonFormatter) and isinstance(handler, logging.StreamHandler)
    text = formatter.access_lines(name, answers, handler.terminator)
    _emit(handler, text)


def _write(handler: logging.Handler, records: list[logging.LogRecord]) -> None:
    if type(handler) is not logging.StreamHandler:
        for record in records:
            handler.handle(record)
        return
    wanted = [r for r in records if handler.filter(r)]
    if wanted:
        _emit(handler, "".join(handler.format(r) + handler.terminator for r in wanted))


def _emit(handler: logging.StreamHandler[Any], text: str) -> None:
    handler.acquire()
    try:
        handler.stream.write(text)
        handler.flush()
    except Exception:
        handler.handleError(logging.makeLogRecord({"msg": "access log lines"}))
    finally:
        handler.release()


ANSWERED_KEY = web.AppKey("answered_requests", AnsweredRequests)


class SafeAccessLogger(AbstractAccessLogger):
    """aiohttp's access log, for the requests that never reached the app:
    the others are written by AnsweredRequests."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        # The middleware sets the request id of every request it sees.
        if current_request_id() is not None:
            return
        self.logger.info(
            ACCESS_FORMAT,
            request.method,
            route_pattern(request),
            response.status,
            time * 1000,
            extra={"request_id": "-"},
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


class UnreadRequestFilter(logging.Filter):
    """aiohttp's line for a request it could not read or answer ("Error
    handling request from <address>"): the address is personal data, and
    anyone can send unreadable requests by the thousand, each an ERROR with
    a traceback. The address is left out; a request aiohttp could not read
    (a line or header too long, a bad request line: HttpProcessingError,
    the client's fault, its 400 in the access log) is an INFO line naming
    its kind, without a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Error handling request"):
            record.msg, record.args = "Error handling a request", ()
            exc = record.exc_info[1] if record.exc_info else None
            if isinstance(exc, HttpProcessingError):
                record.msg = "request not read: %s"
                record.args = (type(exc).__name__,)
                record.exc_info = record.exc_text = None
                record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _server_logger() -> logging.Logger:
    logger = logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(f, UnreadRequestFilter) for f in logger.filters):
        logger.addFilter(UnreadRequestFilter())
    return logger


def runner_options() -> dict[str, Any]:
    """How every server of the app logs its requests (web.run_app, AppRunner)."""
    return {
        "access_log": logging.getLogger(ACCESS_LOGGER),
        "access_log_class": SafeAccessLogger,
        "logger": _server_logger(),
    }


def answered_requests(app: web.Application) -> AnsweredRequests:
    return app[ANSWERED_KEY]


async def _answered_requests(app: web.Application) -> AsyncIterator[None]:
    app[ANSWERED_KEY] = answered = AnsweredRequests(app[METRICS_KEY])
    yield
    answered.flush()


def install(app: web.Application) -> None:
    app.cleanup_ctx.append(_answered_requests)
