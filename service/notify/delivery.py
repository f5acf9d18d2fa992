"""Delivery: what a provider's answer or a delivery receipt does to an outbox
row (retry, fail, opt the number out, send the confirmation by e-mail
instead), for the worker's sends and the Twilio status webhook alike.

A Twilio error code means one thing wherever it arrives: in the answer to the
send (`classify_twilio`, then `give_up` for a permanent one) or later in a
status callback (`record_receipt`).  Either way an SMS that will not arrive
opts the number out when the citizen replied STOP (21610), and a confirmation
goes again by e-mail when the booking has an address and still stands: a
landline (30006) fails its SMS at once, never retried, and the confirmation
follows by e-mail.

WhatsApp's codes are read the same way.  A permanent one (63016 no template
for a message outside the 24-hour window, 63003/63024 not a WhatsApp user, or
no approved template in the registry) sends the same message by SMS when the
office may send one to the number, else does what an undelivered SMS does;
the new row points at the WhatsApp one (`fallback_of`) and says why
(`status_reason`).  A temporary one (63018 rate, 63049, 63038) is retried
with the rules of any retry (backoff, deadline, quiet hours): in the answer
to the send, the row itself goes back to pending; in a callback, after the
row was sent, a new row takes its place so that the sent one still only
moves forward.

Two permanent refusals say something about the number rather than the
message.  Not a WhatsApp user (63003, 63024): the booking's (or draw
request's) phone messages go by SMS from then on (`switch_off_whatsapp`,
the reason kept on it and on the rows it moves), until the citizen
chooses WhatsApp again.  Opted out (63014 blocked or opted out, 21610), or
the citizen answering STOP on WhatsApp (`whatsapp_opt_out`): the number
gets no WhatsApp message again, its pending ones are skipped, and only
those that must still reach the citizen (`goes_despite_opt_out`: not a
reminder) go by SMS or e-mail instead.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from service.domain.fields import parse_int
from service.domain.messages import (
    NOT_WHATSAPP_USER,
    SKIP_WHATSAPP_OPTED_OUT,
    channel_without_whatsapp,
    goes_despite_opt_out,
    next_attempt_at,
    quiet_applies,
    wants_email_fallback,
    whatsapp_fallback,
)
from service.domain.phone import served_countries
from service.domain.verification import contact_hash
from service.store import audit, outbox
from service.store import bookings as booking_store
from service.store import draws as draw_store

# Provider answers ------------------------------------------------------------------

# HTTP 429 / Twilio 20429: always safe to retry, and not the message's fault.
TWILIO_RATE_LIMITED = 20429
# The recipient replied STOP: no SMS may go to the number again.
TWILIO_OPTED_OUT = 21610
# Codes no retry can fix (DOMAIN.md): invalid number, STOP, not a mobile,
# landline or unreachable.  Any other 4xx is permanent too; 5xx is temporary.
TWILIO_PERMANENT = frozenset({21211, TWILIO_OPTED_OUT, 21614, 30006})
# WhatsApp: free text outside the 24-hour window (a template is needed), not
# a WhatsApp user (two codes for it).
WHATSAPP_NOT_A_USER = frozenset({63003, 63024})
# The number blocked us or opted out of WhatsApp messages (21610 as for an
# SMS, when Twilio's opt-out handling covers the WhatsApp sender).
WHATSAPP_OPTED_OUT = frozenset({63014, TWILIO_OPTED_OUT})
WHATSAPP_PERMANENT = frozenset({63016, *WHATSAPP_NOT_A_USER, *WHATSAPP_OPTED_OUT})
# WhatsApp's rate for the sender; Meta's per-user limits and the account's
# daily limit: all pass with time.
WHATSAPP_RATE_LIMITED = 63018
WHATSAPP_TEMPORARY = frozenset({WHATSAPP_RATE_LIMITED, 63049, 63038})
# No approved template for a kind and language in WHATSAPP_TEMPLATES (or no
# WhatsApp sender at all): nothing to send by WhatsApp.
NO_TEMPLATE = "no_template"
# The status_reason of a row standing in for a failed WhatsApp message.
WHATSAPP_FALLBACK = "whatsapp_fallback"


class TemporaryError(Exception):
    """Try again later (backoff, never after the appointment)."""

    def __init__(
        self,
        code: str,
        *,
        rate_limited: bool = False,
        retry_after: timedelta | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.rate_limited = rate_limited
        self.retry_after = retry_after


class PermanentError(Exception):
    """Never retry: the row fails with `code` (see `give_up`)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def classify_twilio(status: int, code: int | None) -> TemporaryError | PermanentError:
    """What a refused Twilio request means, from its HTTP status and error code."""
    if status == 429 or code in (TWILIO_RATE_LIMITED, WHATSAPP_RATE_LIMITED):
        return TemporaryError(str(code or status), rate_limited=True)
    if status >= 500 or code in WHATSAPP_TEMPORARY:
        return TemporaryError(str(code or status))
    if code in TWILIO_PERMANENT:
        return PermanentError(str(code))
    return PermanentError(str(code or status))


