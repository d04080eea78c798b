"""Email out: the MIME message, an SMTP sender (STARTTLS or SSL, login, one connection per batch),
and a file sender writing real .eml files (the demo's outbox), behind the same interface."""

from __future__ import annotations

import re
import smtplib
import ssl
import threading
from collections.abc import Collection
from email.utils import format_datetime, formatdate
from pathlib import Path
from typing import overload

from integrations.base.outbound import (
    REFUSES_OUR_MAIL,
    STILL_REFUSES_OUR_MAIL,
    Delivery,
    Outgoing,
)
from integrations.email_mime import (
    ascii_address,
    email_bytes,
    mailbox,
    message_ids,
    plain,
    text_value,
)
from integrations.errors import ReconnectNeeded, SourceUnavailable
from integrations.mail_oauth import MailboxAccess

TIMEOUT_SECONDS = 30
# An enhanced status code (RFC 3463) at the start of an SMTP reply: class, subject, detail.
_ENHANCED = re.compile(r"\s*([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
# Policy refusals (5.7.x) of a recipient that concern that recipient alone, whatever the words:
# mailing list expansion prohibited (5.7.2), and Microsoft 365's delivery restrictions of a group
# or mailbox (our sender not among those it accepts, or not signed in for it: 5.7.124, 5.7.133 to
# 5.7.136).
_RECIPIENT_POLICY = frozenset({"2", "124", "133", "134", "135", "136"})
# What a 5.7.1 says when it is about the relay, our login, our sender address or our host, not
# the recipient (Postfix names the recipient in "Relay access denied" too): whole words, looked
# for once the addresses are taken out (_account_words), so a customer's address such as
# ap@atlsupply.com or billing@relaymedical.com says nothing of our account.
_ACCOUNT_WORDS = re.compile(
    r"\b(?:relay(?:s|ed|ing)?|(?:un)?authenticat\w*|auth|log ?ins?|logon|sender address"
    r"|client host|e?helo|(?:start)?tls)\b",
    re.IGNORECASE,
)
# An address in a reply: in angle brackets (<ap@c1.example>), or bare (ap@c1.example).
_ADDRESS = re.compile(r"<[^<>]*>|[^\s<>@]+@[^\s<>@]+")


def build_email(message: Outgoing) -> bytes:
    """multipart/alternative (text and HTML), our Message-ID, a per-reminder Reply-To, one-click
    List-Unsubscribe, and Auto-Submitted so vacation responders stay quiet (RFC 3834; not on
    what a person wrote, which carries In-Reply-To and References instead), and the files it
    carries (copies of invoices) after the text, in a multipart/mixed. The bytes
    as SMTP takes them (integrations/email_mime.py); ValueError when they cannot be written."""
    if not message.from_email:
        raise ValueError("no sender address: set ARBOT_FROM_EMAIL")
    headers = [
        ("From", mailbox(message.from_name, message.from_email)),
        ("To", mailbox(message.to_name, message.to)),
        ("Subject", text_value(message.subject or "")),
        (
            "Date",
            format_datetime(message.date) if message.date else formatdate(localtime=False),
        ),
    ]
    if message.message_id:
        headers.append(("Message-ID", plain("Message-ID", message.message_id)))
    if message.reply_to:
        headers.append(("Reply-To", mailbox(None, message.reply_to)))
    # The customer's ids, as far as they can be written: one that cannot is left out, and the
    # reply still goes (threaded by the others).
    in_reply_to, references = message_ids(message.in_reply_to), message_ids(message.references)
    if in_reply_to:
        headers.append(("In-Reply-To", in_reply_to))
    if references:
        headers.append(("References", references))
    unsubscribe = [f"<{u}>" for u in (message.unsubscribe_mailto, message.unsubscribe_url) if u]
    if unsubscribe:
        headers.append(("List-Unsubscribe", plain("List-Unsubscribe", ", ".join(unsubscribe))))
        if message.unsubscribe_url:
            headers.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    if not message.written_by_person:
        headers.append(("Auto-Submitted", "auto-generated"))
    return email_bytes(headers, message.text, message.html, message.attachments)


class SmtpSender:
    def __init__(
        self,
        host: str,
        port: int,
        user: str | None,
        password: str | None,
        starttls: bool,
        timeout: float = TIMEOUT_SECONDS,
        ca_file: str | None = None,
        oauth: MailboxAccess | None = None,
    ) -> None:
        self.timeout = timeout
        self.ca_file = ca_file  # a private CA (an internal relay); None: the system's
        self.oauth = oauth  # sign in with XOAUTH2 (Gmail, Microsoft 365) instead of a password
        self.host, self.port, self.user, self.password, self.starttls = (
            host,
            port,
            user,
            password,
            starttls,
        )
        self._smtp: smtplib.SMTP | None = None
        self._refused = _PolicyRefusals()  # shared with the copies: a sender serves one run

    def __enter__(self) -> SmtpSender:
        return self

    def another(self) -> SmtpSender:
        """A sender like this one, on a connection of its own (for sending side by side), counting
        the messages refused by policy with it (the run's)."""
        copy = SmtpSender(
            self.host,
            self.port,
            self.user,
            self.password,
            self.starttls,
            timeout=self.timeout,
            ca_file=self.ca_file,
            oauth=self.oauth,
        )
        copy._refused = self._refused
        return copy

    def __exit__(self, *exc: object) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            if self.port == 465:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host,
                    self.port,
                    timeout=self.timeout,
                    context=ssl.create_default_context(cafile=self.ca_file),
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context(cafile=self.ca_file))
            try:
                if self.oauth is not None:
                    _xoauth2_login(smtp, self.oauth)
                elif self.user:
                    smtp.login(self.user, self.password or "")
            except BaseException:
                smtp.close()
                raise
            self._smtp = smtp
        return self._smtp

    def sign_in(self) -> None:
        """Connect and sign in as a send does, and send nothing (`arbot doctor`): raises what the
        connection or the login raised."""
        self._connection()

    def send(self, message: Outgoing) -> Delivery:
        """MAIL, RCPT and DATA step by step, so a failure is placed exactly: before DATA nothing
        was handed over (retry, or stop the run for an account problem); a lost answer after DATA
        may mean the message was taken, so it is `unknown`, never retried blindly. A refusal of
        DATA by policy (5.7.x) fails that one message; a second in the run is our account's."""
        try:
            recipient = ascii_address(message.to)
        except ValueError as exc:  # the address itself can never be written: never use it again
            return Delivery("permanent", error=str(exc), address_unusable=True)
        try:
            data = build_email(message)
        except ValueError as exc:  # e.g. a line break in a header: this message can never go
            return Delivery("permanent", error=f"not a valid email: {exc}")
        # Connecting and signing in fail for our account or our relay, never for this message:
        # an outage, which stops the run and charges no try to the reminder.
        try:
            smtp = self._connection()
        except ReconnectNeeded as exc:  # the mailbox grant is gone: nothing goes until reconnected
            return Delivery("outage", error=str(exc))
        except SourceUnavailable as exc:  # the token endpoint did not answer
            return Delivery("outage", error=f"cannot sign in to the mailbox: {exc}")
        except smtplib.SMTPAuthenticationError as exc:
            return Delivery(
                "outage", error=f"SMTP login refused: {exc.smtp_code} {_text(exc.smtp_error)}"
            )
        except (smtplib.SMTPException, OSError) as exc:  # refused, no answer, TLS, no AUTH
            self._drop()
            why = str(exc) or type(exc).__name__
            return Delivery(
                "outage",
                error=f"cannot connect to the SMTP server {self.host}:{self.port} ({why}); check "
                "SMTP_HOST, SMTP_PORT, SMTP_STARTTLS, SMTP_CA_FILE and SMTP_USER",
            )
        envelope = message.envelope_from or message.from_email or ""
        try:
            smtp.ehlo_or_helo_if_needed()
            code, reply = smtp.mail(envelope)
            if code != 250:
                self._reset(smtp)
                return _sender_outcome(code, reply)
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                self._reset(smtp)
                return self._rcpt_outcome(code, reply, recipient, message.reminder_id)
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            return Delivery("transient", error=f"SMTP connection lost before sending: {exc}")
        try:
            code, reply = smtp.data(data)
        except smtplib.SMTPResponseException as exc:  # DATA itself refused: nothing handed over
            self._reset(smtp)
            return self._data_outcome(exc.smtp_code, exc.smtp_error, message.reminder_id)
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            return Delivery("unknown", error=f"no answer after the message was handed over: {exc}")
        if code != 250:
            return self._data_outcome(code, reply, message.reminder_id)
        self._refused.accepted()
        return Delivery("sent", provider_id=message.message_id)

    def _data_outcome(self, code: int, reason: bytes | str, reminder_id: int) -> Delivery:
        """A refused DATA (the command, or the message once read). A policy refusal (5.7.x) is
        most often about this one message (its content, the recipient domain's policy): it fails
        `permanent`, the address kept, the relay's words its reason, and the run goes on. A second
        in the same run says the relay refuses our mail (our domain's DMARC or authentication,
        e.g. 5.7.26): an outage, which stops the run with nothing charged to this reminder. One
        count in the run with the recipients refused at RCPT (_PolicyRefusals)."""
        text = _text(reason)
        if not _policy(code, text):
            return _smtp_outcome(code, reason)
        refused = self._refused.first(f"message {reminder_id}", None)
        if refused is None:
            return Delivery("permanent", error=f"SMTP {code} {text}")
        return _refuses_our_mail(
            refused,
            code,
            text,
            "it refused more than one message, so not for one message's sake; check with the "
            "mail provider that the domain of ARBOT_FROM_EMAIL passes SPF, DKIM and DMARC, and "
            "the account's limits",
        )

    def refused_before(self, stopped_at: Collection[int], again: bool) -> None:
        """The relay refused our mail by policy when email last stopped (at RCPT or DATA), at
        the reminders `stopped_at`, and has accepted no message since: its first refusal by
        policy in this run is our account's too, unless it is of one of those reminders, refused
        again at RCPT for its own recipient, and email did not stop so `again` since."""
        self._refused.remember(stopped_at, again)

    def _rcpt_outcome(
        self, code: int, reason: bytes | str, recipient: str, reminder_id: int
    ) -> Delivery:
        """A refused RCPT. A policy refusal (5.7.x) about this recipient (the reply names it or
        says the recipient is refused, and nothing of relaying, login or our sender) fails this
        one message `permanent`, the address kept, the relay's words its reason, and the run goes
        on. A second recipient (or message, at DATA) refused so in the same run, or the first
        when email last stopped so (refused_before) unless it is the reminder email stopped at,
        refused again, or any other 5.7.x (relay denied, login required), says the relay
        refuses our mail: an outage, which stops the run with nothing charged to this
        reminder."""
        text = _text(reason)
        if not _policy(code, text):
            return _smtp_outcome(code, reason)
        if not _about_recipient(text, recipient):
            return _account_refusal(code, text)
        refused = self._refused.first(f"recipient {recipient.lower()}", reminder_id)
        if refused is None:
            return Delivery("permanent", error=f"SMTP {code} {text}")
        return _refuses_our_mail(
            refused,
            code,
            text,
            "it refused more than one recipient, so not for one recipient's sake; check "
            "SMTP_HOST, SMTP_USER and SMTP_PASSWORD with the mail provider, and what the account "
            "may send to",
        )

    def _reset(self, smtp: smtplib.SMTP) -> None:
        """End the transaction a refused MAIL, RCPT or DATA left open (RSET), or else drop the
        connection: left open, the next message's MAIL FROM meets 503 (nested MAIL), which reads
        as a refusal of our sender address and stops the run. The refusal is what is reported."""
        try:
            code, _ = smtp.rset()
        except (smtplib.SMTPException, OSError):
            code = 0
        if code != 250:
            self._drop()

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None


