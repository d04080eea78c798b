"""Inbound email over IMAP, for teams without an inbound-mail webhook.

One poll logs in over TLS (with a password, or with SASL XOAUTH2 and an OAuth access token for
Gmail and Microsoft 365, integrations/mail_oauth.py), opens the folder, asks for the unseen messages by UID and hands each raw
message to `handle`. A message is marked \\Seen only after `handle` returns True: a crash or a False
leaves it unseen for the next poll, and one handled once is not fetched again. The fetch itself uses
BODY.PEEK[], which changes no flag. Whatever happens, the session ends with LOGOUT.
"""

from __future__ import annotations

import base64
import imaplib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.core.errors import UserError
from integrations.errors import ReconnectNeeded, SourceUnavailable
from integrations.mail_oauth import MailboxAccess

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 30


class ImapError(UserError):
    """The IMAP server could not be used; the message names the setting to fix."""


@dataclass
class PollReport:
    fetched: int = 0  # messages downloaded
    handled: int = 0  # messages `handle` accepted
    left: int = 0  # unseen messages left for the next poll
    errors: list[str] = field(default_factory=list)


def poll(
    host: str,
    port: int,
    user: str,
    password: str,
    folder: str,
    handle: Callable[[bytes], bool],
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = TIMEOUT_SECONDS,
    limit: int | None = None,
    oauth: MailboxAccess | None = None,
) -> PollReport:
    """Hand every unseen message of `folder` to `handle` (at most `limit` of them); mark \\Seen
    those it returns True for. Raises ImapError when the server, login or folder is unusable.
    With `oauth`, signs in as its mailbox with XOAUTH2 (`user` and `password` unused)."""
    imap = _connect(host, port, ssl_context, timeout)
    report = PollReport()
    try:
        if oauth is not None:
            _xoauth2_login(imap, host, oauth)
        else:
            _login(imap, host, user, password)
        _select(imap, folder)
        uids = _unseen(imap, folder)
        chosen = uids if limit is None else uids[: max(limit, 0)]
        report.left = len(uids) - len(chosen)
        for position, uid in enumerate(chosen):
            try:
                seen = _one(imap, uid, handle, report)
            except (imaplib.IMAP4.abort, OSError) as exc:  # the connection is gone: the rest waits
                report.errors.append(f"the IMAP connection was lost at message UID {uid}: {exc}")
                report.left += len(chosen) - position
                break
            report.left += not seen
    finally:
        _logout(imap)
    return report


def sign_in(
    host: str,
    port: int,
    user: str,
    password: str,
    folder: str,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = TIMEOUT_SECONDS,
    oauth: MailboxAccess | None = None,
) -> None:
    """Connect, sign in and open `folder` as a poll does, and read nothing (`arbot doctor`).
    ImapError names what to fix."""
    imap = _connect(host, port, ssl_context, timeout)
    try:
        if oauth is not None:
            _xoauth2_login(imap, host, oauth)
        else:
            _login(imap, host, user, password)
        _select(imap, folder)
    finally:
        _logout(imap)


def _connect(
    host: str, port: int, context: ssl.SSLContext | None, timeout: float
) -> imaplib.IMAP4_SSL:
    where = f"{host}:{port}"
    try:
        return imaplib.IMAP4_SSL(
            host, port, ssl_context=context or ssl.create_default_context(), timeout=timeout
        )
    except ssl.SSLCertVerificationError as exc:
        raise ImapError(
            f"the IMAP server {where} presented a certificate that is not trusted "
            f"({exc.verify_message}): check IMAP_HOST, or set IMAP_CA_FILE to the CA that signed it"
        ) from exc
    except ssl.SSLError as exc:
        raise ImapError(
            f"TLS with the IMAP server {where} failed ({exc.reason}): IMAP_PORT must be the "
            "server's TLS port (usually 993)"
        ) from exc
    except (OSError, imaplib.IMAP4.error) as exc:  # refused, unknown host, timed out
        raise ImapError(
            f"cannot connect to the IMAP server {where} ({exc}): check IMAP_HOST and IMAP_PORT"
        ) from exc


def _login(imap: imaplib.IMAP4, host: str, user: str, password: str) -> None:
    try:
        imap.login(_quoted(user), password)  # imaplib quotes the password, not the user
    except imaplib.IMAP4.abort as exc:
        raise ImapError(f"the IMAP server {host} closed the connection at login: {exc}") from exc
    except imaplib.IMAP4.error as exc:
        raise ImapError(
            f"the IMAP server {host} refused the login ({_text(exc.args)}): "
            "check IMAP_USER and IMAP_PASSWORD"
        ) from exc


