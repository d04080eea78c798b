"""The daily planner: every rule of the plan, through `arbot plan --json` on a real database."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from bot.core.models import (
    Contact,
    Customer,
    Escalation,
    Event,
    InboundMessage,
    Invoice,
    Reminder,
    ReminderInvoice,
)
from bot.core.runtime import Runtime
from tests.support.ledger_files import row

TODAY = date(2026, 3, 16)  # Monday; the test clock is 10:00 in New York


def due(days_past_due: int) -> dict[str, str]:
    due_date = TODAY - timedelta(days=days_past_due)
    return {
        "issue_date": (due_date - timedelta(days=30)).isoformat(),
        "due_date": due_date.isoformat(),
    }


def customer(n: int, **fields: str) -> dict[str, str]:
    base = row(
        customer_id=f"C-{n}",
        customer_name=f"Customer {n}",
        email=f"ap@c{n}.example",
        phone="",
        sms_consent="false",
        owner_slack_id="",
        invoice_number=f"I-{n}",
    )
    base.update(fields)
    return base


def held(doc: dict[str, Any]) -> dict[str, str]:
    return {h["customer"]: h["reason"] for h in doc["held"]}


def steps(doc: dict[str, Any]) -> dict[str, str]:
    return {r["customer"]: r["step"] for r in doc["reminders"]}


# --- which step is due -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_past_due", "step"),
    [
        (-5, None),
        (-3, "courtesy"),
        (-1, "courtesy"),
        (0, "due_today"),
        (6, "due_today"),
        (7, "plus7"),
        (20, "plus14"),
        (29, "plus14"),
        (30, "plus30"),
        (200, "plus30"),
    ],
)
def test_the_due_step_is_the_latest_whose_offset_has_passed(
    load: Any, plan: Any, days_past_due: int, step: str | None
) -> None:
    load(customer(1, **due(days_past_due)))
    assert steps(plan()).get("C-1") == step


def test_an_invoice_first_seen_at_plus_20_gets_plus_14_only_and_never_plus_7_later(
    load: Any, plan: Any, runtime: Runtime
) -> None:
    load(customer(1, **due(20)))
    first = plan()
    assert steps(first) == {"C-1": "plus14"}
    assert plan()["reminders"] == []  # the same day again plans nothing new
    for offset in range(1, 10):  # the following days: +7 is behind it, +30 not yet reached
        _send_everything(runtime)
        assert plan("--date", (TODAY + timedelta(days=offset)).isoformat())["reminders"] == []
    later = plan("--date", (TODAY + timedelta(days=10)).isoformat())
    assert steps(later) == {"C-1": "plus30"}


def test_a_step_is_done_once_per_invoice_ever_even_when_skipped(
    load: Any, plan: Any, runtime: Runtime
) -> None:
    load(customer(1, **due(7)))
    assert steps(plan()) == {"C-1": "plus7"}
    with runtime.writing() as session:
        session.execute(update(Reminder).values(state="skipped"))
    assert plan("--date", "2026-03-17")["reminders"] == []


def test_the_database_refuses_the_same_step_twice_for_one_invoice(
    load: Any, plan: Any, runtime: Runtime
) -> None:
    load(customer(1, **due(7)))
    plan()
    with pytest.raises(IntegrityError), runtime.writing() as session:
        link = session.scalars(select(ReminderInvoice)).one()
        other = Reminder(
            customer_id=1,
            channel="email",
            plan_date=TODAY,
            step_key="plus7",
            idempotency_key="another",
            created_at=runtime.clock.now(),
            updated_at=runtime.clock.now(),
        )
        session.add(other)
        session.flush()
        session.add(
            ReminderInvoice(
                reminder_id=other.id,
                invoice_id=link.invoice_id,
                step_key="plus7",
                due_date=link.due_date,
            )
        )


def test_a_new_due_date_starts_the_ladder_again(load: Any, plan: Any, runtime: Runtime) -> None:
    """The reminder still waiting states the old due date: the import cancels it, and the next
    plan takes the invoice up at the first step of its new due date."""
    load(customer(1, **due(7)))
    assert steps(plan()) == {"C-1": "plus7"}
    load(
        customer(1, **due(8), invoice_number="I-1")
        | {"due_date": (TODAY - timedelta(days=8)).isoformat()}
    )
    doc = plan("--date", "2026-03-17")
    assert steps(doc) == {"C-1": "plus7"} and doc["held"] == []
    with runtime.sessions() as session:
        first = session.scalars(select(Reminder).order_by(Reminder.id)).first()
    assert first is not None
    assert (first.state, first.cancel_reason) == ("cancelled", "due_date_changed")


# --- one message per customer per day ---------------------------------------------------------


def test_a_customers_invoices_go_in_one_message_at_the_firmest_tone(
    load: Any, plan: Any, runtime: Runtime
) -> None:
    load(
        customer(1, invoice_number="A", **due(14)),
        customer(1, invoice_number="B", **due(7)),
        customer(1, invoice_number="C", **due(-3)),
        customer(1, invoice_number="D", **due(-10)),  # nothing due yet: not in the message
    )
    doc = plan()
    assert len(doc["reminders"]) == 1
    reminder = doc["reminders"][0]
    assert reminder["step"] == "plus14"
    assert reminder["tone"] == "firm"
    assert sorted(reminder["invoices"]) == ["A", "B", "C"]
    with runtime.sessions() as session:
        stored = session.scalars(select(Reminder)).one()
        links = session.execute(select(ReminderInvoice.step_key)).scalars().all()
    assert sorted(links) == ["courtesy", "plus14", "plus7"]  # each invoice's own step is done
    assert stored.idempotency_key == f"plan:{stored.customer_id}:2026-03-16"
    assert "A" in (stored.body_text or "") and "B" in (stored.body_text or "")


def test_the_message_states_the_ledgers_amounts_exactly(
    load: Any, plan: Any, runtime: Runtime
) -> None:
    load(
        customer(1, invoice_number="A", amount="1234.56", balance="1000.01", **due(7)),
        customer(1, invoice_number="B", amount="99.99", balance="99.99", currency="EUR", **due(7)),
    )
    plan()
    with runtime.sessions() as session:
        reminder = session.scalars(select(Reminder)).one()
    assert "$1,000.01" in (reminder.body_text or "")
    assert "€99.99" in (reminder.body_text or "")
    assert "$1,000.01 and €99.99" in (reminder.body_text or "")  # never summed across currencies
    assert reminder.subject and reminder.body_html and "Reply" not in reminder.subject


def test_the_billing_contact_is_chosen_and_an_executive_only_account_is_held(
    load: Any, plan: Any, runtime: Runtime
) -> None:
    load(customer(1, **due(7)), customer(2, **due(7)))
    now = runtime.clock.now()
    with runtime.writing() as session:
        session.add(
            Contact(
                customer_id=1,
                name="The CEO",
                email="ceo@c1.example",
                role="executive",
                created_at=now,
                updated_at=now,
            )
        )
        session.execute(update(Contact).where(Contact.customer_id == 2).values(role="executive"))
    doc = plan()
    assert [r["contact"] for r in doc["reminders"]] == ["ap@c1.example"]
    assert held(doc) == {"C-2": "no_contact"}


# --- escalations -------------------------------------------------------------------------------


def test_an_escalate_step_opens_an_escalation_for_the_owner_not_a_message(
    load: Any, plan: Any, runtime: Runtime
) -> None:
    load(customer(1, owner_slack_id="U07DANA01", **due(30)))
    doc = plan()
    reminder = doc["reminders"][0]
    assert (reminder["action"], reminder["channel"], reminder["escalate_to"]) == (
        "escalate",
        None,
        "U07DANA01",
    )
    with runtime.sessions() as session:
        escalation = session.scalars(select(Escalation)).one()
        stored = session.scalars(select(Reminder)).one()
    assert (escalation.state, escalation.owner_slack_id) == ("open", "U07DANA01")
    assert stored.body_text is None and stored.channel is None


def test_never_automate_customers_are_always_escalated(load: Any, plan: Any) -> None:
    load(customer(1, never_automate="true", **due(-3)))
    reminder = plan()["reminders"][0]
    assert (reminder["action"], reminder["reason"]) == ("escalate", "never_automate")


def test_escalations_without_an_owner_follow_the_tier_route(
    load: Any, plan: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBOT_ESCALATION_ROUTES", "standard=S0FINANCE,strategic=U0BOSS")
    load(customer(1, **due(30)), customer(2, tier="transactional", **due(30)))
    routed = {r["customer"]: r["escalate_to"] for r in plan()["reminders"]}
    assert routed == {"C-1": "S0FINANCE", "C-2": None}  # None: the finance channel


def test_unanswered_touches_escalate_early(load: Any, plan: Any, runtime: Runtime) -> None:
    load(customer(1, **due(14)))
    _touch(runtime, invoice="I-1", times=3)
    reminder = plan()["reminders"][0]
    assert reminder["action"] == "escalate"
    assert reminder["reason"] == "3 touches on I-1 without an answer or a payment"


def test_a_reply_answers_the_touches_before_it(load: Any, plan: Any, runtime: Runtime) -> None:
    load(customer(1, **due(14)))
    _touch(runtime, invoice="I-1", times=3)
    with runtime.writing() as session:
        session.add(
            InboundMessage(
                channel="email",
                received_at=runtime.clock.now() - timedelta(hours=80),
                sender="ap@c1.example",
                raw="",
                text="paying friday",
                customer_id=1,
            )
        )
    assert plan()["reminders"][0]["action"] == "remind"


# --- held back, each with its reason ------------------------------------------------------------


def test_every_hold_reason(
    load: Any, plan: Any, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBOT_WRITE_OFF", "USD=5.00")
    load(
        customer(1, **due(7)),  # paid (open with a zero balance, as some sources leave it)
        customer(2, **due(7)),  # disputed
        customer(3, **due(7)),  # paused
        customer(4, **due(7)),  # promised to pay next week
        customer(5, **due(7)),  # on a payment plan
        customer(6, balance="4.99", **due(7)),  # below the write-off threshold
        customer(7, **due(7)),  # opted out of every channel
        customer(8, email="", phone="+13125550101", sms_consent="false", **due(7)),  # no consent
        customer(9, email="", **due(7)),  # nothing to reach
        customer(10, **due(7)),  # touched yesterday
        customer(11, timezone="", **due(7)),  # no timezone anywhere
        customer(12, **due(7)),  # has an open escalation
        customer(13, **due(7)),  # promise date has passed: reminded again
    )
    now = runtime.clock.now()
    with runtime.writing() as session:

        def invoice_of(n: int) -> Any:
            return update(Invoice).where(Invoice.number == f"I-{n}")

        session.execute(invoice_of(1).values(balance=Decimal(0)))
        session.execute(invoice_of(2).values(disputed=True, dispute_reason="wrong quantity"))
        session.execute(
            update(Customer)
            .where(Customer.external_id == "C-3")
            .values(paused_until=now + timedelta(days=5))
        )
        session.execute(invoice_of(4).values(promise_date=TODAY + timedelta(days=4)))
        session.execute(invoice_of(5).values(payment_plan=True))
        session.execute(
            update(Contact).where(Contact.email == "ap@c7.example").values(email_opted_out_at=now)
        )
        session.execute(invoice_of(13).values(promise_date=TODAY - timedelta(days=1)))
        session.add(Escalation(customer_id=12, reason="dispute", state="claimed", opened_at=now))
    _touch(runtime, invoice="I-10", times=1, hours_ago=20)
    doc = plan()
    assert held(doc) == {
        "C-1": "paid",
        "C-2": "disputed",
        "C-3": "paused",
        "C-4": "promised",
        "C-5": "payment_plan",
        "C-6": "below_write_off",
        "C-7": "opted_out",
        "C-8": "no_sms_consent",
        "C-9": "no_contact",
        "C-10": "frequency_cap",
        "C-11": "unknown_timezone",
        "C-12": "escalated",
    }
    assert [r["customer"] for r in doc["reminders"]] == ["C-13"]
    assert all(set(h) >= {"customer", "invoices", "reason"} for h in doc["held"])


def test_a_reminder_awaiting_approval_holds_the_next_one(load: Any, plan: Any) -> None:
    load(customer(1, **due(6)))
    assert steps(plan()) == {"C-1": "due_today"}
    assert held(plan("--date", "2026-03-17")) == {"C-1": "pending_approval"}


def test_the_frequency_cap_counts_three_days_across_channels(
    load: Any, plan: Any, runtime: Runtime
) -> None:
    load(customer(1, **due(7)))
    _touch(runtime, invoice="I-1", times=1, hours_ago=71, channel="sms")
    assert held(plan()) == {"C-1": "frequency_cap"}


def test_sms_is_used_only_with_consent_and_email_when_sms_is_refused(load: Any, plan: Any) -> None:
    load(
        customer(1, tier="transactional", phone="+13125550101", sms_consent="true", **due(0)),
        customer(2, tier="transactional", phone="+13125550102", sms_consent="false", **due(0)),
    )
    channels = {r["customer"]: r["channel"] for r in plan()["reminders"]}
    assert channels == {"C-1": "sms", "C-2": "email"}


# --- when it may be sent ------------------------------------------------------------------------


def test_send_after_is_inside_business_hours_in_the_contacts_timezone(
    load: Any, plan: Any, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(
        customer(1, timezone="America/Los_Angeles", **due(7)),
        customer(2, timezone="America/New_York", **due(7)),
    )
    send_after = {r["customer"]: r["send_after"] for r in plan()["reminders"]}
    assert send_after == {
        "C-1": "2026-03-16T16:00:00+00:00",  # 09:00 in Los Angeles (PDT)
        "C-2": "2026-03-16T14:00:00+00:00",  # now: 10:00 in New York is inside the window
    }


def test_a_plan_on_the_saturday_before_dst_sends_on_monday_morning_local(
    load: Any, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBOT_NOW", "2026-03-07T15:00:00+00:00")  # Saturday; DST starts Sunday
    load(customer(1, timezone="America/New_York", issue_date="2026-01-01", due_date="2026-02-28"))
    doc = json.loads(cli("plan", "--json").stdout)
    assert doc["reminders"][0]["send_after"] == "2026-03-09T13:00:00+00:00"  # 09:00 EDT


def test_conflicting_timezones_send_only_when_every_zone_is_inside_its_window(
    load: Any, plan: Any
) -> None:
    # Address in Los Angeles, phone in New York: 09:00 PT is 12:00 ET, inside both windows.
    load(customer(1, timezone="America/Los_Angeles", phone="+12125550100", **due(7)))
    assert plan()["reminders"][0]["send_after"] == "2026-03-16T16:00:00+00:00"


def test_zones_with_no_shared_hours_are_held(load: Any, plan: Any) -> None:
    load(customer(1, timezone="Europe/Berlin", phone="+14155550100", **due(7)))
    assert held(plan()) == {"C-1": "no_send_window"}


# --- playbooks: auto-approve, segments, versions ------------------------------------------------


def test_auto_approve_steps_are_stored_approved_by_the_playbook(
    load: Any, plan: Any, runtime: Runtime
) -> None:
    load(customer(1, tier="transactional", **due(0)), customer(2, **due(0)))
    plan()
    with runtime.sessions() as session:
        states = dict(session.execute(select(Reminder.customer_id, Reminder.state)).all())
        approver = session.scalar(select(Reminder.approved_by).where(Reminder.customer_id == 1))
    assert states == {1: "approved", 2: "planned"}
    assert approver == "playbook"


def test_customers_tagged_patient_follow_the_patients_ladder(load: Any, plan: Any) -> None:
    load(customer(1, tags="patient", **due(10)), customer(2, tags="contractor", **due(10)))
    assert steps(plan()) == {"C-1": "plus10", "C-2": "plus7"}


def test_every_reminder_records_the_playbook_version_that_produced_it(
    load: Any, plan: Any, cli: Any, runtime: Runtime
) -> None:
    load(customer(1, **due(7)))
    doc = plan()
    assert doc["playbook_version"] == 1
    with runtime.sessions() as session:
        version_id = session.scalar(select(Reminder.playbook_version_id))
    assert version_id is not None


# --- pilot scope ---------------------------------------------------------------------------------


def test_outside_the_pilot_scope_is_observe_only_and_stores_nothing(
    load: Any, plan: Any, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBOT_PILOT_TAGS", "clinic")
    load(customer(1, tags="clinic", **due(7)), customer(2, tags="contractor", **due(7)))
    doc = plan()
    assert [r["customer"] for r in doc["reminders"]] == ["C-1"]
    assert [o["customer"] for o in doc["observed"]] == ["C-2"]
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Reminder)) == 1


def test_the_pilot_caps_how_many_invoices_are_automated(
    load: Any, plan: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBOT_PILOT_MAX_INVOICES", "2")
    load(
        customer(1, invoice_number="A", **due(7)),
        customer(1, invoice_number="B", **due(7)),
        customer(2, **due(7)),
    )
    doc = plan()
    assert [r["customer"] for r in doc["reminders"]] == ["C-1"]
    assert [o["customer"] for o in doc["observed"]] == ["C-2"]


# --- output ------------------------------------------------------------------------------------


def test_plan_json_has_designs_shape(load: Any, plan: Any) -> None:
    load(customer(1, **due(7)))
    doc = plan()
    assert doc["date"] == "2026-03-16"
    reminder = doc["reminders"][0]
    assert {
        "id",
        "customer",
        "channel",
        "step",
        "action",
        "invoices",
        "send_after",
    } <= reminder.keys()
    assert isinstance(reminder["id"], int)
    assert (reminder["customer"], reminder["channel"], reminder["action"]) == (
        "C-1",
        "email",
        "remind",
    )
    assert reminder["invoices"] == ["I-1"]
    assert reminder["amounts"] == {"USD": "1200.00"}


def test_a_dry_run_stores_nothing(load: Any, plan: Any, runtime: Runtime) -> None:
    load(customer(1, **due(7)))
    doc = plan("--dry-run")
    assert doc["reminders"][0]["id"] is None
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Reminder)) == 0
    assert steps(plan()) == {"C-1": "plus7"}  # and the real run still plans it


def test_the_readable_plan_has_a_summary_by_tier_and_the_held_reasons(load: Any, cli: Any) -> None:
    load(customer(1, **due(7)), customer(2, email="", **due(7)))
    result = cli("plan")
    assert result.code == 0
    for text in ("Plan for 2026-03-16", "standard", "Held back (1)", "no_contact", "ap@c1.example"):
        assert text in result.stdout


def test_the_forecast_shows_the_workload_if_nobody_pays(
    load: Any, cli: Any, runtime: Runtime
) -> None:
    load(customer(1, **due(-3)), customer(2, tier="transactional", **due(-1)))
    result = cli("plan", "--forecast", "31", "--json")
    assert result.code == 0, result.stderr
    days = json.loads(result.stdout)
    assert len(days) == 31
    touches = sum(d["emails"] + d["sms"] for d in days)
    escalations = sum(d["escalations"] for d in days)
    # C-1 (standard, due in 3 days): -3, 0, +7, +14 (its +30 falls after the 31 days).
    # C-2 (transactional, due tomorrow): 0, +3, +7, +14, then +21 escalates.
    assert (touches, escalations) == (8, 1)
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Reminder)) == 0
    assert "Forecast for the next 31 days" in cli("plan", "--forecast", "31").stdout


def test_a_bad_date_is_a_user_error(cli: Any) -> None:
    result = cli("plan", "--date", "tomorrow")
    assert result.code == 1
    assert "is not a date" in result.stderr


# --- helpers -----------------------------------------------------------------------------------


def _touch(
    runtime: Runtime, invoice: str, times: int, hours_ago: int = 80, channel: str = "email"
) -> None:
    """Record `times` reminders already sent for the invoice, the latest `hours_ago` hours ago."""
    now = runtime.clock.now()
    with runtime.writing() as session:
        target = session.scalars(select(Invoice).where(Invoice.number == invoice)).one()
        for n in range(times):
            sent = now - timedelta(hours=hours_ago + 24 * 7 * n)
            reminder = Reminder(
                customer_id=target.customer_id,
                channel=channel,
                plan_date=sent.date(),
                step_key=f"earlier{n}",
                state="sent",
                sent_at=sent,
                idempotency_key=f"test:{invoice}:{n}",
                created_at=sent,
                updated_at=sent,
            )
            session.add(reminder)
            session.flush()
            session.add(
                ReminderInvoice(
                    reminder_id=reminder.id,
                    invoice_id=target.id,
                    step_key=f"earlier{n}",
                    due_date=target.due_date,
                )
            )


def _send_everything(runtime: Runtime) -> None:
    now = runtime.clock.now()
    with runtime.writing() as session:
        session.execute(
            update(Reminder)
            .where(Reminder.state.in_(("planned", "approved")))
            .values(state="sent", sent_at=now - timedelta(days=5))
        )


def test_event_log_records_each_planned_reminder(load: Any, plan: Any, runtime: Runtime) -> None:
    load(customer(1, **due(7)), customer(2, **due(30)))
    plan()
    with runtime.sessions() as session:
        kinds = session.scalars(
            select(Event.kind).where(Event.kind.in_(("reminder.planned", "escalation.opened")))
        ).all()
    assert sorted(kinds) == ["escalation.opened", "reminder.planned", "reminder.planned"]


def test_what_counts_as_resolved_is_configurable(
    load: Any, plan: Any, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBOT_RESOLVED_WHEN", "promise")  # a payment plan no longer stops reminders
    load(customer(1, **due(7)), customer(2, **due(7)))
    with runtime.writing() as session:
        session.execute(update(Invoice).values(payment_plan=True))
        session.execute(
            update(Invoice)
            .where(Invoice.number == "I-2")
            .values(promise_date=TODAY + timedelta(days=2))
        )
    doc = plan()
    assert steps(doc) == {"C-1": "plus7"}
    assert held(doc) == {"C-2": "promised"}


def test_a_second_run_the_same_day_never_crashes_and_never_sends_a_second_message(
    load: Any, plan: Any, runtime: Runtime
) -> None:
    load(customer(1, invoice_number="A", **due(7)))
    assert steps(plan()) == {"C-1": "plus7"}
    with runtime.writing() as session:
        session.execute(update(Reminder).values(state="skipped"))
    # Another invoice of the same customer becomes due later that day (a new import).
    load(customer(1, invoice_number="A", **due(7)), customer(1, invoice_number="B", **due(0)))
    doc = plan()
    assert doc["reminders"] == []
    assert held(doc) == {"C-1": "already_planned_today"}
    assert steps(plan("--date", "2026-03-17")) == {"C-1": "due_today"}  # the next day it goes


def test_a_message_that_breaks_the_linter_once_rendered_is_held(
    load: Any, plan: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "ARBOT_BUSINESS_NAME", "Brightwater " * 25
    )  # pushes the text past 2 segments
    load(customer(1, tier="transactional", phone="+13125550101", sms_consent="true", **due(0)))
    doc = plan()
    assert doc["reminders"] == []
    assert held(doc) == {"C-1": "template_error"}
    assert "at most 2 are sent" in doc["held"][0]["detail"]
