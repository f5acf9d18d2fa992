"""A fake Twilio REST server for tests and the benchmark.

Speaks enough of the Messages API for the real `twilio` client: form-encoded
POST /2010-04-01/Accounts/{sid}/Messages.json with Basic auth, JSON replies in
Twilio's shapes (message resource on 201, {code, message, more_info, status}
on errors).  WhatsApp goes through the same endpoint: "whatsapp:+E164" in
both From and To, and a content template (ContentSid plus ContentVariables,
a JSON object) instead of a Body; free text to WhatsApp is refused with 63016
as a business-initiated message would be, and a From/To pair on different
channels with 21910.  Replies are scripted per destination number; status callbacks
are posted signed the way Twilio signs them (HMAC-SHA1 of the URL followed by
the sorted form fields, base64), computed here independently of the library,
and so is a message a citizen sends to our WhatsApp number (`post_inbound`,
the fields of Twilio's incoming-message webhook).
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import hashlib
import hmac
import itertools
import json
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import web

from tests.clock import FakeClock


@dataclass(frozen=True)
class Reply:
    """One scripted answer: status 201 sends; anything else is an error."""

    status: int = 201
    code: int | None = None
    delay: float = 0.0
    # Status callbacks to post after a 201, in order (e.g. "sent", "delivered").
    callbacks: tuple[str, ...] = ()
    callback_error: int | None = None


OK = Reply()
RATE_LIMITED = Reply(429, 20429)
SERVER_ERROR = Reply(500, None)
INVALID_NUMBER = Reply(400, 21211)
OPTED_OUT = Reply(400, 21610)
NOT_MOBILE = Reply(400, 21614)
# WhatsApp's refusals (DOMAIN.md): free text outside the 24-hour window, not
# a WhatsApp user (two codes), the sender's rate.
WA_OUTSIDE_WINDOW = Reply(400, 63016)
WA_NOT_A_USER = Reply(400, 63003)
WA_NOT_A_USER_24 = Reply(400, 63024)
WA_RATE = Reply(400, 63018)
# The recipient blocked the sender or opted out of its messages.
WA_BLOCKED = Reply(400, 63014)
WHATSAPP = "whatsapp:"

_MESSAGES = {
    20429: "Too Many Requests",
    21211: "The 'To' number is not a valid phone number.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    21910: "Invalid 'From' and 'To' pair. From and To should be of the same channel",
    63003: "Channel could not find To address",
    63014: "Channel message blocked by user action",
    63016: "Failed to send freeform message because you are outside the allowed window",
    63018: "Rate limit exceeded for Channel",
    63024: "Invalid message recipient",
}


def twilio_signature(token: str, url: str, params: dict[str, str]) -> str:
    payload = url + "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@dataclass
class Sent:
    sid: str
    to: str
    body: str
    sender: str
    status_callback: str | None
    # When its request arrived (the event loop's clock).
    at: float
    # A WhatsApp template message: its template and its variables.
    content_sid: str | None = None
    variables: dict[str, str] | None = None

    @property
    def whatsapp(self) -> bool:
        return self.to.startswith(WHATSAPP)

    @property
    def outbox_id(self) -> int | None:
        if not self.status_callback:
            return None
        values = parse_qs(urlsplit(self.status_callback).query).get("o")
        return int(values[0]) if values else None


@dataclass
class FakeTwilio:
    account_sid: str = "AC" + "0" * 32
    auth_token: str = "fake-auth-token"
    scripts: dict[str, deque[Reply]] = field(default_factory=lambda: defaultdict(deque))
    default: Reply = OK
    sent: list[Sent] = field(default_factory=list)
    # Every request, including refused ones: (to, http status).
    requests: list[tuple[str, int]] = field(default_factory=list)
    callback_results: list[int] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _session: aiohttp.ClientSession | None = None
    url: str = ""
    # The dates in its replies: the tests' clock (the product ignores them).
    clock: Callable[[], datetime] = field(default_factory=FakeClock)

    def script(self, number: str, *replies: Reply) -> None:
        self.scripts[number].extend(replies)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None)
        assert sockets
        self.url = f"http://{host}:{sockets[0].getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # What tests look at ----------------------------------------------------------

    def bodies_to(self, number: str) -> list[str]:
        return [s.body for s in self.sent if s.to == number]

    def per_outbox_id(self) -> Counter[int | None]:
        return Counter(s.outbox_id for s in self.sent)

    def duplicates(self) -> dict[int | None, int]:
        return {k: n for k, n in self.per_outbox_id().items() if n > 1}

    def most_in_one_second(self) -> int:
        """The most SMS received within any one second: a window from each
        arrival, so that no choice of where seconds begin hides a burst."""
        times = sorted(s.at for s in self.sent)
        return max((bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times)), default=0)

    # The API ---------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        # When the request came, before its form is read and any scripted
        # delay: the provider's rate is counted on arrivals.
        arrived = asyncio.get_running_loop().time()
        if request.match_info["sid"] != self.account_sid or not self._authorised(request):
            return self._error(401, 20003, "Authenticate")
        form = await request.post()
        to = str(form.get("To", ""))
        body = str(form.get("Body", ""))
        sender = str(form.get("From", "") or form.get("MessagingServiceSid", ""))
        callback = str(form.get("StatusCallback", "")) or None
        content_sid = str(form.get("ContentSid", "")) or None
        variables = None
        if "ContentVariables" in form:
            try:
                parsed = json.loads(str(form["ContentVariables"]))
            except json.JSONDecodeError:
                parsed = None
            if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
                self.requests.append((to, 400))
                return self._error(400, 21656, "The ContentVariables Parameter is invalid.")
            variables = parsed
        if to.startswith(WHATSAPP) != sender.startswith(WHATSAPP):
            self.requests.append((to, 400))
            return self._error(400, 21910, _MESSAGES[21910])
        if to.startswith(WHATSAPP) and content_sid is None:
            # A message the business starts must be an approved template.
            self.requests.append((to, 400))
            return self._error(400, 63016, _MESSAGES[63016])
        queue = self.scripts.get(to)
        reply = queue.popleft() if queue else self.default
        if reply.delay:
            await asyncio.sleep(reply.delay)
        self.requests.append((to, reply.status))
        if reply.status != 201:
            code = reply.code or reply.status
            return self._error(reply.status, code, _MESSAGES.get(code, "Error"))
        sid = f"SM{next(self._ids):032x}"
        self.sent.append(Sent(sid, to, body, sender, callback, arrived, content_sid, variables))
        if callback and reply.callbacks:
            task = asyncio.create_task(
                self._callbacks(callback, sid, to, reply.callbacks, reply.callback_error)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        now = format_datetime(self.clock(), usegmt=True)
        return web.json_response(
            {
                "account_sid": self.account_sid,
                "api_version": "2010-04-01",
                "body": body,
                "date_created": now,
                "date_sent": None,
                "date_updated": now,
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "content_sid": content_sid,
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "num_media": "0",
                "num_segments": "1",
                "price": None,
                "price_unit": "USD",
                "sid": sid,
                "status": "queued",
                "subresource_uris": {},
                "to": to,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            },
            status=201,
        )

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user == self.account_sid and password == self.auth_token

    def _error(self, status: int, code: int, message: str) -> web.Response:
        return web.json_response(
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            status=status,
        )

    # Status callbacks ------------------------------------------------------------

    async def _callbacks(
        self, url: str, sid: str, to: str, statuses: tuple[str, ...], error: int | None
    ) -> None:
        for status in statuses:
            await asyncio.sleep(0.05)
            code = error if status in ("undelivered", "failed") else None
            await self.post_status(url, sid, to, status, code)

    async def post_status(
        self,
        url: str,
        sid: str,
        to: str,
        status: str,
        error_code: int | None = None,
        *,
        token: str | None = None,
        leave_out: tuple[str, ...] = (),
    ) -> int:
        """Post one signed callback; `leave_out` drops fields (signed without
        them), for a callback Twilio would not send."""
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "From": WHATSAPP + "+15005550006" if to.startswith(WHATSAPP) else "+15005550006",
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": to,
        }
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        for name in leave_out:
            params.pop(name, None)
        answer, _ = await self._post_signed(url, params, token)
        self.callback_results.append(answer)
        return answer

    async def _post_signed(
        self, url: str, params: dict[str, str], token: str | None
    ) -> tuple[int, str]:
        """Post `params` to `url` signed as Twilio signs (with `token`, or
        the account's); the answer's status and body."""
        signature = twilio_signature(token or self.auth_token, url, params)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(
            url, data=params, headers={"X-Twilio-Signature": signature}
        ) as resp:
            return resp.status, await resp.text()

    async def post_inbound(
        self,
        url: str,
        sender: str,
        body: str,
        *,
        to: str = WHATSAPP + "+14155238886",
        opt_out_type: str | None = None,
        token: str | None = None,
    ) -> tuple[int, str]:
        """Post a message `sender` wrote to `to`, signed, as Twilio does to
        the number's incoming-message URL; (status, body) of the answer."""
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "Body": body,
            "From": sender,
            "MessageSid": f"SM{next(self._ids):032x}",
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsMessageSid": "",
            "SmsStatus": "received",
            "To": to,
        }
        params["SmsMessageSid"] = params["MessageSid"]
        if sender.startswith(WHATSAPP):
            params["WaId"] = sender.removeprefix(WHATSAPP + "+")
            params["ProfileName"] = "Amina"
        if opt_out_type is not None:
            params["OptOutType"] = opt_out_type
        return await self._post_signed(url, params, token)
