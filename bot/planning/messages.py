"""What a reminder's templates receive, and rendering it: the one place a message is put together.

Amounts come from the ledger only (Decimal, formatted with Babel in the invoice's own currency); a
message covering several currencies states a total per currency, never a sum across them. Amounts,
dates and the list of totals are written in the message's language (`es`: "1.234,56 €", "3 de
marzo de 2026"); without one, in US English. A text message in English names the month as the
email does ("August 3, 2026": 8/3/2026 is 8 March to a UK reader); in other languages it writes
its dates with digits ("03/08/2026"): shorter, and in the GSM-7 alphabet in every month.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from babel.dates import format_date, get_date_format
from babel.lists import format_list

from bot.core.language import DEFAULT_LANGUAGE, formatting_locale
from bot.core.money import babel_locale, format_money
from playbooks.render import Rendered, Renderer, WithSmsForm
from playbooks.sms import outside_gsm7

LOCALE = "en_US"


@dataclass(frozen=True)
class MessageInvoice:
    number: str
    issue_date: date
    due_date: date
    currency: str
    total: Decimal
    balance: Decimal
    payment_link: str | None = None


@dataclass(frozen=True)
class Sender:
    name: str
    email: str | None = None
    phone: str | None = None


def totals_by_currency(invoices: list[MessageInvoice]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for invoice in invoices:
        totals[invoice.currency] = totals.get(invoice.currency, Decimal(0)) + invoice.balance
    return totals


def message_context(
    *,
    customer_name: str,
    customer_id: str,
    contact_name: str | None,
    invoices: list[MessageInvoice],
    day: date,
    sender: Sender,
    payment_link: str | None = None,
    unsubscribe_url: str | None = None,
    instalment: dict[str, Any] | None = None,
    language: str | None = None,
) -> dict[str, Any]:
    """The template context (DESIGN's contract with the playbook templates), its amounts and
    dates written for a reader of `language` (a BCP 47 tag; None: English)."""
    if not invoices:
        raise ValueError("a message covers at least one invoice")
    locale = formatting_locale(language)
    ordered = sorted(invoices, key=lambda i: (i.due_date, i.number))
    totals = totals_by_currency(ordered)
    return {
        "customer": {"name": customer_name, "id": customer_id},
        "contact": {"name": contact_name, "first_name": first_name(contact_name)},
        "invoices": [
            {
                "number": i.number,
                "issue_date": long_date(i.issue_date, locale),
                "due_date": long_date(i.due_date, locale),
                "amount": format_money(i.total, i.currency, locale),
                "balance": format_money(i.balance, i.currency, locale),
                "currency": i.currency,
                "days_overdue": max((day - i.due_date).days, 0),
                "days_until_due": max((i.due_date - day).days, 0),
            }
            for i in ordered
        ],
        "total": money_list(
            tuple(format_money(amount, code, locale) for code, amount in totals.items()), locale
        ),
        # Only the link chosen for exactly these invoices (bot.payments.links): one invoice's own
        # pay page does not pay the others, so without one the message says how to pay.
        "payment_link": payment_link,
        "sender": {"name": sender.name, "email": sender.email, "phone": sender.phone},
        "unsubscribe_url": unsubscribe_url,
        # a payment plan's instalment (number, of, due_date, amount), for its reminder; else None
        "instalment": instalment,
        "language": language or DEFAULT_LANGUAGE,
    }


@lru_cache(maxsize=4096)
def long_date(day: date, locale: str = LOCALE) -> str:
    """ "March 16, 2026" ("16 de marzo de 2026" in `es`); in an SMS as `sms_date` writes it
    (the same in English, "16/3/2026" in `es`). Cached: a plan formats the same few hundred
    dates many times."""
    text = str(format_date(day, "long", locale=babel_locale(locale)))
    return WithSmsForm(text, sms_date(day, locale))


def sms_date(day: date, locale: str = LOCALE) -> str:
    """The date as a text message writes it. In English, with the month's name, as the email
    does ("March 16, 2026", "16 March 2026" in `en_GB`): digits would be read as another day by
    some readers (8/3/2026 is 3 August in the US, 8 March in the UK and Australia), and the
    English month names are all in GSM-7. In any other language, in digits as the locale writes
    them, with the whole year ("16/03/2026" in `fr`, "16.03.2026" in `de`): a month's name can
    be long ("septiembre") or hold a letter outside GSM-7 ("août"); ISO 8601 in a locale whose
    digits are not in GSM-7."""
    if babel_locale(locale).language == "en":
        named = str(format_date(day, "long", locale=babel_locale(locale)))
        if not outside_gsm7(named):
            return named
    pattern = get_date_format("short", locale=babel_locale(locale)).pattern
    pattern = re.sub(r"(?<!y)yy(?!y)", "y", pattern)
    text = str(format_date(day, pattern, locale=babel_locale(locale)))
    return day.isoformat() if outside_gsm7(text) else text


@lru_cache(maxsize=1024)
def money_list(amounts: tuple[str, ...], locale: str = LOCALE) -> str:
    """ "$10.00 and €5.00", "10,00 US$ y 5,00 €": the totals of several currencies, never summed."""
    if len(amounts) == 1:
        return amounts[0]
    return str(format_list(list(amounts), locale=babel_locale(locale)))


def first_name(name: str | None) -> str | None:
    if not name or not name.strip():
        return None
    first = name.split()[0]
    return first if first.isalpha() and len(first) > 1 else None


def render_message(renderer: Renderer, template: str, context: dict[str, Any]) -> Rendered:
    return renderer.render(template, context)
