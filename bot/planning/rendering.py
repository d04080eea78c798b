"""A planned reminder's message, put together: in its contact's language (else its customer's)
when the template has that translation, from the context its templates receive (`messages`), and
checked by the linter for what its channel sends (a long name, or one letter outside the GSM-7
alphabet, can push a text past the two SMS segments the sender sends)."""

from __future__ import annotations

from datetime import date

from bot.core.language import formatting_locale, is_english
from bot.core.money import format_money
from bot.planning.day_plan import PlanItem
from bot.planning.messages import MessageInvoice, long_date, message_context
from bot.planning.rules import PlanRules
from playbooks.lint import ledger_values, lint_message
from playbooks.render import Renderer, RenderError


def render_reminder(
    item: PlanItem, renderer: Renderer, rules: PlanRules, day: date, payment_link: str | None
) -> str | None:
    """Sets the reminder's language and message; returns why it cannot go as written (the
    template's error, or the linter's first problem for its channel), else None."""
    template = item.step.template or ""
    # The contact's language, else the customer's; English when the template has no
    # translation for it (the amounts and dates then follow US English too; a reader of
    # British English gets the English text with British dates).
    wanted = (item.contact.language if item.contact else None) or item.customer.language
    language = renderer.language_for(template, wanted)
    item.language = wanted if language or (wanted and is_english(wanted)) else None
    context = _context(item, rules, day, payment_link)
    try:
        item.message = renderer.render(template, context, item.channel, language)
    except RenderError as exc:
        return str(exc)
    # the customer's and contact's names are theirs: only the template's own words can trip it
    lint = lint_message(item.message, item.language or "en", ledger_values(context))
    problems = channel_problems(lint, item.channel)
    return problems[0] if problems else None


def channel_problems(problems: list[str], channel: str | None) -> list[str]:
    """The linter's problems that concern what this channel sends."""
    parts = ("SMS",) if channel == "sms" else ("subject", "text body", "HTML body")
    return [p for p in problems if p.split(":", 1)[0] in parts]


def _context(
    item: PlanItem, rules: PlanRules, day: date, payment_link: str | None = None
) -> dict[str, object]:
    invoices = [
        MessageInvoice(
            d.invoice.number,
            d.invoice.issue_date,
            d.invoice.due_date,
            d.invoice.currency,
            d.invoice.total,
            d.invoice.balance,
            d.invoice.payment_link,
        )
        for d in item.due
    ]
    locale = formatting_locale(item.language)
    return message_context(
        customer_name=item.customer.name,
        customer_id=item.customer.external_id,
        contact_name=item.contact.name if item.contact else None,
        invoices=invoices,
        day=day,
        sender=rules.sender,
        payment_link=payment_link,
        instalment=(
            {
                "number": item.instalment.seq,
                "of": item.instalment.count,
                "due_date": long_date(item.instalment.due_on, locale),
                "amount": format_money(item.instalment.owed, item.instalment.currency, locale),
            }
            if item.instalment
            else None
        ),
        language=item.language,
    )
