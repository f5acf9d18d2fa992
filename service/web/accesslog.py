"""Access log lines without personal data or secrets, written in batches.

The request line would carry manage tokens (/b/{reference}/{token}),
references and query strings; the route pattern says enough to operate.

A line is kept on the event loop when its request ends and written with the
others of the same moment, at most FLUSH_EVERY seconds later (or as soon as
FLUSH_AT lines wait): one write to the log per batch instead of one per
request, and no thread fighting the loop for the interpreter lock. The
lines of a process that stops are written when its app shuts down.

    runner_options()      the access_log arguments for web.run_app / AppRunner
                          (`mawid serve` and the test servers alike)
    access_lines(app)     the app's waiting lines (flush() writes them now)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from service.logs import (
    ExceptionSummaryFilter,
    JsonFormatter,
    RequestIdFilter,
    current_request_id,
)

FLUSH_EVERY = 0.25  # seconds a line waits at most
FLUSH_AT = 512  # lines that are written at once, without waiting
ACCESS_LOGGER = "aiohttp.access"
_FORMAT = "%s %s %s %.1fms"


def route_pattern(request: web.BaseRequest) -> str:
    # A request line aiohttp could not read reaches the log unrouted: its
    # Request has no match_info, and asking for it fails.
    if isinstance(request, web.Request) and request._match_info is not None:
        resource = request._match_info.route.resource
        if resource is not None:
            return resource.canonical
    return "-"


# One access line: when, logger, method, route pattern, status, milliseconds, request id.
_Line = tuple[float, logging.Logger, str, str, int, float, str]


class AccessLines:
    """The access lines of one app that wait for their batch."""

    def __init__(self) -> None:
        self._lines: list[_Line] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, logger: logging.Logger, method: str, route: str, status: int, ms: float) -> None:
        # The request id is taken here, in the request's context.
        request_id = current_request_id() or "-"
        self._lines.append((time.time(), logger, method, route, status, ms, request_id))
        if len(self._lines) >= FLUSH_AT:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_EVERY, self.flush)

    def __len__(self) -> int:
        return len(self._lines)

    def flush(self) -> None:
        """Write every waiting line through its logger's handlers (those up
        the hierarchy too, as logging does), one write per stream."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        lines, self._lines = self._lines, []
        by_logger: dict[logging.Logger, list[_Line]] = {}
        for line in lines:
            by_logger.setdefault(line[1], []).append(line)
        for logger, mine in by_logger.items():
            records: list[logging.LogRecord] = []
            for handler in _handlers(logger):
                if handler.level > logging.INFO:
                    continue
                if _plain_json(handler):
                    _write_json(handler, logger.name, mine)
                    continue
                if not records:
                    records = [_record(line) for line in mine]
                _write(handler, records)


def _record(line: _Line) -> logging.LogRecord:
    created, logger, method, route, status, ms, request_id = line
    record = logger.makeRecord(
        logger.name,
        logging.INFO,
        __file__,
        0,
        _FORMAT,
        (method, route, status, ms),
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


def _write_json(handler: logging.Handler, name: str, lines: list[_Line]) -> None:
    # The lines JsonFormatter would write, without a LogRecord for each.
    formatter = handler.formatter
    assert isinstance(formatter, JsonFormatter) and isinstance(handler, logging.StreamHandler)
    text = "".join(
        formatter.line(created, "INFO", name, _FORMAT % (method, route, status, ms), request_id)
        + handler.terminator
        for created, _, method, route, status, ms, request_id in lines
    )
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


ACCESS_LINES_KEY = web.AppKey("access_lines", AccessLines)


class SafeAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        route = route_pattern(request)
        lines = None
        if isinstance(request, web.Request) and request._match_info is not None:
            lines = request.app.get(ACCESS_LINES_KEY)
        if lines is None:
            # A request that never reached the app (unreadable HTTP): as it comes.
            self.logger.info(
                _FORMAT,
                request.method,
                route,
                response.status,
                time * 1000,
                extra={"request_id": current_request_id() or "-"},
            )
            return
        lines.add(self.logger, request.method, route, response.status, time * 1000)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def runner_options() -> dict[str, Any]:
    """How every server of the app logs its requests (web.run_app, AppRunner)."""
    return {"access_log": logging.getLogger(ACCESS_LOGGER), "access_log_class": SafeAccessLogger}


def access_lines(app: web.Application) -> AccessLines:
    return app[ACCESS_LINES_KEY]


async def _access_lines(app: web.Application) -> AsyncIterator[None]:
    app[ACCESS_LINES_KEY] = lines = AccessLines()
    yield
    lines.flush()


def install(app: web.Application) -> None:
    app.cleanup_ctx.append(_access_lines)