def _xoauth2_login(smtp: smtplib.SMTP, oauth: MailboxAccess) -> None:
    """AUTH XOAUTH2 with a fresh token. Refused (535), once more with a token refreshed now: the
    one held may have been revoked before it expired. A second refusal is the account's."""
    smtp.ehlo_or_helo_if_needed()
    try:
        smtp.auth("XOAUTH2", _XOAuth2Answer(oauth.sasl()))
    except smtplib.SMTPAuthenticationError:
        smtp.auth("XOAUTH2", _XOAuth2Answer(oauth.sasl(force_refresh=True)))


class _PolicyRefusals:
    """What the relay refused by policy in one run, counted across the lanes' senders: the
    recipients it refused so at RCPT and the messages it refused so at DATA, one count; and,
    when email last stopped so and no message was accepted since, the reminders it stopped at.
    A second refusal in the run stops email. When email last stopped so, the first refusal in
    the run stops it too, unless it is of a reminder it stopped at, its recipient refused again
    at RCPT: that one is its own (refused a second time, that recipient is refused, whatever the
    others), once; a stop after it is `again`, and its reminders are not given their own.
    Once a message is accepted, the first refusal in the run is one message's again."""

    def __init__(self) -> None:
        self.refused: set[str] = set()  # "recipient <address>" or "message <reminder id>"
        self.stopped_at: frozenset[int] | None = None  # None: email did not stop so
        self.again = False  # it stopped so again: no reminder it stopped at is given its own
        self.lock = threading.Lock()

    def remember(self, stopped_at: Collection[int], again: bool) -> None:
        with self.lock:
            self.stopped_at, self.again = frozenset(stopped_at), again

    def accepted(self) -> None:
        """A message was taken: the relay takes our mail again."""
        if self.stopped_at is not None:
            with self.lock:
                self.stopped_at, self.again = None, False

    def first(self, what: str, reminder_id: int | None) -> str | None:
        """Note one more refusal of `what` (a recipient, of reminder `reminder_id`, or a message,
        with None: a message refused again is not given its own): None when it is that one message's own, for all we know; otherwise how
        the stop's reason begins (STILL_REFUSES_OUR_MAIL once a reminder email stopped at was
        given its own, REFUSES_OUR_MAIL otherwise)."""
        with self.lock:
            self.refused.add(what)
            if self.stopped_at is None:
                return None if len(self.refused) == 1 else REFUSES_OUR_MAIL
            if reminder_id in self.stopped_at and not self.again and len(self.refused) == 1:
                self.again = True  # given its own: a stop in this run is a stop again
                return None
            return STILL_REFUSES_OUR_MAIL if self.again else REFUSES_OUR_MAIL


