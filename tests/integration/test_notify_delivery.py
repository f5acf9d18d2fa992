"""One owner for what an SMS that will not arrive does (service.notify.delivery):
a STOP opts the number out and a confirmation goes by e-mail instead, whether
Twilio says so in its answer to the send or later in a status callback."""

from __future__ import annotations

from tests.faketwilio import Reply
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
