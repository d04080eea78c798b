"""`arbot playbook check`: render every template of every step against sample data, in English and
in every language the template is written in, and lint it: no forbidden phrase of that language
or of English, the opt-out lines, and everything a reminder must say (its invoices and amounts,
the payment link or the offer of payment details, who it is from)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from bot.core.language import formatting_locale
from bot.core.money import format_money
from bot.planning.messages import (
    MessageInvoice,
    Sender,
    long_date,
    message_context,
    sms_date,
)
from playbooks.lint import lint_message, missing_contents, naming_parts
from playbooks.loader import Bundle
from playbooks.render import Renderer, RenderError
from playbooks.sms import length, segments_problem

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
    longest_dates: bool = False,
) -> list[tuple[str, dict[str, Any]]]:
    """Situations every template must handle: one invoice or several, with or without a link,
    with amounts and dates written for a reader of `language` (None: English), on `day`, the
    first invoice for `amount`. With `longest_dates`, every date the message may write (issue
    and due dates, the instalment's) is the one a text in that language writes the longest
    (`longest_sms_date`), `day` the step's number of days after it."""
    locale = formatting_locale(language)
    longest = longest_sms_date(locale) if longest_dates else None
    if longest is not None:
        day = longest + timedelta(days=offset_days)

    def dated(value: date) -> date:
        return value if longest is None else longest

    due = day - timedelta(days=offset_days)
    one = [MessageInvoice("INV-1042", dated(due - timedelta(days=30)), due, "USD", amount, amount)]
    several = [
        MessageInvoice("INV-1042", dated(due - timedelta(days=30)), due, "USD", amount, amount),
        MessageInvoice(
            "INV-1057",
            dated(due - timedelta(days=20)),
            dated(due + timedelta(days=2)),
            "USD",
            Decimal("480.5"),
            Decimal("200.25"),
        ),
        MessageInvoice(
            "R-88", dated(due - timedelta(days=30)), due, "EUR", Decimal("3100"), Decimal("3100")
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
                    "due_date": long_date(dated(day + timedelta(days=3)), locale),
                    "amount": format_money(Decimal("416.67"), "USD", locale),
                },
                language=language,
            ),
        ),
    ]


@lru_cache(maxsize=64)
def longest_sms_date(locale: str, year: int = SAMPLE_DAY.year) -> date:
    """The day of `year` a text message in `locale` writes the longest ("September 30, 2026" in
    US English, "31/12/2026" in `es`): a text that fits its segments with every date written so
    fits them on every day."""
    days = [date(year, 12, 31) - timedelta(days=n) for n in range(365)]
    return max(days, key=lambda day: length(sms_date(day, locale)))


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
    texts = frozenset(bundle.templates.items())
    results = []
    for ladder, step in bundle.playbook.all_steps():
        check = StepCheck(ladder=ladder, step=step.key, template=step.template)
        results.append(check)
        if step.human_only or step.template is None:
            continue  # a person writes these; nothing is rendered or sent automatically
        key = (texts, step.template, step.offset_days, ladder == "instalment")
        known = _STEP_CHECKED.get(key)
        if known is None:
            known = _check_step(renderer, step.template, step.offset_days, ladder == "instalment")
            if len(_STEP_CHECKED) >= _STEP_CHECKED_LIMIT:
                _STEP_CHECKED.clear()
            _STEP_CHECKED[key] = known
        check.languages, check.problems = list(known[0]), list(known[1])
    return results


# A step's languages and problems by everything they depend on: the template texts, the step's
# template and day, and whether its ladder is the instalment one. A proposal changes one step, and
# a ladder often repeats another's template on the same day: each such step was rendered again
# (about 0.33 s for the whole bundled playbook, 864 messages).
_StepKey = tuple[frozenset[tuple[str, str]], str, int, bool]
_STEP_CHECKED: dict[_StepKey, tuple[list[str], list[str]]] = {}
_STEP_CHECKED_LIMIT = 1024


def _check_step(
    renderer: Renderer, template: str, offset_days: int, instalment: bool
) -> tuple[list[str], list[str]]:
    """The languages a step's template is checked in besides English, and its problems."""
    languages = sorted(renderer.languages(template))
    problems_found: list[str] = []
    # Where the English message names the business, each translation must name it too.
    identity: dict[str, frozenset[str]] = {}
    for language in [None, *languages]:
        where = f"[{language}] " if language else ""
        for situation, context in sample_contexts(offset_days, language):
            try:
                message = renderer.render(template, context, language=language)
            except RenderError as exc:
                problems_found.append(f"{where}{situation}: {exc}")
                continue
            if language is None:
                identity[situation] = naming_parts(message, context["sender"]["name"])
            named = identity.get(situation, frozenset())
            problems = lint_message(message, language or "en")
            if not instalment:  # its reminders ask for the balances
                plain = {**context, "instalment": None}
                problems += missing_contents(message, plain, language, named)
            elif context["instalment"]:  # it asks for the instalment; it has no other use
                problems += missing_contents(message, context, language, named)
            problems_found.extend(f"{where}{situation}: {p}" for p in problems)
        problems_found.extend(_too_long_on_longest_dates(renderer, template, offset_days, language))
    return languages, problems_found


def _too_long_on_longest_dates(
    renderer: Renderer, template: str, offset_days: int, language: str | None
) -> list[str]:
    """The sample texts that take too many segments once every date in them is the longest its
    language writes (a text that fits around 16 March may not around 30 September), unless
    they are already too long on the sample day."""
    where = f"[{language}] " if language else ""
    problems = []
    usual = dict(sample_contexts(offset_days, language))
    for situation, context in sample_contexts(offset_days, language, longest_dates=True):
        try:
            sms = renderer.render(template, context, "sms", language).sms
            if segments_problem(renderer.render(template, usual[situation], "sms", language).sms):
                continue  # said already, on the sample day
        except RenderError:
            continue  # said already, on the sample day
        too_long = segments_problem(sms)
        if too_long:
            written = sms_date(
                longest_sms_date(formatting_locale(language)), formatting_locale(language)
            )
            problems.append(
                f"{where}{situation}, with its dates written as long as {written}: SMS: {too_long}"
            )
    return problems
