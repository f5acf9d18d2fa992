"""Log lines: JSON objects (or text) carrying the request id of their context."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_an_exception_keeps_its_type_and_frames_never_its_message(log_format: str) -> None:
    # aiohttp's message for an unreadable request line quotes the line, token and all.
    logger = logging.getLogger("aiohttp.server")
    stream = io.StringIO()
    handler = logs.handler(log_format, stream)
    logger.addHandler(handler)
    request_line = "GET /b/{}/{} HTTP/1.1".format("PAR-ABC123", "secret-manage-token")
    try:
        try:
            raise ValueError(request_line)
        except ValueError:
            logger.exception("Error handling request")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    # "Error handling a request" once a server's filter is on this logger
    # (service.web.accesslog.UnreadRequestFilter), whichever test made one.
    assert "Error handling" in text and "builtins.ValueError" in text
    assert "test_an_exception_keeps_its_type" in text  # its frames
    assert "secret-manage-token" not in text and "PAR-ABC123" not in text


def test_text_lines_name_the_request_too() -> None:
    with logs.request_scope("abcdef0123"):
        assert "[abcdef0123] hello" in emit("text", "hello")


def test_only_plain_tokens_are_taken_from_callers() -> None:
    assert logs.accepted_request_id("edge-1234abcd") == "edge-1234abcd"
    for bad in (None, "", "short", "x" * 65, "a b c d e f g h", "zineb@example.org"):
        assert logs.accepted_request_id(bad) != bad


_ENCODER = json.JSONEncoder(ensure_ascii=False)
# Instants near the edges of a second and of a millisecond, where rounding
# to microseconds carries over, as well as anywhere.
_INSTANTS = st.one_of(
    st.floats(0, 4e9),
    st.integers(0, 4 * 10**9).map(lambda second: second + 0.9999996),
    st.integers(0, 4 * 10**9).map(lambda second: second - 0.0000004),
    st.integers(0, 4 * 10**9).map(lambda second: second + 0.0009995),
)


@settings(max_examples=500)
@given(created=_INSTANTS, texts=st.lists(st.text(), min_size=4, max_size=4))
def test_a_line_written_without_a_dict_is_the_encoders_line(
    created: float, texts: list[str]
) -> None:
    level, logger, message, request_id = texts
    formatter = logs.JsonFormatter()
    # Twice: the second line reuses the second's text kept by the first.
    for _ in range(2):
        line = formatter.line(created, level, logger, message, request_id)
        assert line == _ENCODER.encode(
            {
                "time": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
                "level": level,
                "logger": logger,
                "message": message,
                "request_id": request_id,
            }
        )


_ANSWERS = st.lists(
    st.tuples(
        _INSTANTS,
        st.sampled_from(["GET", "POST", 'M\u00e9THOD"\n']),
        st.sampled_from(["/healthz", "/offices/{office}/{service}", "-", "/\u00e9\\x"]),
        st.sampled_from([200, 404, 499]),
        st.floats(0, 100),
        st.text(),
    ),
    max_size=20,
)


@settings(max_examples=200)
@given(answers=_ANSWERS)
def test_a_batch_of_access_lines_is_the_lines_one_by_one(
    answers: list[tuple[float, str, str, int, float, str]],
) -> None:
    formatter, one_by_one = logs.JsonFormatter(), logs.JsonFormatter()
    expected = "".join(
        one_by_one.line(
            created,
            "INFO",
            "aiohttp.access",
            logs.ACCESS_FORMAT % (method, route, status, seconds * 1000),
            rid,
        )
        + "\r\n"
        for created, method, route, status, seconds, rid in answers
    )
    assert formatter.access_lines("aiohttp.access", answers, "\r\n") == expected


def test_consecutive_lines_across_a_second_carry_their_own_second() -> None:
    formatter = logs.JsonFormatter()
    first = json.loads(formatter.line(1_800_000_000.999, "INFO", "x", "m", "-"))
    second = json.loads(formatter.line(1_800_000_001.0005, "INFO", "x", "m", "-"))
    assert first["time"] == "2027-01-15T08:00:00.999+00:00"
    assert second["time"] == "2027-01-15T08:00:01.000+00:00"
