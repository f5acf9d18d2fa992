"""Telling staff members by e-mail that someone failed to sign in to their
account (service.office.accounts.login decides when: ALERT_AFTER failures,
once per throttling window).

Sent by the web process itself, in the background, through the same SMTP
sender the worker uses (in dev without SMTP_HOST, the sink, which sends
nothing). Not through the outbox: its rows are a booking's messages (a
booking id, one of the booking kinds, and the worker re-checks the booking
before each send), which a notice about an account is not. In the
background, because the answer to a failed login must neither wait for the
relay nor take longer for a real account than for an unknown one. A notice
the relay refuses is logged and not retried: it is a courtesy, and the
throttling does not depend on it.

The account records no language, so the message is in Arabic, French and
English, one after the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import urlsplit

from aiohttp import web

from service.config import Settings
from service.domain.errors import N_
from service.domain.models import LANGUAGES
from service.notify.delivery import PermanentError, TemporaryError
from service.office.accounts import LoginAlert
from service.web.i18n import gettext
from service.web.keys import SETTINGS_KEY
from service.worker.senders import DevSink, EmailSender, SmtpEmail

log = logging.getLogger(__name__)

SUBJECT = N_("Failed sign-ins to your Mawid account")
BODY = (
    N_(
        "There were %(count)s failed attempts to sign in to the Mawid office account "
        "%(email)s in the last 24 hours."
    ),
    N_(
        "Your account is not locked: where you have signed in before, your password "
        "still works. Attempts from elsewhere are slowed down."
    ),
    N_("If these attempts were yours, there is nothing to do. If not, tell your administrator."),
)


def compose(alert: LoginAlert, settings: Settings) -> EmailMessage:
    params = {"count": str(alert.failures), "email": alert.email}
    message = EmailMessage()
    message["Subject"] = " / ".join(gettext(language, SUBJECT) for language in LANGUAGES)
    message["From"] = settings.email_from
    message["To"] = alert.email
    message["Date"] = format_datetime(alert.at)
    message["Message-ID"] = make_msgid(domain=urlsplit(settings.base_url).hostname or None)
    message["Content-Language"] = ", ".join(LANGUAGES)
    message.set_content(
        "\n\n-----\n\n".join(
            "\n\n".join(gettext(language, text) % params for text in BODY)
            for language in LANGUAGES
        )
        + "\n"
    )
    return message


class LoginAlerts:
    """Sends each alert in a task of its own; waits for them on shutdown."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._sender: EmailSender = SmtpEmail(settings) if settings.smtp_host else DevSink()
        self._sending: set[asyncio.Task[None]] = set()

    def __call__(self, alert: LoginAlert) -> None:
        task = asyncio.create_task(self._send(alert))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, alert: LoginAlert) -> None:
        try:
            await self._sender.send_email(compose(alert, self._settings))
        except (TemporaryError, PermanentError) as exc:
            # No address in the log: the code says what the relay answered.
            log.warning("login alert not sent: %s", exc.code)
        else:
            log.info("login alert sent after %d failures", alert.failures)

    async def close(self) -> None:
        # The SMTP sender bounds each send, so this ends.
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._sending)
        await self._sender.close()


LOGIN_ALERTS_KEY = web.AppKey("login_alerts", LoginAlerts)


async def _login_alerts(app: web.Application) -> AsyncIterator[None]:
    app[LOGIN_ALERTS_KEY] = alerts = LoginAlerts(app[SETTINGS_KEY])
    yield
    await alerts.close()


def install(app: web.Application) -> None:
    app.cleanup_ctx.append(_login_alerts)