def classify_smtp(code: int) -> TemporaryError | PermanentError:
    """SMTP replies: 4xx is a temporary refusal, anything else is final."""
    if 400 <= code < 500:
        return TemporaryError(f"smtp{code}")
    return PermanentError(f"smtp{code}")


def opts_out(code: str | None) -> bool:
    """Whether a provider code says the citizen asked for no more SMS."""
    return code == str(TWILIO_OPTED_OUT)


def code_in(code: str | None, codes: frozenset[int]) -> bool:
    # Twilio's codes are five digits; anything else in the field is no code of ours.
    return parse_int(code, 0, 99_999) in codes


# Receipts --------------------------------------------------------------------------

STATUS_PATH = "/webhooks/twilio/status"
# Where Twilio posts the messages citizens send to our WhatsApp number.
INBOUND_PATH = "/webhooks/twilio/inbound"

# Twilio's MessageStatus values, by how far along they are.  Callbacks may
# arrive out of order or twice; a row only ever moves to a higher rank.
CALLBACK_STATUS = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "undelivered",
    "failed": "failed",
}
# `read` (WhatsApp) comes after `delivered`; a message read was delivered.
_RANK = {
    "pending": 0,
    "sending": 0,
    "sent": 1,
    "delivered": 2,
    "undelivered": 2,
    "failed": 2,
    "read": 3,
}
# Statuses that say the SMS will not arrive.
UNDELIVERED = frozenset({"undelivered", "failed"})


def status_callback_url(base_url: str, outbox_id: int) -> str:
    """Where Twilio posts an SMS's receipts.  The row id lets the callback
    find a row whose provider id is not written yet (the worker died right
    after Twilio answered): no resend then."""
    return f"{base_url}{STATUS_PATH}?o={outbox_id}"


def moves_forward(current: str, target: str) -> bool:
    """Whether a receipt saying `target` advances a row now at `current`
    (a skipped, cancelled or unknown status is never moved, nor one that
    said the message will not arrive: its fallback is on its way)."""
    if current in UNDELIVERED:
        return False
    return _RANK.get(current, 4) < _RANK[target]


@dataclass(frozen=True, slots=True)
class Receipt:
    outbox_id: int
    status: str
    changed: bool


async def record_receipt(
    conn: asyncpg.Connection,
    *,
    provider_id: str,
    outbox_id: int | None,
    message_status: str,
    error_code: str | None,
    now: datetime,
    secret_key: str,
) -> Receipt | None:
    """Apply a Twilio status callback; only ever moves a row forward, so a
    repeated or late callback changes nothing.  Run it in a transaction.

    Returns None for unknown messages and for statuses that say nothing new
    (queued, sending, ...).
    """
    target = CALLBACK_STATUS.get(message_status)
    if target is None:
        return None
    row = await outbox.lock_for_receipt(conn, provider_id=provider_id, outbox_id=outbox_id)
    if row is None:
        return None
    row_id, current, channel = row
    if not moves_forward(current, target):
        return Receipt(row_id, current, False)
    await outbox.set_delivery_status(
        conn, row_id, target, provider_id=provider_id, error_code=error_code, now=now
    )
    if channel == "whatsapp":
        if target in UNDELIVERED:
            await _whatsapp_not_arriving(conn, row_id, error_code, now, secret_key)
    else:
        await _sms_not_arriving(conn, row_id, error_code, now, undelivered=target in UNDELIVERED)
    return Receipt(row_id, target, True)


