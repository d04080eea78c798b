"""The version of a reminder's message an approver was shown (bot/reminders/shown.py): it changes
with whatever would change what is sent, and an approval counts only while it holds, up to the
UPDATE that writes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import update

from bot.core.models import Reminder
from bot.core.runtime import Runtime
from bot.reminders import approvals
from bot.reminders.shown import text_version, versions_of
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
