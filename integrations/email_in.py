"""Inbound email: one raw RFC 5322 message in, what the rest of arbot needs out.

Who sent it, what they actually wrote (quoted history and signature removed), the ids and
per-reminder addresses it can be matched by (RFC 5322 threading, RFC 5233 subaddress tokens, VERP),
whether a machine sent it (RFC 3834 auto-replies, out-of-office subjects) and, for a delivery status
notification (RFC 3464), which address failed and why. A malformed message never raises: every
part is read best-effort; only empty input is refused.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import compat32
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser
from itertools import islice

from bot.outbox import verify_token

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
# purpose (as signed by bot.outbox.token) -> where its token sits in the local part
TOKEN_PREFIXES = {"reply": "+r.", "unsubscribe": "+u.", "bounce": "bounce+"}


@dataclass(frozen=True)
class Bounce:
    """What a delivery status notification says about one of our messages."""

    action: str | None  # "failed", "delayed", "delivered", ... for the recipient reported on
    recipients: tuple[str, ...]  # every address the report is about
    failed_recipients: tuple[str, ...]  # those whose Action is "failed"
    status: str | None  # e.g. "5.1.1"
    permanent: bool  # failed with a 5.x.x status: the address will not work
    diagnostic: str | None  # e.g. "550 5.1.1 <jo@example.org>: User unknown"
    original_message_id: str | None  # the Message-ID of our message it is about

    @property
    def summary(self) -> str:
        code = f" ({self.status})" if self.status else ""
        if self.action == "delayed":
            return f"delivery delayed{code}, not a failure: the mail system is still trying"
        if self.permanent:
            return f"delivery failed permanently{code}: the address does not accept mail"
        if self.action == "failed":
            return f"delivery failed{code}, possibly temporarily"
        return f"delivery report: {self.action or 'no action given'}{code}"


@dataclass(frozen=True)
class InboundEmail:
    sender: str  # bare address, lowercased; "" when the message names none
    sender_name: str | None
    subject: str | None
    message_id: str | None  # with its angle brackets, as stored on Reminder.message_id
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    recipients: tuple[str, ...]  # lowercased, from RECIPIENT_HEADERS
    text: str  # what the sender wrote: quoted history and signature removed
    full_text: str  # the whole body as text (HTML converted when there is no text part)
    automatic: str | None  # why a machine sent it; None when a person did
    bounce: Bounce | None  # for a delivery status notification


def parse(raw: bytes) -> InboundEmail:
    """Read a raw RFC 5322 message. Raises ValueError only for empty input."""
    if not raw or not raw.strip():
        raise ValueError("empty email: expected a raw RFC 5322 message (headers, blank line, body)")
    message = BytesParser(policy=compat32).parsebytes(raw)
    name, address = parseaddr(_header(message, "From") or "")
    subject = _words(_header(message, "Subject") or "") or None
    full_text, reply_source = _body(message)
    bounce = _bounce(message)
    sender = address.strip().lower()
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


def tokens(recipients: Iterable[str], prefix: str) -> tuple[str, ...]:
    """The tokens after `prefix` in the recipients' local parts: "+r." (reply), "+u."
    (unsubscribe) sit after the mailbox name (`ar+r.<token>@`), "bounce+" starts it (VERP)."""
    found: list[str] = []
    for address in recipients:
        local = address.rpartition("@")[0].lower()
        at = local.find(prefix)
        if at < 0 or (at == 0) == prefix.startswith("+"):
            continue
        value = local[at + len(prefix) :]
        if value and value not in found:
            found.append(value)
    return tuple(found)


def reminder_ids(recipients: Iterable[str], secret_key: str, purpose: str) -> tuple[int, ...]:
    """The reminders whose signed `purpose` token ("reply", "unsubscribe", "bounce") is among the
    recipients. A forged or tampered token is left out (tokens() still shows it)."""
    found = (
        verify_token(secret_key, t, purpose) for t in tokens(recipients, TOKEN_PREFIXES[purpose])
    )
    return tuple(dict.fromkeys(i for i in found if i is not None))


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
            value = str(make_header(decode_header(value)))
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
        text = _unflow(text, delsp=_param(part, "delsp") == "yes")
    return text.strip()


def _decode(data: bytes, charset: str | None) -> str:
    for candidate in (charset, "utf-8"):
        try:
            return data.decode(candidate or "utf-8")
        except (LookupError, ValueError):  # unknown, or not a text codec
            continue
    try:
        return data.decode(charset or "utf-8", errors="replace")
    except (LookupError, ValueError):  # unknown, or not a text codec
        return data.decode("utf-8", errors="replace")


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: a line ending in a space continues on the next one."""
    lines: list[str] = []
    carry, carry_depth = "", 0
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        content = content[1:] if content.startswith(" ") else content  # space-stuffing
        if carry and depth == carry_depth:
            content = carry + content
        elif carry:
            lines.append(">" * carry_depth + carry)
        carry, carry_depth = "", depth
        if content.endswith(" ") and content != "-- ":
            carry = content[:-1] if delsp else content
            continue
        lines.append(">" * depth + (" " if depth and content else "") + content)
    if carry:
        lines.append(">" * carry_depth + carry)
    return "\n".join(lines)


