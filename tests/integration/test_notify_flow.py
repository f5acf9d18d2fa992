"""End to end: bookings made through the booking core's flow functions, the
real arq worker sending through the real twilio client (fake server) and
aiosmtpd, delivery callbacks through the real web app."""

from __future__ import annotations

import re
from datetime import UTC, timedelta

import pytest
from icalendar import Calendar

from service import bookings
from service.store import audit
from tests.faketwilio import RATE_LIMITED, Reply
from tests.fixtures.app import TEST_SECRET
from tests.fixtures.notify import (
    Env,
    book,
    in_days,
    outbox_rows,
    paris,
    wait_for,
)


async def statuses(env: Env, booking_id: int) -> list[tuple[str, str, str]]:
    return [(r["kind"], r["channel"], r["status"]) for r in await outbox_rows(env.pool, booking_id)]


async def settled(env: Env, booking_id: int, kinds: set[str]) -> bool:
    rows = await outbox_rows(env.pool, booking_id)
    return all(r["status"] not in ("pending", "sending") for r in rows if r["kind"] in kinds)


async def test_booking_sends_confirmation_sms_and_email_in_french(notify_env: Env) -> None:
    env = notify_env
    booked = await book(env, starts_at=in_days(10), language="fr")
    rows = await outbox_rows(env.pool, booked.booking.id)
    assert [(r["kind"], r["channel"]) for r in rows] == [
        ("confirmation", "sms"),
        ("confirmation", "email"),
        ("reminder", "sms"),
        ("reminder", "email"),
        ("reminder", "sms"),
        ("reminder", "email"),
    ]
    await env.start_worker()
    await wait_for(lambda: settled(env, booked.booking.id, {"confirmation"}), what="confirmation")
    assert (await statuses(env, booked.booking.id))[:2] == [
        ("confirmation", "sms", "sent"),
        ("confirmation", "email", "sent"),
    ]
    ref = booked.booking.reference
    [sms] = env.twilio.bodies_to("+33612345678")
    assert sms.startswith("RDV confirmé: Consulat général du Royaume du Maroc à Paris")
    assert ref in sms
    # The link carries a token issued for this message: it opens the booking,
    # and only its hash is kept (the stored body has it redacted).
    link = re.search(rf"/b/{ref}/([A-Za-z0-9_-]{{22}})\b", sms)
    assert link is not None, sms
    async with env.pool.acquire() as conn:
        await bookings.authorise(conn, ref, link.group(1), TEST_SECRET)
    sms_row = (await outbox_rows(env.pool, booked.booking.id))[0]
    assert link.group(1) not in sms_row["body"] and f"/b/{ref}/[token]" in sms_row["body"]
    assert sms_row["segments"] == 2 and sms_row["encoding"] == "gsm7"
    assert sms_row["provider_id"] == env.twilio.sent[0].sid

    [mail] = env.smtp.to("amina@example.org")
    assert mail["From"] == "Consulat Paris <paris@mawid.example>"
    assert mail["Reply-To"] == "accueil-paris@mawid.example"
    assert ref in mail["Subject"]
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    assert "Votre rendez-vous est confirmé." in text.get_content()
    assert "CNIE et deux photos" in text.get_content()
    assert 'dir="ltr"' in html.get_content()
    [ics_part] = [p for p in mail.iter_attachments() if p.get_content_type() == "text/calendar"]
    cal = Calendar.from_ical(ics_part.get_content())
    [event] = cal.walk("VEVENT")
    assert event.decoded("dtstart") == booked.booking.starts_at
    assert event["dtstart"].params["TZID"] == "Europe/Paris"
    assert str(event["location"]).startswith("19 rue Saint-Didier")
    assert "CNIE et deux photos" in str(event["description"])
    mail_token = str(event["url"]).rpartition("/")[2]
    assert str(event["url"]).endswith(f"/b/{ref}/{mail_token}") and mail_token != link.group(1)
    async with env.pool.acquire() as conn:
        await bookings.authorise(conn, ref, mail_token, TEST_SECRET)
        stored = await conn.fetchval("SELECT string_agg(body, ' ') FROM outbox")
        kept = await conn.fetchval("SELECT count(*) FROM manage_tokens")
    assert mail_token not in stored and kept == 2


