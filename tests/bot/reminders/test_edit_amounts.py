"""An edit may not change or drop an amount the reminder states, whatever the currency's decimals
(none for JPY, three for KWD) and the locale's grouping (1'234.50 in Swiss German): the approver
is told which amount to put back, exactly as the reminder wrote it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.core.models import Customer, Reminder
from bot.core.runtime import Runtime
from bot.escalations import plans, service
from bot.ledger.upsert import apply_batch
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from bot.reminders import approvals
from bot.reminders.message_facts import missing_facts
from bot.reminders.stale import StaleRules
from integrations.csv_ledger import read_ledger_csv
from tests.playbooks.test_languages import TODAY
from tests.support.ledger_files import HEADER, row, write


def plan_one(
    runtime: Runtime, tmp_path: Path, currency: str, balance: str, language: str
) -> Reminder:
    """One customer with one invoice due on 3 March: today's +7 email."""
    ledger = write(
        tmp_path / "ledger.csv",
        [
            row(
                currency=currency,
                amount=balance,
                balance=balance,
                issue_date="2026-02-01",
                due_date="2026-03-03",
                tags="",
                language=language,
            )
        ],
        header=[*HEADER, "language"],
    )
    now = runtime.clock.now()
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(ledger), now)
        run_plan(session, PlanRules.from_settings(runtime.settings), TODAY, now, False)
    with runtime.sessions() as session:
        reminder = session.scalars(select(Reminder)).one()
        session.expunge(reminder)
    return reminder


@pytest.mark.parametrize(
    ("currency", "balance", "language", "written", "changed"),
    [
        ("JPY", "125000", "en", "¥125,000", "¥12,500"),
        ("CHF", "1234.50", "de-CH", "CHF 1'234.50", "CHF 9'234.50"),
        ("KWD", "1234.5", "en", "KWD1,234.500", "KWD9,234.500"),
        ("USD", "1234.5", "en", "$1,234.50", "$9,234.50"),
    ],
)
def test_an_edit_that_changes_an_amount_is_refused_with_the_amount_to_put_back(
    runtime: Runtime,
    tmp_path: Path,
    currency: str,
    balance: str,
    language: str,
    written: str,
    changed: str,
) -> None:
    reminder = plan_one(runtime, tmp_path, currency, balance, language)
    body = (reminder.body_text or "").replace("\u00a0", " ")
    assert written in body
    now = runtime.clock.now()
    with runtime.writing() as session:
        decision, problems = approvals.edit(
            session,
            reminder.id,
            "U0A",
            reminder.subject,
            body.replace(written, changed),
            now,
            rules=StaleRules(),
        )
        assert not decision.changed
        assert problems == {"body": f"put back the amount {written}"}
        decision, problems = approvals.edit(
            session,
            reminder.id,
            "U0A",
            reminder.subject,
            "Thank you.\n\n" + body,
            now,
            rules=StaleRules(),
        )
        assert decision.changed, problems


def test_a_date_written_in_digits_with_dots_is_no_amount_to_put_back() -> None:
    """A German text writes its dates 03.08.2026: an approver who writes the month out instead
    has lost no amount (03.08 and 8.20 are no amounts)."""
    before = "Rechnung RE-1 über 1.250,00 € war am 03.08.2026 fällig."
    after = "Rechnung RE-1 über 1.250,00 € war am 3. August 2026 fällig."
    assert missing_facts(before, after, ("RE-1",), ("1.250,00 €",)) == []
    assert missing_facts(before, after.replace("1.250,00", "1.200,00"), ("RE-1",), ()) == [
        "the amount 1.250,00"
    ]


@pytest.mark.parametrize(
    ("currency", "first", "language", "written", "changed"),
    [
        ("JPY", "40000", "en", "¥40,000", "¥4,000"),
        ("CHF", "1234.50", "de-CH", "CHF 1'234.50", "CHF 9'234.50"),
    ],
)
def test_an_edit_that_changes_an_instalments_amount_is_refused(
    runtime: Runtime,
    tmp_path: Path,
    currency: str,
    first: str,
    language: str,
    written: str,
    changed: str,
) -> None:
    """An instalment's reminder asks for the instalment, not the invoice's balance: that amount
    is one the edit may not change either."""
    ledger = write(
        tmp_path / "ledger.csv",
        [
            row(
                currency=currency,
                amount="120000",
                balance="120000",
                issue_date="2026-02-01",
                due_date="2026-03-01",
                tags="",
                language=language,
            )
        ],
        header=[*HEADER, "language"],
    )
    now = runtime.clock.now()
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(ledger), now)
        customer_id = session.scalars(select(Customer.id)).one()
        escalation, _ = service.open_or_add(session, customer_id, "replied", now)
        plans.record(
            session,
            escalation.id,
            "U0APPROVER",
            "account",
            [
                (date(2026, 3, 18), Decimal(first)),
                (date(2026, 4, 18), Decimal("120000") - Decimal(first)),
            ],
            now,
        )
        run_plan(session, PlanRules.from_settings(runtime.settings), TODAY, now, False)
    with runtime.sessions() as session:
        reminder = session.scalars(select(Reminder)).one()
    assert reminder.step_key.startswith("instalment-")
    body = (reminder.body_text or "").replace("\u00a0", " ")
    assert written in body
    with runtime.writing() as session:
        decision, problems = approvals.edit(
            session,
            reminder.id,
            "U0A",
            (reminder.subject or "").replace("\u00a0", " ").replace(written, changed),
            body.replace(written, changed),
            now,
            rules=StaleRules(),
        )
    assert not decision.changed
    assert problems == {"body": f"put back the amount {written}"}
