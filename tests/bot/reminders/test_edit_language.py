"""An approver's edit of a reminder written in Spanish is checked in Spanish: its opt-out line
counts, and dropping the amount (written 1.234,56 €) or the offer of payment details is refused."""

from __future__ import annotations

from pathlib import Path

from bot.core.runtime import Runtime
from bot.reminders import approvals
from bot.reminders.stale import StaleRules
from tests.playbooks.test_languages import plan_one


def test_a_spanish_edit_keeps_its_facts_or_is_refused(runtime: Runtime, tmp_path: Path) -> None:
    reminder = plan_one(runtime, tmp_path, "es")
    body = reminder.body_text or ""
    assert "1.234,56" in body and "datos de pago" in body
    now = runtime.clock.now()
    with runtime.writing() as session:
        dropped = body.replace("por importe de 1.234,56\u00a0€", "").replace(
            "le enviaremos los datos de pago", "le contestaremos"
        )
        decision, problems = approvals.edit(
            session, reminder.id, "U0A", reminder.subject, dropped, now, rules=StaleRules()
        )
        assert not decision.changed
        assert "the amount 1.234,56" in problems["body"]
        assert "the offer to send the payment details" in problems["body"]
        threat = body + "\nDe lo contrario, pasaremos el expediente a una agencia de cobros."
        decision, problems = approvals.edit(
            session, reminder.id, "U0A", reminder.subject, threat, now, rules=StaleRules()
        )
        assert not decision.changed and "collection agencies" in problems["body"]
        kept = body.replace("Esperamos que se encuentre bien. ", "")
        decision, problems = approvals.edit(
            session, reminder.id, "U0A", reminder.subject, kept, now, rules=StaleRules()
        )
        assert decision.changed, problems
