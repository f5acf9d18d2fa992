"""WhatsApp's gaps closed, end to end against the fake Twilio: a number that
is not a WhatsApp user moves its booking to SMS for the messages to come; a
citizen's STOP on WhatsApp (or Twilio reporting the number opted out) ends
its WhatsApp messages, and only what must still reach them goes by SMS; a
draw request's messages go by the channel it chose."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest

from service import bookings, draw
from service.domain.validation import RawDetails
from service.domain.verification import contact_hash
from service.notify import delivery
from service.office.stats import week_stats
from service.store.audit import Actor
from tests.faketwilio import WA_BLOCKED, WA_NOT_A_USER, WA_NOT_A_USER_24, Reply
from tests.fixtures.notify import Env, outbox_rows, wait_for
from tests.integration.test_draw_flow import FIRST, LAST, draw_service
from tests.integration.test_whatsapp_flow import (
    PHONE,
    REGISTRY,
    WA_PHONE,
    book,
    first,
    row,
    send,
    wa_settings,
)

STAFF = Actor("staff", "manager")


async def phone_rows(env: Env, booking_id: int) -> list[dict[str, Any]]:
    return [r for r in await outbox_rows(env.pool, booking_id) if r["channel"] != "email"]


async def booking_channel(env: Env, booking_id: int) -> tuple[str, str | None]:
    found = await env.pool.fetchrow(
        "SELECT message_channel, message_channel_reason FROM bookings WHERE id = $1", booking_id
    )
    assert found is not None
    return found["message_channel"], found["message_channel_reason"]


# Not a WhatsApp user ---------------------------------------------------------------


@pytest.mark.parametrize("refusal", [WA_NOT_A_USER, WA_NOT_A_USER_24])
async def test_not_a_whatsapp_user_moves_the_booking_to_sms_for_what_is_to_come(
    notify_env: Env, refusal: Reply
) -> None:
    env = notify_env
    settings = wa_settings(env)
    env.twilio.script(WA_PHONE, refusal)
    booked = await book(env, 9)
    wa_id = await first(env, booked.booking.id, "whatsapp")
    assert await send(env, settings, wa_id) == "failed"
    assert await booking_channel(env, booked.booking.id) == ("sms", "not_whatsapp_user")
    rows = await phone_rows(env, booked.booking.id)
    # The confirmation by SMS in its place; the reminders, still to come,
    # go by SMS too and say why.
    [sms] = [r for r in rows if r["fallback_of"] == wa_id]
    assert (sms["channel"], sms["kind"], sms["status_reason"]) == (
        "sms",
        "confirmation",
        "whatsapp_fallback",
    )
    reminders = [r for r in rows if r["kind"] == "reminder"]
    assert len(reminders) == 2
    assert {(r["channel"], r["status"], r["status_reason"]) for r in reminders} == {
        ("sms", "pending", "not_whatsapp_user")
    }
    audit = await env.pool.fetchrow(
        "SELECT actor_kind, detail FROM audit_log WHERE booking_id = $1 AND action = 'channel'",
        booked.booking.id,
    )
    assert audit is not None and audit["actor_kind"] == "system"
    assert json.loads(audit["detail"]) == {
        "from": "whatsapp",
        "to": "sms",
        "reason": "not_whatsapp_user",
    }
    # A reminder goes by SMS: no WhatsApp request for it.
    await env.pool.execute(
        "UPDATE outbox SET send_at = $2 WHERE id = $1", reminders[0]["id"], env.clock()
    )
    assert await send(env, settings, reminders[0]["id"]) == "sent"
    assert [(s.to, s.content_sid) for s in env.twilio.sent] == [(PHONE, None)]
    # A later event of the booking is planned by SMS from the start.
    await bookings.cancel(
        env.pool, booked.booking.reference, booked.manage_token, env.settings.secret_key,
        env.clock(),
    )  # fmt: skip
    cancelled = [
        r for r in await phone_rows(env, booked.booking.id) if r["kind"] == "cancelled_by_citizen"
    ]
    assert [r["channel"] for r in cancelled] == ["sms"]


async def test_not_a_whatsapp_user_reported_in_a_callback_moves_the_booking_too(
    notify_env: Env,
) -> None:
    env = notify_env
    settings = wa_settings(env)
    env.twilio.script(WA_PHONE, Reply(callbacks=("sent", "undelivered"), callback_error=63024))
    booked = await book(env, 9, email=None)
    wa_id = await first(env, booked.booking.id, "whatsapp")
    assert await send(env, settings, wa_id) == "sent"

    async def moved() -> bool:
        return (await booking_channel(env, booked.booking.id))[0] == "sms"

    await wait_for(moved, what="the channel switch")
    rows = await phone_rows(env, booked.booking.id)
    assert sorted((r["channel"], r["status"]) for r in rows) == [
        ("sms", "pending"),  # the confirmation's stand-in
        ("sms", "pending"),
        ("sms", "pending"),
        ("whatsapp", "undelivered"),
    ]


async def test_a_number_no_office_may_text_moves_to_email_only(notify_env: Env) -> None:
    env = notify_env
    settings = wa_settings(env)
    env.twilio.script(WA_PHONE, WA_NOT_A_USER)
    booked = await book(env, 9)
    # Since the booking, the office stopped serving French numbers by SMS.
    await env.pool.execute(
        "UPDATE offices SET country = 'BE', sms_countries = '{}' WHERE id = $1", env.office_id
    )
    wa_id = await first(env, booked.booking.id, "whatsapp")
    assert await send(env, settings, wa_id) == "failed"
    assert await booking_channel(env, booked.booking.id) == ("email", "not_whatsapp_user")
    rows = await phone_rows(env, booked.booking.id)
    assert {(r["kind"], r["status"], r["status_reason"]) for r in rows if r["id"] != wa_id} == {
        ("reminder", "skipped", "not_whatsapp_user")
    }
    # The confirmation reaches the citizen by e-mail (their own copy, and
    # the stand-in for the message that did not arrive).
    mails = [r for r in await outbox_rows(env.pool, booked.booking.id) if r["fallback_of"] == wa_id]
    assert [(m["channel"], m["kind"]) for m in mails] == [("email", "sms_fallback")]


async def test_choosing_whatsapp_again_clears_the_reason(notify_env: Env) -> None:
    env = notify_env
    settings = wa_settings(env)
    env.twilio.script(WA_PHONE, WA_NOT_A_USER)
    booked = await book(env, 9)
    await send(env, settings, await first(env, booked.booking.id, "whatsapp"))
    reference, token = booked.booking.reference, booked.manage_token
    ctx = await bookings.change_channel(
        env.pool, reference, token, env.settings.secret_key, "whatsapp", env.clock()
    )
    assert (ctx.booking.message_channel, ctx.booking.message_channel_reason) == ("whatsapp", None)
    reminders = [r for r in await phone_rows(env, booked.booking.id) if r["kind"] == "reminder"]
    assert {(r["channel"], r["status"]) for r in reminders} == {("whatsapp", "pending")}


# Opting out ------------------------------------------------------------------------


def inbound_url(env: Env) -> str:
    return env.settings.base_url + delivery.INBOUND_PATH


async def opt_outs(env: Env) -> list[dict[str, Any]]:
    return [dict(r) for r in await env.pool.fetch("SELECT * FROM whatsapp_opt_outs")]


@pytest.mark.parametrize("word", ["STOP", "Arrêt", "baja!", "إيقاف", "ⵃⴱⵙ"])
async def test_stop_on_whatsapp_skips_its_messages_and_only_what_must_go_goes_by_sms(
    notify_env: Env, word: str
) -> None:
    env = notify_env
    settings = wa_settings(env)
    booked = await book(env, 9)
    wa_id = await first(env, booked.booking.id, "whatsapp")
    assert await send(env, settings, wa_id) == "sent"
    status, body = await env.twilio.post_inbound(inbound_url(env), WA_PHONE, word)
    assert status == 200 and "<Response>" in body
    [kept] = await opt_outs(env)
    assert bytes(kept["contact_hash"]) == contact_hash("whatsapp", PHONE, env.settings.secret_key)
    assert kept["source"] == "stop" and PHONE.lstrip("+") not in repr(kept)
    # The reminders waiting for WhatsApp are not sent, nor replaced by SMS.
    rows = await phone_rows(env, booked.booking.id)
    assert sorted((r["channel"], r["kind"], r["status"], r["status_reason"]) for r in rows) == [
        ("whatsapp", "confirmation", "sent", None),
        ("whatsapp", "reminder", "skipped", "whatsapp_opted_out"),
        ("whatsapp", "reminder", "skipped", "whatsapp_opted_out"),
    ]
    # Its e-mail reminders still go.
    mails = [r for r in await outbox_rows(env.pool, booked.booking.id) if r["channel"] == "email"]
    assert {r["status"] for r in mails} == {"pending"}
    # Its cancellation must still reach them: by SMS, not WhatsApp.
    await bookings.cancel(
        env.pool, booked.booking.reference, booked.manage_token, env.settings.secret_key,
        env.clock(),
    )  # fmt: skip
    cancel_id = await first(env, booked.booking.id, "whatsapp", kind="cancelled_by_citizen")
    assert await send(env, settings, cancel_id) == "skipped"
    assert (await row(env, cancel_id))["status_reason"] == "whatsapp_opted_out"
    [sms] = [r for r in await outbox_rows(env.pool, booked.booking.id) if r["fallback_of"]]
    assert (sms["channel"], sms["kind"]) == ("sms", "cancelled_by_citizen")
    assert await send(env, settings, sms["id"]) == "sent"
    assert [s.to for s in env.twilio.sent] == [WA_PHONE, PHONE]


async def test_a_new_booking_of_a_number_that_said_stop_gets_no_whatsapp_reminder(
    notify_env: Env,
) -> None:
    env = notify_env
    settings = wa_settings(env)
    await env.twilio.post_inbound(inbound_url(env), WA_PHONE, "stop")
    booked = await book(env, 9, email=None)
    rows = await phone_rows(env, booked.booking.id)
    for r in rows:
        await env.pool.execute("UPDATE outbox SET send_at = $2 WHERE id = $1", r["id"], env.clock())
        assert await send(env, settings, r["id"]) == "skipped"
    after = await phone_rows(env, booked.booking.id)
    # Only the confirmation has a stand-in, by SMS; no reminder goes.
    assert sorted((r["channel"], r["kind"]) for r in after if r["fallback_of"]) == [
        ("sms", "confirmation")
    ]
    assert env.twilio.sent == []


async def test_start_on_whatsapp_lifts_the_opt_out(notify_env: Env) -> None:
    env = notify_env
    settings = wa_settings(env)
    await env.twilio.post_inbound(inbound_url(env), WA_PHONE, "STOP")
    assert len(await opt_outs(env)) == 1
    await env.twilio.post_inbound(inbound_url(env), WA_PHONE, "Start")
    assert await opt_outs(env) == []
    booked = await book(env, 9)
    assert await send(env, settings, await first(env, booked.booking.id, "whatsapp")) == "sent"
    assert [s.to for s in env.twilio.sent] == [WA_PHONE]


async def test_other_messages_and_unsigned_or_sms_ones_change_nothing(notify_env: Env) -> None:
    env = notify_env
    url = inbound_url(env)
    for text in ("Merci", "stop sending me the reminder please", "ANNULER", "إلغاء"):
        assert (await env.twilio.post_inbound(url, WA_PHONE, text))[0] == 200
    # An SMS to our number: Twilio's own STOP handling answers it (21610).
    assert (await env.twilio.post_inbound(url, PHONE, "STOP", to="+14155238886"))[0] == 200
    assert (await env.twilio.post_inbound(url, WA_PHONE, "STOP", token="forged"))[0] == 403
    assert await opt_outs(env) == []
    # Twilio's own reading of the answer counts as well.
    await env.twilio.post_inbound(url, WA_PHONE, "Halt", opt_out_type="STOP")
    assert len(await opt_outs(env)) == 1


async def test_twilio_reporting_the_number_opted_out_stops_its_whatsapp(notify_env: Env) -> None:
    env = notify_env
    settings = wa_settings(env)
    env.twilio.script(WA_PHONE, WA_BLOCKED)
    booked = await book(env, 9, email=None)
    rows = await phone_rows(env, booked.booking.id)
    [reminder, _] = [r["id"] for r in rows if r["kind"] == "reminder"]
    # A reminder refused: no SMS in its place, and the number is opted out.
    await env.pool.execute("UPDATE outbox SET send_at = $2 WHERE id = $1", reminder, env.clock())
    assert await send(env, settings, reminder) == "failed"
    [kept] = await opt_outs(env)
    assert kept["source"] == "63014"
    after = await phone_rows(env, booked.booking.id)
    assert not [r for r in after if r["fallback_of"] == reminder]
    # The confirmation still waiting was skipped, and goes by SMS instead.
    confirmation = next(r for r in after if r["kind"] == "confirmation" and not r["fallback_of"])
    assert (confirmation["status"], confirmation["status_reason"]) == (
        "skipped",
        "whatsapp_opted_out",
    )
    [sms] = [r for r in after if r["fallback_of"] == confirmation["id"]]
    assert (sms["channel"], sms["status"]) == ("sms", "pending")
    assert [code for _, code in env.twilio.requests] == [400]


# A draw request's channel ----------------------------------------------------------


async def test_a_draw_requests_messages_go_by_the_whatsapp_it_chose(notify_env: Env) -> None:
    env = notify_env
    settings = wa_settings(env)
    window_id = await draw_service(env.pool, env.clock, capacity=1)
    for phone in (PHONE, "+33698765432"):
        await draw.request(
            env.pool,
            window_id,
            RawDetails(
                name="Amina El Idrissi", phone=phone, phone_country="FR", language="fr",
                channel="whatsapp",
            ),
            [FIRST, LAST],
            ["morning", "afternoon"],
            secret_key=env.settings.secret_key,
            now=env.clock(),
            actor=STAFF,
        )  # fmt: skip
    channels = await env.pool.fetch("SELECT DISTINCT message_channel FROM draw_entries")
    assert [c["message_channel"] for c in channels] == ["whatsapp"]
    env.clock.advance(timedelta(days=7))
    await draw.tick(env.pool, env.clock(), offer_hours=48, secret_key=env.settings.secret_key)
    rows = await outbox_rows(env.pool)
    # Each request was told it counts, then the draw's news: all by WhatsApp.
    assert sorted((r["kind"], r["channel"]) for r in rows) == [
        ("draw_not_served", "whatsapp"),
        ("draw_offer", "whatsapp"),
        ("entry_received", "whatsapp"),
        ("entry_received", "whatsapp"),
    ]
    offer = next(r for r in rows if r["kind"] == "draw_offer")
    waiting = next(r for r in rows if r["kind"] == "draw_not_served")
    offered_booking = await env.pool.fetchrow(
        "SELECT reference, message_channel FROM bookings WHERE id = $1", offer["booking_id"]
    )
    assert offered_booking is not None and offered_booking["message_channel"] == "whatsapp"
    assert await send(env, settings, offer["id"]) == "sent"
    # "Not served", to a number without WhatsApp: by SMS instead, and the
    # request's next messages too.
    env.twilio.script("whatsapp:" + waiting["recipient"], WA_NOT_A_USER)
    assert await send(env, settings, waiting["id"]) == "failed"
    [sms] = [r for r in await outbox_rows(env.pool) if r["fallback_of"] == waiting["id"]]
    assert (sms["channel"], sms["draw_entry_id"]) == ("sms", waiting["draw_entry_id"])
    assert await send(env, settings, sms["id"]) == "sent"
    entry = await env.pool.fetchrow(
        "SELECT message_channel, message_channel_reason FROM draw_entries WHERE id = $1",
        waiting["draw_entry_id"],
    )
    assert entry is not None
    assert tuple(entry) == ("sms", "not_whatsapp_user")
    offered, not_served = env.twilio.sent
    assert offered.to == "whatsapp:" + offer["recipient"]
    assert offered.content_sid == REGISTRY["draw_offer"]["fr"]
    assert offered.variables is not None
    assert f"/d/{offered_booking['reference']}/" in offered.variables["5"]
    assert (not_served.to, not_served.content_sid) == (waiting["recipient"], None)
    assert "/r/" + waiting["draw_entry_id"] + "/" in not_served.body
    assert "rang 2" in not_served.body


async def request_by_whatsapp(env: Env, *, capacity: int, language: str) -> draw.Receipt:
    """A draw service with `capacity` seats, and a request typed by staff
    whose messages go by WhatsApp (it counts at once)."""
    window_id = await draw_service(env.pool, env.clock, capacity=capacity)
    return await draw.request(
        env.pool, window_id,
        RawDetails(name="Amina El Idrissi", phone=PHONE, phone_country="FR", language=language,
                   channel="whatsapp"),
        [FIRST, LAST], ["morning", "afternoon"], secret_key=env.settings.secret_key,
        now=env.clock(), actor=STAFF,
    )  # fmt: skip


async def test_a_receipt_to_a_number_without_whatsapp_goes_by_sms_instead(
    notify_env: Env,
) -> None:
    env = notify_env
    settings = wa_settings(env)
    receipt = await request_by_whatsapp(env, capacity=1, language="fr")
    [told] = await outbox_rows(env.pool)
    assert (told["kind"], told["channel"]) == ("entry_received", "whatsapp")
    env.twilio.script("whatsapp:" + told["recipient"], WA_NOT_A_USER)
    assert await send(env, settings, told["id"]) == "failed"
    # Its stand-in, one per failed original (the receipt's own index allows it).
    [sms] = [r for r in await outbox_rows(env.pool) if r["fallback_of"] == told["id"]]
    assert (sms["kind"], sms["channel"]) == ("entry_received", "sms")
    assert await send(env, settings, sms["id"]) == "sent"
    assert f"/r/{receipt.entry_id}/" in env.twilio.sent[-1].body


async def test_draw_not_served_by_whatsapp_is_its_template(notify_env: Env) -> None:
    env = notify_env
    settings = wa_settings(env)
    receipt = await request_by_whatsapp(env, capacity=0, language="ar")
    # Typed by staff, the request counts at once: it is told so, with its receipt.
    [received] = await outbox_rows(env.pool)
    assert (received["kind"], received["channel"]) == ("entry_received", "whatsapp")
    assert await send(env, settings, received["id"]) == "sent"
    [told] = env.twilio.sent
    assert told.content_sid == REGISTRY["entry_received"]["ar"]
    assert told.variables is not None and f"/r/{receipt.entry_id}/" in told.variables["3"]
    env.clock.advance(timedelta(days=7))
    await draw.tick(env.pool, env.clock(), offer_hours=48, secret_key=env.settings.secret_key)
    [waiting] = [r for r in await outbox_rows(env.pool) if r["kind"] != "entry_received"]
    assert (waiting["kind"], waiting["channel"]) == ("draw_not_served", "whatsapp")
    assert await send(env, settings, waiting["id"]) == "sent"
    sent = env.twilio.sent[-1]
    assert sent.content_sid == REGISTRY["draw_not_served"]["ar"]
    assert sent.variables is not None
    assert sent.variables["3"] == "1"
    assert f"/r/{receipt.entry_id}/" in sent.variables["4"]
    # The office's statistics count a draw request's messages too.
    # (the week of the draw: the receipt went the week before).
    week = await week_stats(env.pool, env.office_id, date(2027, 2, 8), 0.07)
    assert week.stats.whatsapp["sent"] == 1


@pytest.mark.parametrize(("channel", "code_by"), [("whatsapp", "whatsapp"), ("email", "email")])
async def test_a_draw_requests_code_goes_by_its_channel(
    notify_env: Env, channel: str, code_by: str
) -> None:
    env = notify_env
    window_id = await draw_service(env.pool, env.clock)
    # A citizen's own request, its contacts never proved: it waits for a code.
    receipt = await draw.request(
        env.pool, window_id,
        RawDetails(name="Amina El Idrissi", phone=PHONE, phone_country="FR",
                   email="amina@example.org", language="fr", channel=channel),
        [FIRST, LAST], ["morning"], secret_key=env.settings.secret_key, now=env.clock(),
    )  # fmt: skip
    assert receipt.pending
    [code] = await outbox_rows(env.pool)
    assert (code["kind"], code["channel"], code["draw_entry_id"]) == (
        "code",
        code_by,
        receipt.entry_id,
    )