class _XOAuth2Answer:
    """smtplib's authobject: the XOAUTH2 response first; to the server's error challenge (a
    base64 JSON), an empty line, after which the server answers 535."""

    def __init__(self, initial: str) -> None:
        self.initial = initial

    @overload
    def __call__(self, challenge: None = None, /) -> str | None: ...

    @overload
    def __call__(self, challenge: bytes, /) -> str: ...

    def __call__(self, challenge: bytes | None = None, /) -> str | None:
        return self.initial if challenge is None else ""


def _text(reason: bytes | str) -> str:
    return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)


def _sender_outcome(code: int, reason: bytes | str) -> Delivery:
    """MAIL FROM refused: our account or sender address, not the customer's: stop the run."""
    if 400 <= code < 500:
        return Delivery("transient", error=f"SMTP {code} {_text(reason)}")
    return Delivery(
        "outage", error=f"the SMTP server refused our sender address: {code} {_text(reason)}"
    )


def _policy(code: int, text: str) -> bool:
    """Whether a permanent refusal has the enhanced status 5.7.x (security or policy)."""
    enhanced = _ENHANCED.match(text)
    return code >= 500 and enhanced is not None and enhanced.group(1, 2) == ("5", "7")


def _about_recipient(text: str, recipient: str) -> bool:
    """Whether a policy refusal (5.7.x) of a recipient concerns that recipient alone: a code that
    always does, or a 5.7.1 naming the recipient or saying the recipient is refused, with nothing
    of relaying, login, our sender address or our host."""
    enhanced = _ENHANCED.match(text)
    if enhanced is None:
        return False
    if enhanced.group(3) in _RECIPIENT_POLICY:
        return True
    lowered = text.lower()
    named = recipient.lower() in lowered or "recipient" in lowered
    return enhanced.group(3) == "1" and named and not _account_words(text, recipient)


