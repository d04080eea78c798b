"""Guardrails from recurring errors: each rule proposes at its threshold and not below, once while
it waits; approving applies it (a hold the plan shows, addresses no longer used, a person asked);
dismissing keeps it from being proposed again for eight weeks."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from bot.core import audit
from bot.core.models import Contact, Customer, Escalation, Event, InboundMessage, Reminder
from bot.core.runtime import Runtime
from bot.learning import guardrail_rules as rules
from bot.learning import guardrails
from bot.learning.guardrail_holds import HOLD_BOUNCES, HOLD_CORRECTION, active_holds
from bot.ledger.upsert import apply_batch
from bot.planning.planner import PlanRules
from bot.planning.store import PlanRun, run_plan
from integrations.csv_ledger import read_ledger_csv
from tests.support import ledger_files
from tests.support.ledger_files import write

TODAY = date(2026, 3, 16)
ROUTES: dict[str, str] = {}


def row(**fields: str) -> dict[str, str]:
    """A week-late invoice: today's plan has its +7 email."""
    return ledger_files.row(**{"due_date": "2026-03-09", **fields})


def load(runtime: Runtime, tmp_path: Path, rows: list[dict[str, str]], name: str = "l.csv") -> None:
    with runtime.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / name, rows)), runtime.clock.now())


def plan(runtime: Runtime, day: date = TODAY) -> PlanRun:
    with runtime.writing() as session:
        rules_ = PlanRules.from_settings(runtime.settings)
        return run_plan(session, rules_, day, runtime.clock.now(), False)


def customer_id(runtime: Runtime, external: str = "C-1") -> int:
    with runtime.sessions() as session:
        found = session.scalar(select(Customer.id).where(Customer.external_id == external))
        assert found is not None
        return found


def contact_of(runtime: Runtime, customer: int) -> int:
    with runtime.sessions() as session:
        found = session.scalar(select(Contact.id).where(Contact.customer_id == customer))
        assert found is not None
        return found


def bounce(runtime: Runtime, customer: int, contact: int) -> None:
    """What bot/replies/bounces.py logs when a reminder's email bounces."""
    with runtime.writing() as session:
        audit.record(
            session,
            runtime.clock.now(),
            "contact.bouncing",
            customer_id=customer,
            payload={"contact": contact, "status": "5.1.1", "error": "bounced: 5.1.1"},
        )


def propose(runtime: Runtime, no_contact: list[int] | None = None) -> list[int]:
    return guardrails.propose_today(runtime, no_contact or [])


def payload(runtime: Runtime, proposal: int) -> dict[str, Any]:
    with runtime.sessions() as session:
        event = session.get(Event, proposal)
        assert event is not None
        return dict(event.payload)


def held_reasons(run: PlanRun, customer: int) -> list[str]:
    return [h.reason for h in run.plan.held if h.customer.id == customer]


def approve(
    runtime: Runtime, proposal: int, by: str = "U0APPROVER"
) -> guardrails.GuardrailDecision:
    with runtime.writing() as session:
        return guardrails.approve(session, proposal, by, runtime.clock.now(), ROUTES)


def test_three_bounces_at_a_customers_domain_propose_a_hold_two_do_not(
    runtime: Runtime, tmp_path: Path
) -> None:
    load(runtime, tmp_path, [row()])
    customer = customer_id(runtime)
    contact = contact_of(runtime, customer)
    for _ in range(rules.BOUNCES_AT_DOMAIN - 1):
        bounce(runtime, customer, contact)
    assert propose(runtime) == []
    bounce(runtime, customer, contact)
    (proposal,) = propose(runtime)
    found = payload(runtime, proposal)
    assert found["rule"] == "bounces" and found["hold"] == HOLD_BOUNCES
    assert "3 emails to Ridgeline Roofing at ridgeline.example bounced" in found["happened"]
    assert "new billing contact" in found["change"]
    assert propose(runtime) == []  # not proposed twice while it waits


def test_bounces_older_than_the_window_do_not_count(
    runtime: Runtime, tmp_path: Path, clock: Any
) -> None:
    load(runtime, tmp_path, [row()])
    customer = customer_id(runtime)
    contact = contact_of(runtime, customer)
    for _ in range(2):
        bounce(runtime, customer, contact)
    clock.advance(timedelta(days=rules.BOUNCE_DAYS + 1))
    bounce(runtime, customer, contact)
    assert propose(runtime) == []


