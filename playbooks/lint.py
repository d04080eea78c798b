"""Phrases no automated message may carry, and what every message must carry.

Applies to every step that is not human-only. A person may write such words in an escalation; a
machine never sends them (threats and false statements: 15 USC 1692e; Reg F opt-out notice).
Each language the bundled templates are written in (Spanish, French, German) has its own list of
such phrases and its own ways of saying how to opt out; English is always checked too.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from playbooks.render import Rendered
from playbooks.sms import segments_problem

FORBIDDEN: tuple[tuple[str, str], ...] = (
    (r"\blegal\s+(action|proceedings|steps|remedies)\b", "legal action"),
    (r"\blaw\s*suits?\b|\bsue\b|\bsued\b|\bcourts?\b", "lawsuits and courts"),
    (r"\blawyers?\b|\battorneys?\b|\bsolicitors?\b", "lawyers and attorneys"),
    (r"\bcollections?\s+(agency|agencies|firm)\b|\bdebt\s+collectors?\b", "collection agencies"),
    (r"\bcredit\s+(report\w*|bureaus?|score|rating|reference)\b", "credit reporting"),
    (
        r"\bsuspen(d|ded|sion)\b|\bcut\s+off\b|\bdisconnect\w*\b|\bterminat\w+\s+(your\s+)?service",
        "suspension of service",
    ),
    (r"\bgarnish\w*\b|\barrest\w*\b|\bseiz\w+\b|\bbailiffs?\b", "garnishment, arrest, seizure"),
    (
        r"\bfinal\s+(notice|warning|demand)\b|\bor\s+else\b|\bfailure\s+to\s+pay\b|\bforced\s+to\b"
        r"|\bconsequences\b|\blast\s+chance\b",
        "threats",
    ),
    (r"\blate\s+fees?\b|\bpenalt(y|ies)\b|\binterest\s+charges?\b", "fees or penalties"),
    (
        r"\bdiscount\w*\b|\bspecial\s+offer\b|\bpromo\w*\b|\d+\s*%\s*off\b|\bupgrade\b",
        "promotional content",
    ),
    (
        r"\bdeadbeats?\b|\birresponsible\b|\bdelinquent\b|\bashamed\b|\bshame(ful)?\b"
        r"|\bembarrass\w*",
        "shaming",
    ),
)
_FORBIDDEN = tuple((re.compile(pattern, re.IGNORECASE), label) for pattern, label in FORBIDDEN)
# Words at least one of which every forbidden phrase contains: a text with none of them (nearly
# every message) skips the patterns altogether (a plan lints thousands of messages).
_WORDS = frozenset(
    [
        "legal",
        "law",
        "lawsuit",
        "lawsuits",
        "sue",
        "sued",
        "court",
        "courts",
        "lawyer",
        "lawyers",
        "attorney",
        "attorneys",
        "solicitor",
        "solicitors",
        "collection",
        "collections",
        "debt",
        "credit",
        "cut",
        "final",
        "else",
        "failure",
        "forced",
        "consequences",
        "chance",
        "late",
        "penalty",
        "penalties",
        "interest",
        "special",
        "off",
        "upgrade",
        "bailiff",
        "bailiffs",
        "deadbeat",
        "deadbeats",
        "irresponsible",
        "delinquent",
        "ashamed",
        "shame",
        "shameful",
    ]
)
_PREFIXES = (
    "suspen",
    "disconnect",
    "terminat",
    "garnish",
    "arrest",
    "seiz",
    "discount",
    "promo",
    "embarrass",
)
# The words of a text are its runs of a-z once lowercased: every other byte becomes a space.
_LETTERS_ONLY = bytes(c if 97 <= c <= 122 else 32 for c in range(256))
_WORD_BYTES = frozenset(word.encode() for word in _WORDS)
_PREFIX_BYTES = re.compile(b" (?:" + b"|".join(p.encode() for p in _PREFIXES) + b")")
_OPT_OUT = r"unsubscribe|opt\s*out|stop\s+(receiving|these|sending|emailing)"
_EMAIL_OPT_OUT = re.compile(_OPT_OUT, re.I)
# Searched in the lowercased text first (several times faster); what it finds the pattern above
# finds too, and only a text where it finds nothing is searched again with the pattern above.
_EMAIL_OPT_OUT_LOWERCASE = re.compile(_OPT_OUT)
_OPT_OUT_FIRST_WORDS = ("unsubscribe", "opt", "stop")  # each branch of _OPT_OUT starts with one
_SMS_OPT_OUT = re.compile(r"\breply\s+stop\b", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]+>")
# Tags that sit inside a line of text: a mail client shows nothing where they are, so
# `le<span>gal</span>` reads "legal"; every other tag (a paragraph, a cell, a line break) parts
# the words around it.
_INLINE_TAGS = re.compile(
    r"<!--.*?-->|</?(?:a|abbr|b|bdi|bdo|big|cite|code|data|del|dfn|em|font|i|ins|kbd|label|mark"
    r"|nobr|q|s|samp|small|span|strike|strong|sub|sup|time|tt|u|var|wbr)(?:\s[^>]*)?/?>",
    re.IGNORECASE | re.DOTALL,
)
# Characters a mail client shows as nothing: the soft hyphen, zero-width spaces and joiners,
# the word joiner and the byte-order mark (`le&shy;gal`, `legal&#8203; action`).
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))


@dataclass(frozen=True)
class LanguageRules:
    """What the linter knows of one language: the phrases no automated message may carry (pattern,
    kind), how a message says it can be stopped (email; SMS keeps the STOP keyword carriers
    act on), and how it offers the payment details when there is no link."""

    forbidden: tuple[tuple[str, str], ...]
    # for each forbidden pattern, lowercase pieces of text (words apart by one space) at least
    # one of which any text it matches contains: a text with none of them is not searched with
    # it (a plan lints thousands of messages, and these patterns are slow over a whole email)
    stems: tuple[tuple[str, ...], ...]
    email_opt_out: str
    sms_opt_out: str
    payment_details: str


LANGUAGES: dict[str, LanguageRules] = {
    "es": LanguageRules(
        forbidden=(
            (
                r"\bacci[oó]n(es)?\s+(legal|legales|judicial|judiciales)\b|\bmedidas\s+legales\b"
                r"|\bv[ií]a\s+(judicial|legal|ejecutiva)\b|\bdemand(a|ar|aremos|arle|arles)\b"
                r"|\bprocedimientos?\s+(judicial|judiciales|monitorio)\b|\bburofax\b",
                "legal action",
            ),
            (r"\btribunal(es)?\b|\bjuzgados?\b|\bjuez\b", "courts"),
            (r"\babogad[oa]s?\b|\bletrad[oa]s?\b|\bbufete\b", "lawyers"),
            (
                r"\b(agencia|agencias|empresa|empresas|gestor[ií]a)\s+de\s+(cobros?|recobro)\b"
                r"|\brecobro\b",
                "collection agencies",
            ),
            (
                r"\b(fichero|ficheros|lista|listas|registro)\s+de\s+morosos\b|\basnef\b"
                r"|\bbur[oó]\s+de\s+cr[eé]dito\b|\bhistorial\s+crediticio\b",
                "credit reporting",
            ),
            (
                r"\bsuspen(der|deremos|si[oó]n|dido|dida)\b|\bcorte\s+del?\s+servicio\b"
                r"|\bcortar(emos)?\b|\binterrump\w+",
                "suspension of service",
            ),
            (r"\bembarg\w*|\bincautaci[oó]n\b|\bdetenci[oó]n\b", "garnishment, arrest, seizure"),
            (
                r"\b[uú]ltim[oa]s?\s+(aviso|advertencia|oportunidad|requerimiento)\b"
                r"|\bconsecuencias\b|\bnos\s+veremos\s+obligados\b|\bde\s+lo\s+contrario\b",
                "threats",
            ),
            (
                r"\brecargos?\b|\bpenalizaci[oó]n(es)?\b|\bintereses\s+de\s+demora\b|\bmultas?\b",
                "fees or penalties",
            ),
            (
                r"\bdescuentos?\b|\boferta\s+especial\b|\bpromoci[oó]n\b|\bpromo\w*\b",
                "promotional content",
            ),
            (r"\bmoros[oa]s?\b|\bverg[uü]enza\b|\birresponsable\w*\b", "shaming"),
        ),
        stems=(
            ("legal", "judicial", "ejecutiva", "demand", "monitorio", "burofax"),
            ("tribunal", "juzgado", "juez"),
            ("abogad", "letrad", "bufete"),
            ("cobro",),
            ("moroso", "asnef", "dito", "crediticio"),
            ("suspen", "corte", "cortar", "interrump"),
            ("embarg", "incautaci", "detenci"),
            ("ltim", "consecuencias", "obligados", "contrario"),
            ("recargo", "penalizaci", "demora", "multa"),
            ("descuento", "oferta", "promo"),
            ("moros", "verg", "irresponsable"),
        ),
        email_opt_out=r"dejar\s+de\s+recibir|darse\s+de\s+baja|darte\s+de\s+baja|dar\w*\s+de\s+baja",
        sms_opt_out=r"\b(responda|responde|env[ií]e|envía)\s+STOP\b",
        payment_details=r"datos\s+(de\s+pago|bancarios)",
    ),
    "fr": LanguageRules(
        forbidden=(
            (
                r"\bpoursuites?\b|\bactions?\s+(en\s+justice|judiciaires?|l[ée]gales?)\b"
                r"|\bmesures\s+(l[ée]gales|judiciaires)\b|\bproc[ée]dures?\s+(judiciaires?"
                r"|contentieuses?)\b|\bcontentieux\b|\bmise\s+en\s+demeure\b|\binjonction\b",
                "legal action",
            ),
            (r"\btribunal\b|\btribunaux\b|\bhuissiers?\b|\bjuges?\b", "courts and bailiffs"),
            (r"\bavocats?\b|\bconseil\s+juridique\b", "lawyers"),
            (
                r"\b(soci[ée]t[ée]s?|agences?|cabinets?)\s+de\s+recouvrement\b"
                r"|\brecouvrement\s+(forc[ée]|contentieux)\b",
                "collection agencies",
            ),
            (
                r"\bfichier\s+(des\s+)?(incidents|mauvais\s+payeurs)\b|\bbanque\s+de\s+france\b"
                r"|\bcote\s+de\s+cr[ée]dit\b|\bdossier\s+de\s+cr[ée]dit\b",
                "credit reporting",
            ),
            (
                r"\bsuspen(dre|drons|sion|du|due)\b|\bcoupure\b|\bcouper\b|\binterrompre\b"
                r"|\br[ée]sili\w+",
                "suspension of service",
            ),
            (r"\bsaisies?\b|\bsaisir\b|\barrestation\b", "garnishment, arrest, seizure"),
            (
                r"\bdernier\s+(avis|avertissement|d[ée]lai)\b"
                r"|\bderni[eè]re\s+(chance|relance|sommation|mise)\b|\bcons[ée]quences\b"
                r"|\bcontraints?\s+de\b|\bsans\s+quoi\b|\b[aà]\s+d[ée]faut\s+de\s+paiement\b",
                "threats",
            ),
            (
                r"\bp[ée]nalit[ée]s?\b|\bfrais\s+de\s+(retard|recouvrement)\b"
                r"|\bint[ée]r[eê]ts\s+de\s+retard\b|\bindemnit[ée]\s+forfaitaire\b|\bmajorations?\b",
                "fees or penalties",
            ),
            (
                r"\bremises?\s+(de|exceptionnelles?)\b|\brabais\b|\boffre\s+sp[ée]ciale\b"
                r"|\bpromo\w*\b|\br[ée]ductions?\b",
                "promotional content",
            ),
            (r"\bmauvais\s+payeurs?\b|\bhonte\w*\b|\birresponsables?\b|\bn[ée]glig\w+", "shaming"),
        ),
        stems=(
            ("poursuite", "justice", "judiciaire", "gale", "contentieu", "demeure", "injonction"),
            ("tribuna", "huissier", "juge"),
            ("avocat", "juridique"),
            ("recouvrement",),
            ("fichier", "banque", "cote", "dossier"),
            ("suspen", "coupure", "couper", "interrompre", "sili"),
            ("saisi", "arrestation"),
            ("derni", "quences", "contraint", "sans quoi", "faut de paiement"),
            ("nalit", "frais de", "ts de retard", "indemnit", "majoration"),
            ("remise", "rabais", "offre", "promo", "duction"),
            ("mauvais", "honte", "irresponsable", "glig"),
        ),
        email_opt_out=r"plus\s+recevoir|d[ée]sabonne\w*|d[ée]sinscri\w+",
        sms_opt_out=r"\b(r[ée]pondez|envoyez|r[ée]ponds)\s+STOP\b",
        payment_details=r"coordonn[ée]es\s+(de\s+paiement|bancaires)|informations\s+de\s+paiement",
    ),
    "de": LanguageRules(
        forbidden=(
            (
                r"\brechtlich\w*\s+schritte\b|\bklage\w*\b|\bverklagen\b|\bmahnverfahren\b"
                r"|\bmahnbescheid\w*\b|\bvollstreck\w*",
                "legal action",
            ),
            (r"\bgericht\w*\b", "courts"),
            (r"\b(rechts)?anw[aä]lt\w*\b|\banwaltskanzlei\b|\bkanzlei\b", "lawyers"),
            (r"\binkasso\w*\b", "collection agencies"),
            (
                r"\bschufa\b|\bauskunftei\w*\b|\bbonit[aä]t\w*\b|\bkreditw[uü]rdigkeit\b",
                "credit reporting",
            ),
            (
                r"\b(liefer|leistungs|konto|service)sperre\b|\bsperren\b|\bgesperrt\b"
                r"|\bk[uü]ndig(en|ung)\b|\babschalt\w*|\beinstell(en|ung)\s+(der|unserer)\s+"
                r"(leistung|lieferung|dienst)\w*",
                "suspension of service",
            ),
            (
                r"\bpf[aä]nd\w*|\bgerichtsvollzieher\b|\bverhaft\w*|\bbeschlagnahm\w*",
                "garnishment, arrest, seizure",
            ),
            (
                r"\bletzte\s+(mahnung|warnung|chance|aufforderung|frist)\b|\bkonsequenzen\b"
                r"|\bgezwungen\b|\bandernfalls\b|\bwidrigenfalls\b",
                "threats",
            ),
            (
                r"\bmahngeb[uü]hr\w*|\bverzugszins\w*|\bs[aä]umniszuschl\w*|\bvertragsstrafe\w*"
                r"|\bverzugspauschale\b|\bstrafgeb[uü]hr\w*",
                "fees or penalties",
            ),
            (
                r"\brabatt\w*|\bsonderangebot\w*|\bgutschein\w*|\bpreisnachlass\w*",
                "promotional content",
            ),
            (
                r"\bs[aä]umig\w*|\bsch[aä]m\w+|\bverantwortungslos\w*|\bzahlungsunwillig\w*",
                "shaming",
            ),
        ),
        stems=(
            ("rechtlich", "klage", "verklagen", "mahnverfahren", "mahnbescheid", "vollstreck"),
            ("gericht",),
            ("anw", "kanzlei"),
            ("inkasso",),
            ("schufa", "auskunftei", "bonit", "kreditw"),
            ("sperr", "ndig", "abschalt", "einstell"),
            ("pfänd", "pfand", "gerichtsvollzieher", "verhaft", "beschlagnahm"),
            (
                "letzte mahnung",
                "letzte warnung",
                "letzte chance",
                "letzte aufforderung",
                "letzte frist",
                "konsequenz",
                "gezwungen",
                "andernfalls",
                "widrigenfalls",
            ),
            (
                "mahngeb",
                "verzugszins",
                "umniszuschl",
                "vertragsstrafe",
                "verzugspauschale",
                "strafgeb",
            ),
            ("rabatt", "sonderangebot", "gutschein", "preisnachlass"),
            ("umig", "schäm", "scham", "verantwortungslos", "zahlungsunwillig"),
        ),
        email_opt_out=r"abmelden|abbestellen|nicht\s+mehr\s+(\S+\s+){0,3}(erhalten|bekommen)",
        sms_opt_out=r"\bantworten\s+sie\s+(mit\s+)?STOP\b|\bSTOP\s+(antworten|senden)\b",
        payment_details=r"zahlungsdaten|bankverbindung|zahlungsinformationen",
    ),
}
_ENGLISH_DETAILS = r"payment\s+details"
# Any language's offer of the payment details (bot.reminders.message_facts keeps it in an edit).
PAYMENT_DETAILS = re.compile(
    "|".join([_ENGLISH_DETAILS, *(rules.payment_details for rules in LANGUAGES.values())]),
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Compiled:
    forbidden: tuple[tuple[re.Pattern[str], str, tuple[str, ...]], ...]  # pattern, kind, stems
    email_opt_out: re.Pattern[str]  # searched in the lowercased text
    sms_opt_out: re.Pattern[str]
    payment_details: re.Pattern[str]


@cache
def _rules(language: str) -> _Compiled:
    rules = LANGUAGES[language]
    if len(rules.stems) != len(rules.forbidden):
        raise ValueError(f"{language}: each forbidden pattern needs its stems")
    return _Compiled(
        forbidden=tuple(
            (re.compile(pattern, re.IGNORECASE), label, stems)
            for (pattern, label), stems in zip(rules.forbidden, rules.stems, strict=True)
        ),
        email_opt_out=re.compile(rules.email_opt_out),
        sms_opt_out=re.compile(rules.sms_opt_out, re.IGNORECASE),
        payment_details=re.compile(rules.payment_details, re.IGNORECASE),
    )


def _languages(language: str | None) -> Sequence[str]:
    """The other languages a text is checked in besides English: its own (`fr-CA` → `fr`), none
    for English or a language without rules, every one when it is not known (None)."""
    if language is None:
        return tuple(LANGUAGES)
    base = language.split("-", 1)[0].lower()
    return (base,) if base in LANGUAGES else ()


# The only characters outside a-z that a pattern compiled with IGNORECASE takes for one of those
# letters: dotless i and long s, dotted capital I (which lowercases to i and a combining dot) and
# the Kelvin sign (which lowercases to k). A screen reading a-z alone would take the first three
# for no letter and pass over a word the patterns find (a long s and "ue" is "sue" to them).
_SAME_LETTER = str.maketrans({"\u0131": "i", "\u017f": "s"})


def _as_patterns_read(lowered: str) -> str:
    """The lowercased text with the letters the patterns take for a-z made those letters (an i
    and a combining dot after it, as the dotted capital I lowercases, read as i)."""
    return lowered.translate(_SAME_LETTER).replace("i\u0307", "i")


def _may_hold_forbidden(text: str, lowercase: str | None = None) -> bool:
    """Whether some run of a-z in the lowercased text is one of _WORDS or starts with one of
    _PREFIXES (non-ASCII characters become '?', which is no letter), or would be with the
    letters the patterns take for a-z read as those letters: passing a text that holds nothing
    costs only the patterns' search, missing one would let a forbidden phrase through."""
    lowered = text.lower() if lowercase is None else lowercase
    if _holds_word(lowered):
        return True
    return not lowered.isascii() and _holds_word(_as_patterns_read(lowered))