async def test_arabic_confirmation_uses_moroccan_month_names(notify_env: Env) -> None:
    env = notify_env
    # 10 August 2027, 10:00 in Paris: Arabic "غشت", not "أغسطس".
    starts = paris(2027, 8, 10, 10, 0).astimezone(UTC)
    now = starts - timedelta(days=20)
    # Booked, and sent, twenty days before: the worker runs on this clock.
    env.clock.set(now)
    booked = await book(env, starts_at=starts, language="ar", now=now)
    await env.pool.execute(
        "UPDATE outbox SET send_at = $1 WHERE kind = 'confirmation'", env.clock()
    )
    await env.start_worker()
    await wait_for(lambda: settled(env, booked.booking.id, {"confirmation"}), what="confirmation")
    [sms] = env.twilio.bodies_to("+33612345678")
    assert "غشت" in sms and "أغسطس" not in sms
    assert sms.startswith("موعد مؤكد: القنصلية العامة للمملكة المغربية بباريس")
    assert "10:00 (توقيت باريس)" in sms and " للتدبير: http" in sms
    row = (await outbox_rows(env.pool, booked.booking.id))[0]
    assert row["encoding"] == "ucs2" and row["segments"] <= 3
    [mail] = env.smtp.to("amina@example.org")
    html = mail.get_body(("html",))
    assert html is not None
    content = html.get_content()
    assert 'dir="rtl"' in content and "غشت" in content
    assert "تم تأكيد موعدكم." in content


async def test_cancel_sends_cancellation_and_skips_reminders(notify_env: Env) -> None:
    env = notify_env
    booked = await book(env, starts_at=in_days(9))
    await bookings.cancel(
        env.pool, booked.booking.reference, booked.manage_token, TEST_SECRET, env.clock()
    )
    rows = await outbox_rows(env.pool, booked.booking.id)
    reminders = [r for r in rows if r["kind"] == "reminder"]
    assert reminders and all(r["status"] == "skipped" for r in reminders)
    assert {r["status_reason"] for r in reminders} == {"booking_cancelled"}
    await env.start_worker()
    await wait_for(
        lambda: settled(env, booked.booking.id, {"cancelled_by_citizen"}), what="cancellation"
    )
    bodies = env.twilio.bodies_to("+33612345678")
    assert any(b.startswith("RDV annulé") for b in bodies)
    mails = env.smtp.to("amina@example.org")
    cancel_mail = [m for m in mails if "annulé" in m["Subject"]]
    assert cancel_mail
    [ics_part] = [p for p in cancel_mail[0].iter_attachments()]
    cal = Calendar.from_ical(ics_part.get_content())
    assert str(cal["method"]) == "CANCEL"


async def test_office_cancellation_carries_the_reason(notify_env: Env) -> None:
    env = notify_env
    booked = await book(env, starts_at=in_days(9), email=None)
    async with env.pool.acquire() as conn:
        await bookings.set_status_by_office(
            conn,
            booked.booking.reference,
            env.office_id,
            bookings.Status.CANCELLED,
            audit.Actor("staff", "1"),
            env.clock(),
            reason="Fermeture exceptionnelle",
        )
    await env.start_worker()
    await wait_for(
        lambda: settled(env, booked.booking.id, {"cancelled_by_office"}), what="cancellation"
    )
    bodies = env.twilio.bodies_to("+33612345678")
    assert any("Motif: Fermeture exceptionnelle" in b for b in bodies)


