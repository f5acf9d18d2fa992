"""A real SMTP server (aiosmtpd) that keeps what it receives, for tests.

Replies can be scripted per recipient (e.g. a 451 then acceptance).
"""

from __future__ import annotations

import email
import email.policy
from collections import defaultdict, deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class CaptureHandler:
    received: list[Received] = field(default_factory=list)
    # recipient -> queue of SMTP replies to RCPT TO, e.g. "451 4.3.0 try later".
    scripts: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        queue = self.scripts.get(address)
        if queue:
            return queue.popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 Message accepted"


class SmtpCapture:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = CaptureHandler()
        from service.devstack import free_port

        self.host = host
        self.port = port or free_port()
        self._controller = Controller(self.handler, hostname=host, port=self.port)

    def start(self) -> SmtpCapture:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def to(self, address: str) -> list[EmailMessage]:
        return [r.message for r in self.received if address in r.recipients]

    def script(self, address: str, *replies: str) -> None:
        self.handler.scripts[address].extend(replies)