def _holds_word(lowered: str) -> bool:
    letters = b" " + lowered.encode("ascii", "replace").translate(_LETTERS_ONLY)
    return bool(_WORD_BYTES.intersection(letters.split()) or _PREFIX_BYTES.search(letters))


def _has_email_opt_out(text: str, lowercase: str, languages: Sequence[str] = ()) -> bool:
    """Whether the text says how to stop these emails, in English or one of `languages` (looked
    for first: a Spanish message has its Spanish line, and the English search would read it all
    for nothing)."""
    if any(_rules(language).email_opt_out.search(lowercase) for language in languages):
        return True
    # A match starts where one of the pattern's first words does: searched from the first of them
    # (the opt-out line is near the end, after most of the text).
    starts = [at for at in map(lowercase.find, _OPT_OUT_FIRST_WORDS) if at >= 0]
    if starts and _EMAIL_OPT_OUT_LOWERCASE.search(lowercase, min(starts)):
        return True
    return bool(_EMAIL_OPT_OUT.search(text))


def _has_sms_opt_out(text: str, languages: Sequence[str] = ()) -> bool:
    if _SMS_OPT_OUT.search(text):
        return True
    return any(_rules(language).sms_opt_out.search(text) for language in languages)


def forbidden_phrases(
    text: str, lowercase: str | None = None, language: str | None = None
) -> list[str]:
    """Which kinds of forbidden phrase the text carries, each with the words found
    (`lowercase`: the text lowercased, when the caller has it already). English phrases are
    looked for always; those of `language` too (a BCP 47 tag), or of every language the linter
    knows when the language is not given."""
    found = []
    if _may_hold_forbidden(text, lowercase):
        for pattern, label in _FORBIDDEN:
            match = pattern.search(text)
            if match:
                found.append(f"{label} ({match.group(0)!r})")
    languages = _languages(language)
    if languages:
        # lowercased, every run of spaces and line breaks one space, as the stems are written
        lowered = " ".join((text.lower() if lowercase is None else lowercase).split())
        if not lowered.isascii():  # a stem written with letters the patterns take for a-z too
            lowered = f"{lowered} {_as_patterns_read(lowered)}"
        for language_key in languages:
            for pattern, label, stems in _rules(language_key).forbidden:
                if not any(stem in lowered for stem in stems):
                    continue
                match = pattern.search(text)
                if match:
                    found.append(f"{label} ({match.group(0)!r})")
    return found


