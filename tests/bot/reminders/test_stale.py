"""A reminder whose reason to exist has gone since it was planned (paid, or resolved by a promise
or a payment plan) is cancelled, not approved: by Approve and by Approve all alike, with the rules
the send claim uses."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

from bot.core.models import Event, Invoice, Reminder
from bot.core.runtime import Runtime
from bot.core.vocabulary import Resolution
from bot.reminders import approvals
from bot.reminders.outbox import config_from
from bot.reminders.stale import StaleRules
from tests.support.ledger_files import a_week_late, write

TODAY = date(2026, 3, 16)
# How a person records that an invoice is being settled another way, and the reason it gives.
RESOLVED = {
    "payment_plan": ({"payment_plan": True}, "payment_plan"),
    "promise": ({"promise_date": date(2026, 3, 20)}, "promised"),
    # voided in the ledger since: the reminder is not sent, and not for being paid
    "void": ({"status": "void", "balance": Decimal(0)}, "voided"),
}


def planned(cli: Any, tmp_path: Path, customers: int) -> None:
    assert cli("import-csv", str(write(tmp_path / "l.csv", a_week_late(customers)))).code == 0
    assert cli("plan").code == 0


def approve_one_way(session: Any, how: str, reminder_id: int, rules: StaleRules, now: Any) -> None:
    if how == "approve":
        approvals.approve(session, reminder_id, "U0A", now, rules=rules)
    else:
        approvals.approve_all(session, TODAY, "standard", "U0A", now, rules=rules)


def outcome(runtime: Runtime, reminder_id: int) -> tuple[Any, ...]:
    """The reminder's state and cancel reason, and the Events written about it since it was
    planned (kind, actor, payload)."""
    with runtime.sessions() as session:
        reminder = session.get(Reminder, reminder_id)
        assert reminder is not None
        events = session.execute(
            select(Event.kind, Event.actor, Event.payload)
            .where(Event.reminder_id == reminder_id, Event.kind != "reminder.planned")
            .order_by(Event.id)
        ).all()
    return reminder.state, reminder.cancel_reason, [tuple(e) for e in events]


@pytest.mark.parametrize("how", ["approve", "approve_all"])
@pytest.mark.parametrize("resolution", sorted(RESOLVED))
def test_approving_a_reminder_whose_invoice_was_resolved_since_it_was_planned_cancels_it(
    cli: Any, runtime: Runtime, tmp_path: Path, resolution: str, how: str
) -> None:
    planned(cli, tmp_path, customers=1)
    change, reason = RESOLVED[resolution]
    with runtime.writing() as session:
        session.execute(update(Invoice).values(**change))
    rules = StaleRules.from_settings(runtime.settings)  # the default: both count as resolved
    with runtime.writing() as session:
        approve_one_way(session, how, 1, rules, runtime.clock.now())
    assert outcome(runtime, 1) == (
        "cancelled",
        reason,
        [("reminder.cancelled", "system", {"reason": reason})],
    )


def test_what_counts_as_resolved_comes_from_the_rules(
    cli: Any, runtime: Runtime, tmp_path: Path
) -> None:
    planned(cli, tmp_path, customers=1)
    with runtime.writing() as session:
        session.execute(update(Invoice).values(payment_plan=True))
    only_promises = StaleRules(resolved_when=frozenset({Resolution.PROMISE}))
    with runtime.writing() as session:
        decision = approvals.approve(session, 1, "U0A", runtime.clock.now(), rules=only_promises)
    assert (decision.changed, decision.state) == (True, "approved")


def test_approve_all_cancels_a_stale_reminder_exactly_as_approve_does(
    cli: Any, runtime: Runtime, tmp_path: Path
) -> None:
    planned(cli, tmp_path, customers=4)
    with runtime.writing() as session:  # paid after the plan was posted
        session.execute(
            update(Invoice)
            .where(Invoice.number.in_(("I-2", "I-4")))
            .values(balance=Decimal(0), status="paid")
        )
    rules = StaleRules.from_settings(runtime.settings)
    now = runtime.clock.now()
    with runtime.writing() as session:
        single = approvals.approve(session, 4, "U0A", now, rules=rules)
        everything = approvals.approve_all(session, TODAY, "standard", "U0B", now, rules=rules)
    assert (single.changed, single.state) == (False, "cancelled")
    assert sorted(everything.approved) == [1, 3]
    assert everything.cancelled == {2: "paid"}
    assert sorted(everything.changed()) == [1, 2, 3]
    assert outcome(runtime, 2) == outcome(runtime, 4)
    assert outcome(runtime, 2) == (
        "cancelled",
        "paid",
        [("reminder.cancelled", "system", {"reason": "paid"})],
    )
    assert outcome(runtime, 1)[0] == outcome(runtime, 3)[0] == "approved"


def test_the_send_claim_checks_with_the_rules_approval_uses(runtime: Runtime) -> None:
    settings = runtime.settings.model_copy(
        update={
            "secret_key": SecretStr("k"),
            "from_email": "ar@b.example",
            "resolved_when": ["promise"],
        }
    )
    assert config_from(settings).stale == StaleRules.from_settings(settings)
    assert config_from(settings).stale.resolved_when == {Resolution.PROMISE}


def test_a_promise_holds_through_its_date_in_the_business_timezone(
    cli: Any, runtime: Runtime, tmp_path: Path
) -> None:
    """At 22:00 in New York on the promised day it is already the next day in UTC: the promise
    still holds, and Approve cancels the reminder."""
    planned(cli, tmp_path, customers=1)
    with runtime.writing() as session:
        session.execute(update(Invoice).values(promise_date=TODAY))
    evening = datetime(2026, 3, 17, 2, 0, tzinfo=UTC)  # 2026-03-16 22:00 in New York
    rules = StaleRules.from_settings(runtime.settings)
    assert runtime.settings.timezone == "America/New_York"
    with runtime.writing() as session:
        approvals.approve(session, 1, "U0A", evening, rules=rules)
    assert outcome(runtime, 1)[:2] == ("cancelled", "promised")