async def test_reschedule_skips_old_reminders_and_creates_new(notify_env: Env) -> None:
    env = notify_env
    booked = await book(env, starts_at=in_days(9), email=None)
    new_start = in_days(12, hour=14)
    new_slot = await env.add_slot(new_start)
    await bookings.reschedule(
        env.pool,
        booked.booking.reference,
        booked.manage_token,
        TEST_SECRET,
        new_slot,
        env.clock(),
    )
    rows = await outbox_rows(env.pool, booked.booking.id)
    old = [r for r in rows if r["kind"] == "reminder" and r["appointment_at"] != new_start]
    new = [r for r in rows if r["kind"] == "reminder" and r["appointment_at"] == new_start]
    assert len(old) == 2 and all(r["status"] == "skipped" for r in old)
    assert {r["status_reason"] for r in old} == {"booking_moved"}
    assert len(new) == 2 and all(r["status"] == "pending" for r in new)
    assert sorted(r["send_at"] for r in new) == [
        new_start - timedelta(hours=48),
        new_start - timedelta(hours=3),
    ]
    await env.start_worker()
    await wait_for(lambda: settled(env, booked.booking.id, {"rescheduled"}), what="rescheduled")
    bodies = env.twilio.bodies_to("+33612345678")
    assert any(b.startswith("RDV déplacé au") for b in bodies)


async def test_due_reminder_for_cancelled_booking_is_not_sent(notify_env: Env) -> None:
    env = notify_env
    booked = await book(env, starts_at=in_days(9), email=None)
    # A reminder falls due, then (by a path that bypassed the booking flow)
    # the booking is cancelled: the re-check at send time must catch it.
    await env.pool.execute(
        """UPDATE outbox SET send_at = $2
           WHERE booking_id = $1 AND kind = 'reminder'""",
        booked.booking.id,
        env.clock() - timedelta(minutes=1),
    )
    await env.pool.execute(
        "UPDATE outbox SET status = 'sent' WHERE booking_id = $1 AND kind = 'confirmation'",
        booked.booking.id,
    )
    await env.pool.execute(
        "UPDATE bookings SET status = 'cancelled' WHERE id = $1", booked.booking.id
    )
    await env.start_worker()
    await wait_for(lambda: settled(env, booked.booking.id, {"reminder"}), what="reminders")
    rows = await outbox_rows(env.pool, booked.booking.id)
    assert {(r["status"], r["status_reason"]) for r in rows if r["kind"] == "reminder"} == {
        ("skipped", "booking_cancelled")
    }
    assert env.twilio.sent == []


async def test_due_reminder_for_moved_booking_is_not_sent(notify_env: Env) -> None:
    env = notify_env
    booked = await book(env, starts_at=in_days(9), email=None)
    await env.pool.execute(
        """UPDATE outbox SET send_at = $2,
                             status = CASE WHEN kind = 'reminder' THEN 'pending' ELSE 'sent' END
           WHERE booking_id = $1""",
        booked.booking.id,
        env.clock() - timedelta(minutes=1),
    )
    await env.pool.execute(
        "UPDATE bookings SET starts_at = starts_at + interval '1 day' WHERE id = $1",
        booked.booking.id,
    )
    await env.start_worker()
    await wait_for(lambda: settled(env, booked.booking.id, {"reminder"}), what="reminders")
    rows = await outbox_rows(env.pool, booked.booking.id)
    assert {r["status_reason"] for r in rows if r["kind"] == "reminder"} == {"booking_moved"}
    assert env.twilio.sent == []


async def test_quiet_hours_move_reminders_out_of_the_night(notify_env: Env) -> None:
    env = notify_env
    # A 09:30 appointment: "3 h before" is 06:30, inside 21:00-08:00 in Paris,
    # and 08:00 still leaves 1h30, so the reminder goes at 08:00 local.
    d = in_days(10).astimezone(paris(2027, 1, 1).tzinfo).date()
    starts = paris(d.year, d.month, d.day, 9, 30).astimezone(UTC)
    booked = await book(env, starts_at=starts, email=None)
    rows = await outbox_rows(env.pool, booked.booking.id)
    three_h = [r for r in rows if r["offset_minutes"] == 180]
    assert [r["send_at"] for r in three_h] == [paris(d.year, d.month, d.day, 8, 0)]