def ledger_values(context: dict[str, Any]) -> tuple[str, ...]:
    """The values of a template context that come from the ledger or the settings, not from the
    template: the customer's name and id, the contact's name and first name, the invoice
    numbers, the payment link, the sender's name, email and phone (ARBOT_BUSINESS_NAME,
    ARBOT_FROM_EMAIL) and the unsubscribe link. A customer called Discount Tire Co, a contact
    called Sue Park or a business called Promo Print Shop is no forbidden phrase of the
    template's."""
    customer = context.get("customer") or {}
    contact = context.get("contact") or {}
    sender = context.get("sender") or {}
    values = [
        customer.get("name"),
        customer.get("id"),
        contact.get("name"),
        contact.get("first_name"),
        context.get("payment_link"),
        *(invoice.get("number") for invoice in context.get("invoices") or ()),
        sender.get("name"),
        sender.get("email"),
        sender.get("phone"),
        context.get("unsubscribe_url"),
    ]
    return tuple(value for value in values if isinstance(value, str) and value.strip())


def without_values(text: str, values: Collection[str]) -> str:
    """`text` with each of `values` taken out where it stands as a whole (a space instead; a
    value's run of spaces may be one, as the SMS and subject are rendered): what the template
    itself says around them. Longest first, so a first name goes after the whole name."""
    forms = {form for value in values for form in (value.strip(), " ".join(value.split()))}
    for value in sorted((form for form in forms if form), key=len, reverse=True):
        if value in text:
            text = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", " ", text)
    return text


