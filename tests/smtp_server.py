"""A real SMTP server on loopback (aiosmtpd) for the notification tests: it records every message
it accepts, can be stopped and started again on the same port (SMTP down, then back), and can
refuse a recipient for good."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from email.message import Message

from aiosmtpd.controller import Controller


def body(msg: Message) -> str:
    """The text of a message, transfer-decoded (quoted-printable for the non-ASCII '•')."""
    return msg.get_payload(decode=True).decode(msg.get_content_charset() or "utf-8")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Handler:
    def __init__(self, box: SmtpServer):
        self.box = box

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.box.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)  # headers unfolded
        with self.box.lock:
            self.box.messages.append(msg)
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[Message] = []
        self.refuse: set[str] = set()
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    def start(self) -> SmtpServer:
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def env(self, sender: str = "billing@penguinmails.example") -> dict[str, str]:
        return {"PMFIN_SMTP_HOST": "127.0.0.1", "PMFIN_SMTP_PORT": str(self.port), "PMFIN_SMTP_FROM": sender,
                "PMFIN_SMTP_TIMEOUT": "5"}

    def subjects(self, to: str | None = None) -> list[str]:
        with self.lock:
            return [m["Subject"] for m in self.messages if to is None or m["To"] == to]

    def by_key(self) -> dict[str, list[Message]]:
        out: dict[str, list[Message]] = {}
        with self.lock:
            for m in self.messages:
                out.setdefault(m["X-PMFIN-Notification"], []).append(m)
        return out
