"""Approve, edit, skip: one conditional UPDATE each; the second actor changes nothing."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot.core.models import Contact, EditExample, Event, Invoice, Reminder
from bot.core.runtime import Runtime
from bot.core.vocabulary import AUTO_APPROVER, ReminderAction
from bot.reminders import approvals
from bot.reminders.stale import StaleRules
from tests.support.ledger_files import a_week_late, write

TODAY = date(2026, 3, 16)
RULES = StaleRules()  # the settings' default: a promise or a payment plan counts as resolved
OPTED_OUT_AT = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)


def planned(cli: Any, tmp_path: Path, customers: int = 1) -> None:
    rows = a_week_late(customers)
    assert cli("import-csv", str(write(tmp_path / "l.csv", rows))).code == 0
    assert cli("plan").code == 0


def test_approve_moves_planned_to_approved_once_and_names_the_first_approver(
    cli: Any, runtime: Runtime, tmp_path: Path
) -> None:
    planned(cli, tmp_path)
    now = runtime.clock.now()
    with runtime.writing() as session:
        first = approvals.approve(session, 1, "U0FIRST", now, rules=RULES)
    with runtime.writing() as session:
        second = approvals.approve(session, 1, "U0SECOND", now, rules=RULES)
    assert (first.changed, first.state, first.by) == (True, "approved", "U0FIRST")
    assert (second.changed, second.state, second.by) == (False, "approved", "U0FIRST")
    with runtime.sessions() as session:
        events = session.scalars(select(Event.actor).where(Event.kind == "reminder.approved")).all()
    assert events == ["U0FIRST"]


def test_two_approvers_racing_in_threads_approve_exactly_once(
    cli: Any, runtime: Runtime, tmp_path: Path
) -> None:
    planned(cli, tmp_path)
    results: list[approvals.Decision] = []
    barrier = threading.Barrier(4)

    def click(user: str) -> None:
        barrier.wait()
        with runtime.writing() as session:
            results.append(approvals.approve(session, 1, user, runtime.clock.now(), rules=RULES))

    threads = [threading.Thread(target=click, args=(f"U0RACER{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sum(r.changed for r in results) == 1
    winner = next(r.by for r in results if r.changed)
    assert all(r.by == winner for r in results)
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).where(Event.kind == "reminder.approved")) == 1


def test_skip_records_the_reason_and_cannot_follow_an_approval(
    cli: Any, runtime: Runtime, tmp_path: Path
) -> None:
    planned(cli, tmp_path, customers=2)
    now = runtime.clock.now()
    with runtime.writing() as session:
        skipped = approvals.skip(session, 1, "U0A", "talked to them on the phone", now)
        approvals.approve(session, 2, "U0A", now, rules=RULES)
        late_skip = approvals.skip(session, 2, "U0B", "", now)
    assert (skipped.changed, skipped.state) == (True, "skipped")
    assert (late_skip.changed, late_skip.state, late_skip.by) == (False, "approved", "U0A")
    with runtime.sessions() as session:
        payload = session.scalar(select(Event.payload).where(Event.kind == "reminder.skipped"))
    assert payload == {"reason": "talked to them on the phone"}


def test_an_edit_is_linted_saved_as_an_example_and_approved(
    cli: Any, runtime: Runtime, tmp_path: Path
) -> None:
    planned(cli, tmp_path)
    now = runtime.clock.now()
    with runtime.writing() as session:
        refused, problems = approvals.edit(
            session, 1, "U0A", "Final notice", "Pay or we call our attorney.", now, rules=RULES
        )
    assert not refused.changed
    assert "final notice" in problems["subject"] or "threats" in problems["subject"]
    assert "lawyers and attorneys" in problems["body"]
    with runtime.sessions() as session:
        original = session.get(Reminder, 1)
        assert original is not None and original.body_text is not None
        good = "Just checking in on invoice I-1.\n\n" + original.body_text
    with runtime.writing() as session:
        decision, problems = approvals.edit(
            session, 1, "U0A", "Quick check-in on I-1", good, now, rules=RULES
        )
    assert problems == {} and decision.changed and decision.state == "approved"
    with runtime.sessions() as session:
        reminder = session.get(Reminder, 1)
        example = session.scalars(select(EditExample)).one()
    assert reminder is not None and reminder.subject == "Quick check-in on I-1"
    assert reminder.body_html is not None and "<p>Hi Maria,</p>" in reminder.body_html
    assert (example.tier, example.step_key, example.editor) == ("standard", "plus7", "U0A")
    assert "Quick check-in on I-1" in example.after and example.before != example.after


def test_approve_all_approves_only_the_waiting_reminders_of_that_tier(
    cli: Any, runtime: Runtime, tmp_path: Path
) -> None:
    planned(cli, tmp_path, customers=3)
    now = runtime.clock.now()
    with runtime.writing() as session:
        approvals.skip(session, 3, "U0A", "", now)
        done = approvals.approve_all(session, TODAY, "standard", "U0A", now, rules=RULES)
        again = approvals.approve_all(session, TODAY, "standard", "U0B", now, rules=RULES)
    assert (sorted(done.approved), done.cancelled) == ([1, 2], {})
    assert again.changed() == []


def test_an_approval_is_withdrawn_once_but_never_the_playbooks_own(
    cli: Any, runtime: Runtime, tmp_path: Path
) -> None:
    """Undo takes back a person's approval; a reminder the playbook let go by itself has no
    approval of a person's to take back, so it stays approved."""
    planned(cli, tmp_path, customers=2)
    now = runtime.clock.now()
    with runtime.writing() as session:
        approvals.approve(session, 1, "U0FIRST", now, rules=RULES)
        session.execute(
            update(Reminder)
            .where(Reminder.id == 2)
            .values(state="approved", approved_by=AUTO_APPROVER, approved_at=now)
        )
    with runtime.writing() as session:
        undone = approvals.withdraw(session, 1, "U0FIRST", now)
        kept = approvals.withdraw(session, 2, "U0FIRST", now)
    assert (undone.changed, undone.state) == (True, "planned")
    assert (kept.changed, kept.state) == (False, "approved")


