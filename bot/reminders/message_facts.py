"""The facts a reminder's message may not lose when it is rewritten, by a person's edit or an LLM
draft: each invoice number, each amount, the payment link, and, when there is no link, the offer
to send the payment details."""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.language import formatting_locale
from bot.core.models import Contact, Customer, Invoice, Reminder, ReminderInvoice
from bot.core.money import format_money
from bot.escalations import plans
from bot.payments.links import link_in_message
from bot.planning.messages import Sender, first_name
from playbooks.lint import PAYMENT_DETAILS, ledger_values

# An amount as English writes it (1,234.56) or as Spanish, French and German do (1.234,56 and
# 1 234,56 with a no-break space), so a rewrite of a message in any of them keeps its amounts.
_AMOUNT_TEXT = r"\d{1,3}(?:[.\u00a0\u202f]\d{3})*,\d\d(?!\d)|\d[\d,]*\.\d\d"
_FACT = re.compile(rf"https?://\S+|[A-Z]{{2,}}-?\d+|{_AMOUNT_TEXT}")
_AMOUNT = re.compile(_AMOUNT_TEXT)
# A date in digits with dots (03.08.2026, as a German text writes it) is no amount: its 03.08
# would otherwise read as one.
# Standing as a word of its own: never a piece of a link.
_DOTTED_DATE = re.compile(r"(?<![^\s(])\d{1,2}\.\d{1,2}\.(?:\d{4}|\d{2})(?=[.,;:!?)]*(?:\s|$))")
_DETAILS = PAYMENT_DETAILS  # "payment details", "datos de pago", "Bankverbindung"...


def facts(text: str) -> set[str]:
    """What a rewrite may not lose: links, invoice numbers, amounts (not a date's digits)."""
    return {match.rstrip(".,)") for match in _FACT.findall(_DOTTED_DATE.sub(" ", text))}


def _names(number: str, text: str) -> bool:
    """Whether `text` names invoice `number` (not as part of a longer one: I-1 is not I-12)."""
    return re.search(rf"(?<![\w-]){re.escape(number)}(?![\w-]*\d)", text) is not None


def stated_amounts(session: Session, reminder_id: int, language: str | None) -> tuple[str, ...]:
    """The amounts a reminder's message states, written as its rendering wrote them (in the
    locale of its `language`, with its currency's decimals): each invoice's balance and total,
    the sum of the balances in each currency and, for a payment plan's instalment, what the
    reminder asks for, the instalment's amount and the plan's total. The ledger's amounts are
    those the message was rendered from: a reminder whose invoice changed since is stale, never
    edited."""
    invoices = session.scalars(
        select(Invoice)
        .join(ReminderInvoice, ReminderInvoice.invoice_id == Invoice.id)
        .where(ReminderInvoice.reminder_id == reminder_id)
    ).all()
    locale = formatting_locale(language)
    sums: dict[str, Decimal] = {}
    amounts = []
    for invoice in invoices:
        sums[invoice.currency] = sums.get(invoice.currency, Decimal(0)) + invoice.balance
        amounts.append(format_money(invoice.balance, invoice.currency, locale))
        amounts.append(format_money(invoice.total, invoice.currency, locale))
    amounts += [format_money(amount, currency, locale) for currency, amount in sums.items()]
    step_key = session.scalar(select(Reminder.step_key).where(Reminder.id == reminder_id))
    if step_key is not None:
        amounts += [
            format_money(amount, currency, locale)
            for amount, currency in plans.instalment_amounts(session, step_key)
        ]
    return tuple(dict.fromkeys(amounts))


def ledger_values_of(
    session: Session, reminder: Reminder, sender: Sender | None = None
) -> tuple[str, ...]:
    """What of a reminder's message comes from the ledger or the settings, not from its template,
    as the plan's linter reads it (`playbooks.lint.ledger_values`, from the same context): the
    customer's name and id, the contact's name and the first name its greeting uses, the invoice
    numbers, the payment link, the `sender` (the business's name and address). An edit is linted around them (a contact called Sue Park is greeted "Hi Sue"; a
    link such as …/discount-tire-co/INV-1 must stay as it is)."""
    customer = session.get(Customer, reminder.customer_id)
    contact = session.get(Contact, reminder.contact_id) if reminder.contact_id else None
    invoices = session.scalars(
        select(Invoice)
        .join(ReminderInvoice, ReminderInvoice.invoice_id == Invoice.id)
        .where(ReminderInvoice.reminder_id == reminder.id)
        .order_by(Invoice.id)
    ).all()
    name = contact.name if contact is not None else None
    context: dict[str, Any] = {
        "customer": {"name": customer.name, "id": customer.external_id} if customer else {},
        "contact": {"name": name, "first_name": first_name(name)},
        "invoices": [{"number": invoice.number} for invoice in invoices],
        "payment_link": link_in_message(session, invoices),
        "sender": (
            {"name": sender.name, "email": sender.email, "phone": sender.phone} if sender else {}
        ),
    }
    return ledger_values(context)


def _plain_spaces(text: str) -> str:
    """No-break spaces (Babel's, between a number and its currency) as spaces: a person types
    the plain ones."""
    return text.replace("\u00a0", " ").replace("\u202f", " ")


def _stated(amount: str) -> re.Pattern[str]:
    """`amount` written out, not as part of a longer number ($100.00 is not in $1,100.00, nor
    100,00 € in 1.100,00 €, nor 1,234.50 in 1,234.500)."""
    return re.compile(rf"(?<!\d)(?<!\d[.,'\u2019 ]){re.escape(amount)}(?!\d)(?![.,'\u2019]\d)")


def missing_facts(
    before: str, after: str, invoice_numbers: Iterable[str] = (), amounts: Iterable[str] = ()
) -> list[str]:
    """What of `before` is gone from `after`, in words a person can act on; empty = all kept.
    `invoice_numbers` are the invoices the message is about: each must still be named, whatever
    its shape. `amounts` are the amounts the message states, as it writes them (`stated_amounts`):
    each that `before` writes must be in `after` exactly, whatever the currency's decimals and
    the locale's grouping (¥125,000, CHF 1'234.50, KWD1,234.500)."""
    before, after = _plain_spaces(before), _plain_spaces(after)
    lost_amounts = []
    # longest first: a shorter amount is then not found inside a longer one already taken out
    for amount in sorted({_plain_spaces(a) for a in amounts}, key=len, reverse=True):
        stated = _stated(amount)
        if stated.search(before):
            if not stated.search(after):
                lost_amounts.append(amount)
            before = stated.sub(" ", before)
        after = stated.sub(" ", after)  # its currency code is no invoice number (KWD1,234.500)
    lost = facts(before) - facts(after)
    lost |= {n for n in invoice_numbers if _names(n, before) and not _names(n, after)}
    missing = []
    links = sorted(f for f in lost if f.startswith(("http://", "https://")))
    amounts_lost = sorted({*lost_amounts, *(f for f in lost if _AMOUNT.fullmatch(f))})
    numbers = sorted(f for f in lost if f not in links and not _AMOUNT.fullmatch(f))
    if numbers:
        missing.append(f"invoice number{'s' if len(numbers) > 1 else ''} {', '.join(numbers)}")
    if amounts_lost:
        missing.append(
            f"the amount{'s' if len(amounts_lost) > 1 else ''} {', '.join(amounts_lost)}"
        )
    if links:
        missing.append(f"the payment link {links[0]}")
    if _DETAILS.search(before) and not _DETAILS.search(after) and not links:
        missing.append('the offer to send the payment details ("reply for payment details")')
    return missing