def lint_message(
    message: Rendered, language: str | None = None, values: Collection[str] = ()
) -> list[str]:
    """Problems with one rendered message of an automated step (empty when it is fine), checked
    in English and in `language` (every language the linter knows when it is None). `values`
    come from the ledger, not from the template (`ledger_values`: names, invoice numbers): a
    forbidden phrase is looked for in what the message says around them."""
    languages = _languages(language)
    problems = []
    _, text_screened, text_opt_out = _TEXT_LINES.facts(message.text)
    html_screened, html_opt_out = True, False  # unknown: the shown text is read whole
    if "<!--" not in message.html:  # a comment may span lines
        closed, screened, opt_out = _HTML_LINES.facts(message.html)
        if closed:
            html_screened, html_opt_out = screened, opt_out
    # as a mail client shows it: `legal&nbsp;action` reads "legal action" (made only when read)
    shown = shown_text(message.html) if html_screened or languages or not html_opt_out else ""
    parts = {
        "subject": (message.subject, _may_hold_forbidden(message.subject)),
        "text body": (message.text, text_screened),
        "HTML body": (shown, html_screened),
        "SMS": (message.sms, _may_hold_forbidden(message.sms)),
    }
    for part, (text, screened) in parts.items():
        if not (screened or languages):
            continue  # no English phrase can be there, and no other language is looked for
        phrases = forbidden_phrases(text, None, language)
        if phrases and values:  # found: was it in a name? (nearly every message finds nothing)
            phrases = forbidden_phrases(without_values(text, values), None, language)
        for phrase in phrases:
            problems.append(f"{part}: no automated message may mention {phrase}")
    if not (text_opt_out or _has_email_opt_out(message.text, message.text.lower(), languages)):
        problems.append("text body: has no opt-out line (e.g. how to stop these emails)")
    if not (html_opt_out or _has_email_opt_out(shown, shown.lower(), languages)):
        problems.append("HTML body: has no opt-out line (e.g. how to stop these emails)")
    if not _has_sms_opt_out(message.sms, languages):
        problems.append("SMS: has no 'Reply STOP' opt-out")
    too_long = segments_problem(message.sms)
    if too_long:
        problems.append(f"SMS: {too_long}")
    if not message.subject:
        problems.append("subject: is empty")
    return problems


