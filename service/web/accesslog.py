"""Access log lines without personal data or secrets.

The request line would carry manage tokens (/b/{reference}/{token}),
references and query strings; the route pattern says enough to operate.
"""

from __future__ import annotations

import logging
import queue
from logging.handlers import QueueHandler, QueueListener

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger


def route_pattern(request: web.BaseRequest) -> str:
    if isinstance(request, web.Request):
        resource = request.match_info.route.resource
        if resource is not None:
            return resource.canonical
    return "-"


class SafeAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %.1fms",
            request.method,
            route_pattern(request),
            response.status,
            time * 1000,
        )


def write_in_background(logger: logging.Logger) -> QueueListener:
    """Hand `logger`'s records to a thread that writes them through the root
    handlers: a request no longer waits for its access line's write to the
    log (a system call per request under a rush). Stop the listener to flush."""
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = QueueListener(lines, *logging.getLogger().handlers, respect_handler_level=True)
    logger.addHandler(QueueHandler(lines))
    logger.propagate = False
    listener.start()
    return listener
