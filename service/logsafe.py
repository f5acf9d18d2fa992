"""Logging an unexpected exception without what its message may quote.

Messages of driver and provider errors quote data: asyncpg puts key values
in constraint errors, SMTP servers echo the refused address, Twilio the
refused number. Personal data never reaches logs, so only the exception's
type and its frames are kept.
"""

from __future__ import annotations

import traceback


def exception_summary(exc: BaseException) -> str:
    frames = "".join(traceback.format_tb(exc.__traceback__))
    return f"{type(exc).__module__}.{type(exc).__name__}\n{frames}".rstrip()
