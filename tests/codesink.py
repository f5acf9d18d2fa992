"""The code step for tests that run no worker: the worker's own send_message
sends every due code message to a provider that keeps what it is given.

A code exists in clear only in the message that carries it (the worker draws
it just before sending and stores its hash), so a test reads it where the
citizen would: in the SMS or the e-mail. The pipeline itself, through the
real twilio client and SMTP, has tests of its own (test_abuse_verification).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage

import asyncpg

from service.config import Settings
from service.worker import jobs
from service.worker.senders import Senders
from tests.clock import FakeClock

# Six digits standing alone: the code (dates and times in the message are
# written with separators).
CODE_RE = re.compile(r"(?<!\d)\d{6}(?!\d)")


@dataclass
class Kept:
    """A provider for SMS and e-mail that keeps everything."""

    sms: list[tuple[str, str]] = field(default_factory=list)
    emails: list[EmailMessage] = field(default_factory=list)

    async def send_sms(self, to: str, body: str, *, status_callback: str | None) -> str:
        self.sms.append((to, body))
        return f"kept-{uuid.uuid4().hex}"

    async def send_email(self, message: EmailMessage) -> str:
        self.emails.append(message)
        return str(message["Message-ID"])

    async def close(self) -> None:
        return None

    def codes(self) -> dict[str, str]:
        """The last code each recipient got."""
        found: dict[str, str] = {}
        for to, body in self.sms:
            match = CODE_RE.search(body)
            if match:
                found[to] = match[0]
        for message in self.emails:
            match = CODE_RE.search(str(message["Subject"]))
            if match:
                found[str(message["To"])] = match[0]
        return found


async def send_codes(
    pool: asyncpg.Pool, settings: Settings, clock: FakeClock, kind: str = "code"
) -> Kept:
    """Send every due code message (or message of `kind`) now, as the worker would."""
    kept = Kept()
    state = await jobs.build_state(settings, pool=pool, senders=Senders(kept, kept), clock=clock)
    try:
        rows = await pool.fetch(
            """SELECT id FROM outbox WHERE kind = $2 AND status = 'pending'
                 AND send_at <= $1 ORDER BY id""",
            clock(),
            kind,
        )
        for row in rows:
            await jobs.send_message({jobs.STATE: state}, row["id"])
    finally:
        await jobs.close_state(state)
    return kept


async def code_for(pool: asyncpg.Pool, settings: Settings, clock: FakeClock, to: str) -> str:
    """Send the due codes and return the one `to` got."""
    return (await send_codes(pool, settings, clock)).codes()[to]