class _HtmlText(HTMLParser):
    """HTML to plain text: line breaks where the browser would put them, no styles or scripts,
    and (with drop_quotes) no Gmail / Outlook / Apple / Thunderbird quoted history."""

    SKIPPED = frozenset(("style", "script", "head", "title", "template"))
    BLOCKS = frozenset(
        [
            "div",
            "p",
            "tr",
            "li",
            "ul",
            "ol",
            "table",
            "blockquote",
            "pre",
            "hr",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "section",
            "article",
            "header",
            "footer",
            "address",
            "center",
        ]
    )
    QUOTE_CLASSES = frozenset(
        [
            "gmail_quote",
            "gmail_quote_container",
            "gmail_signature",
            "yahoo_quoted",
            "moz-cite-prefix",
            "protonmail_quote",
        ]
    )
    # Outlook's reply header and everything after it (received copies prefix ids with "x_")
    CUT_IDS = frozenset(
        ("divRplyFwdMsg", "appendonsend", "mail-editor-reference-message-container")
    )

    def __init__(self, drop_quotes: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.drop_quotes = drop_quotes
        self.lines: list[str] = []
        self.line = ""
        self.skip_tag: str | None = None  # inside a dropped element: its tag and nesting depth
        self.skip_depth = 0
        self.stopped = False
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.stopped:
            return
        if self.skip_tag:
            self.skip_depth += tag == self.skip_tag
            return
        found = dict(attrs)
        classes = set((found.get("class") or "").split())
        element_id = (found.get("id") or "").removeprefix("x_")
        quote = self.drop_quotes and (tag == "blockquote" or bool(classes & self.QUOTE_CLASSES))
        if tag in self.SKIPPED or quote:
            self.skip_tag, self.skip_depth = tag, 1
        elif self.drop_quotes and element_id in self.CUT_IDS:
            self.stopped = True
        elif tag == "br":
            self._newline()
        elif tag in self.BLOCKS:
            self.pre += tag == "pre"
            self._block(paragraph=tag == "p" and "MsoNormal" not in classes)

    def handle_endtag(self, tag: str) -> None:
        if self.skip_tag:
            if tag == self.skip_tag:
                self.skip_depth -= 1
                self.skip_tag = self.skip_tag if self.skip_depth else None
        elif not self.stopped and tag in self.BLOCKS:
            if tag == "pre" and self.pre:
                self.pre -= 1
            self._block(paragraph=tag == "p")

    def handle_data(self, data: str) -> None:
        if self.stopped or self.skip_tag:
            return
        if self.pre:
            first, *rest = data.split("\n")
            self.line += first
            for line in rest:
                self._newline()
                self.line = line
        else:
            self.line += re.sub(r"[ \t\r\n\f]+", " ", data)

    def _newline(self) -> None:
        self.lines.append(self.line.replace("\xa0", " ").strip())
        self.line = ""

    def _block(self, paragraph: bool) -> None:
        if self.line.strip():
            self._newline()
        if paragraph and self.lines and self.lines[-1]:
            self.lines.append("")

    def text(self) -> str:
        self._newline()
        return _tidy(self.lines)


def html_to_text(html: str, drop_quotes: bool = False) -> str:
    parser = _HtmlText(drop_quotes)
    parser.feed(html)
    parser.close()
    return parser.text()


def _tidy(lines: Iterable[str]) -> str:
    """Trailing spaces off, runs of blank lines made one, no blank lines at either end."""
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in lines)).strip()


