"""Providers: Twilio for SMS, SMTP for email, and a dev sink that sends nothing.

Every sender raises TemporaryError (try again later) or PermanentError (never
retry) and nothing else that callers need to know about; what each provider
code means is decided in `service.notify.delivery`.  Transport-level
retries are off on purpose: retrying a POST that may have reached Twilio can
send the SMS twice, and the outbox already retries with a deadline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol

import aiohttp
import aiosmtplib
from twilio.base.exceptions import TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from service.config import Settings
from service.notify import whatsapp
from service.notify.delivery import (
    NO_TEMPLATE,
    PermanentError,
    TemporaryError,
    classify_smtp,
    classify_twilio,
)

log = logging.getLogger(__name__)

TWILIO_API = "https://api.twilio.com"
WHATSAPP_PREFIX = "whatsapp:"
HTTP_TIMEOUT = 15.0
SMTP_TIMEOUT = 30.0


class SmsSender(Protocol):
    async def send_sms(self, to: str, body: str, *, status_callback: str | None) -> str:
        """Hand the SMS to the provider; returns the provider's message id."""

    async def close(self) -> None: ...


class WhatsAppSender(Protocol):
    async def send_whatsapp(
        self,
        to: str,
        kind: str,
        language: str,
        variables: dict[str, str],
        *,
        status_callback: str | None,
    ) -> str:
        """Hand the approved template of `kind` in `language`, with its
        variables, to the provider; returns the provider's message id."""

    async def close(self) -> None: ...


class EmailSender(Protocol):
    async def send_email(self, message: EmailMessage) -> str:
        """Hand the email to the relay; returns its Message-ID."""

    async def close(self) -> None: ...


# Twilio ---------------------------------------------------------------------------


class TwilioHttpClient(AsyncHttpClient):  # type: ignore[misc]
    """The twilio library's async transport, on our own aiohttp session: no
    retries, an explicit timeout, and an optional base URL that replaces
    https://api.twilio.com (a regional edge, or the fake server in tests)."""

    def __init__(self, base_url: str = "", timeout: float = HTTP_TIMEOUT) -> None:
        super().__init__(logger=log, is_async=True, timeout=timeout)
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the twilio interface
        allow_redirects: bool = False,
    ) -> Response:
        if self._base_url and url.startswith(TWILIO_API):
            url = self._base_url + url[len(TWILIO_API) :]
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = dict(headers or {})
        if auth:
            headers["Authorization"] = aiohttp.encode_basic_auth(*auth)
        async with self._session.request(
            method.upper(),
            url,
            params=params,  # type: ignore[arg-type]
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout or self._timeout),
            allow_redirects=allow_redirects,
        ) as resp:
            text = await resp.text()
            return Response(resp.status, text, resp.headers)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _Twilio:
    """One Twilio Messages client: SMS and WhatsApp are the same request
    with other parameters, refused with codes read in one place."""

    def __init__(self, settings: Settings) -> None:
        self._http = TwilioHttpClient(settings.twilio_base_url)
        self._client = Client(
            settings.twilio_account_sid, settings.twilio_auth_token, http_client=self._http
        )

    async def _create(self, kwargs: dict[str, str], status_callback: str | None) -> str:
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            message = await self._client.messages.create_async(**kwargs)
        except TwilioRestException as exc:
            raise classify_twilio(exc.status, exc.code) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TemporaryError(type(exc).__name__) from None
        sid: str = message.sid or ""
        return sid

    async def close(self) -> None:
        await self._http.close()


class TwilioSms(_Twilio):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._from = settings.twilio_from
        self._service = settings.twilio_messaging_service_sid

    async def send_sms(self, to: str, body: str, *, status_callback: str | None) -> str:
        kwargs: dict[str, str] = {"to": to, "body": body}
        if self._service:
            kwargs["messaging_service_sid"] = self._service
        else:
            kwargs["from_"] = self._from
        return await self._create(kwargs, status_callback)


