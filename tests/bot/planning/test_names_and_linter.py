"""A customer's or contact's own name is the ledger's, not the template's words: a contact called
Sue Park or a customer called Discount Tire Co is reminded like anyone else, while a forbidden
word the template or an approver writes is still refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.core.models import Reminder
from bot.core.runtime import Runtime
from bot.ledger.upsert import apply_batch
from bot.planning.day_plan import Held, PlanItem
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from bot.reminders import approvals
from bot.reminders.stale import StaleRules
from integrations.csv_ledger import read_ledger_csv
from playbooks.lint import lint_message
from playbooks.render import Rendered
from tests.support.ledger_files import HEADER, a_week_late, write

NAMES = [  # (customer, contact, language)
    ("Acme Supply", "Sue Park", ""),
    ("Discount Tire Co", "", ""),
    ("Harbor Court Dental", "Maria Garcia", ""),
    ("Promo Print Shop", "", ""),
    ("Acme Supply", "Juez Ruiz", "es"),
]


def plan(
    runtime: Runtime, tmp_path: Path, rows: list[dict[str, str]]
) -> tuple[list[PlanItem], list[Held]]:
    ledger = write(tmp_path / "ledger.csv", rows, header=[*HEADER, "language"])
    now = runtime.clock.now()
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(ledger), now)
        run = run_plan(
            session, PlanRules.from_settings(runtime.settings), runtime.today(), now, False
        )
    return run.plan.items, run.plan.held


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_names_that_hold_a_watched_word_do_not_hold_their_reminders(
    runtime: Runtime, tmp_path: Path, channel: str
) -> None:
    rows = a_week_late(len(NAMES))
    for row, (customer, contact, language) in zip(rows, NAMES, strict=True):
        row.update(customer_name=customer, contact_name=contact, language=language)
        if channel == "sms":  # due today: transactional customers get a text first
            row.update(tier="transactional", due_date=runtime.today().isoformat())
        else:
            row.update(phone="", sms_consent="false")
    items, held = plan(runtime, tmp_path, rows)
    assert [(h.customer.name, h.reason, h.detail) for h in held] == []
    assert sorted(i.customer.name for i in items) == sorted(c for c, _, _ in NAMES)
    assert {i.channel for i in items} == {channel}


def test_a_forbidden_word_of_the_template_is_found_beside_a_name_that_holds_one() -> None:
    message = Rendered(
        subject="Invoice I-1 for Harbor Court Dental",
        text="Hi Sue, Harbor Court Dental may face legal action. To stop these emails, unsubscribe.",
        html="<p>Hi Sue, we may go to court.</p><p>To stop these emails, unsubscribe.</p>",
        sms="Hi Sue Park, Promo Print Shop: a special offer! Reply STOP to opt out.",
    )
    values = ("Harbor Court Dental", "Sue Park", "Sue", "Promo Print Shop", "I-1")
    assert lint_message(message, "en", values) == [
        "text body: no automated message may mention legal action ('legal action')",
        "HTML body: no automated message may mention lawsuits and courts ('court')",
        "SMS: no automated message may mention promotional content ('special offer')",
    ]


def test_an_edit_keeps_the_contacts_name_and_is_still_checked_for_its_own_words(
    runtime: Runtime, tmp_path: Path
) -> None:
    rows = a_week_late(1, contact_name="Sue Park", phone="", sms_consent="false")
    rows[0]["customer_name"] = "Discount Tire Co"
    items, held = plan(runtime, tmp_path, rows)
    assert held == [] and len(items) == 1
    with runtime.sessions() as session:
        reminder = session.scalars(select(Reminder)).one()
    body = reminder.body_text or ""
    assert body.startswith("Hi Sue,")
    now = runtime.clock.now()
    with runtime.writing() as session:
        decision, problems = approvals.edit(
            session,
            reminder.id,
            "U0A",
            reminder.subject,
            body + "\nWe will sue.",
            now,
            rules=StaleRules(),
        )
        assert not decision.changed
        assert problems == {"body": "no automated message may mention lawsuits and courts ('sue')"}
        decision, problems = approvals.edit(
            session,
            reminder.id,
            "U0A",
            reminder.subject,
            "Thanks, Sue!\n\n" + body,
            now,
            rules=StaleRules(),
        )
        assert decision.changed, problems
