"""A template from an approver's edit: the message they wrote for one customer, with that
customer's name, amounts, invoice numbers, dates and payment link turned back into the template's
placeholders, so it says the same thing to anyone. None when that cannot be done safely."""

from __future__ import annotations

import html
import logging
import re
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.models import Contact, Customer, Invoice, Reminder, ReminderInvoice
from bot.planning.messages import MessageInvoice, Sender, message_context
from playbooks.lint import lint_message
from playbooks.render import Rendered, Renderer, RenderError

log = logging.getLogger(__name__)

Segment = tuple[bool, str]  # (is a template expression, text)

NUMBERS = "invoices|map(attribute='number')|join(', ')"
PREAMBLE = "{%- set inv = invoices|first -%}\n"
NO_LINK = {
    "email": "To pay, reply to this email and we'll send you the payment details.",
    "sms": "Reply for payment details.",
}
EMAIL_OPT_OUT = (
    "If you'd like to stop receiving these reminders by email, just reply to this email and let "
    "us know."
)
SMS_OPT_OUT = "Reply STOP to opt out."
_URL = re.compile(r"https?://[^\s<>\"]*[^\s<>\".,;:!?)\]]")
_MONEY = re.compile(r"[$€£¥]\s?\d|\d[\d,]*\.\d\d\b|\b[A-Z]{3}\s?\d")
_LONG_DATE = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|"
    r"December) \d{1,2}, \d{4}\b"
)
# A date in digits, as a text message writes it (3/9/2026, 09/03/2026, 09.03.2026, 2026-03-09).
_NUMERIC_DATE = re.compile(r"(?<![\w/.-])\d{1,4}[/.-]\d{1,2}[/.-]\d{2,4}(?![\w/-]|\.\d)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def edited_template(
    session: Session, after: str, reminder: Reminder, customer: Customer
) -> dict[str, str] | None:
    """The template parts (`name/part` without the name) that say what the approver wrote, for
    any customer; None when the edit cannot be made generic safely (several invoices, or a name,
    amount, number or date left that is not a placeholder)."""
    invoices = session.scalars(
        select(Invoice)
        .join(ReminderInvoice, ReminderInvoice.invoice_id == Invoice.id)
        .where(ReminderInvoice.reminder_id == reminder.id)
    ).all()
    if len(invoices) != 1:
        return None
    contact = session.get(Contact, reminder.contact_id) if reminder.contact_id else None
    link = _URL.search(after)
    context = _context(customer, contact, invoices[0], reminder.plan_date, link)
    known = session.scalars(select(Invoice.number).where(Invoice.customer_id == customer.id))
    specifics = [customer.name, *known, *([contact.name] if contact and contact.name else [])]
    patterns = _patterns(context)
    channel = "sms" if reminder.channel == "sms" else "email"
    if channel == "sms":
        parts = _sms_parts(after, patterns, specifics)
    else:
        parts = _email_parts(after, patterns, specifics)
    return parts if parts and _renders_back(parts, context, channel, after) else None


Patterns = list[tuple[re.Pattern[str], list[Segment]]]


def _sms_parts(after: str, patterns: Patterns, specifics: list[str]) -> dict[str, str] | None:
    units = [_segments(u, patterns) for u in _SENTENCE_END.split(after.strip())]
    if _leftover(units, specifics):
        return None
    sms = _text_units(units, " ", "sms")
    if _lacks_opt_out(after, "sms"):
        sms += " " + SMS_OPT_OUT
    return {"sms.txt.j2": PREAMBLE + sms}


def _email_parts(after: str, patterns: Patterns, specifics: list[str]) -> dict[str, str] | None:
    subject_text, _, body_text = after.partition("\n\n")  # as approvals.edit stores an edit
    subject = [_segments(subject_text.strip(), patterns)]
    units = [_segments(u.strip(), patterns) for u in body_text.strip().split("\n\n")]
    if _leftover(subject + units, specifics) or any(_has_link(u) for u in subject):
        return None
    text, markup = _text_units(units, "\n\n", "email"), _html_units(units)
    if _lacks_opt_out(body_text, "email"):
        text += "\n\n" + EMAIL_OPT_OUT
        markup += f"\n<p>{html.escape(EMAIL_OPT_OUT)}</p>"
    return {
        "subject.txt.j2": PREAMBLE + _text_units(subject, " ", "email"),
        "body.txt.j2": PREAMBLE + text,
        "body.html.j2": PREAMBLE + _HTML_PAGE.format(body=markup),
    }


_HTML_PAGE = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n</head>\n'
    '<body style="font-family:Arial,Helvetica,sans-serif;font-size:15px;line-height:1.5;">\n'
    "{body}\n</body>\n</html>"
)


def _context(
    customer: Customer,
    contact: Contact | None,
    invoice: Invoice,
    day: date,
    link: re.Match[str] | None,
) -> dict[str, Any]:
    """The context the planner gave this reminder's template (amounts as the ledger has them)."""
    return message_context(
        customer_name=customer.name,
        customer_id=customer.external_id,
        contact_name=contact.name if contact else None,
        invoices=[
            MessageInvoice(
                invoice.number,
                invoice.issue_date,
                invoice.due_date,
                invoice.currency,
                invoice.total,
                invoice.balance,
            )
        ],
        day=day,
        sender=Sender("-"),
        payment_link=link.group(0) if link else None,
    )


