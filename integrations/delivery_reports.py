"""Delivery reports about our messages: which address failed, whether for good, and whose problem
it is; or a spam complaint about one.

Four shapes come in. A delivery status notification (RFC 3464) has a status block per recipient;
one whose block is missing, empty or oddly spaced ("Action : failed") is still read, its recipient
then taken from the notice's words; a mail system's notice that carries its status part in an
ordinary multipart/mixed message (McAfee Email Gateway, OpenSMTPD) is read as one. A bounce
written for people (Exim, qmail, Yahoo, Exchange 2003, ...) is read by integrations.bounce_text.
An abuse report (ARF) is a complaint (integrations.complaints). Amazon SES's bounce and complaint
notifications, mailed by SNS as JSON, are read by integrations.ses_feedback. What each means is
decided in one place, integrations.bounce_status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import getaddresses

from integrations import bounce_status, bounce_text, complaints, ses_feedback
from integrations.base.inbound import Bounce

DSN_PARTS = ("message/delivery-status", "message/global-delivery-status")


@dataclass(frozen=True)
class _RecipientStatus:
    address: str
    action: str | None
    status: str | None
    diagnostic: str | None


def read(message: Message, sender: str, subject: str | None) -> Bounce | None:
    """The delivery report or complaint the message is, or None for any other mail."""
    if complaints.is_complaint(message, sender):
        addresses, kind, original = complaints.complained(message)
        if kind == "auth-failure":  # our sending domain failed SPF/DKIM/DMARC at the receiver
            return Bounce(
                action="auth-failure",
                recipients=addresses,
                failed_recipients=(),
                status=None,
                permanent=False,
                diagnostic="the receiver reports that our message failed SPF/DKIM/DMARC",
                original_message_id=original,
                sender_side=True,
            )
        return Bounce(
            action="complaint",
            recipients=addresses,
            failed_recipients=(),
            status=None,
            permanent=False,
            diagnostic=f"feedback type: {kind}" if kind else None,
            original_message_id=original,
            complaint=True,
        )
    if sender.endswith(ses_feedback.SNS_SENDER):
        feedback = ses_feedback.read(bounce_text.body_text(message))
        if feedback is not None:
            return _from_ses(feedback)
    is_dsn = message.get_content_type() == "multipart/report" and _param(
        message, "report-type"
    ) in ("delivery-status", "")
    declared = _param(message, "report-type") == "delivery-status"
    if is_dsn and (declared or any(p.get_content_type() in DSN_PARTS for p in message.walk())):
        return _from_dsn(message)
    if not bounce_text.from_mail_system(message, sender, subject):
        return None
    if any(p.get_content_type() in DSN_PARTS for p in _own_parts(message)):
        return _from_dsn(message)
    named = subject and bounce_text.BOUNCE_SUBJECT.search(subject)
    temporary, permanent = bounce_text.failed_addresses(message)
    if not (
        named
        or temporary
        or permanent
        or bounce_text.header_recipients(message)
        or bounce_text.named_recipients(message)
    ):
        return None  # an auto-reply from a mail system's address, not a failed delivery
    return _from_text(message, subject, bounce_text.original_recipients(message, ()))


def _from_dsn(message: Message) -> Bounce:
    reports: list[_RecipientStatus] = []
    for part in message.walk():
        if part.get_content_type() in DSN_PARTS:
            reports += [_recipient_status(b) for b in _status_blocks(part) if _is_recipient(b)]
    original = _original_id(message)
    reports = [r for r in reports if r.address or r.action or r.status]
    if not any(r.address for r in reports):  # no usable status block: read the words
        text_bounce = _from_text(message, None, bounce_text.original_recipients(message, ()))
        first = reports[0] if reports else None
        if first is None:
            return _with_original(text_bounce, original)
        verdict = bounce_status.judge(
            first.action, first.status, first.diagnostic, bounce_text.notice_text(message)
        )
        return _bounce(
            verdict,
            first.action,
            text_bounce.recipients,
            first.diagnostic or text_bounce.diagnostic,
            original,
        )
    return _from_reports(reports, original, bounce_text.notice_text(message))


def _from_reports(reports: list[_RecipientStatus], original: str | None, text: str) -> Bounce:
    """What the status of each recipient (at least one with an address) says, together."""
    verdicts = [(r, bounce_status.judge(r.action, r.status, r.diagnostic, text)) for r in reports]
    failed = [(r, v) for r, v in verdicts if v.outcome == bounce_status.FAILED]
    main, verdict = failed[0] if failed else verdicts[0]
    return Bounce(
        action="failed" if failed else main.action or "delayed",
        recipients=tuple(dict.fromkeys(r.address for r in reports if r.address)),
        failed_recipients=tuple(dict.fromkeys(r.address for r, _ in failed if r.address)),
        status=verdict.status,
        permanent=bool(failed) and not verdict.sender_side,
        diagnostic=main.diagnostic or bounce_text.diagnostic_line(text),
        original_message_id=original,
        sender_side=bool(failed) and verdict.sender_side,
    )


def _from_ses(feedback: ses_feedback.Feedback) -> Bounce | None:
    addresses = tuple(dict.fromkeys(r.address for r in feedback.recipients))
    if feedback.kind == "Complaint":
        return Bounce(
            action="complaint",
            recipients=addresses,
            failed_recipients=(),
            status=None,
            permanent=False,
            diagnostic=f"feedback type: {feedback.feedback_type}"
            if feedback.feedback_type
            else None,
            original_message_id=feedback.original_message_id,
            complaint=True,
        )
    if feedback.kind != "Bounce" or not addresses:
        return None  # a delivery receipt: nothing failed
    reports = [
        _RecipientStatus(r.address, r.action, r.status, r.diagnostic) for r in feedback.recipients
    ]
    bounce = _from_reports(reports, feedback.original_message_id, "")
    if feedback.permanent:
        return bounce
    # A transient or undetermined bounce: SES gave up on this message, not on the address.
    return replace(bounce, failed_recipients=(), permanent=False, sender_side=False)


def _from_text(message: Message, subject: str | None, original_to: tuple[str, ...]) -> Bounce:
    """A bounce without a usable status block: flufl.bounce's detectors find the addresses."""
    temporary, permanent = bounce_text.failed_addresses(message)
    addresses = (
        permanent
        or temporary
        or bounce_text.header_recipients(message)
        or bounce_text.named_recipients(message)
        or original_to
        or bounce_text.notice_recipients(message, _own(message))
    )
    text = bounce_text.notice_text(message)
    diagnostic = bounce_text.diagnostic_line(text)
    hint = "failed" if permanent else None
    verdict = bounce_status.judge(hint, None, diagnostic, f"{subject or ''}\n{text}")
    return _bounce(verdict, hint, addresses, diagnostic, _original_id(message))