_Facts = tuple[bool, bool, bool]
# Lines judged together are put apart by a line holding only a NUL: no run of a-z and no English
# opt-out (whose gaps are spaces) reaches across it, and it holds no tag.
_APART = "\n\x00\n"
# A "<" with no ">" after it on its line: a tag that may end on another line.
_UNCLOSED = re.compile(r"<[^>\n]*+(?:\n|\Z)")  # possessive: no backtracking


class _Lines:
    """What the linter reads in a body, judged line by line: its lines are nearly all the
    template's own, the same in thousands of messages of a plan, so a line seen a second time is
    judged alone and remembered; the lines seen once (a customer's name, an invoice's row) are
    judged together. What is judged of lines holds of the body: no run of a-z crosses a line
    break, so the screen passes the body exactly when it passes one of its lines, and an opt-out
    line found within a line is in the body (one found in none is looked for in the whole body).

    `judge` gives, for lines (joined by `_APART`), whether each "<" has a ">" after it on its
    line, whether the screen passes them, and whether one holds an English opt-out line (looked
    for only when asked: lines seen once need not be searched when a known line holds one)."""

    KEPT = 8192  # lines remembered, and lines seen once; when full, forgotten all at once

    def __init__(self, judge: Callable[[str, bool], _Facts]) -> None:
        self.judge = judge
        self.known: dict[str, _Facts] = {}
        self.seen: set[str] = set()

    def facts(self, body: str) -> _Facts:
        """Whether every line of the body closes each of its "<", whether the screen passes it,
        whether one of its lines holds an English opt-out line."""
        lines = body.split("\n")
        found = list(map(self.known.get, lines))
        if None in found:
            return self._facts_with_new(lines, found)
        closed, screened, opt_out = zip(*found, strict=True)
        return all(closed), any(screened), any(opt_out)

    def _facts_with_new(self, lines: list[str], found: list[_Facts | None]) -> _Facts:
        facts: list[_Facts] = list(filter(None, found))
        once = []
        # The lines found new, not those unknown now: another thread may have remembered one
        # since they were looked up, and it would be read in neither.
        for line in dict.fromkeys(
            line for line, known in zip(lines, found, strict=True) if known is None
        ):
            if line in self.seen:
                facts.append(self._remember(line))
            else:
                once.append(line)
        if once:
            if len(self.seen) >= self.KEPT:
                self.seen.clear()
            self.seen.update(once)
            opt_out_known = any([opt_out for _, _, opt_out in facts])
            facts.append(self.judge(_APART.join(once), not opt_out_known))
        closed, screened, opt_out = zip(*facts, strict=True)
        return all(closed), any(screened), any(opt_out)

    def _remember(self, line: str) -> _Facts:
        facts = self.judge(line, True)
        if len(self.known) >= self.KEPT:
            self.known.clear()
        self.known[line] = facts
        return facts


