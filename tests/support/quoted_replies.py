# ruff: noqa: RUF001  (words in other alphabets are the point of these samples)
"""Replies that quote our reminder below the customer's words, as mail clients write them in
other languages: Outlook's header block (From / Sent / To / Subject) and Gmail's attribution line,
each in its own language. Written for these tests (dates and names are made up)."""

from __future__ import annotations

import textwrap

SENDER = "Accounts Receivable <ar@brightwater.example>"

# language: (From, Sent, To, Subject) as Outlook labels them
OUTLOOK_FIELDS: dict[str, tuple[str, str, str, str]] = {
    "English": ("From:", "Sent:", "To:", "Subject:"),
    "French": ("De :", "Envoyé :", "À :", "Objet :"),
    "German": ("Von:", "Gesendet:", "An:", "Betreff:"),
    "Dutch": ("Van:", "Verzonden:", "Aan:", "Onderwerp:"),
    "Italian": ("Da:", "Inviato:", "A:", "Oggetto:"),
    "Spanish": ("De:", "Enviado el:", "Para:", "Asunto:"),
    "Portuguese": ("De:", "Enviado:", "Para:", "Assunto:"),
    "Swedish": ("Från:", "Skickat:", "Till:", "Ämne:"),
    "Danish": ("Fra:", "Sendt:", "Til:", "Emne:"),
    "Finnish": ("Lähettäjä:", "Lähetetty:", "Vastaanottaja:", "Aihe:"),
    "Polish": ("Od:", "Wysłano:", "Do:", "Temat:"),
    "Czech": ("Od:", "Odesláno:", "Komu:", "Předmět:"),
    "Hungarian": ("Feladó:", "Elküldve:", "Címzett:", "Tárgy:"),
    "Russian": ("От:", "Отправлено:", "Кому:", "Тема:"),
    "Ukrainian": ("Від:", "Надіслано:", "Кому:", "Тема:"),
    "Turkish": ("Kimden:", "Gönderildi:", "Kime:", "Konu:"),
    "Greek": ("Από:", "Στάλθηκε:", "Προς:", "Θέμα:"),
    "Romanian": ("De la:", "Trimis:", "Către:", "Subiect:"),
    "Japanese": ("差出人:", "送信日時:", "宛先:", "件名:"),
    "Chinese": ("发件人:", "发送时间:", "收件人:", "主题:"),
    "Korean": ("보낸 사람:", "보낸 날짜:", "받는 사람:", "제목:"),
}
# A language whose labels arbot knows no word of: only our own text shows where the quote is.
UNKNOWN_FIELDS = ("Oddi wrth:", "Anfonwyd:", "At:", "Pwnc:")

# language: Gmail's (or Apple Mail's) line above a "> " quote
ATTRIBUTIONS: dict[str, str] = {
    "Russian": f"пн, 16 мар. 2026 г. в 09:00, {SENDER}:",
    "Russian (Apple Mail)": f"16 марта 2026 г., в 9:00, {SENDER} написал(а):",
    "Polish": f"pon., 16 mar 2026 o 09:00 {SENDER} napisał(a):",
    "Japanese": f"2026年3月16日(月) 9:00 {SENDER}:",
    "Chinese": f"{SENDER} 于2026年3月16日周一 09:00写道：",
    "Turkish": f"16 Mar 2026 Pzt, 09:00 tarihinde {SENDER} şunu yazdı:",
    "Finnish": "ma 16.3.2026 klo 9.00 Accounts Receivable (ar@brightwater.example) kirjoitti:",
    "Greek": f"Στις Δευ 16 Μαρ 2026 στις 9:00 π.μ., ο/η {SENDER} έγραψε:",
    "Korean": f"2026년 3월 16일 (월) 오전 9:00, {SENDER}님이 작성:",
    "Hungarian": f"{SENDER} ezt írta (időpont: 2026. márc. 16., H, 9:00):",
    "Czech": f"po 16. 3. 2026 v 9:00 odesílatel {SENDER} napsal:",
    "Swedish": f"Den mån 16 mars 2026 kl 09:00 skrev {SENDER}:",
}


def outlook_quote(
    own: str, fields: tuple[str, str, str, str], sent: str, wrap: int = 0, rule: bool = True
) -> str:
    """`own` above Outlook's rule (unless `rule` is false, as new Outlook and phones write it),
    its header block in the language of `fields`, and `sent` unprefixed (re-wrapped to `wrap`
    columns when given)."""
    frm, when, to, subject = fields
    quoted = _wrapped(sent, wrap)
    line = "________________________________\n" if rule else ""
    return (
        f"{own}\n\n{line}{frm} {SENDER}\n"
        f"{when} 16.03.2026 09:00\n{to} Maria Garcia <ap@ridgeline.example>\n"
        f"{subject} Checking in on 2 open invoices\n\n{quoted}\n"
    )


def gmail_quote(own: str, attribution: str, sent: str, wrap: int = 0) -> str:
    """`own` above an attribution line and `sent` quoted with "> "."""
    quoted = "\n".join(f"> {line}" if line else ">" for line in _wrapped(sent, wrap).split("\n"))
    return f"{own}\n\n{attribution}\n\n{quoted}\n"


def _wrapped(text: str, width: int) -> str:
    if not width:
        return text
    return "\n".join(
        textwrap.fill(line, width) if line.strip() else "" for line in text.split("\n")
    )
