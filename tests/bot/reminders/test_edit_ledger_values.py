"""The Edit form reads an approver's text around the same values the plan's linter reads the
template around (`playbooks.lint.ledger_values`): what comes from the ledger or the settings (the
payment link, the business's name) is no forbidden word of the approver's."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select, update

from bot.core.models import Invoice, PaymentLink, Reminder
from bot.core.runtime import Runtime
from bot.learning.check import sample_contexts
from bot.ledger.upsert import apply_batch
from bot.payments.links import link_in_message
from bot.planning.messages import Sender
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from bot.reminders import approvals
from bot.reminders.stale import StaleRules
from integrations.csv_ledger import read_ledger_csv
from playbooks.lint import ledger_values
from tests.playbooks.test_languages import TODAY
from tests.support.ledger_files import row, write

LINK = "https://pay.brightwater.example/discount-tire-co/INV-1"


def plan_one(runtime: Runtime, tmp_path: Path, link: str | None = None) -> Reminder:
    """One customer with one invoice due on 3 March (its own pay page `link`): today's email."""
    ledger = write(
        tmp_path / "ledger.csv",
        [row(issue_date="2026-02-01", due_date="2026-03-03", tags="")],
    )
    now = runtime.clock.now()
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(ledger), now)
        if link:
            session.execute(update(Invoice).values(payment_link=link))
        run_plan(session, PlanRules.from_settings(runtime.settings), TODAY, now, False)
    with runtime.sessions() as session:
        reminder = session.scalars(select(Reminder)).one()
        session.expunge(reminder)
    return reminder


def test_an_edit_keeping_a_payment_link_with_a_watched_word_in_it_is_saved(
    runtime: Runtime, tmp_path: Path
) -> None:
    reminder = plan_one(runtime, tmp_path, LINK)
    body = reminder.body_text or ""
    assert LINK in body  # the plan let it through: the link is the ledger's
    with runtime.sessions() as session:
        draft = approvals.draft_of(session, reminder.id)
    assert draft is not None
    edited = "Thank you.\n\n" + body
    assert (
        approvals.edit_problems(
            draft.channel,
            draft.subject,
            edited,
            draft.original,
            draft.invoice_numbers,
            values=draft.values,
        )
        == {}
    )
    with runtime.writing() as session:
        decision, problems = approvals.edit(
            session,
            reminder.id,
            "U0A",
            reminder.subject,
            edited,
            runtime.clock.now(),
            rules=StaleRules(),
        )
    assert problems == {} and decision.changed
    # a watched word the approver types is still refused
    with runtime.sessions() as session:
        values = approvals.draft_of(session, reminder.id)
    assert values is not None
    assert "promotional content" in approvals.edit_problems(
        "email", "Invoice", "A discount for you. " + body, body, values=values.values
    ).get("body", "")


def test_a_business_whose_name_holds_a_watched_word_gets_its_reminders_planned_and_edited(
    runtime: Runtime, tmp_path: Path
) -> None:
    """ARBOT_BUSINESS_NAME "Promo Print Shop" is the settings', not the template's words."""
    sender = Sender("Promo Print Shop", "billing@promo-print.example")
    rules = replace(PlanRules.from_settings(runtime.settings), sender=sender)
    ledger = write(
        tmp_path / "ledger.csv", [row(issue_date="2026-02-01", due_date="2026-03-03", tags="")]
    )
    now = runtime.clock.now()
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(ledger), now)
        run_plan(session, rules, TODAY, now, False)
    with runtime.sessions() as session:
        reminder = session.scalars(select(Reminder)).one()
        draft = approvals.draft_of(session, reminder.id, sender=sender)
    body = reminder.body_text or ""
    assert "Promo Print Shop" in body
    assert draft is not None and "Promo Print Shop" in draft.values
    edited = "Thank you.\n\n" + body
    assert (
        approvals.edit_problems(
            "email", reminder.subject, edited, draft.original, values=draft.values
        )
        == {}
    )
    with runtime.writing() as session:
        decision, problems = approvals.edit(
            session,
            reminder.id,
            "U0A",
            reminder.subject,
            edited,
            now,
            rules=StaleRules(),
            sender=sender,
        )
    assert problems == {} and decision.changed


def test_the_values_the_linter_reads_around_include_the_senders() -> None:
    _, context = sample_contexts(7)[0]
    context["sender"] = {"name": "Promo Print Shop", "email": "a@promo.example", "phone": None}
    context["unsubscribe_url"] = "https://promo.example/unsubscribe/x"
    assert {"Promo Print Shop", "a@promo.example", "https://promo.example/unsubscribe/x"} <= set(
        ledger_values(context)
    )


def test_the_link_of_several_invoices_is_the_live_processor_link_made_for_exactly_them(
    runtime: Runtime, tmp_path: Path
) -> None:
    ledger = write(
        tmp_path / "ledger.csv",
        [row(invoice_number="INV-1"), row(invoice_number="INV-2"), row(invoice_number="INV-3")],
    )
    now = runtime.clock.now()
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(ledger), now)
        one, two, three = session.scalars(select(Invoice).order_by(Invoice.number)).all()

        def made(url: str, invoices: list[Invoice], retired: bool = False) -> None:
            session.add(
                PaymentLink(
                    key=url[-12:],
                    customer_id=one.customer_id,
                    url=url,
                    provider_id=url[-12:],
                    currency="USD",
                    amount=Decimal("1"),
                    invoice_ids=sorted(i.id for i in invoices),
                    created_at=now,
                    retired_at=now if retired else None,
                )
            )

        made("https://pay.example/promo-old-12", [one, two], retired=True)
        made("https://pay.example/all-three-1", [one, two, three])
        made("https://pay.example/promo-live-1", [two, one])
        session.flush()
        assert link_in_message(session, [one, two]) == "https://pay.example/promo-live-1"
        assert link_in_message(session, [two, three]) is None
