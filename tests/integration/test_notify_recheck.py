"""What a message says must still be true when it leaves: the re-check runs
after the wait for the SMS rate, no message but a cancellation goes for a
booking that is cancelled or moved, no SMS to landlines, and retries keep the
office's quiet hours.  Real Postgres, Redis, arq worker, twilio client
against the fake server, aiosmtpd, and the web app for callbacks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq.connections import RedisSettings, create_pool

from service import bookings
from service.notify import events
from service.worker import jobs
from service.worker.ratelimit import RATE_KEY, RateLimiter
from tests.faketwilio import Reply
from tests.fixtures.app import TEST_SECRET
from tests.fixtures.notify import Env, book, in_days, outbox_rows, paris, wait_for


async def row_of(env: Env, outbox_id: int) -> dict[str, Any]:
    row = await env.pool.fetchrow("SELECT * FROM outbox WHERE id = $1", outbox_id)
    assert row is not None
    return dict(row)


async def settled(env: Env, outbox_id: int) -> bool:
    return (await row_of(env, outbox_id))["status"] not in ("pending", "sending")


# 1. The re-check comes after the wait for the rate ------------------------------


@pytest.mark.parametrize("change", ["cancel", "reschedule"])
async def test_reminder_waiting_for_its_sms_turn_is_not_sent_after_a_change(
    notify_env: Env, change: str
) -> None:
    env = notify_env
    booked = await book(env, starts_at=in_days(9), email=None)
    bid = booked.booking.id
    await env.pool.execute(
        "UPDATE outbox SET status = 'sent' WHERE booking_id = $1 AND kind <> 'reminder'", bid
    )
    reminder = await env.pool.fetchval(
        "SELECT id FROM outbox WHERE booking_id = $1 AND kind = 'reminder' ORDER BY send_at "
        "LIMIT 1",
        bid,
    )
    await env.pool.execute(
        "UPDATE outbox SET send_at = $2 WHERE id = $1",
        reminder,
        env.clock() - timedelta(seconds=1),
    )
    # One SMS every 2 s, and another sender has just taken the current turn:
    # the reminder's turn is 2 s away.
    settings = env.settings.with_(sms_per_second=0.5)
    await RateLimiter(env.redis, 0.5).reserve()
    taken = int(await env.redis.get(RATE_KEY))
    await env.start_worker(await env.worker_state_for(settings))

    async def reminder_has_its_turn() -> bool:
        value = await env.redis.get(RATE_KEY)
        return value is not None and int(value) > taken

    await wait_for(reminder_has_its_turn, what="the reminder booking its SMS turn")
    # The booking changes while the reminder waits for its turn.
    if change == "cancel":
        await bookings.cancel(
            env.pool, booked.booking.reference, booked.manage_token, TEST_SECRET, env.clock()
        )
        kind, reason = "cancelled_by_citizen", "booking_cancelled"
    else:
        new_slot = await env.add_slot(in_days(12, hour=14))
        await bookings.reschedule(
            env.pool,
            booked.booking.reference,
            booked.manage_token,
            TEST_SECRET,
            new_slot,
            env.clock(),
        )
        kind, reason = "rescheduled", "booking_moved"
    notice = await env.pool.fetchval(
        "SELECT id FROM outbox WHERE booking_id = $1 AND kind = $2", bid, kind
    )

    # The notice of the change takes a later turn than the reminder: once it
    # is out, the reminder's job has had its turn.
    async def notice_sent() -> bool:
        return (await row_of(env, notice))["status"] == "sent"

    await wait_for(notice_sent, what="the notice of the change")
    await wait_for(lambda: settled(env, reminder), what="the reminder")
    row = await row_of(env, reminder)
    assert (row["status"], row["status_reason"]) == ("skipped", reason)
    assert reminder not in env.twilio.per_outbox_id()
    assert env.twilio.per_outbox_id() == {notice: 1}


# 3. Nothing but a cancellation for a booking no longer as planned ---------------


async def test_confirmation_due_after_a_cancel_is_not_sent(notify_env: Env) -> None:
    env = notify_env
    booked = await book(env, starts_at=in_days(9))
    # Cancelled before the worker got to the confirmation.
    await bookings.cancel(
        env.pool, booked.booking.reference, booked.manage_token, TEST_SECRET, env.clock()
    )
    await env.start_worker()

    async def all_settled() -> bool:
        rows = await outbox_rows(env.pool, booked.booking.id)
        return all(r["status"] not in ("pending", "sending") for r in rows)

    await wait_for(all_settled, what="every message of the booking")
    rows = await outbox_rows(env.pool, booked.booking.id)
    confirmations = [r for r in rows if r["kind"] == "confirmation"]
    assert [(r["channel"], r["status"], r["status_reason"]) for r in confirmations] == [
        ("sms", "skipped", "booking_cancelled"),
        ("email", "skipped", "booking_cancelled"),
    ]
    assert [b[:9] for b in env.twilio.bodies_to("+33612345678")] == ["RDV annul"]
    subjects = [m["Subject"] for m in env.smtp.to("amina@example.org")]
    assert len(subjects) == 1 and "annulé" in subjects[0]


async def test_rescheduled_message_due_after_a_cancel_is_not_sent(notify_env: Env) -> None:
    env = notify_env
    booked = await book(env, starts_at=in_days(9), email=None)
    new_slot = await env.add_slot(in_days(12, hour=14))
    await bookings.reschedule(
        env.pool, booked.booking.reference, booked.manage_token, TEST_SECRET, new_slot, env.clock()
    )
    await bookings.cancel(
        env.pool, booked.booking.reference, booked.manage_token, TEST_SECRET, env.clock()
    )
    await env.start_worker()
    rescheduled = await env.pool.fetchval(
        "SELECT id FROM outbox WHERE booking_id = $1 AND kind = 'rescheduled'", booked.booking.id
    )
    await wait_for(lambda: settled(env, rescheduled), what="the rescheduled message")
    row = await row_of(env, rescheduled)
    assert (row["status"], row["status_reason"]) == ("skipped", "booking_cancelled")
    assert rescheduled not in env.twilio.per_outbox_id()


@pytest.mark.parametrize("change", ["cancel", "reschedule"])
async def test_late_undelivered_callback_makes_no_fallback_for_a_changed_booking(
    notify_env: Env, change: str
) -> None:
    env = notify_env
    booked = await book(env, starts_at=in_days(9))
    await env.start_worker()

    async def confirmation_sent() -> bool:
        rows = await outbox_rows(env.pool, booked.booking.id)
        return [r["status"] for r in rows if r["kind"] == "confirmation"] == ["sent", "sent"]

    await wait_for(confirmation_sent, what="the confirmation")
    if change == "cancel":
        await bookings.cancel(
            env.pool, booked.booking.reference, booked.manage_token, TEST_SECRET, env.clock()
        )
    else:
        new_slot = await env.add_slot(in_days(12, hour=14))
        await bookings.reschedule(
            env.pool,
            booked.booking.reference,
            booked.manage_token,
            TEST_SECRET,
            new_slot,
            env.clock(),
        )
    [confirmation] = [s for s in env.twilio.sent if s.body.startswith("RDV confirm")]
    assert confirmation.status_callback is not None
    # Twilio reports, late, that the confirmation SMS never arrived.
    status = await env.twilio.post_status(
        confirmation.status_callback, confirmation.sid, confirmation.to, "undelivered", 30003
    )
    assert status == 204
    rows = await outbox_rows(env.pool, booked.booking.id)
    sms = [r for r in rows if r["kind"] == "confirmation" and r["channel"] == "sms"]
    assert sms[0]["status"] == "undelivered"
    assert [r for r in rows if r["kind"] == "sms_fallback"] == []


async def test_fallback_queued_before_a_cancel_is_not_sent(notify_env: Env) -> None:
    env = notify_env
    env.twilio.script(
        "+33612345678", Reply(callbacks=("sent", "undelivered"), callback_error=30003)
    )
    booked = await book(env, starts_at=in_days(9))
    # The confirmation email has gone already; the worker is not running when
    # the fallback is queued.
    await env.pool.execute(
        "UPDATE outbox SET status = 'sent' WHERE booking_id = $1 AND channel = 'email'",
        booked.booking.id,
    )
    state = await env.worker_state_for(env.settings)
    redis = await create_pool(RedisSettings.from_dsn(env.settings.redis_url))
    ctx = {jobs.STATE: state, "redis": redis}
    sms_id = await env.pool.fetchval(
        "SELECT id FROM outbox WHERE booking_id = $1 AND kind = 'confirmation' AND channel = 'sms'",
        booked.booking.id,
    )
    try:
        assert await jobs.send_message(ctx, sms_id) == "sent"
    finally:
        await redis.aclose()

    async def fallback_queued() -> bool:
        rows = await outbox_rows(env.pool, booked.booking.id)
        return any(r["kind"] == "sms_fallback" for r in rows)

    await wait_for(fallback_queued, what="the fallback email")
    await bookings.cancel(
        env.pool, booked.booking.reference, booked.manage_token, TEST_SECRET, env.clock()
    )
    fallback = await env.pool.fetchval(
        "SELECT id FROM outbox WHERE booking_id = $1 AND kind = 'sms_fallback'", booked.booking.id
    )
    assert await jobs.send_message(ctx, fallback) == "skipped"
    row = await row_of(env, fallback)
    assert (row["status"], row["status_reason"]) == ("skipped", "booking_cancelled")
    assert env.smtp.to("amina@example.org") == []


# 4. SMS only to mobiles ---------------------------------------------------------


async def test_landline_gets_no_sms_row_but_email_still_goes(notify_env: Env) -> None:
    env = notify_env
    # The form refuses a landline now (test_abuse_fields.py); a booking that
    # has one from before gets its messages by e-mail only.
    booked = await book(env, starts_at=in_days(9), phone=None)
    await env.pool.execute(
        "UPDATE bookings SET phone = '+212528862222' WHERE id = $1", booked.booking.id
    )
    async with env.pool.acquire() as conn:
        await events.record_booking_event(conn, booked.booking.id, "rescheduled", now=env.clock())
    rows = await outbox_rows(env.pool, booked.booking.id)
    assert rows and {r["channel"] for r in rows} == {"email"}
    await env.start_worker()

    async def messages_sent() -> bool:
        rows = await outbox_rows(env.pool, booked.booking.id)
        kinds = ("confirmation", "rescheduled")
        return [r["status"] for r in rows if r["kind"] in kinds] == ["sent", "sent"]

    await wait_for(messages_sent, what="the e-mails")
    assert len(env.smtp.to("amina@example.org")) == 2
    assert env.twilio.requests == []


# 5. Quiet hours hold for retries and recovered rows too -------------------------


def fixed(at: datetime) -> Any:
    return lambda: at


def morning_of(instant: datetime) -> datetime:
    """08:00 in Paris, the end of the default quiet hours, on `instant`'s day."""
    local = instant.astimezone(paris(2027, 1, 1).tzinfo)
    return paris(local.year, local.month, local.day, 8, 0).astimezone(UTC)