async def test_rate_limited_then_accepted_sends_exactly_once(notify_env: Env) -> None:
    env = notify_env
    env.twilio.script("+33612345678", RATE_LIMITED)
    booked = await book(env, starts_at=in_days(9), email=None)
    await env.start_worker()

    async def retried() -> bool:
        row = (await outbox_rows(env.pool, booked.booking.id))[0]
        return row["rate_limit_waits"] == 1 and row["status"] == "pending"

    await wait_for(retried, what="the rate-limited retry")
    # Let the wait pass now rather than in 5 s.
    await env.pool.execute(
        "UPDATE outbox SET send_at = $2 WHERE booking_id = $1 AND status = 'pending' "
        "AND kind = 'confirmation'",
        booked.booking.id,
        env.clock(),
    )
    await wait_for(lambda: settled(env, booked.booking.id, {"confirmation"}), what="send")
    row = (await outbox_rows(env.pool, booked.booking.id))[0]
    assert row["status"] == "sent"
    # The rate limit did not use up an attempt.
    assert row["attempts"] == 1 and row["rate_limit_waits"] == 1
    assert [s for _, s in env.twilio.requests] == [429, 201]
    assert len(env.twilio.sent) == 1


async def test_server_error_is_retried_with_backoff(notify_env: Env) -> None:
    env = notify_env
    env.twilio.script("+33612345678", Reply(500))
    booked = await book(env, starts_at=in_days(9), email=None)
    await env.start_worker()

    async def backed_off() -> bool:
        row = (await outbox_rows(env.pool, booked.booking.id))[0]
        return row["status"] == "pending" and row["attempts"] == 1

    await wait_for(backed_off, what="backoff")
    row = (await outbox_rows(env.pool, booked.booking.id))[0]
    assert row["send_at"] > env.clock() + timedelta(seconds=10)
    assert (row["error_code"], row["status_reason"]) == ("500", "temporary_error")


@pytest.mark.parametrize("code", [21211, 21614])
async def test_permanent_error_is_not_retried(notify_env: Env, code: int) -> None:
    env = notify_env
    env.twilio.script("+33612345678", Reply(400, code))
    booked = await book(env, starts_at=in_days(9), email=None)
    await env.start_worker()
    await wait_for(lambda: settled(env, booked.booking.id, {"confirmation"}), what="failure")
    row = (await outbox_rows(env.pool, booked.booking.id))[0]
    assert (row["status"], row["error_code"], row["attempts"]) == ("failed", str(code), 1)
    assert len(env.twilio.requests) == 1


async def test_stop_opt_out_skips_later_sms(notify_env: Env) -> None:
    env = notify_env
    env.twilio.script("+33612345678", Reply(400, 21610))
    first = await book(env, starts_at=in_days(9), email=None)
    await env.start_worker()
    await wait_for(lambda: settled(env, first.booking.id, {"confirmation"}), what="failure")
    assert await env.pool.fetchval("SELECT count(*) FROM sms_opt_outs") == 1
    second = await book(env, starts_at=in_days(11), email=None)
    await wait_for(lambda: settled(env, second.booking.id, {"confirmation"}), what="skip")
    row = (await outbox_rows(env.pool, second.booking.id))[0]
    assert (row["status"], row["status_reason"]) == ("skipped", "opted_out")
    assert len(env.twilio.requests) == 1


