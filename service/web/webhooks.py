"""Twilio's webhooks: status callbacks (POST /webhooks/twilio/status) and
the messages citizens send to our WhatsApp number (POST
/webhooks/twilio/inbound, the sender's "a message comes in" URL).

Twilio signs each request with the auth token over the exact public URL and
the form fields; we check it against BASE_URL (not the Host header, which a
proxy may rewrite and an attacker controls).  Answer fast: one small
transaction, no provider calls.  What a receipt does to the row (forward
only, opt-out, e-mail fallback) is `service.notify.delivery.record_receipt`;
an incoming STOP (or START) on WhatsApp is `delivery.whatsapp_opt_out`
(`whatsapp_opted_in`).  Nothing else a citizen writes is read or kept.
"""

from __future__ import annotations

import logging

from aiohttp import web
from twilio.request_validator import RequestValidator

from service.domain import opt_out
from service.domain.fields import parse_id
from service.domain.phone import HOME_COUNTRY, parse_phone
from service.notify import delivery
from service.web.keys import CLOCK_KEY, POOL_KEY, SETTINGS_KEY

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


def public_url(base_url: str, request: web.Request) -> str:
    return base_url.rstrip("/") + request.rel_url.path_qs


async def signed_form(request: web.Request) -> dict[str, str] | None:
    """The request's form fields, or None when Twilio did not sign it."""
    settings = request.app[SETTINGS_KEY]
    form = await request.post()
    params = {k: str(v) for k, v in form.items()}
    signature = request.headers.get("X-Twilio-Signature", "")
    validator = RequestValidator(settings.twilio_auth_token)
    if not settings.twilio_auth_token or not validator.validate(
        public_url(settings.base_url, request), params, signature
    ):
        return None
    return params


@routes.post(delivery.STATUS_PATH)
async def twilio_status(request: web.Request) -> web.Response:
    params = await signed_form(request)
    if params is None:
        return web.Response(status=403, text="bad signature")
    sid = params.get("MessageSid") or params.get("SmsSid") or ""
    status = params.get("MessageStatus") or params.get("SmsStatus") or ""
    code = params.get("ErrorCode") or None
    raw_id = request.query.get("o")
    outbox_id = parse_id(raw_id)
    if not sid or not status:
        return web.Response(status=400, text="missing MessageSid or MessageStatus")
    now = request.app[CLOCK_KEY]()
    async with request.app[POOL_KEY].acquire() as conn, conn.transaction():
        result = await delivery.record_receipt(
            conn,
            provider_id=sid,
            outbox_id=outbox_id,
            message_status=status,
            error_code=code,
            now=now,
            secret_key=request.app[SETTINGS_KEY].secret_key,
        )
    if result is not None:
        log.info("twilio status for outbox %d: %s", result.outbox_id, result.status)
    # Twilio only needs a 2xx; an empty TwiML-free body is fine.
    return web.Response(status=204)


# TwiML that answers nothing.
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
WHATSAPP_PREFIX = "whatsapp:"
# Twilio's own reading of an answer, when its opt-out handling is on.
_OPT_OUT_TYPES: dict[str, opt_out.Answer] = {"STOP": "stop", "START": "start"}


@routes.post(delivery.INBOUND_PATH)
async def twilio_inbound(request: web.Request) -> web.Response:
    """A message a citizen sent to our WhatsApp number. STOP (or its word
    in their language) turns WhatsApp messages to the number off, START
    on again; any other message is left unread (we reply to nothing)."""
    params = await signed_form(request)
    if params is None:
        return web.Response(status=403, text="bad signature")
    sender = params.get("From", "")
    # "whatsapp:+E164"; an SMS to our number (no prefix) is Twilio's to
    # handle: its STOP reaches us as 21610.
    number = sender.removeprefix(WHATSAPP_PREFIX)
    phone = (
        parse_phone(number, HOME_COUNTRY)
        if sender.startswith(WHATSAPP_PREFIX) and number.startswith("+")
        else None
    )
    said = _OPT_OUT_TYPES.get(params.get("OptOutType", "").upper()) or opt_out.answer(
        params.get("Body", "")
    )
    if phone is not None and said is not None:
        secret_key = request.app[SETTINGS_KEY].secret_key
        async with request.app[POOL_KEY].acquire() as conn, conn.transaction():
            if said == "stop":
                skipped = await delivery.whatsapp_opt_out(
                    conn, phone, "stop", request.app[CLOCK_KEY](), secret_key
                )
                log.info("whatsapp opt-out: %d pending messages skipped", skipped)
            else:
                await delivery.whatsapp_opted_in(conn, phone, secret_key)
                log.info("whatsapp opt-in again")
    return web.Response(text=EMPTY_TWIML, content_type="text/xml")
