"""The worker's log keeps what an operator reads, not a line a second."""

from __future__ import annotations

import logging

from service.worker.settings import _QuietSweeps


def record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("arq.worker", level, __file__, 1, message, None, None)


def test_sweeps_are_quiet_but_their_failures_and_other_jobs_are_not() -> None:
    quiet = _QuietSweeps()
    assert not quiet.filter(record(logging.INFO, "  0.21s → sweep_outbox()"))
    assert quiet.filter(record(logging.ERROR, "  0.21s ! sweep_outbox() failed"))
    assert quiet.filter(record(logging.INFO, "  0.30s → send_message(42)"))