async def reminder_only(env: Env, starts_at: datetime) -> tuple[int, int]:
    booked = await book(env, starts_at=starts_at, email=None)
    bid = booked.booking.id
    await env.pool.execute(
        "UPDATE outbox SET status = 'sent' WHERE booking_id = $1 AND kind <> 'reminder'", bid
    )
    reminder = await env.pool.fetchval(
        "SELECT id FROM outbox WHERE booking_id = $1 AND kind = 'reminder' ORDER BY send_at "
        "LIMIT 1",
        bid,
    )
    await env.pool.execute(
        "UPDATE outbox SET status = 'skipped' WHERE booking_id = $1 AND kind = 'reminder' "
        "AND id <> $2",
        bid,
        reminder,
    )
    return bid, reminder


async def test_reminder_retry_does_not_fall_in_quiet_hours(notify_env: Env) -> None:
    env = notify_env
    starts = in_days(9, hour=15)
    _, reminder = await reminder_only(env, starts)
    # The day before, at 20:59:50 in Paris, the provider answers 500: the
    # backoff (15 s at least) ends inside quiet hours (21:00-08:00).
    day_before = (starts - timedelta(days=1)).astimezone(paris(2027, 1, 1).tzinfo)
    now = paris(day_before.year, day_before.month, day_before.day, 20, 59, 50)
    await env.pool.execute("UPDATE outbox SET send_at = $2 WHERE id = $1", reminder, now)
    env.twilio.script("+33612345678", Reply(500))
    state = await jobs.build_state(env.settings, pool=env.pool, clock=fixed(now))
    redis = await create_pool(RedisSettings.from_dsn(env.settings.redis_url))
    try:
        assert await jobs.send_message({jobs.STATE: state, "redis": redis}, reminder) == "retry"
    finally:
        await redis.aclose()
    row = await row_of(env, reminder)
    assert (row["status"], row["send_at"]) == ("pending", morning_of(starts))


async def test_reminder_taken_back_at_night_waits_for_the_morning(notify_env: Env) -> None:
    env = notify_env
    starts = in_days(9, hour=15)
    _, reminder = await reminder_only(env, starts)
    day_before = (starts - timedelta(days=1)).astimezone(paris(2027, 1, 1).tzinfo)
    now = paris(day_before.year, day_before.month, day_before.day, 21, 30)
    # Its worker died at 21:00 (before quiet hours began); the lease ran out.
    await env.pool.execute(
        """UPDATE outbox SET status = 'sending', attempts = 1, send_at = $2,
                             claimed_until = $3
           WHERE id = $1""",
        reminder,
        now - timedelta(minutes=30),
        now - timedelta(minutes=1),
    )
    state = await jobs.build_state(env.settings, pool=env.pool, clock=fixed(now))
    redis = await create_pool(RedisSettings.from_dsn(env.settings.redis_url))
    try:
        await jobs.sweep_outbox({jobs.STATE: state, "redis": redis})
    finally:
        await redis.aclose()
    row = await row_of(env, reminder)
    assert (row["status"], row["send_at"]) == ("pending", morning_of(starts))