def test_an_approved_bounce_hold_keeps_the_customer_out_of_the_plan_until_a_new_contact(
    runtime: Runtime, tmp_path: Path, clock: Any
) -> None:
    load(runtime, tmp_path, [row()])
    customer = customer_id(runtime)
    contact = contact_of(runtime, customer)
    for _ in range(3):
        bounce(runtime, customer, contact)
    (proposal,) = propose(runtime)
    clock.advance(timedelta(days=1))
    assert approve(runtime, proposal).changed
    second = approve(runtime, proposal, "U0SECOND")
    assert not second.changed and "already approved by <@U0APPROVER>" in second.message
    with runtime.sessions() as session:
        escalation = session.scalar(select(Escalation).where(Escalation.customer_id == customer))
        assert escalation is not None and escalation.reason == "contact_needed"
        assert active_holds(session) == {customer: HOLD_BOUNCES}
    assert held_reasons(plan(runtime, TODAY + timedelta(days=1)), customer) == [HOLD_BOUNCES]
    clock.advance(timedelta(hours=2))
    with runtime.writing() as session:
        now = runtime.clock.now()
        session.add(
            Contact(
                customer_id=customer,
                name="New AP",
                email="payables@ridgeline.example",
                role="billing",
                created_at=now,
                updated_at=now,
            )
        )
    with runtime.sessions() as session:
        assert active_holds(session) == {}
        assert guardrails.view_of(session, proposal).holding is False
    with runtime.writing() as session:
        late = guardrails.release(session, proposal, "U0APPROVER", clock.now())
        assert not late.changed and "has ended: a new contact was added" in late.message


def test_a_dismissed_guardrail_is_not_proposed_again_for_eight_weeks(
    runtime: Runtime, tmp_path: Path, clock: Any
) -> None:
    load(runtime, tmp_path, [row()])
    customer = customer_id(runtime)
    contact = contact_of(runtime, customer)
    for _ in range(3):
        bounce(runtime, customer, contact)
    (proposal,) = propose(runtime)
    with runtime.writing() as session:
        assert guardrails.dismiss(session, proposal, "U0APPROVER", "known", clock.now()).changed
    with runtime.sessions() as session:
        view = guardrails.view_of(session, proposal)
        assert (view.status, view.decided_by, view.why) == ("dismissed", "U0APPROVER", "known")
    clock.advance(timedelta(days=1))
    for _ in range(3):  # new bounces after the dismissal
        bounce(runtime, customer, contact)
    assert propose(runtime) == []
    clock.advance(timedelta(weeks=rules.SUPPRESS_WEEKS))
    for _ in range(3):
        bounce(runtime, customer, contact)
    assert len(propose(runtime)) == 1  # eight weeks after the dismissal
    with runtime.sessions() as session:
        assert active_holds(session) == {}  # dismissing changed nothing


def wrong_contact_reply(runtime: Runtime, customer: int, sender: str) -> None:
    with runtime.writing() as session:
        now = runtime.clock.now()
        session.add(
            InboundMessage(
                channel="email",
                received_at=now,
                sender=sender,
                raw="raw",
                text="Wrong person, I left the company.",
                customer_id=customer,
                label="wrong_contact",
                confidence=0.9,
            )
        )


def test_two_wrong_contact_replies_propose_the_crms_billing_contact(
    runtime: Runtime, tmp_path: Path
) -> None:
    load(runtime, tmp_path, [row()])
    customer = customer_id(runtime)
    wrong = contact_of(runtime, customer)
    with runtime.writing() as session:  # what a CRM sync records when it adds its contact
        now = runtime.clock.now()
        session.execute(update(Customer).where(Customer.id == customer).values(crm_ref="hubspot:9"))
        session.add(
            Contact(
                customer_id=customer,
                email="billing@ridgeline.example",
                role="billing",
                created_at=now,
                updated_at=now,
            )
        )
        audit.record(
            session,
            now,
            "customer.crm_updated",
            customer_id=customer,
            payload={"billing_contact_added": True, "billing_contact": "billing@ridgeline.example"},
        )
    wrong_contact_reply(runtime, customer, "ap@ridgeline.example")
    assert propose(runtime) == []
    wrong_contact_reply(runtime, customer, "ap@ridgeline.example")
    (proposal,) = propose(runtime)
    found = payload(runtime, proposal)
    assert found["hold"] is None and found["unusable"] == [wrong]
    assert "billing@ridgeline.example" in found["change"]
    assert "ap@ridgeline.example" in found["change"]
    assert approve(runtime, proposal).changed
    with runtime.sessions() as session:
        stopped = session.get(Contact, wrong)
        assert stopped is not None and stopped.email_unusable_at is not None
    run = plan(runtime)
    (item,) = [i for i in run.plan.items if i.customer.id == customer]
    assert item.contact is not None and item.contact.email == "billing@ridgeline.example"


