"""Email out: the MIME message, an SMTP sender (STARTTLS or SSL, login, one connection per batch),
and a file sender writing real .eml files (the demo's outbox), behind the same interface."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from pathlib import Path

from integrations.base import Delivery, Outgoing

TIMEOUT_SECONDS = 30


def build_email(message: Outgoing) -> EmailMessage:
    """multipart/alternative (text and HTML), our Message-ID, a per-reminder Reply-To, one-click
    List-Unsubscribe, and Auto-Submitted so vacation responders stay quiet (RFC 3834)."""
    if not message.from_email:
        raise ValueError("no sender address: set ARBOT_FROM_EMAIL")
    email = EmailMessage()
    email["From"] = formataddr((message.from_name, message.from_email))
    email["To"] = formataddr((message.to_name or "", message.to))
    email["Subject"] = message.subject or ""
    email["Date"] = formatdate(localtime=False)
    if message.message_id:
        email["Message-ID"] = message.message_id
    if message.reply_to:
        email["Reply-To"] = message.reply_to
    unsubscribe = [f"<{u}>" for u in (message.unsubscribe_mailto, message.unsubscribe_url) if u]
    if unsubscribe:
        email["List-Unsubscribe"] = ", ".join(unsubscribe)
        if message.unsubscribe_url:
            email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(message.text)
    if message.html:
        email.add_alternative(message.html, subtype="html")
    return email


class SmtpSender:
    def __init__(
        self, host: str, port: int, user: str | None, password: str | None, starttls: bool
    ) -> None:
        self.host, self.port, self.user, self.password, self.starttls = (
            host,
            port,
            user,
            password,
            starttls,
        )
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpSender:
        return self

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
                    timeout=TIMEOUT_SECONDS,
                    context=ssl.create_default_context(),
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_SECONDS)
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self.password or "")
            self._smtp = smtp
        return self._smtp

    def send(self, message: Outgoing) -> Delivery:
        email = build_email(message)
        try:
            refused = self._connection().send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reason = next(iter(exc.recipients.values()))
            return _smtp_outcome(code, reason)
        except smtplib.SMTPResponseException as exc:
            self._drop()
            return _smtp_outcome(exc.smtp_code, exc.smtp_error)
        except (TimeoutError, smtplib.SMTPServerDisconnected, ConnectionError, OSError) as exc:
            self._drop()
            return Delivery("transient", error=f"connection: {exc}")
        if refused:
            code, reason = next(iter(refused.values()))
            return _smtp_outcome(code, reason)
        return Delivery("sent", provider_id=message.message_id)

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None


def _smtp_outcome(code: int, reason: bytes | str) -> Delivery:
    text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
    if 400 <= code < 500:
        return Delivery("transient", error=f"SMTP {code} {text}")
    # 550/551/553: the mailbox does not exist or is refused: the address itself is unusable.
    return Delivery(
        "permanent", error=f"SMTP {code} {text}", address_unusable=code in (550, 551, 553)
    )


class FileSender:
    """Writes each email as a real .eml file (and each text as .txt) into a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __enter__(self) -> FileSender:  # the same object may serve email and SMS
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send(self, message: Outgoing) -> Delivery:
        if message.channel == "sms":
            path = self.folder / f"reminder-{message.reminder_id}-sms.txt"
            path.write_text(f"To: {message.to}\n\n{message.text}\n", encoding="utf-8")
        else:
            path = self.folder / f"reminder-{message.reminder_id}.eml"
            path.write_bytes(bytes(build_email(message)))
        return Delivery("sent", provider_id=path.name)