def _refuses_our_mail(begins: str, code: int, text: str, advice: str) -> Delivery:
    """The relay refuses our mail by policy: an outage whose reason begins with REFUSES_OUR_MAIL
    (or STILL_REFUSES_OUR_MAIL), so the next run remembers it (bot/reminders/results.py,
    SmtpSender.refused_before)."""
    return Delivery("outage", error=f"{begins} ({code} {text}): {advice}")


def _account_refusal(code: int, text: str) -> Delivery:
    return Delivery(
        "outage",
        error=f"the SMTP server refused to take mail from our account ({code} {text}); "
        "check SMTP_HOST, SMTP_USER and SMTP_PASSWORD with the mail provider",
    )


def _smtp_outcome(code: int, reason: bytes | str) -> Delivery:
    """A refused RCPT or DATA, other than by policy about one recipient or message
    (SmtpSender._rcpt_outcome, SmtpSender._data_outcome). The enhanced status code (RFC 3463) at
    the start of the reply says whose problem it is: 5.7.x (relay denied, login required) is our
    account's, whatever the address, so the run stops and nothing is charged to the reminder;
    a bad mailbox or address (_bad_mailbox) is never used again."""
    text = _text(reason)
    if 400 <= code < 500:
        return Delivery("transient", error=f"SMTP {code} {text}")
    if _policy(code, text):
        return _account_refusal(code, text)
    unusable = _bad_mailbox(code, text)
    return Delivery("permanent", error=f"SMTP {code} {text}", address_unusable=unusable)


