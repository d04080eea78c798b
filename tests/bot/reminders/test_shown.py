"""The version of a reminder's message an approver was shown (bot/reminders/shown.py): it changes
with whatever would change what is sent, and an approval counts only while it holds, up to the
UPDATE that writes it."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.core.models import Customer, Reminder
from bot.core.runtime import Runtime
from bot.reminders import approvals
from bot.reminders.shown import Message, text_version, versions_of
from bot.reminders.stale import StaleRules
from integrations.base.slack import TEXT_VERSION_LENGTH
from tests.support.ledger_files import a_week_late, write

RULES = StaleRules()
MESSAGE = ("email", "ap@c1.example", "Invoice I-1", "Hello,\n\nI-1 is late.\n", "<p>Hello</p>")


def planned(cli: Any, tmp_path: Path) -> None:
    assert cli("import-csv", str(write(tmp_path / "l.csv", a_week_late(1)))).code == 0
    assert cli("plan").code == 0


def test_a_version_is_short_and_changes_with_the_channel_address_subject_and_text() -> None:
    version = text_version(*MESSAGE)
    assert len(version) == TEXT_VERSION_LENGTH and version == text_version(*MESSAGE)
    for field in range(len(MESSAGE)):
        changed = list(MESSAGE)
        changed[field] = f"{changed[field]} "
        assert text_version(*changed) != version, field
    assert text_version("sms", None, None, "x", None) != text_version("sms", "", None, "x", None)


def test_an_approval_of_a_message_no_longer_the_one_shown_leaves_it_waiting(
    cli: Any, runtime: Runtime, tmp_path: Path
) -> None:
    planned(cli, tmp_path)
    with runtime.sessions() as session:
        shown = versions_of(session, [1])[1]
    with runtime.writing() as session:
        session.execute(update(Reminder).where(Reminder.id == 1).values(subject="New subject"))
    with runtime.writing() as session:
        decision = approvals.approve(
            session, 1, "U0A", runtime.clock.now(), rules=RULES, shown=shown
        )
    assert (decision.changed, decision.changed_since, decision.state) == (False, True, "planned")
    with runtime.writing() as session:
        now_shown = versions_of(session, [1])[1]
        decision = approvals.approve(
            session, 1, "U0A", runtime.clock.now(), rules=RULES, shown=now_shown
        )
    assert (decision.changed, decision.state) == (True, "approved")


def test_a_message_changed_after_its_version_was_checked_is_not_approved_by_the_update(
    cli: Any, runtime: Runtime, tmp_path: Path
) -> None:
    planned(cli, tmp_path)
    with runtime.writing() as session:
        reminder = session.get(Reminder, 1)  # read, and checked below against what was shown,
        assert reminder is not None
        shown = versions_of(session, [1])[1]
        session.execute(  # while an edit lands in the database before the approval is written
            update(Reminder)
            .where(Reminder.id == 1)
            .values(body_text="Edited meanwhile")
            .execution_options(synchronize_session=False)
        )
        decision = approvals.approve(
            session, 1, "U0A", runtime.clock.now(), rules=RULES, shown=shown
        )
    assert (decision.changed, decision.state) == (False, "planned")


def edit_meanwhile(session: Session) -> None:
    """An edit of reminder 1 committed by someone else while an approval is under way: the
    Reminder objects this session loaded before it still hold the text they read."""
    session.execute(
        update(Reminder)
        .where(Reminder.id == 1)
        .values(body_text="Edited meanwhile")
        .execution_options(synchronize_session=False)
    )


def approve_the_tier(runtime: Runtime, shown: str) -> approvals.BulkDecision:
    """Approve all over reminder 1's tier (its card posted), its header having shown reminder
    1's message `shown`."""
    with runtime.writing() as session:
        session.execute(update(Reminder).values(slack_channel="C1", slack_ts="1.1"))
        day, tier = session.execute(
            select(Reminder.plan_date, Customer.tier)
            .join(Customer, Customer.id == Reminder.customer_id)
            .where(Reminder.id == 1)
        ).one()
    with runtime.writing() as session:
        return approvals.approve_all(
            session,
            day,
            tier,
            "U0A",
            runtime.clock.now(),
            rules=RULES,
            shown=approvals.Shown(ids=frozenset([1]), versions={1: shown}),
        )


def assert_left_waiting(runtime: Runtime, done: approvals.BulkDecision) -> None:
    assert (done.approved, list(done.left)) == ([], [1])
    with runtime.sessions() as session:
        reminder = session.get(Reminder, 1)
        assert reminder is not None
        assert (reminder.state, reminder.body_text) == ("planned", "Edited meanwhile")


def test_approve_all_checks_the_message_as_stored_not_as_its_reminders_were_read_before(
    cli: Any, runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planned(cli, tmp_path)
    with runtime.sessions() as session:
        shown = versions_of(session, [1])[1]
    real = approvals.stale_reasons

    def then_edited(
        session: Session, reminders: list[Reminder], now: datetime, rules: StaleRules
    ) -> dict[int, str]:
        """Whether the reminders Approve all read are stale; and an edit lands just after."""
        stale = real(session, reminders, now, rules)
        edit_meanwhile(session)
        return stale

    monkeypatch.setattr(approvals, "stale_reasons", then_edited)
    assert_left_waiting(runtime, approve_the_tier(runtime, shown))


def test_approve_all_does_not_approve_a_message_edited_after_its_version_was_checked(
    cli: Any, runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planned(cli, tmp_path)
    with runtime.sessions() as session:
        shown = versions_of(session, [1])[1]
    checked = approvals.messages_of

    def then_edited(session: Session, reminder_ids: Collection[int]) -> dict[int, Message]:
        """The messages as checked; and an edit lands before the approval is written."""
        messages = checked(session, reminder_ids)
        edit_meanwhile(session)
        return messages

    monkeypatch.setattr(approvals, "messages_of", then_edited)
    assert_left_waiting(runtime, approve_the_tier(runtime, shown))
