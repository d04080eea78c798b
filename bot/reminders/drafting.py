"""Polished drafts for the reminders a person will approve, when LLM drafting is switched on.

Only `planned` reminders are touched (never auto-approved ones: a drafted message always goes
past a person), and a draft replaces the template's text only if the linter accepts it and it
keeps exactly the facts of the original (each invoice number, amount and the payment link; none
lost, none added). The original stays in the audit log (`reminder.drafted`), and the approver
can still Edit it.
"""

from __future__ import annotations

from sqlalchemy import select, update

from bot.core import audit
from bot.core.models import Customer, Reminder
from bot.core.runtime import Runtime
from bot.reminders.approvals import _html_of, edit_problems, recent_examples
from bot.reminders.message_facts import facts
from integrations.base.outbound import DraftAnswer, Drafter


def polish(runtime: Runtime, reminder_ids: list[int], drafter: Drafter) -> list[int]:
    """Returns the ids whose text was replaced by a checked draft."""
    with runtime.sessions() as session:
        rows = session.execute(
            select(Reminder, Customer.tier)
            .join(Customer, Customer.id == Reminder.customer_id)
            .where(Reminder.id.in_(reminder_ids), Reminder.state == "planned")
        ).all()
        work = [
            (
                r.id,
                r.channel or "email",
                r.subject,
                r.body_text or "",
                recent_examples(session, tier, r.step_key),
                r.language,
            )
            for r, tier in rows
            if r.body_text
        ]
    replaced = []
    for reminder_id, channel, subject, body, examples, language in work:
        # outside any transaction; told the message's language
        answer = drafter.draft(channel, subject, body, examples, language)
        if answer is None or not _keeps_facts(body, subject, answer):
            continue
        new_subject = answer.subject if channel == "email" else None
        if edit_problems(channel, new_subject, answer.body):
            continue
        now = runtime.clock.now()
        with runtime.writing() as session:
            changed = session.execute(
                update(Reminder)
                .where(Reminder.id == reminder_id, Reminder.state == "planned")
                .values(
                    subject=new_subject if channel == "email" else None,
                    body_text=answer.body,
                    body_html=_html_of(answer.body) if channel == "email" else None,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if changed.rowcount == 1:  # type: ignore[attr-defined]
                audit.record(
                    session,
                    now,
                    "reminder.drafted",
                    reminder_id=reminder_id,
                    payload={"before": body, "after": answer.body},
                )
                replaced.append(reminder_id)
    return replaced


def _keeps_facts(body: str, subject: str | None, answer: DraftAnswer) -> bool:
    """Exactly the same facts: none lost, and none added (an example from another customer's
    message must never bring its invoice or amount into this one)."""
    return facts(body + " " + (subject or "")) == facts(answer.body + " " + (answer.subject or ""))