def _own_parts(part: Message) -> list[Message]:
    """The parts of the message itself, not those of a message attached to it."""
    if part.get_content_maintype() == "message" or not part.is_multipart():
        return [part]
    payload = part.get_payload()
    children = [c for c in payload if isinstance(c, Message)] if isinstance(payload, list) else []
    return [part] + [leaf for child in children for leaf in _own_parts(child)]


def _own(message: Message) -> tuple[str, ...]:
    values = [str(v) for name in ("From", "To", "Return-Path") for v in message.get_all(name) or []]
    return tuple(a.lower() for _, a in getaddresses(values))


def _bounce(
    verdict: bounce_status.Verdict,
    action: str | None,
    addresses: tuple[str, ...],
    diagnostic: str | None,
    original: str | None,
) -> Bounce:
    failed = verdict.outcome == bounce_status.FAILED
    delayed = verdict.outcome == bounce_status.DELAYED
    return Bounce(
        action="failed" if failed else (action or ("delayed" if delayed else None)),
        recipients=addresses,
        failed_recipients=addresses if failed else (),
        status=verdict.status,
        permanent=failed and not verdict.sender_side,
        diagnostic=diagnostic,
        original_message_id=original,
        sender_side=failed and verdict.sender_side,
    )


def _with_original(bounce: Bounce, original: str | None) -> Bounce:
    if bounce.original_message_id or not original:
        return bounce
    return Bounce(**{**bounce.__dict__, "original_message_id": original})


def _original_id(message: Message) -> str | None:
    """The Message-ID of the returned original (attached whole, or its headers only)."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                found = _message_id(str(payload[0].get("Message-ID") or ""))
                if found:
                    return found
        elif kind.endswith("rfc822-headers") or kind == "message/global-headers":
            data = part.get_payload(decode=True)
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else ""
            headers = HeaderParser(policy=compat32).parsestr(text or str(part.get_payload()))
            found = _message_id(str(headers.get("Message-ID") or ""))
            if found:
                return found
    match = re.search(
        r"^\s*Message-ID:\s*(<[^<>\s]+>)", bounce_text.body_text(message), re.I | re.M
    )
    return match.group(1) if match else None


def _message_id(value: str) -> str | None:
    found = re.search(r"<[^<>\s]+>", value)
    return found.group() if found else None


def _status_blocks(part: Message) -> list[Message]:
    """The field groups of a delivery-status part: per message, then per recipient. Fields
    written "Name : value" are read as "Name: value"."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = [c for c in payload if isinstance(c, Message)]
        text = "\n\n".join("\n".join(f"{k}: {v}" for k, v in b.items()) for b in blocks)
    else:
        data = part.get_payload(decode=True)
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(payload)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"^([A-Za-z][\w-]*)[ \t]+:", r"\1:", text, flags=re.MULTILINE)
    parser = HeaderParser(policy=compat32)
    return [parser.parsestr(block.strip("\n")) for block in re.split(r"\n\s*\n", text)]


def _is_recipient(block: Message) -> bool:
    return any(block.get(name) for name in ("Final-Recipient", "Original-Recipient", "Action"))


def _recipient_status(block: Message) -> _RecipientStatus:
    def typed(name: str) -> str | None:  # "rfc822; jo@example.org" -> "jo@example.org"
        value = block.get(name)
        if value is None:
            return None
        value = " ".join(str(value).split())
        return value.partition(";")[2].strip() if ";" in value else value or None

    address = (typed("Final-Recipient") or typed("Original-Recipient") or "").strip("<> ")
    if "@" not in address:
        address = ""
    status = (str(block.get("Status") or "")).strip() or None
    action = (str(block.get("Action") or "")).strip().lower().split(" ")[0] or None
    return _RecipientStatus(address.lower(), action, status, typed("Diagnostic-Code"))


def _param(part: Message, name: str) -> str:
    value = part.get_param(name)
    return value.lower() if isinstance(value, str) else ""