def test_wrong_contact_replies_without_a_crm_contact_propose_a_hold_and_asking(
    runtime: Runtime, tmp_path: Path
) -> None:
    load(runtime, tmp_path, [row()])
    customer = customer_id(runtime)
    for _ in range(2):
        wrong_contact_reply(runtime, customer, "ap@ridgeline.example")
    (proposal,) = propose(runtime)
    found = payload(runtime, proposal)
    assert found["hold"] == "guardrail_wrong_contact" and found["until_contact"] is True
    assert "The CRM gives no other billing contact" in found["happened"]


def sent_reminder(runtime: Runtime) -> None:
    """Plan today, and mark its reminders as sent an hour ago."""
    plan(runtime)
    with runtime.writing() as session:
        session.execute(
            update(Reminder).values(state="sent", sent_at=runtime.clock.now() - timedelta(hours=1))
        )


def test_a_balance_corrected_up_after_a_reminder_holds_the_next_one_for_review(
    runtime: Runtime, tmp_path: Path, clock: Any
) -> None:
    load(runtime, tmp_path, [row()])
    customer = customer_id(runtime)
    sent_reminder(runtime)
    clock.advance(timedelta(days=1))
    load(runtime, tmp_path, [row(amount="1100.00", balance="1100.00")], "lower.csv")  # paid some
    assert propose(runtime) == []
    load(runtime, tmp_path, [row(amount="1500.00", balance="1500.00")], "higher.csv")
    (proposal,) = propose(runtime)
    found = payload(runtime, proposal)
    assert found["hold"] == HOLD_CORRECTION
    assert "INV-1's balance was corrected up from $1,100.00 to $1,500.00" in found["happened"]
    assert approve(runtime, proposal).changed
    later = TODAY + timedelta(days=8)
    clock.set(datetime.combine(later, clock.now().timetz()))
    assert held_reasons(plan(runtime, later), customer) == [HOLD_CORRECTION]
    with runtime.writing() as session:
        assert guardrails.release(session, proposal, "U0SECOND", clock.now()).changed
        again = guardrails.release(session, proposal, "U0APPROVER", clock.now())
        assert not again.changed and "already released by <@U0SECOND>" in again.message
    assert HOLD_CORRECTION not in held_reasons(plan(runtime, later), customer)
    assert propose(runtime) == []  # the same correction is not proposed again


def test_a_correction_before_any_reminder_went_out_proposes_nothing(
    runtime: Runtime, tmp_path: Path, clock: Any
) -> None:
    load(runtime, tmp_path, [row()])
    clock.advance(timedelta(days=1))
    load(runtime, tmp_path, [row(amount="1500.00", balance="1500.00")], "higher.csv")
    assert propose(runtime) == []


def test_a_customer_with_no_usable_contact_is_asked_about_once(
    runtime: Runtime, tmp_path: Path, clock: Any
) -> None:
    load(runtime, tmp_path, [row(email="", phone="", contact_name="", sms_consent="false")])
    customer = customer_id(runtime)
    run = plan(runtime)
    assert held_reasons(run, customer) == ["no_contact"]
    no_contact = [h.customer.id for h in run.plan.held if h.reason == "no_contact"]
    (proposal,) = propose(runtime, no_contact)
    assert propose(runtime, no_contact) == []  # waiting: not again the next morning
    assert approve(runtime, proposal).changed
    with runtime.sessions() as session:
        escalation = session.scalar(select(Escalation).where(Escalation.customer_id == customer))
        assert escalation is not None and "no billing contact" in (escalation.detail or "")
    clock.advance(timedelta(days=1))
    assert propose(runtime, no_contact) == []  # asked once, not every morning


def test_a_customer_held_for_another_reason_is_not_asked_for_a_contact(
    runtime: Runtime, tmp_path: Path
) -> None:
    load(runtime, tmp_path, [row()])
    assert propose(runtime, []) == []