# --- what the sender wrote -------------------------------------------------------------------

_ATTRIBUTION = re.compile(
    r"^(?:on\s.+\swrote|am\s.+\sschrieb.*|le\s.+\sa\s+écrit|el\s.+\sescribió|il\s.+\sha\s+scritto"
    r"|op\s.+\sschreef.*|em\s.+\sescreveu|den\s.+\sskrev.*|.+<[^<>\s]+@[^<>\s]+>\s+wrote)\s*:$",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(
    r"^(?:[-_=*]{2,}\s*(?:original message|forwarded message|ursprüngliche nachricht|"
    r"weitergeleitete nachricht|message d'origine|message transféré|mensaje original|"
    r"messaggio originale|oorspronkelijk bericht|mensagem original|originalmeddelande)"
    r"\s*[-_=*]*|begin forwarded message:)$",
    re.IGNORECASE,
)
_ATTRIBUTION_START = re.compile(r"^(?:on|am|le|el|il|op|em|den)\s", re.IGNORECASE)
_FIELD = r"^\s*\*?(?:{})\s*:\*?(?:\s|$)"
_FROM_FIELD = re.compile(_FIELD.format("from|von|de|da|van|från|fra|od"), re.I)
_SENT_FIELD = re.compile(
    _FIELD.format("sent|date|gesendet|datum|envoyé|enviado|fecha|inviato|data|verzonden|skickat"),
    re.I,
)
_TO_FIELD = re.compile(
    _FIELD.format(
        "to|cc|an|à|a|para|aan|till|til|do|subject|betreff|objet|asunto|oggetto|onderwerp|ämne"
        "|emne|assunto|temat"
    ),
    re.I,
)
_MOBILE = re.compile(
    r"^(?:sent from my \S.{0,40}|sent from (?:mail|outlook|yahoo mail|gmail)\b.{0,40}"
    r"|get outlook for \S+|von meinem \S+ gesendet|envoyé de mon \S+|enviado desde mi \S+"
    r"|enviado do meu \S+|inviato da(?:l mio)? \S+|verzonden vanaf mijn \S+|skickat från min \S+)$",
    re.IGNORECASE,
)
_SIGNOFF = re.compile(
    r"^(?:(?:many |kind |best |warm |warmest |with )?(?:thanks|thank you|regards|wishes)"
    r"(?: again| so much| in advance)?|best|cheers|sincerely|yours(?: truly| sincerely)?|"
    r"respectfully|thx|mit freundlichen grüßen|viele grüße|beste grüße|liebe grüße|grüße|"
    r"cordialement|bien à vous|saludos|atentamente|un saludo|cordiali saluti|saluti|"
    r"met vriendelijke groet(?:en)?|groeten|atenciosamente|med vänlig hälsning)[\s,.!]*$",
    re.IGNORECASE,
)
_ABBREVIATION = re.compile(r"\b(?:inc|ltd|co|corp|llc|jr|sr|s\.a|gmbh)\.$", re.IGNORECASE)


def strip_reply(text: str) -> str:
    """What the sender wrote: quoted history (attribution lines, Outlook header blocks, `>`
    lines) and signatures (`-- `, "Sent from my iPhone", a sign-off with a short name block at
    the end) removed. Conservative: a line that may be the sender's own sentence stays."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    lines = _cut_history(lines)
    lines = [line for line in lines if not line.startswith(">")]
    for index, line in enumerate(lines):
        if line == "--" or _MOBILE.match(line.strip()):
            lines = lines[:index]
            break
    return _tidy(_cut_signoff(lines))


def _cut_history(lines: list[str]) -> list[str]:
    """Cut at the first quoted message; an attribution above a `>`-marked quote goes alone, so an
    answer written below or between quotes stays."""
    dropped: set[int] = set()
    cut = len(lines)
    for index, line in enumerate(lines):
        if index in dropped:
            continue
        if _SEPARATOR.match(line.strip()):
            cut = index
            break
        if _header_block_at(lines, index):
            cut = _separator_before(lines, index)
            break
        span = _attribution_at(lines, index)
        if span:
            following = (x for x in islice(lines, index + span, None) if x.strip())
            if not next(following, "").startswith(">"):
                cut = index
                break
            dropped.update(range(index, index + span))
    return [line for index, line in enumerate(lines[:cut]) if index not in dropped]


def _attribution_at(lines: list[str], index: int) -> int:
    """How many lines the "On <date>, <name> wrote:" at `index` takes: 0 (none), 1, or 2 (Gmail
    wraps a long one; then the first line starts like one and is not a finished sentence)."""
    if _is_attribution(lines[index].strip()):
        return 1
    if index + 1 >= len(lines) or _is_attribution(lines[index + 1].strip()):
        return 0
    first = lines[index].strip()
    if not _ATTRIBUTION_START.match(first) or first.endswith((".", "!", "?")):
        return 0
    return 2 if _is_attribution(f"{first} {lines[index + 1].strip()}") else 0


def _is_attribution(line: str) -> bool:
    return len(line) < 300 and bool(_ATTRIBUTION.match(line)) and bool(re.search(r"[\d@]", line))


def _header_block_at(lines: list[str], index: int) -> bool:
    """A quoted message's header block: From, then closely Sent or Date, and To or Subject."""
    if not _FROM_FIELD.match(lines[index]):
        return False
    following = [line for line in lines[index + 1 : index + 8] if line.strip()][:4]
    return any(_SENT_FIELD.match(f) for f in following) and any(
        _TO_FIELD.match(f) for f in following
    )


def _separator_before(lines: list[str], index: int) -> int:
    """Include the rule Outlook draws above its header block ("_____", "-----")."""
    before = index - 1
    while before >= 0 and not lines[before].strip():
        before -= 1
    if before >= 0 and re.fullmatch(r"\s*[-_]{10,}\s*", lines[before]):
        return before
    return index


def _cut_signoff(lines: list[str]) -> list[str]:
    """Drop a closing "Thanks," / "Best regards" and the short name block under it."""
    for index in range(len(lines) - 1, -1, -1):
        if _SIGNOFF.match(lines[index].strip()):
            tail = [line.strip() for line in lines[index + 1 :] if line.strip()]
            before = any(line.strip() for line in lines[:index])
            if before and len(tail) <= 6 and all(_name_like(line) for line in tail):
                return lines[:index]
            return lines
    return lines


def _name_like(line: str) -> bool:
    """A name, title, company or contact line, not a sentence."""
    if len(line) > 60 or line.endswith(("?", "!")) or re.match(r"p\.?s\b", line, re.I):
        return False
    if re.search(r"@|https?://|www\.|^[^a-z]*\+?\(?\d[\d\s().-]{6,}$", line, re.I):
        return True
    if line.endswith(".") and not _ABBREVIATION.search(line):
        return False
    words = line.split()
    return len(words) <= 6 and sum(w[0].islower() for w in words) <= 1


# --- machines: auto-replies and delivery reports ----------------------------------------------

_OUT_OF_OFFICE = re.compile(
    r"^\s*\[?\s*(?:out of (?:the )?office|automatic reply|auto[ -]?reply|autoreply|"
    r"auto[ -]?response|auto:|ooo\b|i am out of (?:the )?office|i'm out of (?:the )?office|"
    r"away from (?:the|my) office|abwesenheitsnotiz|automatische antwort|réponse automatique|"
    r"absence du bureau|respuesta automática|fuera de la oficina|risposta automatica|"
    r"fuori ufficio|automatisch antwoord|resposta automática|autosvar)",
    re.IGNORECASE,
)
_AUTO_PRECEDENCE = frozenset(("auto_reply", "bulk", "junk", "list"))


def _automatic(
    message: Message, subject: str | None, sender: str, bounce: Bounce | None
) -> str | None:
    """Why a machine sent this (RFC 3834 §5 and the common practice around it), or None.
    X-Auto-Response-Suppress is not a sign: Outlook puts it on ordinary mail people write."""
    if bounce is not None:
        return "delivery status notification"
    if message.get_content_type() == "multipart/report":
        return f"automatic report ({_param(message, 'report-type') or 'of no stated type'})"
    submitted = (_header(message, "Auto-Submitted") or "").split(";")[0].strip().lower()
    if submitted and submitted != "no":
        return f"Auto-Submitted: {submitted}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
        if _header(message, name) is not None:
            return f"{name} header"
    precedence = (_header(message, "Precedence") or "").strip().lower()
    if precedence in _AUTO_PRECEDENCE:
        return f"Precedence: {precedence}"
    if subject and _OUT_OF_OFFICE.match(subject):
        return "subject of an out-of-office reply"
    if sender.partition("@")[0] in ("mailer-daemon", "postmaster"):
        return "sent by a mail system (MAILER-DAEMON)"
    if (_header(message, "Return-Path") or "").strip() == "<>":
        return "empty return path (sent by a mail system)"
    return None


@dataclass(frozen=True)
class _RecipientStatus:
    address: str
    action: str | None
    status: str | None
    diagnostic: str | None


def _bounce(message: Message) -> Bounce | None:
    if message.get_content_type() != "multipart/report":
        return None
    if _param(message, "report-type") != "delivery-status":
        return None
    reports: list[_RecipientStatus] = []
    original: str | None = None
    for part in _children(message):
        kind = part.get_content_type()
        if kind in ("message/delivery-status", "message/global-delivery-status"):
            reports = [_recipient_status(b) for b in _status_blocks(part) if _is_recipient(b)]
        elif kind in ("message/rfc822", "message/global"):
            for attached in _children(part)[:1]:
                original = original or next(iter(_ids(_headers(attached, "Message-ID"))), None)
        elif kind.endswith("rfc822-headers") or kind == "message/global-headers":
            headers = HeaderParser(policy=compat32).parsestr(_part_text(part))
            original = original or next(iter(_ids(_headers(headers, "Message-ID"))), None)
    failed = [r for r in reports if r.action == "failed"]
    main = failed[0] if failed else next(iter(reports), None)
    return Bounce(
        action=main.action if main else None,
        recipients=tuple(dict.fromkeys(r.address for r in reports if r.address)),
        failed_recipients=tuple(dict.fromkeys(r.address for r in failed if r.address)),
        status=main.status if main else None,
        permanent=bool(main and main.action == "failed" and (main.status or "").startswith("5")),
        diagnostic=main.diagnostic if main else None,
        original_message_id=original,
    )


def _status_blocks(part: Message) -> list[Message]:
    """The field groups of a message/delivery-status part: per message, then per recipient."""
    if part.is_multipart():
        return _children(part)
    text = _part_text(part)
    return [HeaderParser(policy=compat32).parsestr(b) for b in re.split(r"\n\s*\n", text)]


def _is_recipient(block: Message) -> bool:
    return any(_header(block, name) for name in ("Final-Recipient", "Original-Recipient", "Action"))


def _recipient_status(block: Message) -> _RecipientStatus:
    def typed(name: str) -> str | None:  # "rfc822; jo@example.org" -> "jo@example.org"
        value = _header(block, name)
        return " ".join(value.partition(";")[2].split()) if value and ";" in value else value

    address = (typed("Final-Recipient") or typed("Original-Recipient") or "").strip("<> ")
    diagnostic = typed("Diagnostic-Code")
    found = re.search(r"\b[245]\.\d{1,3}\.\d{1,3}\b", f"{_header(block, 'Status')} {diagnostic}")
    action = (_header(block, "Action") or "").strip().lower().split(" ")[0] or None
    return _RecipientStatus(address.lower(), action, found.group() if found else None, diagnostic)
