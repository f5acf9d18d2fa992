"""Twilio status callbacks: POST /webhooks/twilio/status.

Twilio signs each callback with the auth token over the exact public URL and
the form fields; we check it against BASE_URL (not the Host header, which a
proxy may rewrite and an attacker controls).  Answer fast: one small
transaction, no provider calls.  What a receipt does to the row (forward
only, opt-out, e-mail fallback) is `service.notify.delivery.record_receipt`.
"""

from __future__ import annotations

import logging

from aiohttp import web
from twilio.request_validator import RequestValidator

from service.domain.fields import parse_id
from service.notify import delivery
from service.web.keys import CLOCK_KEY, POOL_KEY, SETTINGS_KEY

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


def public_url(base_url: str, request: web.Request) -> str:
    return base_url.rstrip("/") + request.rel_url.path_qs


@routes.post(delivery.STATUS_PATH)
async def twilio_status(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS_KEY]
    form = await request.post()
    params = {k: str(v) for k, v in form.items()}
    signature = request.headers.get("X-Twilio-Signature", "")
    validator = RequestValidator(settings.twilio_auth_token)
    if not settings.twilio_auth_token or not validator.validate(
        public_url(settings.base_url, request), params, signature
    ):
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
        )
    if result is not None:
        log.info("twilio status for outbox %d: %s", result.outbox_id, result.status)
    # Twilio only needs a 2xx; an empty TwiML-free body is fine.
    return web.Response(status=204)
