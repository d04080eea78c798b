"""The mailbox: SMTP (connect, STARTTLS or TLS as configured, sign in with the password or the
mailbox's OAuth grant) and IMAP (connect over TLS, sign in, open IMAP_FOLDER), built as the send
worker and `arbot poll-inbox` build them. Nothing is sent and nothing is read."""

from __future__ import annotations

import smtplib
import ssl

from bot.core.runtime import Runtime
from bot.core.settings import Settings
from integrations.doctor.findings import Finding, not_configured, ok, problem
from integrations.email_out import SmtpSender
from integrations.errors import ReconnectNeeded, SourceUnavailable
from integrations.imap_in import ImapError, sign_in
from integrations.mail_oauth import MailboxAccess
from integrations.wiring import mailbox_access_for, mailbox_refusal

SMTP, IMAP = "SMTP", "IMAP"


def _oauth(settings: Settings, runtime: Runtime) -> tuple[MailboxAccess | None, str | None]:
    """The mailbox's OAuth sign-in as the app uses it, and why it cannot be used (a refusal the
    provider gave, or OAuth set up without `arbot connect`)."""
    oauth = mailbox_access_for(settings, runtime)
    refusal = mailbox_refusal(settings, runtime)
    if refusal:
        return oauth, refusal
    oauth_set_up = settings.mailbox and getattr(settings, f"{settings.mailbox}_client_id")
    if oauth is None and oauth_set_up and not (settings.smtp_password or settings.imap_password):
        return None, (
            f"{str(settings.mailbox).upper()}_CLIENT_ID is set but the mailbox is not connected: "
            f"run `arbot connect {settings.mailbox}`"
        )
    return oauth, None


def check_smtp(settings: Settings, runtime: Runtime, timeout: float) -> list[Finding]:
    if not settings.smtp_host:
        return [
            not_configured(
                SMTP,
                "set SMTP_HOST (or ARBOT_MAILBOX) with SMTP_PORT, SMTP_USER and SMTP_PASSWORD "
                "to send email",
            )
        ]
    oauth, refusal = _oauth(settings, runtime)
    if refusal:
        return [problem(SMTP, "sign-in", refusal)]
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    sender = SmtpSender(
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_user,
        password,
        settings.smtp_starttls,
        timeout=timeout,
        ca_file=settings.smtp_ca_file,
        oauth=oauth,
    )
    try:
        with sender:
            sender.sign_in()
    except (ReconnectNeeded, SourceUnavailable) as exc:
        return [problem(SMTP, "sign-in", str(exc))]
    except smtplib.SMTPNotSupportedError as exc:
        if "STARTTLS" in str(exc):
            why = (
                "the server does not offer STARTTLS: use its TLS port (465) or its submission "
                "port (587), or set SMTP_STARTTLS=false only for a relay on a trusted network"
            )
        else:
            why = (
                f"the server does not take a login ({exc}): unset SMTP_USER for a relay that "
                "needs none, or check SMTP_HOST and SMTP_PORT"
            )
        return [problem(SMTP, "connect", f"{where}: {why}")]
    except smtplib.SMTPAuthenticationError as exc:
        how = (
            f"{oauth.label}'s sign-in for {oauth.address} was refused: check that SMTP AUTH is "
            f"on for that mailbox, or {oauth.reconnect_hint()}"
            if oauth is not None
            else "check SMTP_USER and SMTP_PASSWORD (Gmail and Microsoft 365 want an app "
            "password, or `arbot connect gmail|microsoft365`)"
        )
        return [
            problem(
                SMTP,
                "sign-in",
                f"{where} refused the login ({exc.smtp_code} {_text(exc.smtp_error)}): {how}",
            )
        ]
    except ssl.SSLCertVerificationError as exc:
        return [
            problem(
                SMTP,
                "connect",
                f"{where} presented a certificate that is not trusted ({exc.verify_message}): "
                "check SMTP_HOST, or set SMTP_CA_FILE to the CA that signed it",
            )
        ]
    except ssl.SSLError as exc:
        return [
            problem(
                SMTP,
                "connect",
                f"TLS with {where} failed ({exc.reason}): port 465 speaks TLS at once, 587 and "
                "25 need SMTP_STARTTLS=true",
            )
        ]
    except (smtplib.SMTPException, OSError) as exc:
        return [
            problem(
                SMTP,
                "connect",
                f"cannot connect to {where} ({exc or type(exc).__name__}): check SMTP_HOST and "
                "SMTP_PORT",
            )
        ]
    security = (
        "TLS"
        if settings.smtp_port == 465
        else "STARTTLS"
        if settings.smtp_starttls
        else "no encryption"
    )
    if oauth is not None:
        who = f"signed in as {oauth.address} with {oauth.label}'s OAuth grant (XOAUTH2)"
    elif settings.smtp_user:
        who = f"signed in as {settings.smtp_user} with SMTP_PASSWORD"
    else:
        who = "no login (SMTP_USER unset)"
    return [ok(SMTP, "sign-in", f"{where} over {security}, {who}; nothing was sent")]


def check_imap(settings: Settings, runtime: Runtime, timeout: float) -> list[Finding]:
    oauth, refusal = _oauth(settings, runtime) if settings.imap_host else (None, None)
    password = settings.imap_password.get_secret_value() if settings.imap_password else ""
    has_login = bool(settings.imap_user and password)
    if not settings.imap_host or (oauth is None and refusal is None and not has_login):
        set_by_hand = {"imap_host", "imap_user", "imap_password"} & settings.model_fields_set
        if settings.imap_host and set_by_hand:
            return [
                problem(
                    IMAP,
                    "sign-in",
                    "set IMAP_USER and IMAP_PASSWORD (or connect the mailbox with `arbot "
                    "connect gmail|microsoft365`) to read replies by IMAP",
                )
            ]
        return [
            not_configured(
                IMAP,
                "replies come by webhook only (set IMAP_HOST, IMAP_USER and IMAP_PASSWORD for "
                "`arbot poll-inbox`)",
            )
        ]
    if refusal:
        return [problem(IMAP, "sign-in", refusal)]
    where = f"{settings.imap_host}:{settings.imap_port}"
    try:
        sign_in(
            settings.imap_host,
            settings.imap_port,
            settings.imap_user or "",
            password,
            settings.imap_folder,
            ssl_context=ssl.create_default_context(cafile=settings.imap_ca_file),
            timeout=timeout,
            oauth=oauth,
        )
    except ImapError as exc:
        return [problem(IMAP, "sign-in", str(exc))]
    who = (
        f"{oauth.address} with {oauth.label}'s OAuth grant (XOAUTH2)"
        if oauth
        else f"{settings.imap_user} with IMAP_PASSWORD"
    )
    return [
        ok(
            IMAP,
            "sign-in",
            f"{where} over TLS, signed in as {who}, folder {settings.imap_folder!r} opens; "
            "nothing was read",
        )
    ]


def _text(reason: bytes | str) -> str:
    return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