async def test_undelivered_confirmation_falls_back_to_email(notify_env: Env) -> None:
    env = notify_env
    env.twilio.script(
        "+33612345678", Reply(callbacks=("sent", "undelivered"), callback_error=30003)
    )
    booked = await book(env, starts_at=in_days(9))
    await env.start_worker()

    async def fallback_sent() -> bool:
        rows = await outbox_rows(env.pool, booked.booking.id)
        return any(r["kind"] == "sms_fallback" and r["status"] == "sent" for r in rows)

    await wait_for(fallback_sent, what="the email fallback")
    rows = await outbox_rows(env.pool, booked.booking.id)
    sms = rows[0]
    assert (sms["status"], sms["error_code"]) == ("undelivered", "30003")
    [fallback] = [r for r in rows if r["kind"] == "sms_fallback"]
    assert fallback["fallback_of"] == sms["id"]
    subjects = [m["Subject"] for m in env.smtp.to("amina@example.org")]
    assert any("Votre rendez-vous" in s for s in subjects)
    # A repeated callback does not add a second fallback.
    sent = env.twilio.sent[0]
    assert sent.status_callback is not None
    status = await env.twilio.post_status(
        sent.status_callback, sent.sid, sent.to, "undelivered", 30003
    )
    assert status == 204
    rows = await outbox_rows(env.pool, booked.booking.id)
    assert len([r for r in rows if r["kind"] == "sms_fallback"]) == 1


async def test_delivery_callback_moves_forward_only(notify_env: Env) -> None:
    env = notify_env
    env.twilio.script("+33612345678", Reply(callbacks=("sent", "delivered")))
    booked = await book(env, starts_at=in_days(9), email=None)
    await env.start_worker()

    async def delivered() -> bool:
        return (await outbox_rows(env.pool, booked.booking.id))[0]["status"] == "delivered"

    await wait_for(delivered, what="delivered")
    sent = env.twilio.sent[0]
    assert sent.status_callback is not None
    # A late "sent" does not move it back.
    assert await env.twilio.post_status(sent.status_callback, sent.sid, sent.to, "sent") == 204
    row = (await outbox_rows(env.pool, booked.booking.id))[0]
    assert row["status"] == "delivered" and row["delivered_at"] is not None


async def test_bad_signature_gets_403_and_changes_nothing(notify_env: Env) -> None:
    env = notify_env
    booked = await book(env, starts_at=in_days(9), email=None)
    await env.start_worker()
    await wait_for(lambda: settled(env, booked.booking.id, {"confirmation"}), what="send")
    sent = env.twilio.sent[0]
    assert sent.status_callback is not None
    status = await env.twilio.post_status(
        sent.status_callback, sent.sid, sent.to, "delivered", token="wrong-token"
    )
    assert status == 403
    row = (await outbox_rows(env.pool, booked.booking.id))[0]
    assert row["status"] == "sent"
    # Signed over another URL (e.g. the Host header instead of BASE_URL): refused.
    other = sent.status_callback.replace("127.0.0.1", "localhost")
    assert await env.twilio.post_status(other, sent.sid, sent.to, "delivered") == 403


async def test_smtp_temporary_then_accepted(notify_env: Env) -> None:
    env = notify_env
    env.smtp.script("amina@example.org", "451 4.3.0 try again later")
    booked = await book(env, starts_at=in_days(9), phone=None)
    await env.start_worker()

    async def backed_off() -> bool:
        row = (await outbox_rows(env.pool, booked.booking.id))[0]
        return row["status"] == "pending" and row["attempts"] == 1

    await wait_for(backed_off, what="smtp backoff")
    row = (await outbox_rows(env.pool, booked.booking.id))[0]
    assert row["error_code"] == "smtp451"
    await env.pool.execute(
        "UPDATE outbox SET send_at = $2 WHERE id = $1", row["id"], env.clock()
    )
    await wait_for(lambda: settled(env, booked.booking.id, {"confirmation"}), what="send")
    assert len(env.smtp.to("amina@example.org")) == 1


async def test_smtp_permanent_failure(notify_env: Env) -> None:
    env = notify_env
    env.smtp.script("amina@example.org", "550 5.1.1 no such user")
    booked = await book(env, starts_at=in_days(9), phone=None)
    await env.start_worker()
    await wait_for(lambda: settled(env, booked.booking.id, {"confirmation"}), what="failure")
    row = (await outbox_rows(env.pool, booked.booking.id))[0]
    assert (row["status"], row["error_code"]) == ("failed", "smtp550")
