"""One owner for what an SMS that will not arrive does (service.notify.delivery):
a STOP opts the number out and a confirmation goes by e-mail instead, whether
Twilio says so in its answer to the send or later in a status callback."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.domain.messages import MAX_ATTEMPTS, MAX_RATE_LIMIT_WAITS
from service.worker import jobs
from tests.faketwilio import RATE_LIMITED, SERVER_ERROR, Reply
from tests.fixtures.notify import Env, book, in_days, outbox_rows, wait_for


async def fallback_sent(env: Env, booking_id: int) -> bool:
    rows = await outbox_rows(env.pool, booking_id)
    return any(r["kind"] == "sms_fallback" and r["status"] == "sent" for r in rows)


async def test_a_stop_in_a_status_callback_opts_out_and_falls_back(notify_env: Env) -> None:
    env = notify_env
    env.twilio.script(
        "+33612345678", Reply(callbacks=("sent", "undelivered"), callback_error=21610)
    )
    first = await book(env, starts_at=in_days(9))
    await env.start_worker()
    await wait_for(lambda: fallback_sent(env, first.booking.id), what="the email fallback")
    sms = (await outbox_rows(env.pool, first.booking.id))[0]
    assert (sms["channel"], sms["status"], sms["error_code"]) == ("sms", "undelivered", "21610")
    opted = await env.pool.fetch("SELECT phone, error_code FROM sms_opt_outs")
    assert [tuple(r) for r in opted] == [("+33612345678", "21610")]

    # The number gets no SMS any more; the booking's e-mail still goes.
    second = await book(env, starts_at=in_days(11))

    async def second_settled() -> bool:
        rows = await outbox_rows(env.pool, second.booking.id)
        return all(
            r["status"] not in ("pending", "sending") for r in rows if r["kind"] != "reminder"
        )

    await wait_for(second_settled, what="the second confirmation")
    rows = await outbox_rows(env.pool, second.booking.id)
    by_channel = {r["channel"]: r for r in rows if r["kind"] == "confirmation"}
    assert (by_channel["sms"]["status"], by_channel["sms"]["status_reason"]) == (
        "skipped",
        "opted_out",
    )
    assert by_channel["email"]["status"] == "sent"
    assert len(env.twilio.requests) == 1


async def test_a_landline_refusal_fails_the_sms_and_sends_the_confirmation_by_email(
    notify_env: Env,
) -> None:
    env = notify_env
    env.twilio.script("+33612345678", Reply(400, 30006))
    booked = await book(env, starts_at=in_days(9))
    await env.start_worker()
    await wait_for(lambda: fallback_sent(env, booked.booking.id), what="the email fallback")
    rows = await outbox_rows(env.pool, booked.booking.id)
    sms = rows[0]
    assert (sms["channel"], sms["status"], sms["error_code"], sms["attempts"]) == (
        "sms",
        "failed",
        "30006",
        1,
    )
    [fallback] = [r for r in rows if r["kind"] == "sms_fallback"]
    assert fallback["fallback_of"] == sms["id"]
    # Not a STOP: the number is not opted out.
    assert await env.pool.fetchval("SELECT count(*) FROM sms_opt_outs") == 0
    assert len(env.twilio.requests) == 1


async def send(env: Env, outbox_id: int) -> str:
    """One run of the worker's send job, as arq would start it."""
    state = await env.worker_state_for(env.settings)
    try:
        return await jobs.send_message({jobs.STATE: state}, outbox_id)
    finally:
        await jobs.close_state(state)


@pytest.mark.parametrize("used_up", ["attempts", "rate_limit_waits", "time"])
async def test_an_sms_out_of_retries_fails_and_its_confirmation_goes_by_email(
    notify_env: Env, used_up: str
) -> None:
    env = notify_env
    booked = await book(env, starts_at=in_days(9))
    sms = (await outbox_rows(env.pool, booked.booking.id))[0]
    assert (sms["kind"], sms["channel"]) == ("confirmation", "sms")
    reply = RATE_LIMITED if used_up == "rate_limit_waits" else SERVER_ERROR
    code = str(reply.code or reply.status)
    env.twilio.script("+33612345678", reply)
    if used_up == "attempts":
        # This is its last try: the ones before were refused as well.
        await env.pool.execute(
            "UPDATE outbox SET attempts = $2 WHERE id = $1", sms["id"], MAX_ATTEMPTS - 1
        )
    elif used_up == "rate_limit_waits":
        await env.pool.execute(
            "UPDATE outbox SET rate_limit_waits = $2 WHERE id = $1",
            sms["id"],
            MAX_RATE_LIMIT_WAITS,
        )
    else:
        # A first try, but no retry could come before the appointment.
        env.clock.set(booked.booking.starts_at - timedelta(seconds=10))
    assert await send(env, sms["id"]) == "failed"
    rows = await outbox_rows(env.pool, booked.booking.id)
    [failed] = [r for r in rows if r["id"] == sms["id"]]
    assert (failed["status"], failed["status_reason"], failed["error_code"]) == (
        "failed",
        "retries_exhausted",
        code,
    )
    assert failed["claimed_until"] is None
    # Handled like any SMS that will not arrive: the confirmation goes by
    # e-mail; not a STOP, so the number is not opted out.
    [fallback] = [r for r in rows if r["kind"] == "sms_fallback"]
    assert (fallback["fallback_of"], fallback["channel"], fallback["recipient"]) == (
        sms["id"],
        "email",
        "amina@example.org",
    )
    assert fallback["status"] == "pending" and fallback["send_at"] == env.clock()
    assert await env.pool.fetchval("SELECT count(*) FROM sms_opt_outs") == 0
    assert env.twilio.requests == [("+33612345678", reply.status)]
    assert await send(env, fallback["id"]) == "sent"
    [mail] = env.smtp.to("amina@example.org")
    assert "Votre rendez-vous" in mail["Subject"]