def edited_text(runtime: Runtime, reminder_id: int) -> str:
    """The reminder's own text with a sentence added: an edit the linter lets through."""
    with runtime.sessions() as session:
        reminder = session.get(Reminder, reminder_id)
        assert reminder is not None and reminder.body_text is not None
        return "Just checking in.\n\n" + reminder.body_text


# What made a reminder stale between the plan and the edit, and the reason it is cancelled for.
GONE_STALE = {
    "disputed": (Invoice, {"disputed": True}, "disputed"),
    "voided": (Invoice, {"status": "void", "balance": Decimal(0)}, "voided"),
    "opted_out": (Contact, {"email_opted_out_at": OPTED_OUT_AT}, "opted_out"),
}


@pytest.mark.parametrize("since", sorted(GONE_STALE))
def test_save_and_approve_cancels_a_reminder_gone_stale_since_it_was_planned(
    cli: Any, runtime: Runtime, tmp_path: Path, since: str
) -> None:
    """The Edit form's Save and approve asks what Approve asks: a stale reminder is cancelled
    with its reason, and neither approved nor kept as an example of the team's writing."""
    planned(cli, tmp_path)
    table, change, reason = GONE_STALE[since]
    body = edited_text(runtime, 1)
    with runtime.writing() as session:
        session.execute(update(table).values(**change))
    with runtime.writing() as session:
        decision, problems = approvals.edit(
            session, 1, "U0A", "Invoice I-1", body, runtime.clock.now(), rules=RULES
        )
    assert problems == {}
    assert (decision.changed, decision.state, decision.reason) == (False, "cancelled", reason)
    with runtime.sessions() as session:
        kinds = session.scalars(
            select(Event.kind).where(Event.reminder_id == 1, Event.kind != "reminder.planned")
        ).all()
        assert session.scalar(select(func.count()).select_from(EditExample)) == 0
    assert kinds == ["reminder.cancelled"]


def test_save_and_approve_leaves_a_reminder_that_is_no_message_to_send(
    cli: Any, runtime: Runtime, tmp_path: Path
) -> None:
    """As Approve does, an edit approves only a reminder that is a message (`remind`)."""
    planned(cli, tmp_path)
    body = edited_text(runtime, 1)
    with runtime.writing() as session:
        session.execute(update(Reminder).values(action=ReminderAction.ESCALATE))
    with runtime.writing() as session:
        decision, _ = approvals.edit(
            session, 1, "U0A", "Invoice I-1", body, runtime.clock.now(), rules=RULES
        )
    assert (decision.changed, decision.state) == (False, "planned")


def test_an_edited_text_is_refused_when_it_takes_more_segments_than_are_sent() -> None:
    """A curly apostrophe makes the whole text UCS-2 (67 characters a segment): its 240
    characters are 4 segments, which the sender would refuse after the approval."""
    body = (
        "Hi Sam, a quick note from Brightwater Supply Co.: invoice INV-1 for $100.00 is still"
        " open. You can pay here: https://pay.example/p/abc123 - if it\u2019s already on its"
        " way, thank you! Any question, just reply and we\u2019ll help. Reply STOP to opt out."
    )
    problems = approvals.edit_problems("sms", None, body, body, ("INV-1",))
    assert problems["body"].startswith(f"takes 4 segments ({len(body)} characters;")
    assert "'\u2019' (U+2019) is not in the GSM-7 alphabet" in problems["body"]
    plain = body.replace("\u2019", "'")
    assert approvals.edit_problems("sms", None, plain, body, ("INV-1",)) == {}


def test_a_subject_of_only_spaces_is_refused_as_empty() -> None:
    problems = approvals.edit_problems("email", "   ", "Hi Maria, invoice I-1 is open.")
    assert problems["subject"] == "is empty"


def test_undo_all_takes_back_only_what_its_approver_approved_at_that_instant(
    cli: Any, runtime: Runtime, tmp_path: Path
) -> None:
    """Another person's approval made at the same instant is theirs: an Undo of Approve all
    leaves it approved."""
    planned(cli, tmp_path, customers=3)
    now = runtime.clock.now()
    with runtime.writing() as session:
        session.execute(update(Reminder).values(slack_ts="1700000001.000100"))
        approvals.approve(session, 1, "U0B", now, rules=RULES)
        done = approvals.approve_all(session, TODAY, "standard", "U0A", now, rules=RULES)
    with runtime.sessions() as session:
        together = approvals.approved_together(session, TODAY, "standard", now, "U0A")
    assert done.approved == together == [2, 3]