async def give_up(
    conn: asyncpg.Connection,
    outbox_id: int,
    *,
    channel: str,
    code: str | None,
    reason: str,
    now: datetime,
    secret_key: str,
    body: str | None = None,
    segments: int | None = None,
) -> None:
    """A send that will never succeed (a permanent refusal, or retries used
    up): the row fails with the code; an SMS is then handled like an
    undelivered one, a WhatsApp message goes down its fallback chain.
    Run it in a transaction."""
    await outbox.mark_failed(
        conn, outbox_id, code=code, reason=reason, now=now, body=body, segments=segments
    )
    if channel == "sms":
        await _sms_not_arriving(conn, outbox_id, code, now, undelivered=True)
    elif channel == "whatsapp":
        await _whatsapp_refused(conn, outbox_id, code, now, secret_key)


async def _whatsapp_not_arriving(
    conn: asyncpg.Connection, row_id: int, code: str | None, now: datetime, secret_key: str
) -> None:
    """A WhatsApp message sent but reported failed: a temporary code is
    retried by a new row (the sent one only moves forward), unless no retry
    time is left; anything else goes down the fallback chain."""
    if code is not None and code_in(code, WHATSAPP_TEMPORARY):
        rate_limited = code == str(WHATSAPP_RATE_LIMITED)
        row = await outbox.retry_facts(conn, row_id)
        quiet = quiet_applies(row.kind)
        at = next_attempt_at(
            now,
            attempts=row.attempts,
            rate_limited=rate_limited,
            rate_limit_waits=row.rate_limit_waits,
            retry_after=None,
            deadline=row.appointment_at,
            jitter=random.random(),
            quiet=row.quiet if quiet else None,
            zone=ZoneInfo(row.timezone) if quiet else None,
        )
        if at is not None:
            reason = "rate_limited" if rate_limited else "temporary_error"
            await outbox.add_retry(
                conn, row_id, send_at=at, code=code, reason=reason,
                rate_limited=rate_limited, now=now,
            )  # fmt: skip
            return
    await _whatsapp_refused(conn, row_id, code, now, secret_key)


async def _whatsapp_refused(
    conn: asyncpg.Connection, row_id: int, code: str | None, now: datetime, secret_key: str
) -> None:
    """A WhatsApp message that will never arrive, for good: what the code
    says of the number first (no WhatsApp: the booking's messages move to
    SMS; opted out: no WhatsApp message goes to it again), then the
    message's own stand-in."""
    if code_in(code, WHATSAPP_NOT_A_USER):
        await switch_off_whatsapp(conn, row_id, now)
    elif code_in(code, WHATSAPP_OPTED_OUT):
        recipient = await outbox.recipient_of(conn, row_id)
        if recipient is not None:
            await whatsapp_opt_out(conn, recipient, str(code), now, secret_key)
        m = await outbox.message_booking(conn, row_id)
        if m is None or not goes_despite_opt_out(m.kind):
            return
    await whatsapp_instead(conn, row_id, now)


async def switch_off_whatsapp(conn: asyncpg.Connection, row_id: int, now: datetime) -> str | None:
    """The number of WhatsApp message `row_id` has no WhatsApp: its
    booking's (or draw request's, and for an offer the request's too) phone
    messages go by SMS from now on, or by e-mail only when no SMS may go to
    it (`channel_without_whatsapp`), the reason kept; its messages still
    pending follow.  Nothing changes when its channel is no longer
    WhatsApp.  Returns the new channel."""
    m = await outbox.message_booking(conn, row_id, lock="UPDATE")
    if m is None or m.message_channel != "whatsapp":
        return None
    served = served_countries(m.office_country, m.sms_countries)
    to = channel_without_whatsapp(m.phone, m.email, served)
    if to is None:
        return None
    entry_id = m.draw_entry_id
    if m.booking_id is not None:
        await booking_store.set_message_channel(
            conn, m.booking_id, to, now, reason=NOT_WHATSAPP_USER
        )
        await outbox.follow_channel(conn, m.booking_id, to, now, reason=NOT_WHATSAPP_USER)
        await audit.record(
            conn, m.booking_id, audit.SYSTEM, "channel", m.booking_status, m.booking_status,
            {"from": "whatsapp", "to": to, "reason": NOT_WHATSAPP_USER},
        )  # fmt: skip
        # A draw's offer: the request it answers makes its next offers alike.
        entry_id = await draw_store.entry_of_booking(conn, m.booking_id)
    if entry_id is not None:
        await draw_store.set_message_channel(conn, entry_id, to, NOT_WHATSAPP_USER)
        await outbox.follow_channel(conn, entry_id, to, now, reason=NOT_WHATSAPP_USER)
    return to


