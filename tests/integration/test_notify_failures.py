"""A message that cannot be rendered, and a status callback that names no
message: each fails on its own, loudly in the row or the answer, and touches
nothing else."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from service.notify import delivery
from service.notify.render import TEMPLATES_DIR, Renderer
from service.worker import jobs
from tests.fixtures.notify import Env, book, in_days, outbox_rows

PHONE = "+33612345678"


def confirmations(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["channel"]: r for r in rows if r["kind"] == "confirmation"}


async def test_a_message_that_cannot_render_fails_and_the_worker_goes_on(
    notify_env: Env, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = notify_env
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, templates)
    # A template bug: a field the message data does not have.
    (templates / "messages" / "sms" / "confirmation.fr.txt").write_text("{{ no_such_field }}\n")
    booked = await book(env, starts_at=in_days(9))
    rows = confirmations(await outbox_rows(env.pool, booked.booking.id))
    state = await env.worker_state_for(env.settings)
    state.renderer = Renderer(templates)
    ctx = {jobs.STATE: state}
    try:
        with caplog.at_level(logging.ERROR, logger="service.worker.jobs"):
            assert await jobs.send_message(ctx, rows["sms"]["id"]) == "failed"
        # The e-mail renders from its own templates, and goes.
        assert await jobs.send_message(ctx, rows["email"]["id"]) == "sent"
    finally:
        await jobs.close_state(state)
    after = confirmations(await outbox_rows(env.pool, booked.booking.id))
    sms = after["sms"]
    assert (sms["status"], sms["error_code"], sms["status_reason"]) == (
        "failed",
        "render",
        "render_error",
    )
    assert sms["body"] is None and sms["claimed_until"] is None and sms["attempts"] == 1
    assert after["email"]["status"] == "sent"
    # Nothing reached Twilio, and only the e-mail went out.
    assert env.twilio.requests == []
    assert len(env.smtp.to("amina@example.org")) == 1
    # The log says which row and why, never to whom.
    assert f"outbox {sms['id']}: rendering failed" in caplog.text
    assert PHONE not in caplog.text and "Amina" not in caplog.text


async def test_a_status_callback_without_message_sid_is_refused_and_changes_nothing(
    notify_env: Env,
) -> None:
    env = notify_env
    booked = await book(env, starts_at=in_days(9), email=None)
    sms = confirmations(await outbox_rows(env.pool, booked.booking.id))["sms"]
    # The worker died right after Twilio answered: the row is still being
    # sent and has no provider id, so the id in the callback URL finds it.
    await env.pool.execute(
        """UPDATE outbox SET status = 'sending', claimed_until = $2, attempts = 1
           WHERE id = $1""",
        sms["id"],
        env.clock() + jobs.LEASE,
    )
    url = delivery.status_callback_url(env.settings.base_url, sms["id"])
    sid = "SM" + "7" * 32
    before = await outbox_rows(env.pool, booked.booking.id)
    for missing in (("MessageSid", "SmsSid"), ("MessageStatus", "SmsStatus")):
        status = await env.twilio.post_status(
            url, sid, PHONE, "undelivered", 30003, leave_out=missing
        )
        assert status == 400, missing
    # Neither the row nor anything else: no status, no provider id, no
    # e-mail standing in, no opt-out.
    assert await outbox_rows(env.pool, booked.booking.id) == before
    assert await env.pool.fetchval("SELECT count(*) FROM sms_opt_outs") == 0
    # The older field names alone are enough.
    status = await env.twilio.post_status(
        url, sid, PHONE, "delivered", leave_out=("MessageSid", "MessageStatus")
    )
    assert status == 204
    row = confirmations(await outbox_rows(env.pool, booked.booking.id))["sms"]
    assert (row["status"], row["provider_id"]) == ("delivered", sid)


async def test_a_status_callback_for_an_unknown_message_changes_nothing(notify_env: Env) -> None:
    env = notify_env
    booked = await book(env, starts_at=in_days(9), email=None)
    before = await outbox_rows(env.pool, booked.booking.id)
    url = f"{env.settings.base_url}{delivery.STATUS_PATH}"
    # Twilio answers 2xx or retries: an unknown message is acknowledged.
    for where in (url, f"{url}?o=999999"):
        assert await env.twilio.post_status(where, "SM" + "5" * 32, PHONE, "delivered") == 204
    assert await outbox_rows(env.pool, booked.booking.id) == before
