"""A small IMAP4rev1 server over TLS on 127.0.0.1, enough for what `integrations.imap_in` asks.

CAPABILITY, LOGIN, AUTHENTICATE XOAUTH2 (an OAuth access token, refused as Gmail does: a
continuation carrying a JSON error, then NO), SELECT, UID SEARCH UNSEEN, UID FETCH BODY.PEEK[] / BODY[] (a literal),
UID STORE +FLAGS, NOOP and LOGOUT, over one shared mailbox whose messages keep their flags. Like a
real server, fetching BODY[] without PEEK marks a message \\Seen. Every command is recorded (the
password replaced by ***), so tests can say what the client did.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import socketserver
import ssl
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support import TLS

USER, PASSWORD = "ar@example.com", "imap-password"
_ARGUMENT = re.compile(rb'"(?:[^"\\]|\\.)*"|\([^)]*\)|[^\s()]+(?:\[[^\]]*\])?')


@dataclass
class StoredMessage:
    uid: int
    raw: bytes
    flags: set[str] = field(default_factory=set)


class Mailbox:
    """The messages of one folder, and what the clients asked."""

    def __init__(self, folder: str = "INBOX") -> None:
        self.folder = folder
        self.messages: list[StoredMessage] = []
        self.commands: list[str] = []
        self.lock = threading.Lock()
        # Told "IMAP <command>" as each command arrives, before it is answered (a test's guard).
        self.on_call: Callable[[str], None] | None = None
        self.bearer_tokens: dict[str, str] = {}  # access token -> the mailbox it signs in as

    def add(self, raw: bytes, seen: bool = False) -> int:
        with self.lock:
            uid = (self.messages[-1].uid if self.messages else 100) + 1
            self.messages.append(StoredMessage(uid, raw, {"\\Seen"} if seen else set()))
            return uid

    def seen(self, uid: int) -> bool:
        with self.lock:
            return any(m.uid == uid and "\\Seen" in m.flags for m in self.messages)

    def unseen_uids(self) -> list[int]:
        with self.lock:
            return [m.uid for m in self.messages if "\\Seen" not in m.flags]

    def count(self, verb: str) -> int:
        """How many recorded commands start with `verb`, e.g. "UID FETCH"."""
        with self.lock:
            return sum(c.upper().startswith(verb.upper()) for c in self.commands)


def _unquote(value: bytes) -> str:
    text = value.decode("utf-8", "replace")
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


class _Session(socketserver.StreamRequestHandler):
    server: _TlsServer
    timeout = 10

    def setup(self) -> None:
        self.request.settimeout(self.timeout)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # answers are many lines
        self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        super().setup()
        self.authenticated = False
        self.selected = False

    def handle(self) -> None:
        self._send(b"* OK [CAPABILITY IMAP4rev1] fake IMAP ready")
        while line := self.rfile.readline(65536):
            tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
            arguments = _ARGUMENT.findall(rest)
            if not arguments:
                self._send(tag + b" BAD no command")
                continue
            command = arguments[0].decode().upper()
            self._record(command, arguments)
            if not self._answer(tag, command, arguments[1:]):
                break

    def _record(self, command: str, arguments: list[bytes]) -> None:
        if self.server.mailbox.on_call is not None:
            self.server.mailbox.on_call(f"IMAP {command}")
        shown = [a.decode("utf-8", "replace") for a in arguments]
        if command == "LOGIN" and len(shown) > 2:
            shown[2] = "***"
        with self.server.mailbox.lock:
            self.server.mailbox.commands.append(" ".join(shown))

    def _answer(self, tag: bytes, command: str, arguments: list[bytes]) -> bool:
        """Answer one command; False when the session ends."""
        if command == "LOGOUT":
            self._send(b"* BYE logging out")
            self._send(tag + b" OK LOGOUT completed")
            return False
        if command == "CAPABILITY":
            self._send(b"* CAPABILITY IMAP4rev1")
        elif command == "NOOP":
            pass
        elif command == "LOGIN":
            return self._login(tag, arguments)
        elif command == "AUTHENTICATE" and [a.upper() for a in arguments] == [b"XOAUTH2"]:
            return self._xoauth2(tag)
        elif not self.authenticated:
            self._send(tag + b" NO log in first")
            return True
        elif command == "SELECT":
            return self._select(tag, arguments)
        elif command == "UID" and self.selected and arguments:
            return self._uid(tag, arguments[0].decode().upper(), arguments[1:])
        else:
            self._send(tag + b" BAD command unknown or not allowed here")
            return True
        self._send(tag + b" OK " + command.encode() + b" completed")
        return True

    def _login(self, tag: bytes, arguments: list[bytes]) -> bool:
        given = [_unquote(a) for a in arguments[:2]]
        if given == [self.server.user, self.server.password]:
            self.authenticated = True
            self._send(tag + b" OK LOGIN completed")
        else:
            self._send(tag + b" NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)")
        return True

    def _xoauth2(self, tag: bytes) -> bool:
        self._send(b"+ ")
        answer = self.rfile.readline(65536).strip()
        fields = dict(
            f.split("=", 1) for f in base64.b64decode(answer).decode().split("\x01") if "=" in f
        )
        token = fields.get("auth", "").removeprefix("Bearer ")
        with self.server.mailbox.lock:
            user = self.server.mailbox.bearer_tokens.get(token)
        if user is not None and user == fields.get("user"):
            self.authenticated = True
            self._send(tag + b" OK AUTHENTICATE completed")
            return True
        error = {"status": "401", "schemes": "Bearer", "scope": "https://mail.google.com/"}
        self._send(b"+ " + base64.b64encode(json.dumps(error).encode()))
        self.rfile.readline(65536)  # the client's empty line
        self._send(tag + b" NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)")
        return True

    def _select(self, tag: bytes, arguments: list[bytes]) -> bool:
        mailbox = self.server.mailbox
        if not arguments or _unquote(arguments[0]) != mailbox.folder:
            self.selected = False
            self._send(tag + b" NO [NONEXISTENT] Unknown Mailbox: Folder doesn't exist")
            return True
        self.selected = True
        with mailbox.lock:
            exists = len(mailbox.messages)
            next_uid = (mailbox.messages[-1].uid if mailbox.messages else 100) + 1
        self._send(b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)")
        self._send(b"* %d EXISTS" % exists)
        self._send(b"* 0 RECENT")
        self._send(b"* OK [UIDVALIDITY 1773600000] UIDs valid")
        self._send(b"* OK [UIDNEXT %d] Predicted next UID" % next_uid)
        self._send(tag + b" OK [READ-WRITE] SELECT completed")
        return True

    def _uid(self, tag: bytes, verb: str, arguments: list[bytes]) -> bool:
        mailbox = self.server.mailbox
        if verb == "SEARCH" and [a.upper() for a in arguments] == [b"UNSEEN"]:
            uids = " ".join(str(uid) for uid in mailbox.unseen_uids())
            self._send(f"* SEARCH {uids}".rstrip().encode())
        elif verb == "FETCH" and len(arguments) == 2:
            self._fetch(arguments[0], arguments[1].upper())
        elif verb == "STORE" and len(arguments) == 3 and arguments[1].upper() == b"+FLAGS":
            if self.server.refuse_store:
                self._send(tag + b" NO [CANNOT] flags cannot be changed in this folder")
                return True
            self._store(arguments[0], arguments[2])
        else:
            self._send(tag + b" BAD UID " + verb.encode() + b" not supported here")
            return True
        self._send(tag + b" OK UID " + verb.encode() + b" completed")
        return True

    def _fetch(self, uid: bytes, what: bytes) -> None:
        if what not in (b"(BODY.PEEK[])", b"(BODY[])", b"BODY.PEEK[]", b"BODY[]"):
            return
        mailbox = self.server.mailbox
        with mailbox.lock:
            for number, message in enumerate(mailbox.messages, start=1):
                if str(message.uid).encode() == uid:
                    if b"PEEK" not in what:
                        message.flags.add("\\Seen")
                    head = b"* %d FETCH (UID %d BODY[] {%d}" % (
                        number,
                        message.uid,
                        len(message.raw),
                    )
                    self.wfile.write(head + b"\r\n" + message.raw + b")\r\n")

    def _store(self, uid: bytes, flags: bytes) -> None:
        mailbox = self.server.mailbox
        added = set(flags.decode().strip("()").split())
        with mailbox.lock:
            for number, message in enumerate(mailbox.messages, start=1):
                if str(message.uid).encode() == uid:
                    message.flags |= added
                    listed = " ".join(sorted(message.flags)).encode()
                    self._send(b"* %d FETCH (UID %d FLAGS (%s))" % (number, message.uid, listed))

    def _send(self, line: bytes) -> None:
        self.wfile.write(line + b"\r\n")


class _TlsServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, mailbox: Mailbox) -> None:
        super().__init__(("127.0.0.1", 0), _Session)
        self.mailbox = mailbox
        self.user, self.password = USER, PASSWORD
        self.refuse_store = False
        self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls.load_cert_chain(TLS / "cert.pem", TLS / "key.pem")
        self.errors: list[str] = []  # sessions that failed (e.g. a client refusing our cert)

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.errors.append(repr(sys.exc_info()[1]))


class FakeImap:
    """`with FakeImap() as imap:` serves `imap.mailbox` at 127.0.0.1:`imap.port` over TLS."""

    def __init__(self, folder: str = "INBOX") -> None:
        self.mailbox = Mailbox(folder)
        self._server = _TlsServer(self.mailbox)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def errors(self) -> list[str]:
        return self._server.errors

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def refuse_store(self) -> bool:
        """When True, UID STORE is refused (NO) and no flag changes."""
        return self._server.refuse_store

    @refuse_store.setter
    def refuse_store(self, value: bool) -> None:
        self._server.refuse_store = value

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts the test certificate (and nothing else)."""
        return ssl.create_default_context(cafile=str(TLS / "cert.pem"))

    def __enter__(self) -> FakeImap:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
