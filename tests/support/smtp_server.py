"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, and can refuse. Over
TLS it also takes AUTH XOAUTH2 (an OAuth access token), answering a token it does not know as
Gmail and Exchange Online do: a 334 challenge carrying a JSON error, then 535."""

from __future__ import annotations

import asyncio
import base64
import email
import json
import socket
import ssl
import threading
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from tests.support import TLS


class Mailbox:
    """Receives every message; an address listed in `refuse` gets that SMTP reply instead."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.refuse: dict[str, str] = {}  # address -> "550 5.1.1 No such user" / "451 ..."
        self.refuse_sender: str | None = None  # e.g. "553 5.7.1 Sender not allowed"
        self.slow_data_seconds: float = 0  # answer DATA late (the message is still kept)
        self.refuse_data: list[str] = []  # replies to the next DATA commands, instead of 354
        # replies to the next messages once read (a content or domain policy), instead of 250
        self.refuse_message: list[str] = []
        self.hang_up_at_rset = False  # close the connection when RSET comes
        self.connections = 0  # connections clients opened
        self.envelopes: list[str] = []
        self.lock = threading.Lock()
        self.bearer_tokens: dict[str, str] = {}  # access token -> the mailbox it signs in as
        self.xoauth2_logins: list[str] = []  # each access token offered, accepted or not

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:
        """SASL XOAUTH2: base64("user=" user ^A "auth=Bearer " token ^A ^A)."""
        if len(args) < 2:
            return AuthResult(success=False, handled=False, message="501 5.5.2 initial response")
        fields = dict(
            f.split("=", 1) for f in base64.b64decode(args[1]).decode().split("\x01") if "=" in f
        )
        token = fields.get("auth", "").removeprefix("Bearer ")
        with self.lock:
            self.xoauth2_logins.append(token)
            user = self.bearer_tokens.get(token)
        if user is not None and user == fields.get("user"):
            return AuthResult(success=True, auth_data=user)
        error = {"status": "401", "schemes": "Bearer", "scope": "https://mail.google.com/"}
        await server.challenge_auth(json.dumps(error))  # the client answers with an empty line
        return AuthResult(success=False, handled=False)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: Any
    ) -> str:
        if self.refuse_sender:
            return self.refuse_sender
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            refusal = self.refuse_message.pop(0) if self.refuse_message else None
        if refusal is not None:
            return refusal  # read, and not kept
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content))
            self.envelopes.append(envelope.mail_from)
        if self.slow_data_seconds:
            await asyncio.sleep(self.slow_data_seconds)
        return "250 Message accepted for delivery"

    def message_ids(self) -> list[str]:
        with self.lock:
            return [str(m["Message-ID"]) for m in self.messages]


class _Smtp(SMTP):
    """aiosmtpd's server, with the refusals a Mailbox asks for before the message is read."""

    def connection_made(self, transport: Any) -> None:
        mailbox: Mailbox = self.event_handler
        with mailbox.lock:
            mailbox.connections += 1
        super().connection_made(transport)

    async def smtp_DATA(self, arg: str) -> None:
        mailbox: Mailbox = self.event_handler
        with mailbox.lock:
            refusal = mailbox.refuse_data.pop(0) if mailbox.refuse_data else None
        if refusal is not None:
            await self.push(refusal)
            return
        await super().smtp_DATA(arg)

    async def smtp_RSET(self, arg: str) -> None:
        mailbox: Mailbox = self.event_handler
        if mailbox.hang_up_at_rset and self.transport is not None:
            self.transport.close()
            return
        await super().smtp_RSET(arg)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _Smtp(self.handler, **self.SMTP_kwargs)


USER, PASSWORD = "arbot", "relay-password"


def _check_login(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


class SmtpServer:
    """`SmtpServer()` is plain SMTP; `SmtpServer(tls=True)` requires STARTTLS and a login."""

    def __init__(self, tls: bool = False) -> None:
        self.mailbox = Mailbox()
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self._port = int(probe.getsockname()[1])
        probe.close()
        options: dict[str, Any] = {}
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(TLS / "cert.pem", TLS / "key.pem")
            options = {
                "tls_context": context,
                "require_starttls": True,
                "auth_required": True,
                "authenticator": _check_login,
            }
        self.controller = _Controller(
            self.mailbox, hostname="127.0.0.1", port=self._port, **options
        )

    def start(self) -> SmtpServer:
        self.controller.start()
        self.mailbox.connections = 0  # not the controller's own, that saw the server answer
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return self._port