class TwilioWhatsApp(_Twilio):
    """WhatsApp through the same Messages API: "whatsapp:+E164" on both
    ends, and an approved content template (ContentSid, ContentVariables)
    in place of a body."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._from = WHATSAPP_PREFIX + settings.twilio_whatsapp_from
        self._templates = settings.whatsapp_template_ids

    async def send_whatsapp(
        self,
        to: str,
        kind: str,
        language: str,
        variables: dict[str, str],
        *,
        status_callback: str | None,
    ) -> str:
        sid = whatsapp.content_sid(self._templates, kind, language)
        if sid is None:
            # No approved template: WhatsApp would refuse free text (63016).
            raise PermanentError(NO_TEMPLATE)
        kwargs = {
            "to": WHATSAPP_PREFIX + to,
            "from_": self._from,
            "content_sid": sid,
            "content_variables": json.dumps(variables, ensure_ascii=False),
        }
        return await self._create(kwargs, status_callback)


# SMTP -----------------------------------------------------------------------------


class SmtpEmail:
    def __init__(self, settings: Settings) -> None:
        self._host = settings.smtp_host or "127.0.0.1"
        self._port = settings.smtp_port
        self._username = settings.smtp_username or None
        self._password = settings.smtp_password or None
        self._starttls = settings.smtp_starttls

    async def send_email(self, message: EmailMessage) -> str:
        try:
            # aiosmtplib's timeout is per command; this bounds the whole
            # exchange, so that a send job always ends within its own timeout.
            async with asyncio.timeout(SMTP_TIMEOUT):
                await aiosmtplib.send(
                    message,
                    hostname=self._host,
                    port=self._port,
                    username=self._username,
                    password=self._password,
                    start_tls=self._starttls,
                    timeout=SMTP_TIMEOUT,
                )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            raise classify_smtp(min(codes) if codes else 550) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise classify_smtp(exc.code) from None
        except (aiosmtplib.SMTPException, TimeoutError, OSError) as exc:
            raise TemporaryError(type(exc).__name__) from None
        return str(message["Message-ID"])

    async def close(self) -> None:
        return None


# Dev ------------------------------------------------------------------------------


class DevSink:
    """Sends nothing: the outbox row itself (body, segments, status) is the
    record, listed at /dev/messages."""

    async def send_sms(self, to: str, body: str, *, status_callback: str | None) -> str:
        await asyncio.sleep(0)
        return f"dev-{uuid.uuid4().hex}"

    async def send_whatsapp(
        self,
        to: str,
        kind: str,
        language: str,
        variables: dict[str, str],
        *,
        status_callback: str | None,
    ) -> str:
        await asyncio.sleep(0)
        return f"dev-{uuid.uuid4().hex}"

    async def send_email(self, message: EmailMessage) -> str:
        await asyncio.sleep(0)
        return f"dev-{uuid.uuid4().hex}"

    async def close(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Senders:
    sms: SmsSender
    email: EmailSender
    whatsapp: WhatsAppSender = field(default_factory=lambda: DevSink())

    async def close(self) -> None:
        await self.sms.close()
        await self.email.close()
        await self.whatsapp.close()


def make_senders(settings: Settings) -> Senders:
    """Real providers when configured; in dev mode, unconfigured channels go
    to the sink so that `make run` works without accounts."""
    sms: SmsSender
    email: EmailSender
    sender_id = settings.twilio_from or settings.twilio_messaging_service_sid
    if settings.twilio_account_sid and sender_id:
        sms = TwilioSms(settings)
    elif settings.is_production:
        raise RuntimeError("TWILIO_ACCOUNT_SID and TWILIO_FROM are required in production")
    else:
        sms = DevSink()
    if settings.smtp_host:
        email = SmtpEmail(settings)
    elif settings.is_production:
        raise RuntimeError("SMTP_HOST is required in production")
    else:
        email = DevSink()
    whatsapp: WhatsAppSender
    if settings.twilio_account_sid and settings.twilio_whatsapp_from:
        whatsapp = TwilioWhatsApp(settings)
    elif settings.twilio_account_sid or settings.is_production:
        # Twilio without a WhatsApp sender: every WhatsApp message falls
        # back to SMS (service.notify.delivery), none is lost.
        whatsapp = Unconfigured()
    else:
        whatsapp = DevSink()
    return Senders(sms, email, whatsapp)


class Unconfigured:
    """WhatsApp with no TWILIO_WHATSAPP_FROM: refused, so each message
    falls back to SMS."""

    async def send_whatsapp(
        self,
        to: str,
        kind: str,
        language: str,
        variables: dict[str, str],
        *,
        status_callback: str | None,
    ) -> str:
        raise PermanentError(NO_TEMPLATE)

    async def close(self) -> None:
        return None