def _patterns(context: dict[str, Any]) -> Patterns:
    """What to look for in the edited text, and the placeholders that say it for anyone."""
    inv = context["invoices"][0]

    def exact(text: str) -> re.Pattern[str]:
        return re.compile(rf"(?<!\w){re.escape(text)}(?!\w)")

    found: Patterns = [
        (_URL, [(True, "payment_link")]),
        (exact(context["customer"]["name"]), [(True, "customer.name")]),
        (exact(inv["balance"]), [(True, "total")]),
        (exact(inv["due_date"]), [(True, "inv.due_date")]),
        (exact(inv["issue_date"]), [(True, "inv.issue_date")]),
    ]
    # as a text message writes them (`WithSmsForm`): the SMS prints the placeholder that way
    for key in ("due_date", "issue_date"):
        sms_form = getattr(inv[key], "sms", None)
        if sms_form and sms_form != inv[key]:
            found.append((exact(sms_form), [(True, f"inv.{key}")]))
    for word in ("Invoice", "invoice"):
        plural = f"'{word}' if invoices|length == 1 else '{word}s'"
        found.append(
            (
                re.compile(rf"\b{word}\s+{re.escape(inv['number'])}(?!\w)"),
                [(True, plural), (False, " "), (True, NUMBERS)],
            )
        )
    found.append((exact(inv["number"]), [(True, NUMBERS)]))
    if inv["amount"] != inv["balance"]:
        found.append((exact(inv["amount"]), [(True, "inv.amount")]))
    contact = context["contact"]
    if contact["name"]:
        found.append((exact(contact["name"]), [(True, "contact.name or customer.name")]))
    if contact["first_name"]:
        found.append(
            (exact(contact["first_name"]), [(True, "contact.first_name or customer.name")])
        )
    for count, name in (
        (inv["days_overdue"], "days_overdue"),
        (inv["days_until_due"], "days_until_due"),
    ):
        if count > 0:
            found.append(
                (
                    re.compile(rf"(?<!\w){count} days?(?!\w)"),
                    [
                        (True, f"inv.{name}"),
                        (False, " day"),
                        (True, f"'' if inv.{name} == 1 else 's'"),
                    ],
                )
            )
    return found


def _segments(text: str, patterns: Patterns) -> list[Segment]:
    """The text with each match replaced by its placeholders: earliest first, longest first."""
    matches = sorted(
        (
            (m.start(), m.end(), segments)
            for pattern, segments in patterns
            for m in pattern.finditer(text)
        ),
        key=lambda m: (m[0], -(m[1] - m[0])),
    )
    result: list[Segment] = []
    at = 0
    for start, end, segments in matches:
        if start < at:
            continue
        if start > at:
            result.append((False, text[at:start]))
        result.extend(segments)
        at = end
    if at < len(text):
        result.append((False, text[at:]))
    return result


def _has_link(unit: list[Segment]) -> bool:
    return (True, "payment_link") in unit


def _leftover(units: list[list[Segment]], specifics: list[str]) -> bool:
    """Something about this one customer is still written out in the text."""
    literal = " ".join(text for unit in units for is_expr, text in unit if not is_expr)
    return any(s and re.search(rf"(?<!\w){re.escape(s)}(?!\w)", literal) for s in specifics) or any(
        p.search(literal) for p in (_MONEY, _URL, _LONG_DATE, _NUMERIC_DATE)
    )


def _jinja_literal(text: str) -> str:
    return text.replace("{", "{{ '{' }}")


def _text_units(units: list[list[Segment]], joiner: str, channel: str) -> str:
    rendered = []
    for unit in units:
        text = "".join("{{ " + t + " }}" if e else _jinja_literal(t) for e, t in unit)
        if _has_link(unit):
            text = f"{{% if payment_link %}}{text}{{% else %}}{NO_LINK[channel]}{{% endif %}}"
        rendered.append(text)
    return joiner.join(rendered)


def _html_units(units: list[list[Segment]]) -> str:
    rendered = []
    for unit in units:
        inner = "".join(
            "{{ " + t + " }}"
            if e
            else _jinja_literal(html.escape(t, quote=False)).replace("\n", "<br>\n")
            for e, t in unit
        )
        text = f"<p>{inner}</p>"
        if _has_link(unit):
            text = (
                f"{{% if payment_link %}}{text}{{% else %}}<p>{NO_LINK['email']}</p>{{% endif %}}"
            )
        rendered.append(text)
    return "\n".join(rendered)


def _lacks_opt_out(text: str, channel: str) -> bool:
    message = Rendered(subject="-", text=text, html=text, sms=text)
    wanted = "SMS: has no" if channel == "sms" else "text body: has no opt-out"
    return any(problem.startswith(wanted) for problem in lint_message(message))


def _renders_back(parts: dict[str, str], context: dict[str, Any], channel: str, after: str) -> bool:
    """Rendered for the customer it came from, the template says what the approver wrote."""
    renderer = Renderer({f"t/{part}": source for part, source in parts.items()})
    try:
        message = renderer.render("t", context, channel)
    except RenderError as exc:
        log.info("an edit made generic does not render: %s", exc)
        return False
    flat = " ".join(after.split())
    if channel == "sms":
        return message.sms.startswith(flat)
    subject, _, body = after.partition("\n\n")
    return message.subject == " ".join(subject.split()) and " ".join(
        message.text.split()
    ).startswith(" ".join(body.split()))
