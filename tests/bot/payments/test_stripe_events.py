"""What a Stripe refund or card dispute does to the customer's account (bot/payments/stripe_events.py),
applied the way the webhook applies a verified event: who is told, and which reminders stop."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from sqlalchemy import select

from bot.core.models import Escalation, Invoice, Reminder
from bot.core.runtime import Runtime
from bot.core.settings import Settings
from bot.ledger.upsert import apply_batch
from bot.payments.stripe_events import StripeResult, apply_event
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from integrations.base.payments import StripeEventIn
from integrations.csv_ledger import read_ledger_csv
from tests.support import stripe_requests as sr
from tests.support.ledger_files import row, write

TODAY = date(2026, 3, 16)


def apply(runtime: Runtime, body: bytes) -> StripeResult:
    event = json.loads(body)
    verified = StripeEventIn(
        id=event["id"],
        type=event["type"],
        object=event["data"]["object"],
        livemode=False,
        created=runtime.clock.now(),
    )
    with runtime.writing() as session:
        return apply_event(session, verified, runtime.clock.now(), {})


def loaded(runtime: Runtime, tmp_path: Path) -> dict[str, int]:
    """Two invoices of one customer, INV-1 (1,200.00) and INV-2 (300.00): number → id."""
    rows = [
        row(invoice_number="INV-1", amount="1200.00", balance="1200.00", due_date="2026-03-08"),
        row(invoice_number="INV-2", amount="300.00", balance="300.00", due_date="2026-03-09"),
    ]
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), runtime.clock.now())
    with runtime.sessions() as session:
        return {number: id_ for number, id_ in session.execute(select(Invoice.number, Invoice.id))}


def plan(runtime: Runtime, settings: Settings) -> None:
    with runtime.writing() as session:
        run_plan(session, PlanRules.from_settings(settings), TODAY, runtime.clock.now(), False)


def waiting(runtime: Runtime) -> list[int]:
    with runtime.sessions() as session:
        return list(
            session.scalars(
                select(Reminder.id).where(Reminder.state.in_(("planned", "approved")))
            ).all()
        )


def test_a_card_dispute_cancels_the_customers_waiting_reminders_as_a_disputing_reply_does(
    runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    ids = loaded(runtime, tmp_path)
    paid = sr.checkout_completed(120000, [ids["INV-1"]], "pi_c")
    assert apply(runtime, sr.event("checkout.session.completed", paid)).status == "applied"
    plan(runtime, settings)  # INV-2, still open, gets its reminder
    still_waiting = waiting(runtime)
    assert still_waiting

    result = apply(runtime, sr.event("charge.dispute.created", sr.dispute_created("pi_c", 120000)))

    assert result.status == "applied"
    assert result.outcome.cancelled == still_waiting  # so their plan cards are re-drawn
    assert waiting(runtime) == []
    with runtime.sessions() as session:
        reasons = session.scalars(
            select(Reminder.cancel_reason).where(Reminder.id.in_(still_waiting))
        ).all()
        escalation = session.scalars(select(Escalation)).one()
    assert set(reasons) == {"disputed"}
    assert escalation.reason == "card_dispute"


def test_a_refund_that_reopens_an_invoice_opens_an_escalation_when_none_is_open(
    runtime: Runtime, tmp_path: Path
) -> None:
    ids = loaded(runtime, tmp_path)
    paid = sr.checkout_completed(150000, [ids["INV-1"], ids["INV-2"]], "pi_q")
    apply(runtime, sr.event("checkout.session.completed", paid))

    result = apply(runtime, sr.event("charge.refunded", sr.charge_refunded("pi_q", 150000, 30000)))

    assert result.status == "applied" and result.outcome.reopened == [ids["INV-2"]]
    with runtime.sessions() as session:
        escalation = session.scalars(select(Escalation)).one()
    assert (escalation.reason, escalation.owner_slack_id) == ("payment_refunded", "U07DANA01")
    assert (
        escalation.detail
        == "Stripe payment pi_q was refunded (300.00 USD in all): INV-2 open again"
    )
