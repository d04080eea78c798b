"""LLM drafting is told the reminder's language, and a checked draft in that language is used."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.core.models import Reminder
from bot.core.runtime import Runtime
from bot.ledger.upsert import apply_batch
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from bot.reminders.drafting import polish
from integrations.csv_ledger import read_ledger_csv
from integrations.llm_draft import LlmDrafter
from tests.support.fake_llm import FakeLlm
from tests.support.ledger_files import HEADER, a_week_late, write


@pytest.fixture
def llm() -> Iterator[FakeLlm]:
    fake = FakeLlm().start()
    yield fake
    fake.stop()


def _planned(runtime: Runtime, tmp_path: Path, language: str) -> Reminder:
    rows = a_week_late(1, language=language)
    with runtime.writing() as session:
        ledger = write(tmp_path / "l.csv", rows, header=[*HEADER, "language"])
        apply_batch(session, read_ledger_csv(ledger), runtime.clock.now())
        now = runtime.clock.now()
        run_plan(session, PlanRules.from_settings(runtime.settings), runtime.today(), now, False)
        reminder = session.scalars(select(Reminder)).one()
        session.expunge(reminder)
    return reminder


def test_a_spanish_reminder_is_drafted_in_spanish_and_the_model_is_told_so(
    runtime: Runtime, llm: FakeLlm, tmp_path: Path
) -> None:
    planned = _planned(runtime, tmp_path, "es")
    assert planned.language == "es" and "Buenos días" in (planned.body_text or "")
    body = (planned.body_text or "") + "\nLe agradecemos mucho su atención."
    llm.answers(subject=planned.subject, body=body)
    drafter = LlmDrafter(llm.base_url, "test-model", None, timeout_seconds=2)
    try:
        assert polish(runtime, [planned.id], drafter) == [planned.id]
    finally:
        drafter.close()
    sent = llm.requests[0].body["messages"][1]["content"]
    assert "Language: Spanish (es)" in sent
    assert "Write in the language named" in llm.requests[0].body["messages"][0]["content"]
    with runtime.sessions() as session:
        assert session.get(Reminder, planned.id).body_text == body  # type: ignore[union-attr]


def test_an_english_reminder_is_drafted_in_english(
    runtime: Runtime, llm: FakeLlm, tmp_path: Path
) -> None:
    planned = _planned(runtime, tmp_path, "")
    llm.answers(subject=planned.subject, body=(planned.body_text or "") + " Thanks!")
    drafter = LlmDrafter(llm.base_url, "test-model", None, timeout_seconds=2)
    try:
        polish(runtime, [planned.id], drafter)
    finally:
        drafter.close()
    assert "Language: English (en)" in llm.requests[0].body["messages"][1]["content"]
