"""`arbot playbook check`: render every template of every step against sample data, in English and
in every language the template is written in, and lint it: no forbidden phrase of that language
or of English, the opt-out lines, and everything a reminder must say (its invoices and amounts,
the payment link or the offer of payment details, who it is from)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from bot.core.language import formatting_locale
from bot.core.money import format_money
from bot.planning.messages import MessageInvoice, Sender, long_date, message_context
from playbooks.lint import lint_message, missing_contents, naming_parts
from playbooks.loader import Bundle
from playbooks.render import Renderer, RenderError

SAMPLE_DAY = date(2026, 3, 16)
LONG_LINK = "https://pay.example.com/c/cs_live_a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwX"  # 60 chars


@dataclass
class StepCheck:
    ladder: str
    step: str
    template: str | None
    problems: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)  # checked besides English

    @property
    def ok(self) -> bool:
        return not self.problems


def sample_contexts(
    offset_days: int,
    language: str | None = None,
    *,
    day: date = SAMPLE_DAY,
    amount: Decimal = Decimal("1250.00"),
) -> list[tuple[str, dict[str, Any]]]:
    """Situations every template must handle: one invoice or several, with or without a link,
    with amounts and dates written for a reader of `language` (None: English), on `day`, the
    first invoice for `amount`."""
    locale = formatting_locale(language)
    due = day - timedelta(days=offset_days)
    one = [MessageInvoice("INV-1042", due - timedelta(days=30), due, "USD", amount, amount)]
    several = [
        MessageInvoice("INV-1042", due - timedelta(days=30), due, "USD", amount, amount),
        MessageInvoice(
            "INV-1057",
            due - timedelta(days=20),
            due + timedelta(days=2),
            "USD",
            Decimal("480.5"),
            Decimal("200.25"),
        ),
        MessageInvoice(
            "R-88", due - timedelta(days=30), due, "EUR", Decimal("3100"), Decimal("3100")
        ),
    ]
    return [
        (
            "one invoice with a link",
            message_context(
                customer_name="Ridgeline Roofing & Restoration Contractors",
                customer_id="C-1001",
                contact_name="Maria Garcia",
                invoices=one,
                day=day,
                sender=Sender(
                    "Brightwater Supply Co.", "ar@brightwater.example", "+1 312 555 0100"
                ),
                payment_link=LONG_LINK,
                unsubscribe_url="https://ar.brightwater.example/u/abc",
                language=language,
            ),
        ),
        (
            "several invoices, two currencies, no link",
            message_context(
                customer_name="Harbor Family Dental",
                customer_id="C-1002",
                contact_name=None,
                invoices=several,
                day=day,
                sender=Sender("Brightwater Supply Co."),
                payment_link=None,
                unsubscribe_url=None,
                language=language,
            ),
        ),
        (
            "a contact without a usable first name",
            message_context(
                customer_name="Nordlicht Messebau GmbH",
                customer_id="C-1003",
                contact_name="Accounts Payable Dept.",
                invoices=one,
                day=day,
                sender=Sender("Brightwater Supply Co.", "ar@brightwater.example"),
                payment_link=LONG_LINK,
                unsubscribe_url=None,
                language=language,
            ),
        ),
        (
            "an instalment of a payment plan",
            message_context(
                customer_name="Ridgeline Roofing & Restoration Contractors",
                customer_id="C-1001",
                contact_name="Maria Garcia",
                invoices=one,
                day=day,
                sender=Sender("Brightwater Supply Co.", "ar@brightwater.example"),
                payment_link=LONG_LINK,
                unsubscribe_url=None,
                instalment={
                    "number": 2,
                    "of": 3,
                    "due_date": long_date(day + timedelta(days=3), locale),
                    "amount": format_money(Decimal("416.67"), "USD", locale),
                },
                language=language,
            ),
        ),
    ]


_CHECKED: dict[
    str, list[StepCheck]
] = {}  # by the bundle's content: the check depends on nothing else
_CHECKED_LIMIT = 16


def check_bundle(bundle: Bundle) -> list[StepCheck]:
    """Render every step's template against the sample situations and lint the result. A bundle
    checked before (same playbook and templates) gets its results again without the work (about
    half a second) — as a copy, which callers may change."""
    key = bundle.to_json()
    known = _CHECKED.get(key)
    if known is None:
        known = _check(bundle)
        if len(_CHECKED) >= _CHECKED_LIMIT:
            _CHECKED.clear()
        _CHECKED[key] = known
    return copy.deepcopy(known)


def _check(bundle: Bundle) -> list[StepCheck]:
    renderer = Renderer(bundle.templates)
    results = []
    for ladder, step in bundle.playbook.all_steps():
        check = StepCheck(ladder=ladder, step=step.key, template=step.template)
        results.append(check)
        if step.human_only or step.template is None:
            continue  # a person writes these; nothing is rendered or sent automatically
        check.languages = sorted(renderer.languages(step.template))
        # Where the English message names the business, each translation must name it too.
        identity: dict[str, frozenset[str]] = {}
        for language in [None, *check.languages]:
            where = f"[{language}] " if language else ""
            for situation, context in sample_contexts(step.offset_days, language):
                try:
                    message = renderer.render(step.template, context, language=language)
                except RenderError as exc:
                    check.problems.append(f"{where}{situation}: {exc}")
                    continue
                if language is None:
                    identity[situation] = naming_parts(message, context["sender"]["name"])
                named = identity.get(situation, frozenset())
                problems = lint_message(message, language or "en")
                if ladder != "instalment":  # its reminders ask for the balances
                    plain = {**context, "instalment": None}
                    problems += missing_contents(message, plain, language, named)
                elif context["instalment"]:  # it asks for the instalment; it has no other use
                    problems += missing_contents(message, context, language, named)
                check.problems.extend(f"{where}{situation}: {p}" for p in problems)
    return results