def _xoauth2_login(imap: imaplib.IMAP4, host: str, oauth: MailboxAccess) -> None:
    """AUTHENTICATE XOAUTH2; refused, once more with a token refreshed now (the one held may have
    been revoked before it expired). A grant the provider refused is an ImapError naming the
    command that fixes it."""
    for force_refresh in (False, True):
        try:
            response = oauth.sasl(force_refresh).encode()
        except ReconnectNeeded as exc:
            raise ImapError(str(exc)) from exc
        except SourceUnavailable as exc:
            raise ImapError(f"cannot sign in to the IMAP server {host}: {exc}") from exc
        try:
            imap.authenticate("XOAUTH2", _responder(response))
            return
        except imaplib.IMAP4.abort as exc:
            raise ImapError(
                f"the IMAP server {host} closed the connection at login: {exc}"
            ) from exc
        except imaplib.IMAP4.error as exc:
            refused = exc
    raise ImapError(
        f"the IMAP server {host} refused {oauth.label}'s sign-in for {oauth.address} "
        f"({_text(refused.args)}): check that IMAP is on for that mailbox, or {oauth.reconnect_hint()}"
    )


def _responder(initial: bytes) -> Callable[[bytes], bytes]:
    """imaplib's authobject: the XOAUTH2 response to the first (empty) continuation; to the
    server's error challenge (a base64 JSON) an empty line, after which the server says NO."""

    def respond(challenge: bytes) -> bytes:
        return b"" if challenge else initial

    return respond


def _select(imap: imaplib.IMAP4, folder: str) -> None:
    try:
        typ, data = imap.select(_quoted(_mailbox_name(folder)))
    except imaplib.IMAP4.readonly as exc:
        raise ImapError(
            f"the IMAP folder {folder!r} is read-only, so read messages cannot be marked: check "
            "IMAP_FOLDER and the mailbox account's rights"
        ) from exc
    if typ != "OK":
        raise ImapError(
            f"the IMAP folder {folder!r} cannot be opened ({_text(data)}): check IMAP_FOLDER "
            "(names are the server's, e.g. INBOX or INBOX/Replies)"
        )


def _unseen(imap: imaplib.IMAP4, folder: str) -> list[str]:
    typ, data = imap.uid("SEARCH", "UNSEEN")
    if typ != "OK":
        raise ImapError(f"the IMAP server would not search {folder!r}: {_text(data)}")
    found = data[0] if data and isinstance(data[0], bytes) else b""
    return [uid.decode() for uid in found.split()]


def _one(
    imap: imaplib.IMAP4, uid: str, handle: Callable[[bytes], bool], report: PollReport
) -> bool:
    """Fetch, hand over and (when accepted) mark one message; True when it is now \\Seen."""
    typ, data = imap.uid("FETCH", uid, "(BODY.PEEK[])")
    raw = _body(data) if typ == "OK" else None
    if raw is None:
        report.errors.append(f"message UID {uid}: the server did not return it ({typ})")
        return False
    report.fetched += 1
    try:
        accepted = handle(raw)
    except Exception as exc:  # our handler failed on this message: the others still go
        log.exception("handling inbound message UID %s failed", uid)
        report.errors.append(f"message UID {uid}: {type(exc).__name__}: {exc}")
        return False
    if not accepted:
        return False
    report.handled += 1
    typ, data = imap.uid("STORE", uid, "+FLAGS", "(\\Seen)")
    if typ != "OK":
        report.errors.append(
            f"message UID {uid} was handled but could not be marked \\Seen ({_text(data)}); "
            "the next poll will fetch it again"
        )
        return False
    return True


def _body(data: list[Any]) -> bytes | None:
    """The literal of the BODY[] item in a FETCH answer (imaplib gives (header, literal) pairs)."""
    for item in data:
        if isinstance(item, tuple) and len(item) == 2 and b"BODY[" in item[0].upper():
            return bytes(item[1])
    return None


def _logout(imap: imaplib.IMAP4) -> None:
    try:
        imap.logout()
    except (imaplib.IMAP4.error, OSError) as exc:  # the session is over either way
        log.warning("IMAP logout failed: %s", exc)


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _mailbox_name(folder: str) -> str:
    """IMAP's modified UTF-7 (RFC 3501 §5.1.3): "&" is "&-", non-ASCII runs are base64."""
    out: list[str] = []
    pending = ""
    for char in folder + "\0":  # the sentinel flushes a trailing run
        if " " <= char <= "~" or char == "\0":
            if pending:
                encoded = base64.b64encode(pending.encode("utf-16-be")).decode()
                out.append("&" + encoded.rstrip("=").replace("/", ",") + "-")
                pending = ""
            out.append("&-" if char == "&" else char.strip("\0"))
        else:
            pending += char
    return "".join(out)


def _text(value: Any) -> str:
    """An imaplib answer or error argument as readable text."""
    items = value if isinstance(value, list | tuple) else [value]
    parts = [i.decode(errors="replace") if isinstance(i, bytes) else str(i) for i in items if i]
    return " ".join(parts) or "no reason given"