def _bad_mailbox(code: int, text: str) -> bool:
    """Whether a permanent refusal says the mailbox or address is bad: an enhanced status 5.1.x
    (e.g. 5.1.1 no such user, Microsoft 365's 5.1.10 RecipientNotFound); Exchange Online's
    5.4.1 "Recipient address rejected: Access denied", its answer for an address its directory
    does not hold (not its 5.4.1 "Relay Access Denied", our connector's); with no enhanced
    status, 550, 551 or 553."""
    enhanced = _ENHANCED.match(text)
    if enhanced is None:
        return code in (550, 551, 553)
    if enhanced.group(2) == "1":
        return True
    about_recipient = "recipient" in text.lower() and not _account_words(text)
    return enhanced.group(2, 3) == ("4", "1") and about_recipient


def _account_words(text: str, recipient: str | None = None) -> bool:
    """Whether a refusal speaks of the relay, our login, our sender address or our host
    (_ACCOUNT_WORDS), in its words, not in the addresses or hosts it names: the recipient's
    address, any address, and the recipient's domain and the host names under it (its mail
    server, `host mx1.tls-supply.com[203.0.113.5] said: ...`) are taken out first."""
    if recipient:
        text = re.sub(re.escape(recipient), " ", text, flags=re.IGNORECASE)
    text = _ADDRESS.sub(" ", text)
    domain = recipient.rpartition("@")[2] if recipient else ""
    if domain:
        hosts = rf"(?<![\w.-])(?:[\w-]+\.)*{re.escape(domain)}(?![\w-])"
        text = re.sub(hosts, " ", text, flags=re.IGNORECASE)
    return _ACCOUNT_WORDS.search(text) is not None


class FileSender:
    """Writes each email as a real .eml file (and each text as .txt) into a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __enter__(self) -> FileSender:  # the same object may serve email and SMS
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def another(self) -> FileSender:
        return FileSender(self.folder)  # each message is a file of its own

    def __exit__(self, *exc: object) -> None:
        return None

    def send(self, message: Outgoing) -> Delivery:
        if message.channel == "sms":
            path = self.folder / f"reminder-{message.reminder_id}-sms.txt"
            path.write_text(f"To: {message.to}\n\n{message.text}\n", encoding="utf-8")
        else:
            path = self.folder / f"reminder-{message.reminder_id}.eml"
            path.write_bytes(build_email(message))
        return Delivery("sent", provider_id=path.name)
