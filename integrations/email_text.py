"""The text a person wrote in an email: HTML turned into plain text, RFC 3676 format=flowed lines
joined again, and quoted history and signatures cut from a reply.

Pure functions on strings; integrations.email_in applies them to the parts of a parsed message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from html.parser import HTMLParser
from itertools import islice

# --- format=flowed -----------------------------------------------------------------------------


def unflow(text: str, delsp: bool) -> str:
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


# --- HTML --------------------------------------------------------------------------------------


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
    """The text a browser would show, line breaks included; with `drop_quotes`, without the
    quoted history mail clients mark up."""
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
# "… wrote:" as mail clients write it in other languages (with a date or an address on the line).
_WROTE = re.compile(
    r"(?:^|\s)(?:wrote|schrieb|schreef|a\s+écrit|escribió|ha\s+scritto|escreveu|skrev|kirjoitti"
    r"|написал(?:\(а\)|а)?|написав(?:\(ла\)|ла)?|пишет|napisał(?:\(a\)|a)?|napsal(?:\(a\)|a)?"  # noqa: RUF001
    r"|napísal(?:\(a\)|a)?|napisao|napisala|şunu\s+yazdı|yazdı|έγραψε|a\s+scris|írta(?:\s*\(.*\))?"  # noqa: RUF001
    r"|rakstīja|kirjutas|parašė|menulis|đã\s+viết|כתב(?:\(ה\)|ה)?|كتب)\s*[:\uff1a]$"
    r"|(?:写道|寫道|님이\s*작성|のメッセージ|さんは書きました)\s*[:\uff1a]$",
    re.IGNORECASE,
)
# Gmail in most languages: "<date>, <name> <address>:" with no verb at all.
_ADDRESSED = re.compile(r"[<(\[]\s*(?:mailto:)?[^<>()\[\]\s]+@[^<>()\[\]\s]+\s*[>)\]].*[:\uff1a]$")
_SEPARATOR = re.compile(
    r"^(?:[-_=*]{2,}\s*(?:original message|forwarded message|ursprüngliche nachricht|"
    r"weitergeleitete nachricht|message d'origine|message transféré|mensaje original|"
    r"messaggio originale|oorspronkelijk bericht|mensagem original|originalmeddelande|"
    r"oprindelig meddelelse|opprinnelig melding|alkuperäinen viesti|oryginalna wiadomość|"
    r"původní zpráva|pôvodná správa|eredeti üzenet|исходное сообщение|пересылаемое сообщение|"
    r"оригінальне повідомлення|orijinal ileti|αρχικό μήνυμα|mesaj original|原始邮件|原始郵件|"
    r"元のメッセージ|원본 메시지|izvorna poruka|izvirno sporočilo|оригинално съобщение|"
    r"pesan asli|thư gốc|ข้อความต้นฉบับ)"
    r"\s*[-_=*]*|begin forwarded message:)$",
    re.IGNORECASE,
)
_ATTRIBUTION_START = re.compile(r"^(?:on|am|le|el|il|op|em|den)\s", re.IGNORECASE)
# The header block Outlook (and others) put above a quoted message, in the languages they speak:
# From, Sent or Date, To or Cc or Subject.
_FIELD = r"^\s*\*?(?:{})\s*[:\uff1a]\*?(?:\s|$)"
_FROM_FIELD = re.compile(
    _FIELD.format(
        "from|von|de|da|van|från|fra|od|lähettäjä|feladó|от|від|kimden|από|de la|差出人|发件人"
        "|寄件者|寄件人|보낸 사람|šalje|pošiljatelj|מאת|من|dari|từ|จาก|nuo|no|saatja|afzender"
        "|remitente|expéditeur|absender|avsändare|mittente|remetente"
    ),
    re.I,
)
_SENT_FIELD = re.compile(
    _FIELD.format(
        "sent|date|gesendet|datum|envoyé|enviado|enviado el|fecha|inviato|data|verzonden|skickat"
        "|sendt|lähetetty|päivämäärä|wysłano|odesláno|odoslané|dátum|elküldve|отправлено"
        "|надіслано|дата|gönderildi|tarih|στάλθηκε|ημερομηνία|trimis|送信日時|日付|发送时间|日期"
        "|寄件日期|보낸 날짜|날짜|poslano|изпратено|נשלח|تم الإرسال|dikirim|tanggal|đã gửi|ngày"
        "|ส่ง|วันที่|išsiųsta|nosūtīts|saadetud|enviat"
    ),
    re.I,
)
_TO_FIELD = re.compile(
    _FIELD.format(
        "to|cc|an|à|a|para|aan|till|til|do|komu|címzett|кому|до|kime|προς|către|宛先|收件人"
        "|收件者|받는 사람|prima|za|אל|إلى|kepada|đến|ถึง|kam|adressaat|vastaanottaja|kopio|抄送"
        "|副本|subject|betreff|objet|asunto|oggetto|onderwerp|ämne|emne|assunto|temat|aihe"
        "|předmět|predmet|tárgy|тема|относно|konu|θέμα|subiect|件名|主题|主旨|제목|zadeva|נושא"
        "|الموضوع|subjek|perihal|chủ đề|เรื่อง|tēma|teema|assumpte"
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
    if index + 1 >= len(lines):
        return 0
    second = lines[index + 1].strip()
    # A whole attribution of its own on the next line (not the end of an address wrapped at "<")
    if _is_attribution(second) and not re.match(r"[^\s<>]*@[^\s<>]*>", second):
        return 0
    first = lines[index].strip()
    if not _ATTRIBUTION_START.match(first) or first.endswith((".", "!", "?")):
        return 0
    return 2 if _is_attribution(f"{first} {lines[index + 1].strip()}") else 0


def _is_attribution(line: str) -> bool:
    if len(line) >= 300 or not re.search(r"[\d@]", line):
        return False
    return bool(_ATTRIBUTION.match(line) or _WROTE.search(line) or _ADDRESSED.search(line))


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
