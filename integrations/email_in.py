"""Inbound email: one raw RFC 5322 message in, what the rest of arbot needs out.

Who sent it, what they actually wrote (quoted history and signature removed), the ids and
per-reminder addresses it can be matched by (RFC 5322 threading, RFC 5233 subaddress tokens, VERP),
whether a machine sent it (RFC 3834 auto-replies, out-of-office subjects) and, for a delivery report
or a spam complaint, which address failed and why (integrations.delivery_reports). A malformed message never raises: every
part is read best-effort; only empty input is refused.

Turning a part into the words a person wrote (HTML, format=flowed, quoted history) is done by
integrations.email_text; `html_to_text` and `strip_reply` can still be imported from here.
"""

from __future__ import annotations

import codecs
import contextlib
import re
from collections.abc import Iterable, Iterator
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.utils import getaddresses, parseaddr

from integrations import bounce_text, delivery_reports, ses_feedback
from integrations.base.inbound import Bounce, InboundEmail
from integrations.email_mime import ascii_address
from integrations.email_text import html_to_text, strip_reply, unflow

# Where the address a message was delivered to can appear (ours carry the signed tokens).
RECIPIENT_HEADERS = (
    "To",
    "Cc",
    "Delivered-To",
    "X-Original-To",
    "X-Delivered-To",
    "Envelope-To",
    "X-Envelope-To",
)


def parse(raw: bytes) -> InboundEmail:
    """Read a raw RFC 5322 message. Raises ValueError only for empty input."""
    if not raw or not raw.strip():
        raise ValueError("empty email: expected a raw RFC 5322 message (headers, blank line, body)")
    message = BytesParser(policy=compat32).parsebytes(raw)
    name, address = parseaddr(_header(message, "From") or "")
    subject = _words(_header(message, "Subject") or "") or None
    full_text, reply_source = _body(message)
    sender = _as_stored(address.strip()).lower()
    bounce = delivery_reports.read(message, sender, subject)
    return InboundEmail(
        sender=sender,
        sender_name=_words(name) or None,
        subject=subject,
        message_id=next(iter(_ids(_headers(message, "Message-ID"))), None),
        in_reply_to=_ids(_headers(message, "In-Reply-To")),
        references=_ids(_headers(message, "References")),
        recipients=_addresses(message, RECIPIENT_HEADERS),
        text=strip_reply(reply_source),
        full_text=full_text,
        automatic=_automatic(message, subject, sender, bounce),
        bounce=bounce,
    )


def _as_stored(address: str) -> str:
    """An address at an internationalised domain in the ASCII (IDNA) form the ledger stores
    addresses in (integrations.csv_common), so its sender is found among the contacts; as it
    came when it has no such form."""
    try:
        return ascii_address(address)
    except ValueError:
        return address


# --- headers ---------------------------------------------------------------------------------


def _headers(message: Message, name: str) -> list[str]:
    """Every value of a header, unfolded; raw 8-bit bytes read as UTF-8 (else Latin-1)."""
    values = []
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            text = re.sub(r"\r?\n(?=[ \t])", "", str(value))
            data = text.encode("utf-8", "surrogateescape")
            try:
                values.append(data.decode("utf-8"))
            except UnicodeDecodeError:
                values.append(data.decode("latin-1"))
    return values


def _header(message: Message, name: str) -> str | None:
    values = _headers(message, name)
    return values[0] if values else None


def _words(value: str) -> str:
    """RFC 2047 encoded words decoded (an unknown charset keeps the text as it came)."""
    if "=?" in value:
        # Not decodable (an unknown charset): the encoded form is still the best text there is.
        with contextlib.suppress(LookupError, UnicodeError, ValueError, MessageError):
            words = [(text, _wider(charset)) for text, charset in decode_header(value)]
            value = str(make_header(words))
    return " ".join(value.split())


