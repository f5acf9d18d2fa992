"""What a provider's answer and a delivery receipt mean (service.notify.delivery):
one table of codes for the worker's sends and the status webhook."""

from __future__ import annotations

import pytest

from service.notify.delivery import (
    CALLBACK_STATUS,
    WHATSAPP_TEMPORARY,
    PermanentError,
    TemporaryError,
    classify_smtp,
    classify_twilio,
    code_in,
    moves_forward,
    opts_out,
    status_callback_url,
)


@pytest.mark.parametrize("code", [21211, 21610, 21614, 30006])
def test_twilio_codes_no_retry_can_fix_are_permanent(code: int) -> None:
    verdict = classify_twilio(400, code)
    assert isinstance(verdict, PermanentError)
    assert verdict.code == str(code)


def test_a_rate_limit_is_temporary_and_marked_as_such() -> None:
    for status, code in [(429, None), (429, 20429), (400, 20429)]:
        verdict = classify_twilio(status, code)
        assert isinstance(verdict, TemporaryError)
        assert verdict.rate_limited


def test_server_errors_are_temporary_and_other_refusals_permanent() -> None:
    server = classify_twilio(503, None)
    assert isinstance(server, TemporaryError)
    assert not server.rate_limited
    assert server.code == "503"
    other = classify_twilio(400, 21408)
    assert isinstance(other, PermanentError)
    assert other.code == "21408"
    assert classify_twilio(404, None).code == "404"


def test_smtp_4xx_is_temporary_5xx_permanent() -> None:
    assert isinstance(classify_smtp(451), TemporaryError)
    refused = classify_smtp(550)
    assert isinstance(refused, PermanentError)
    assert refused.code == "smtp550"


def test_only_a_stop_reply_opts_the_number_out() -> None:
    assert opts_out("21610")
    for code in (None, "21211", "21614", "30006", "smtp550", "20429"):
        assert not opts_out(code)


def test_a_code_that_is_no_number_is_no_known_code() -> None:
    # A status callback's ErrorCode is text from outside: "²" passes
    # str.isdigit() and fails int(), as do 5000 digits.
    for code in ("²", "9" * 5000, "", "-1", " 63018"):
        assert not code_in(code, WHATSAPP_TEMPORARY)
    assert code_in("63018", WHATSAPP_TEMPORARY)


@pytest.mark.parametrize("message_status", sorted(CALLBACK_STATUS))
def test_a_receipt_only_moves_a_row_forward(message_status: str) -> None:
    target = CALLBACK_STATUS[message_status]
    assert moves_forward("pending", target)
    assert moves_forward("sending", target)
    assert moves_forward("sent", target) == (target != "sent")
    # A WhatsApp message read was delivered first: `read` is the one step
    # past `delivered`.
    assert moves_forward("delivered", target) == (target == "read")
    for final in ("read", "undelivered", "failed", "skipped", "cancelled"):
        assert not moves_forward(final, target)


def test_read_comes_after_delivered() -> None:
    assert CALLBACK_STATUS["read"] == "read"
    assert CALLBACK_STATUS["delivered"] == "delivered"
    assert "queued" not in CALLBACK_STATUS


def test_the_callback_url_carries_the_row_id() -> None:
    url = status_callback_url("https://mawid.example", 42)
    assert url == "https://mawid.example/webhooks/twilio/status?o=42"
