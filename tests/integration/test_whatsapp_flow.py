"""WhatsApp end to end against the fake Twilio: content templates on the
same Messages API, the fallback chain (WhatsApp, then SMS, then e-mail), the
temporary refusals that retry, the receipts up to `read`, the per-channel
cap, and the citizen changing their channel."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service import bookings
from service.config import Settings
from service.domain.validation import RawDetails
from service.notify import whatsapp
from service.worker import jobs
from tests.faketwilio import WA_NOT_A_USER, WA_NOT_A_USER_24, WA_RATE, Reply
from tests.fixtures import notify
from tests.fixtures.app import any_document
from tests.fixtures.notify import Env, in_days, outbox_rows, wait_for

PHONE = "+33612345678"
WA_PHONE = "whatsapp:" + PHONE
SENDER = "+14155238886"
REGISTRY = {
    kind: {lang: f"HX{kind[:6]}{lang}" for lang in ("ar", "fr", "en")} for kind in whatsapp.KINDS
}


def wa_settings(env: Env, **changes: Any) -> Settings:
    defaults: dict[str, Any] = {
        "twilio_whatsapp_from": SENDER,
        "whatsapp_templates": json.dumps(REGISTRY),
        "whatsapp_per_second": 100.0,
    }
    return env.settings.with_(**(defaults | changes))


async def book(
    env: Env,
    days: int,
    *,
    channel: str = "whatsapp",
    email: str | None = "amina@example.org",
    language: str = "fr",
) -> bookings.Booked:
    return await notify.book(
        env, starts_at=in_days(days), phone=PHONE, email=email, language=language,
        channel=channel,
    )  # fmt: skip


async def send(env: Env, settings: Settings, outbox_id: int) -> str:
    state = await env.worker_state_for(settings)
    try:
        return await jobs.send_message({jobs.STATE: state}, outbox_id)
    finally:
        await jobs.close_state(state)


async def row(env: Env, outbox_id: int) -> dict[str, Any]:
    found = await env.pool.fetchrow("SELECT * FROM outbox WHERE id = $1", outbox_id)
    assert found is not None
    return dict(found)


async def first(env: Env, booking_id: int, channel: str, kind: str = "confirmation") -> int:
    rows = await outbox_rows(env.pool, booking_id)
    [found] = [r["id"] for r in rows if (r["channel"], r["kind"]) == (channel, kind)]
    return found


@pytest.mark.parametrize("language", ["ar", "fr", "en"])
async def test_a_whatsapp_message_is_an_approved_template_with_its_variables(
    notify_env: Env, language: str
) -> None:
    env = notify_env
    settings = wa_settings(env)
    booked = await book(env, 9, language=language)
    rows = await outbox_rows(env.pool, booked.booking.id)
    assert {(r["channel"], r["kind"]) for r in rows} == {
        ("whatsapp", "confirmation"),
        ("email", "confirmation"),
        ("whatsapp", "reminder"),
        ("email", "reminder"),
    }
    wa_id = await first(env, booked.booking.id, "whatsapp")
    assert await send(env, settings, wa_id) == "sent"
    [sent] = env.twilio.sent
    assert (sent.to, sent.sender, sent.body) == (WA_PHONE, "whatsapp:" + SENDER, "")
    assert sent.content_sid == REGISTRY["confirmation"][language]
    assert sent.variables is not None
    assert list(sent.variables) == ["1", "2", "3", "4", "5", "6"]
    assert sent.variables["4"] == booked.booking.reference
    assert f"/b/{booked.booking.reference}/" in sent.variables["5"]
    kept = await row(env, wa_id)
    assert kept["status"] == "sent" and kept["segments"] is None
    # The log keeps the template's text as read, without the manage token.
    assert booked.booking.reference in kept["body"] and "[token]" in kept["body"]
    assert sent.variables["5"].split("/")[-1] not in kept["body"]


async def test_receipts_move_a_whatsapp_row_up_to_read_and_never_back(notify_env: Env) -> None:
    env = notify_env
    settings = wa_settings(env)
    env.twilio.script(WA_PHONE, Reply(callbacks=("sent", "delivered", "read")))
    booked = await book(env, 9)
    wa_id = await first(env, booked.booking.id, "whatsapp")
    await send(env, settings, wa_id)

    async def read() -> bool:
        return (await row(env, wa_id))["status"] == "read"

    await wait_for(read, what="the read receipt")
    done = await row(env, wa_id)
    assert done["delivered_at"] is not None and done["read_at"] is not None
    [sent] = env.twilio.sent
    assert sent.status_callback is not None
    # A late or repeated receipt changes nothing.
    for status in ("delivered", "sent", "read"):
        assert await env.twilio.post_status(sent.status_callback, sent.sid, WA_PHONE, status) == 204
    again = await row(env, wa_id)
    assert (again["status"], again["read_at"]) == ("read", done["read_at"])


@pytest.mark.parametrize("refusal", [WA_NOT_A_USER, WA_NOT_A_USER_24])
async def test_not_a_whatsapp_user_falls_back_to_sms_then_to_email(
    notify_env: Env, refusal: Reply
) -> None:
    env = notify_env
    settings = wa_settings(env)
    env.twilio.script(WA_PHONE, refusal)
    # The SMS standing in for it reaches a number that turns out a landline.
    env.twilio.script(PHONE, Reply(400, 30006))
    booked = await book(env, 9)
    wa_id = await first(env, booked.booking.id, "whatsapp")
    assert await send(env, settings, wa_id) == "failed"
    failed = await row(env, wa_id)
    assert (failed["status"], failed["error_code"]) == ("failed", str(refusal.code))
    [sms] = [r for r in await outbox_rows(env.pool, booked.booking.id) if r["fallback_of"] == wa_id]
    assert (sms["channel"], sms["kind"], sms["recipient"], sms["status"]) == (
        "sms",
        "confirmation",
        PHONE,
        "pending",
    )
    assert sms["status_reason"] == "whatsapp_fallback"
    assert await send(env, settings, sms["id"]) == "failed"
    rows = await outbox_rows(env.pool, booked.booking.id)
    [mail] = [r for r in rows if r["fallback_of"] == sms["id"]]
    assert (mail["channel"], mail["kind"], mail["recipient"]) == (
        "email",
        "sms_fallback",
        "amina@example.org",
    )
    assert await send(env, settings, mail["id"]) == "sent"
    assert len(env.smtp.to("amina@example.org")) == 1
    assert [s.to for s in env.twilio.sent] == []  # nothing reached a phone


async def test_a_failure_reported_in_a_callback_falls_back_once(notify_env: Env) -> None:
    env = notify_env
    settings = wa_settings(env)
    env.twilio.script(WA_PHONE, Reply(callbacks=("sent", "undelivered"), callback_error=63016))
    booked = await book(env, 9, email=None)
    wa_id = await first(env, booked.booking.id, "whatsapp")
    await send(env, settings, wa_id)

    async def fell_back() -> bool:
        rows = await outbox_rows(env.pool, booked.booking.id)
        return any(r["fallback_of"] == wa_id for r in rows)

    await wait_for(fell_back, what="the SMS fallback")
    [sent] = env.twilio.sent
    assert sent.status_callback is not None
    await env.twilio.post_status(sent.status_callback, sent.sid, WA_PHONE, "undelivered", 63016)
    rows = await outbox_rows(env.pool, booked.booking.id)
    assert [r["channel"] for r in rows if r["fallback_of"] == wa_id] == ["sms"]
    assert (await row(env, wa_id))["error_code"] == "63016"


async def test_no_template_for_the_language_falls_back_to_sms(notify_env: Env) -> None:
    env = notify_env
    registry = {kind: {"fr": sid["fr"]} for kind, sid in REGISTRY.items()}
    settings = wa_settings(env).with_(whatsapp_templates=json.dumps(registry))
    booked = await book(env, 9, language="ar", email=None)
    wa_id = await first(env, booked.booking.id, "whatsapp")
    assert await send(env, settings, wa_id) == "failed"
    assert (await row(env, wa_id))["error_code"] == "no_template"
    assert env.twilio.requests == []
    [sms] = [r for r in await outbox_rows(env.pool, booked.booking.id) if r["fallback_of"] == wa_id]
    assert await send(env, settings, sms["id"]) == "sent"
    [sent] = env.twilio.sent
    assert (sent.to, sent.content_sid) == (PHONE, None)
    assert "موعد" in sent.body or "المرجع" in sent.body


async def test_whatsapp_rate_refusals_retry_in_the_answer_and_in_a_callback(
    notify_env: Env,
) -> None:
    env = notify_env
    settings = wa_settings(env)
    env.twilio.script(WA_PHONE, WA_RATE, Reply(callbacks=("sent", "failed"), callback_error=63018))
    booked = await book(env, 9, email=None)
    wa_id = await first(env, booked.booking.id, "whatsapp")
    # Refused in the answer: back to pending, a wait rather than a try.
    assert await send(env, settings, wa_id) == "retry"
    waiting = await row(env, wa_id)
    assert (waiting["status"], waiting["error_code"], waiting["status_reason"]) == (
        "pending",
        "63018",
        "rate_limited",
    )
    assert (waiting["attempts"], waiting["rate_limit_waits"]) == (0, 1)
    await env.pool.execute("UPDATE outbox SET send_at = $2 WHERE id = $1", wa_id, env.clock())
    assert await send(env, settings, wa_id) == "sent"

    # Reported after it was sent: the row stays failed, a new row retries.
    async def retried() -> bool:
        rows = await outbox_rows(env.pool, booked.booking.id)
        return any(r["fallback_of"] == wa_id for r in rows)

    await wait_for(retried, what="the retry row")
    [again] = [
        r for r in await outbox_rows(env.pool, booked.booking.id) if r["fallback_of"] == wa_id
    ]
    assert (again["channel"], again["status"], again["status_reason"]) == (
        "whatsapp",
        "pending",
        "rate_limited",
    )
    assert again["send_at"] > env.clock()
    assert (await row(env, wa_id))["status"] == "failed"


async def test_the_per_number_cap_counts_each_channel_apart(notify_env: Env) -> None:
    env = notify_env
    settings = wa_settings(env, whatsapp_per_number_per_day=1, sms_per_number_per_day=1)
    one = await book(env, 9, email=None)
    two = await book(env, 10, email=None)
    by_sms = await book(env, 11, channel="sms", email=None)
    assert await send(env, settings, await first(env, one.booking.id, "whatsapp")) == "sent"
    # The number has had its one WhatsApp message today; its SMS still go.
    assert await send(env, settings, await first(env, two.booking.id, "whatsapp")) == "held_back"
    assert await send(env, settings, await first(env, by_sms.booking.id, "sms")) == "sent"
    assert [s.to for s in env.twilio.sent] == [WA_PHONE, PHONE]


async def test_changing_the_channel_moves_the_pending_messages(notify_env: Env) -> None:
    env = notify_env
    booked = await book(env, 9)
    reference, token = booked.booking.reference, booked.manage_token
    secret = env.settings.secret_key

    async def phone_rows() -> list[tuple[str, str]]:
        rows = await outbox_rows(env.pool, booked.booking.id)
        return sorted((r["channel"], r["status"]) for r in rows if r["channel"] != "email")

    # The confirmation and the two reminders, not sent yet.
    assert await phone_rows() == [("whatsapp", "pending")] * 3
    ctx = await bookings.change_channel(env.pool, reference, token, secret, "sms", env.clock())
    assert ctx.booking.message_channel == "sms"
    assert await phone_rows() == [("sms", "pending")] * 3
    await bookings.change_channel(env.pool, reference, token, secret, "email", env.clock())
    assert await phone_rows() == [("sms", "skipped")] * 3
    actions = await env.pool.fetch(
        "SELECT detail FROM audit_log WHERE booking_id = $1 AND action = 'channel' ORDER BY id",
        booked.booking.id,
    )
    assert [json.loads(a["detail"]) for a in actions] == [
        {"from": "whatsapp", "to": "sms"},
        {"from": "sms", "to": "email"},
    ]


async def test_each_channel_books_its_turns_on_its_own_rate(notify_env: Env) -> None:
    env = notify_env
    # WhatsApp at one message every 1000 s, its next turn taken by another
    # sender: no WhatsApp turn within the sweeper's horizon.
    settings = wa_settings(env, whatsapp_per_second=0.001)
    await jobs.sms_limiter(env.redis, settings, "whatsapp").reserve()  # type: ignore[arg-type]
    by_whatsapp = await book(env, 9, email=None)
    by_sms = await book(env, 10, channel="sms", email=None)
    wa_id = await first(env, by_whatsapp.booking.id, "whatsapp")
    sms_id = await first(env, by_sms.booking.id, "sms")
    await env.start_worker(await env.worker_state_for(settings))

    async def sent() -> bool:
        return (await row(env, sms_id))["status"] == "sent"

    # The SMS has a rate of its own: it goes at once.
    await wait_for(sent, what="the SMS confirmation")
    waiting = await row(env, wa_id)
    assert (waiting["status"], waiting["enqueued_at"]) == ("pending", None)
    assert [s.to for s in env.twilio.sent] == [PHONE]


async def test_the_code_of_a_held_booking_goes_by_whatsapp(notify_env: Env) -> None:
    env = notify_env
    settings = wa_settings(env)
    # A number never proved: the booking waits for the code sent to it.
    booked = await bookings.book(
        env.pool,
        slot_id=await env.add_slot(in_days(9)),
        service_id=env.service_id,
        details=RawDetails(
            name="Amina El Idrissi",
            phone=PHONE,
            phone_country="FR",
            language="ar",
            document_number=any_document(),
            channel="whatsapp",
        ),
        secret_key=env.settings.secret_key,
        now=env.clock(),
    )
    assert booked.booking.status == "held"
    code_id = await first(env, booked.booking.id, "whatsapp", kind="code")
    assert await send(env, settings, code_id) == "sent"
    [sent] = env.twilio.sent
    assert sent.content_sid == REGISTRY["code"]["ar"]
    assert sent.variables is not None
    code = sent.variables["1"]
    assert code.isdigit() and len(code) == 6
    kept = await row(env, code_id)
    assert code not in kept["body"] and "[code]" in kept["body"]
    confirmed = await bookings.verify(
        env.pool, booked.booking.reference, booked.manage_token, code, env.settings.secret_key,
        env.clock(),
    )  # fmt: skip
    assert confirmed.booking.status == "confirmed"