def _ids(values: list[str]) -> tuple[str, ...]:
    found = re.findall(r"<[^<>\s]+>", " ".join(values))
    if not found:  # some mailers drop the brackets
        found = [f"<{word.strip('<>')}>" for v in values for word in v.split() if "@" in word]
    return tuple(dict.fromkeys(found))


def _addresses(message: Message, names: Iterable[str]) -> tuple[str, ...]:
    values = [v for name in names for v in _headers(message, name)]
    found = (address.strip().lower() for _, address in getaddresses(values))
    return tuple(dict.fromkeys(a for a in found if "@" in a))


def _param(part: Message, name: str) -> str:
    value = part.get_param(name)
    return value.lower() if isinstance(value, str) else ""


# --- body ------------------------------------------------------------------------------------


def _body(message: Message) -> tuple[str, str]:
    """(the whole body as text, the text to find the reply in). The first text/plain part of
    the message itself wins; otherwise its HTML, where quote containers are dropped."""
    parts = list(_text_parts(message))
    plain = next((p for p in parts if p.get_content_subtype() == "plain"), None)
    if plain is not None:
        text = _part_text(plain)
        return text, text
    html = next((p for p in parts if p.get_content_subtype() == "html"), None)
    if html is None:
        return "", ""
    source = _part_text(html)
    return html_to_text(source), html_to_text(source, drop_quotes=True)


def _text_parts(part: Message) -> Iterator[Message]:
    """Text parts of the message itself: no attachments, nothing inside an attached message."""
    if part.is_multipart():
        for child in _children(part):
            if child.get_content_maintype() != "message":
                yield from _text_parts(child)
    elif part.get_content_maintype() == "text" and part.get_content_subtype() in ("plain", "html"):
        disposition = str(part.get("Content-Disposition") or "").lower()
        if not disposition.startswith("attachment"):
            yield part


def _children(part: Message) -> list[Message]:
    payload = part.get_payload()
    return [c for c in payload if isinstance(c, Message)] if isinstance(payload, list) else []


def _part_text(part: Message) -> str:
    """The decoded text of a leaf part: transfer encoding undone, then its charset (a wrong or
    unknown one falls back to UTF-8, and bytes that do not fit become U+FFFD)."""
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        data = str(part.get_payload()).encode("utf-8", "surrogateescape")
    text = _decode(data, part.get_content_charset())
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _param(part, "format") == "flowed":
        text = unflow(text, delsp=_param(part, "delsp") == "yes")
    return text.strip()


# What a charset label stands for in mail as it is written (the WHATWG Encoding Standard's
# decoders): clients label Windows code pages with the ISO and national names they extend, so
# windows-1252 text comes as ISO-8859-1 (its curly apostrophes, dashes and euro sign read strictly
# are control characters), Windows-31J as Shift_JIS (its circled digits and company signs lost),
# Unified Hangul as ks_c_5601-1987, GBK as GB2312. Keys are Python's names for a label
# (codecs.lookup), or the label itself where Python knows none.
_WIDER = {
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "windows-874": "cp874",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "euc_kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "big5": "big5hkscs",
    "x-mac-roman": "mac_roman",
    "iso-8859-8-i": "iso8859-8",
}


def _wider(charset: str | None) -> str | None:
    """The codec that reads what `charset` labels in practice (itself when nothing wider)."""
    if not charset:
        return charset
    label = charset.strip().lower()
    try:
        name = codecs.lookup(label).name
    except LookupError:
        name = label
    return _WIDER.get(name, charset)


def _decode(data: bytes, charset: str | None) -> str:
    """`data` in the code page its label stands for, else as labelled, else UTF-8; text labelled
    US-ASCII that is not UTF-8 either is read as windows-1252. Bytes that fit none become U+FFFD."""
    wider = _wider(charset)
    ascii_label = _is_ascii(charset)
    tried = (charset, "utf-8", "cp1252") if ascii_label else (wider, charset, "utf-8")
    for candidate in tried:
        try:
            return data.decode(candidate or "utf-8")
        except (LookupError, ValueError):  # unknown, or not a text codec
            continue
    try:
        return data.decode(wider or "utf-8", errors="replace")
    except (LookupError, ValueError):  # unknown, or not a text codec
        return data.decode("utf-8", errors="replace")