def _judge_text(lines: str, opt_out_wanted: bool) -> _Facts:
    return True, _may_hold_forbidden(lines), opt_out_wanted and _has_english_opt_out(lines)


def _judge_html(lines: str, opt_out_wanted: bool) -> _Facts:
    """As `_judge_text`, of what the HTML lines show: when every "<" of theirs is closed on its
    line (before and after their inline tags go), each step of `shown_text` (tags, entities,
    characters) works within lines, and the lines show what they show in the body."""
    without_inline = _INLINE_TAGS.sub("", lines)
    closed = not (_UNCLOSED.search(lines) or _UNCLOSED.search(without_inline))
    shown = _shown_after_inline(without_inline)
    return closed, _may_hold_forbidden(shown), opt_out_wanted and _has_english_opt_out(shown)


def _has_english_opt_out(text: str) -> bool:
    """Whether the lowercased text holds an English opt-out line: `_has_email_opt_out` finds one
    there (one it finds only case-insensitively, through a letter that folds to ASCII, is found
    when the body is read whole)."""
    return _EMAIL_OPT_OUT_LOWERCASE.search(text.lower()) is not None


_TEXT_LINES = _Lines(_judge_text)
_HTML_LINES = _Lines(_judge_html)


def missing_contents(
    message: Rendered,
    context: dict[str, Any],
    language: str | None = None,
    identity: Collection[str] = ("text body", "HTML body"),
) -> list[str]:
    """What a reminder must say that this rendering of it leaves out, given the context it was
    rendered from: every invoice number and its balance (or the total, when there are several),
    the payment link or the offer to send the payment details, and, in the `identity` parts,
    who it is from. The SMS, which has room for less, must still name the invoice (or the
    total), and the link or the offer. A payment plan's instalment reminder asks for the
    instalment's amount instead of the balances."""
    problems: list[str] = []
    invoices = context["invoices"]
    instalment = context.get("instalment")
    link = context.get("payment_link")
    sender = context["sender"]["name"]
    details = (
        _rules(language.split("-", 1)[0]).payment_details
        if language and language.split("-", 1)[0] in LANGUAGES
        else re.compile(_ENGLISH_DETAILS, re.IGNORECASE)
    )
    bodies = {
        "text body": message.text,
        "HTML body": html.unescape(_TAGS.sub(" ", message.html)),
    }
    if message.sms:
        bodies["SMS"] = message.sms
    for part, text in bodies.items():
        wanted = []
        if instalment:
            wanted.append(instalment["amount"])
            if part != "SMS":
                wanted += [invoice["number"] for invoice in invoices]
        elif part == "SMS" and len(invoices) > 1:
            wanted.append(context["total"])
        else:
            wanted += [invoice["number"] for invoice in invoices]
            balances = [invoice["balance"] for invoice in invoices]
            # one invoice: its balance; several: their total, or else every balance
            if len(invoices) == 1 or _plain_spaces(context["total"]) not in _plain_spaces(text):
                wanted += balances
        if part in identity:
            wanted.append(sender)
        spaced = _plain_spaces(text)  # the SMS and subject have theirs made plain by rendering
        problems.extend(
            f"{part}: does not say {item!r}" for item in wanted if _plain_spaces(item) not in spaced
        )
        if not (link and link in text) and not details.search(text):
            problems.append(f"{part}: has no payment link and does not offer the payment details")
    return problems


def shown_text(html_body: str) -> str:
    """An HTML body's words as a mail client shows them: inline tags and comments taken out
    (`le<span>gal</span>` is "legal"), every other tag a space, entities decoded, the characters
    shown as nothing dropped (`le&shy;gal`), no-break spaces as spaces."""
    return _shown_after_inline(_INLINE_TAGS.sub("", html_body))


def _shown_after_inline(text: str) -> str:
    """`shown_text` of an HTML body whose inline tags and comments are taken out already."""
    return _plain_spaces(html.unescape(_TAGS.sub(" ", text)).translate(_INVISIBLE))


def _plain_spaces(text: str) -> str:
    """`text` with its no-break spaces (Babel's, between a number and its currency) as spaces."""
    return text.replace("\u00a0", " ").replace("\u202f", " ")


def naming_parts(message: Rendered, name: str) -> frozenset[str]:
    """The parts of a message that name `name` (the business): what each translation of the
    message must name it in too."""
    parts = {
        "text body": message.text,
        "HTML body": html.unescape(message.html),
        "SMS": message.sms,
    }
    return frozenset(part for part, text in parts.items() if name in text)
