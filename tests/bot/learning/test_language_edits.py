"""Edits of reminders written in another language never turn into a proposal for the English
template: softening Spanish messages says nothing of how the English one reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import update

from bot.core.models import Reminder
from bot.core.runtime import Runtime
from bot.learning import rules
from bot.reminders import approvals
from bot.reminders.stale import StaleRules
from tests.bot.learning.test_proposals import TODAY, plan_strategic, softer


def _soften_eight_of_ten(runtime: Runtime, ids: list[int]) -> None:
    now = runtime.clock.now()
    with runtime.writing() as session:
        for reminder_id in ids:
            reminder = session.get(Reminder, reminder_id)
            assert reminder is not None and reminder.subject is not None
            n = int(re.search(r"INV-1(\d\d)", reminder.subject).group(1))  # type: ignore[union-attr]
            subject, body = (
                softer(n)
                if n < 8
                else (reminder.subject, (reminder.body_text or "") + "\nWe appreciate it.")
            )
            decision, problems = approvals.edit(
                session, reminder_id, "U0A", subject, body, now, rules=StaleRules()
            )
            assert decision.changed, problems


@pytest.mark.parametrize(("language", "proposed"), [(None, True), ("es", False)])
def test_only_edits_of_english_messages_propose_a_softer_english_template(
    runtime: Runtime, tmp_path: Path, language: str | None, proposed: bool
) -> None:
    ids = plan_strategic(runtime, tmp_path, 10)
    with runtime.writing() as session:
        session.execute(update(Reminder).values(language=language))
    _soften_eight_of_ten(runtime, ids)
    with runtime.sessions() as session:
        found = [p.change for p in rules.evaluate(session, TODAY, runtime.settings.timezone)]
    assert ("softened:strategic:gentle" in found) is proposed