def _is_ascii(charset: str | None) -> bool:
    if not charset:
        return False
    try:
        return codecs.lookup(charset.strip()).name == "ascii"
    except LookupError:
        return False


# --- machines: auto-replies and delivery reports ----------------------------------------------

_OUT_OF_OFFICE = re.compile(
    r"^\s*\[?\s*(?:out of (?:the )?office|automatic reply|auto[ -]?reply|autoreply|"
    r"auto[ -]?response|auto:|ooo\b|i am out of (?:the )?office|i'm out of (?:the )?office|"
    r"away from (?:the|my) office|abwesenheitsnotiz|automatische antwort|réponse automatique|"
    r"absence du bureau|respuesta automática|fuera de la oficina|risposta automatica|"
    r"fuori ufficio|automatisch antwoord|resposta automática|autosvar)",
    re.IGNORECASE,
)
# "list" is not among them: a person's reply through a mailing list (a Google Group) carries it
# too; a list's own machine mail says so by Auto-Submitted or its subject, checked here as well.
_AUTO_PRECEDENCE = frozenset(("auto_reply", "bulk", "junk"))


def _automatic(
    message: Message, subject: str | None, sender: str, bounce: Bounce | None
) -> str | None:
    """Why a machine sent this (RFC 3834 §5 and the common practice around it), or None.
    X-Auto-Response-Suppress is not a sign: Outlook puts it on ordinary mail people write."""
    if bounce is not None:
        return "spam complaint" if bounce.complaint else "delivery status notification"
    if message.get_content_type() == "multipart/report":
        return f"automatic report ({_param(message, 'report-type') or 'of no stated type'})"
    submitted = (_header(message, "Auto-Submitted") or "").split(";")[0].strip().lower()
    if submitted and submitted != "no":
        return f"Auto-Submitted: {submitted}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
        if _header(message, name) is not None:
            return f"{name} header"
    # Exchange stamps what a mailbox rule sent (its out-of-office, an automatic answer, a
    # redirect) with this header, naming the mailbox whose rule acted; the out-of-office carries
    # no Auto-Submitted, and its subject is in the mailbox's language, so it is the one sign of
    # it in every language. Only the sender's own mailbox's rule makes the mail automatic: a rule
    # of the recipient's (the business's ar@ redirecting to the inbound service) passes on what
    # a person wrote.
    if sender and sender in _addresses(message, ("X-MS-Exchange-Inbox-Rules-Loop",)):
        return "sent by a mailbox rule (X-MS-Exchange-Inbox-Rules-Loop)"
    precedence = (_header(message, "Precedence") or "").strip().lower()
    if precedence in _AUTO_PRECEDENCE:
        return f"Precedence: {precedence}"
    if subject and _OUT_OF_OFFICE.match(subject):
        return "subject of an out-of-office reply"
    if sender.partition("@")[0] in ("mailer-daemon", "postmaster"):
        return "sent by a mail system (MAILER-DAEMON)"
    if bounce_text.null_sender(message):
        return "from the null sender (sent by a mail system)"
    if (_header(message, "Return-Path") or "").strip() == "<>":
        return "empty return path (sent by a mail system)"
    # A no-reply address alone is no sign: an accounts-payable portal relays what a person wrote
    # (a dispute) from one. Amazon SES's notifications by SNS say what they are in their JSON.
    if sender.endswith(ses_feedback.SNS_SENDER):
        feedback = ses_feedback.read(bounce_text.body_text(message))
        if feedback is not None:
            return f"an Amazon SES {feedback.kind} notification"
    return None
