"""The rows a stored plan writes stay byte for byte what they were: the golden ledger
(tests/bot/planning/test_messages_golden.py) is planned and stored on two days, with invoice copies
attached, and every row it wrote (reminders with their rendered texts, the invoices and steps each
covers, the copies, the escalations and the audit events) is reduced to one digest per table,
compared with the digests below. The same digests hold on SQLite and on PostgreSQL, and whatever
the size of the parts the plan is written in."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, Text, cast, select
from sqlalchemy.orm import Session

from bot.core.models import Escalation, Event, Reminder, ReminderAttachment, ReminderInvoice
from bot.planning import store
from bot.planning.planner import PlanRules
from bot.planning.store import run_plan
from tests.bot.planning.test_messages_golden import FIRST_DAY, NOW, _runtime

# sha256 of each table's rows, in the form `_rows` gives them. Change only for a meant change to
# what a stored plan writes, and say why.
EXPECTED = {
    "reminders": "65646db3a80dcc14f60c4cec21cc17d9499a09e8c4bc5d9487fcc6bf59b63aa5",
    "reminder_invoices": "dad3abd5b836404b6ed0015649773852d7a476fa1aee05271c86c44e24997127",
    "reminder_attachments": "3d56628f1e32962cb7dedebec736fba94ecc9f53994b17612eda798f8eb785a1",
    "escalations": "2e12e7393e7f6226bfeb9d4f5d2f51194c86b7eb0dcac2810bfeac9737096f7d",
    "events": "94922f89efe5baebeba8af27759ca635a40ffcd5845e638bca43624442a4c317",
}
LATER = 9  # the second stored day, after the first


def _value(value: Any) -> str:
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    if isinstance(value, date | Decimal):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _rows(session: Session) -> dict[str, list[str]]:
    """Each table's rows a stored plan writes, one line a row in a fixed order (events without
    their ids, which the import's own events before them decide)."""
    tables: dict[str, list[str]] = {}
    for model, order in (
        (Reminder, ("id",)),
        (ReminderInvoice, ("reminder_id", "invoice_id")),
        (ReminderAttachment, ("reminder_id", "invoice_id")),
        (Escalation, ("id",)),
    ):
        table = _table(model)
        query = select(table).order_by(*(table.c[name] for name in order))
        tables[table.name] = [
            "|".join(_value(value) for value in row) for row in session.execute(query)
        ]
    events = _table(Event)
    # the payload as the database holds it: its text, not the value read back from it
    columns = [
        cast(column, Text) if column.name == "payload" else column
        for column in events.c
        if column.name != "id"
    ]
    query = (
        select(*columns)
        .where(events.c.reminder_id.is_not(None))
        .order_by(events.c.reminder_id, events.c.kind)
    )
    tables["events"] = ["|".join(_value(value) for value in row) for row in session.execute(query)]
    return tables


def _digests(database_url: str, folder: Path) -> tuple[dict[str, str], dict[str, int]]:
    with _runtime(database_url, folder) as runtime:
        rules = replace(PlanRules.from_settings(runtime.settings), attach_invoice_pdf=True)
        for offset in (0, LATER):
            with runtime.writing() as session:
                run_plan(
                    session,
                    rules,
                    FIRST_DAY + timedelta(days=offset),
                    NOW + timedelta(days=offset),
                    dry_run=False,
                )
        with runtime.sessions() as session:
            tables = _rows(session)
    digests = {
        name: hashlib.sha256("\n".join(rows).encode()).hexdigest() for name, rows in tables.items()
    }
    return digests, {name: len(rows) for name, rows in tables.items()}


@pytest.mark.parametrize("part", [store.WRITE_EVERY, 7])
def test_a_stored_plan_writes_exactly_the_rows_it_always_wrote(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: int
) -> None:
    monkeypatch.setattr(store, "WRITE_EVERY", part)
    digests, counts = _digests(database_url, tmp_path)
    assert all(counts.values()), counts  # every table has rows to compare
    assert digests == EXPECTED