async def whatsapp_opt_out(
    conn: asyncpg.Connection, phone: str, source: str, now: datetime, secret_key: str
) -> int:
    """`phone` asked for no more WhatsApp messages (`source`: "stop", or
    the provider's code): recorded as a keyed hash, and its WhatsApp
    messages still pending are skipped, those that must still reach the
    citizen standing in by SMS or e-mail.  Run it in a transaction.
    Returns how many pending messages were skipped."""
    key = contact_hash("whatsapp", phone, secret_key)
    await outbox.add_whatsapp_opt_out(conn, key, source, now)
    skipped = 0
    for row_id, kind in await outbox.pending_whatsapp(conn, phone):
        # Its booking first, then the row: the order a cancellation or a
        # change of channel takes them in, so that neither waits on the other.
        if await outbox.message_booking(conn, row_id) is None:
            continue
        if await outbox.skip_pending(conn, row_id, SKIP_WHATSAPP_OPTED_OUT, now):
            skipped += 1
            if goes_despite_opt_out(kind):
                await whatsapp_instead(conn, row_id, now)
    return skipped


async def skip_opted_out(conn: asyncpg.Connection, row_id: int, kind: str, now: datetime) -> None:
    """A WhatsApp message claimed for sending whose number opted out: not
    sent, and, when it must still reach the citizen, sent by SMS or e-mail
    instead.  Run it in a transaction."""
    await outbox.mark_skipped(conn, row_id, SKIP_WHATSAPP_OPTED_OUT, now)
    if goes_despite_opt_out(kind):
        await whatsapp_instead(conn, row_id, now)


async def whatsapp_opted_in(conn: asyncpg.Connection, phone: str, secret_key: str) -> bool:
    """`phone` asked for WhatsApp messages again (START)."""
    return await outbox.remove_whatsapp_opt_out(conn, contact_hash("whatsapp", phone, secret_key))


async def whatsapp_instead(conn: asyncpg.Connection, whatsapp_id: int, now: datetime) -> int | None:
    """What stands in for a WhatsApp message that will never arrive
    (`whatsapp_fallback`): the same message by SMS, or, when no SMS may go to
    the number, what an undelivered SMS gets (the confirmation by e-mail).
    At most once per message.  Returns the new row's id."""
    m = await outbox.message_booking(conn, whatsapp_id)
    if m is None:
        # A subscriber's announcement: the same by SMS, or nothing.
        m = await outbox.message_subscription(conn, whatsapp_id, now)
    if m is None:
        return None
    step = whatsapp_fallback(
        m.kind,
        phone=m.recipient,
        served=served_countries(m.office_country, m.sms_countries),
        message_channel=m.message_channel,
        booking_status=m.booking_status,
        booking_starts_at=m.booking_starts_at,
        appointment_at=m.appointment_at,
        now=now,
    )
    if step == "sms":
        return await outbox.add_sms_fallback(conn, whatsapp_id, now, WHATSAPP_FALLBACK)
    if step == "email":
        return await email_instead(conn, whatsapp_id, now)
    return None


async def _sms_not_arriving(
    conn: asyncpg.Connection, sms_id: int, code: str | None, now: datetime, *, undelivered: bool
) -> None:
    if opts_out(code):
        await outbox.add_opt_out_for(conn, sms_id, str(TWILIO_OPTED_OUT))
    if undelivered:
        await email_instead(conn, sms_id, now)


async def email_instead(conn: asyncpg.Connection, sms_id: int, now: datetime) -> int | None:
    """Queue the e-mail that stands in for an undeliverable SMS: only for a
    confirmation whose booking has an address and still stands at the time
    it confirmed (`wants_email_fallback`, on the booking as it is now, locked
    against a cancellation until the caller commits); at most once per SMS.
    Returns the new row's id."""
    m = await outbox.message_booking(conn, sms_id)
    if m is None or m.email is None:
        return None
    if not wants_email_fallback(
        m.kind,
        m.channel,
        booking_status=m.booking_status,
        booking_starts_at=m.booking_starts_at,
        appointment_at=m.appointment_at,
        now=now,
    ):
        return None
    return await outbox.add_email_fallback(conn, sms_id, now)
