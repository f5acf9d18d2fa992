"""The one refusal type (service.domain.errors) and its JSON answer."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import make_mocked_request

from service.domain import errors
from service.web.errors import refusal_json, refusal_text


@pytest.mark.parametrize(
    ("refusal", "status", "code"),
    [
        (errors.Refusal("malformed_json", "x"), 400, "malformed_json"),
        (errors.ValidationFailed({"name": "x"}), 422, "validation"),
        (errors.Unauthorized("unauthorized", "x"), 401, "unauthorized"),
        (errors.Forbidden("forbidden", "x"), 403, "forbidden"),
        (errors.NotFound(), 404, "not_found"),
        (errors.office_not_found(), 404, "office_not_found"),
        (errors.slot_full(), 409, "slot_full"),
        (errors.already_submitted(), 409, "already_submitted"),
        (errors.TooManyRequests("login_throttled", "x", retry_after=900), 429, "login_throttled"),
    ],
)
def test_each_kind_answers_with_its_status(
    refusal: errors.Refusal, status: int, code: str
) -> None:
    assert isinstance(refusal, errors.Refusal)
    assert (refusal.status, refusal.code) == (status, code)


def test_the_message_keeps_its_values_apart_until_translated() -> None:
    refused = errors.ValidationFailed(
        message="No such office: %(offices)s.", params={"offices": "nowhere"}
    )
    assert refused.message == "No such office: %(offices)s."
    assert str(refused) == "No such office: nowhere."
    assert refusal_text("fr", refused) == "Bureau inconnu\u00a0: nowhere."
    assert refused.fields == {}


def test_too_many_requests_says_when_to_come_back() -> None:
    request = make_mocked_request("POST", "/api/v1/x", headers={"Accept-Language": "fr"})
    refused = errors.TooManyRequests("login_throttled", "Not found.", retry_after=900)
    response = refusal_json(request, refused)
    assert response.status == 429
    assert response.headers["Retry-After"] == "900"
    assert response.headers["Content-Language"] == "fr"
    assert response.body is not None
    body = json.loads(bytes(response.body))
    assert body == {"error": "login_throttled", "message": "Introuvable."}
