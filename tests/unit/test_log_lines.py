"""Log lines: JSON objects (or text) carrying the request id of their context."""

from __future__ import annotations

import io
import json
import logging

from service import logs


def emit(log_format: str, message: str, *args: object, exc: bool = False) -> str:
    stream = io.StringIO()
    logger = logging.getLogger("mawid.test.lines")
    logger.propagate = False
    handler = logs.handler(log_format, stream)
    logger.addHandler(handler)
    try:
        if exc:
            try:
                raise ValueError("boom")
            except ValueError:
                logger.exception(message, *args)
        else:
            logger.warning(message, *args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_a_json_line_carries_the_request_id_of_its_scope() -> None:
    with logs.request_scope("req-12345678"):
        [line] = emit("json", "outbox %d sent", 42).splitlines()
    record = json.loads(line)
    assert record["message"] == "outbox 42 sent"
    assert record["request_id"] == "req-12345678"
    assert record["level"] == "WARNING" and record["logger"] == "mawid.test.lines"
    assert record["time"].endswith("+00:00")
    [outside] = emit("json", "no request").splitlines()
    assert json.loads(outside)["request_id"] == "-"


def test_an_exception_stays_inside_its_one_json_line() -> None:
    [line] = emit("json", "failed", exc=True).splitlines()
    assert "ValueError" in json.loads(line)["exception"]


def test_text_lines_name_the_request_too() -> None:
    with logs.request_scope("abcdef0123"):
        assert "[abcdef0123] hello" in emit("text", "hello")


def test_only_plain_tokens_are_taken_from_callers() -> None:
    assert logs.accepted_request_id("edge-1234abcd") == "edge-1234abcd"
    for bad in (None, "", "short", "x" * 65, "a b c d e f g h", "zineb@example.org"):
        assert logs.accepted_request_id(bad) != bad
