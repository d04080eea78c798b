"""Optional LLM drafting against a local OpenAI-compatible fake: a checked draft replaces the
template's text of a reminder waiting for approval; one that drops a fact, fails the linter, or
never answers leaves the template's text; auto-approved reminders are never redrafted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.core.models import EditExample, Event, Reminder
from bot.core.runtime import Runtime
from bot.ledger.upsert import apply_batch
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from bot.reminders.drafting import facts, polish
from integrations.csv_ledger import read_ledger_csv
from integrations.llm_draft import LlmDrafter
from tests.support.fake_llm import FakeLlm
from tests.support.ledger_files import a_week_late, write


@pytest.fixture
def llm() -> Iterator[FakeLlm]:
    fake = FakeLlm().start()
    yield fake
    fake.stop()


@pytest.fixture
def planned(runtime: Runtime, tmp_path: Path) -> Reminder:
    with runtime.writing() as session:
        batch = read_ledger_csv(write(tmp_path / "l.csv", a_week_late(1)))
        apply_batch(session, batch, runtime.clock.now())
        run_plan(
            session,
            PlanRules.from_settings(runtime.settings),
            runtime.today(),
            runtime.clock.now(),
            False,
        )
        reminder = session.scalars(select(Reminder)).one()
        session.add(
            EditExample(
                tier="standard",
                step_key=reminder.step_key,
                before="x",
                after="Hi there, a gentle nudge",
                editor="U1",
                created_at=runtime.clock.now(),
            )
        )
        session.expunge(reminder)
    assert reminder.state == "planned" and reminder.channel == "email"
    return reminder


def _run(runtime: Runtime, llm: FakeLlm, reminder: Reminder) -> list[int]:
    drafter = LlmDrafter(llm.base_url, "test-model", "sk-test", timeout_seconds=2)
    try:
        return polish(runtime, [reminder.id], drafter)
    finally:
        drafter.close()


def _stored(runtime: Runtime, reminder: Reminder) -> Reminder:
    with runtime.sessions() as session:
        found = session.get(Reminder, reminder.id)
        assert found is not None
        session.expunge(found)
        return found


def test_a_draft_that_keeps_every_fact_replaces_the_text_and_is_logged(
    runtime: Runtime, llm: FakeLlm, planned: Reminder
) -> None:
    body = (planned.body_text or "").replace("Hello", "Hi") + "\nThanks so much for your help."
    llm.answers(subject=planned.subject, body=body)

    assert _run(runtime, llm, planned) == [planned.id]

    after = _stored(runtime, planned)
    assert after.body_text == body and after.state == "planned"  # still needs a person
    sent = llm.requests[0].body["messages"][1]["content"]
    assert "a gentle nudge" in sent  # the team's own edit, as an example
    with runtime.sessions() as session:
        event = session.scalars(select(Event).where(Event.kind == "reminder.drafted")).one()
    assert event.payload["before"] == planned.body_text


def test_a_draft_that_drops_an_amount_or_the_invoice_is_refused(
    runtime: Runtime, llm: FakeLlm, planned: Reminder
) -> None:
    assert facts(planned.body_text or "")  # the template's text carries numbers to keep
    llm.answers(
        subject=planned.subject, body="Hi, please pay what you owe us. Reply STOP to opt out."
    )

    assert _run(runtime, llm, planned) == []
    assert _stored(runtime, planned).body_text == planned.body_text


def test_a_draft_the_linter_refuses_is_not_used(
    runtime: Runtime, llm: FakeLlm, planned: Reminder
) -> None:
    threat = (planned.body_text or "") + "\nOtherwise we will refer this to a collection agency."
    llm.answers(subject=planned.subject, body=threat)

    assert _run(runtime, llm, planned) == []
    assert _stored(runtime, planned).body_text == planned.body_text


def test_no_answer_leaves_the_template(runtime: Runtime, llm: FakeLlm, planned: Reminder) -> None:
    llm.fails(500)
    assert _run(runtime, llm, planned) == []
    assert _stored(runtime, planned).body_text == planned.body_text


def test_an_auto_approved_reminder_is_never_redrafted(
    runtime: Runtime, llm: FakeLlm, planned: Reminder
) -> None:
    with runtime.writing() as session:
        session.get(Reminder, planned.id).state = "approved"  # type: ignore[union-attr]
    llm.answers(subject=planned.subject, body=(planned.body_text or "") + " Thanks!")

    assert _run(runtime, llm, planned) == []
    assert llm.requests == []


def test_a_draft_that_brings_in_another_customers_amount_is_refused(
    runtime: Runtime, llm: FakeLlm, planned: Reminder
) -> None:
    body = (planned.body_text or "") + "\nAlso INV-1042 for 3,480.00 is outstanding."
    llm.answers(subject=planned.subject, body=body)

    assert _run(runtime, llm, planned) == []
    assert _stored(runtime, planned).body_text == planned.body_text
