"""The indexes that leave out rows whose column is empty (migration 0023): events' invoice_id and
reminder_id, and reminders' Slack message. Each is partial in the migrated schema as the model says,
migration 0023 goes down and up again, and every query on those columns still uses its index, on
SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import ClauseElement, Engine, create_engine, func, inspect, select, text

from bot.core import migrate
from bot.core.db import make_engine
from bot.core.models import Event, Reminder
from bot.core.runtime import Runtime

# index -> (table, the condition its rows meet)
PARTIAL = {
    "ix_events_invoice_id": ("events", "invoice_id IS NOT NULL"),
    "ix_events_reminder_id": ("events", "reminder_id IS NOT NULL"),
    "ix_reminders_slack_message": ("reminders", "slack_ts IS NOT NULL"),
}
CHANGES = ("invoice.balance_changed", "payment.allocated")

# Every query that reads through these indexes, as the code builds it, and the index it must use.
QUERIES: dict[str, tuple[ClauseElement, str]] = {
    # bot/reminders/stale.py: the last change of amount of a card's invoices
    "stale invoices": (
        select(Event.invoice_id, func.max(Event.at))
        .where(Event.invoice_id.in_([1, 2, 3]), Event.kind.in_(CHANGES))
        .group_by(Event.invoice_id),
        "ix_events_invoice_id",
    ),
    # bot/planning/facts.py: money arriving on each invoice answers the touches before it
    "paid invoices": (
        select(Event.invoice_id, func.max(Event.at))
        .where(Event.kind.in_(CHANGES), Event.invoice_id.is_not(None))
        .group_by(Event.invoice_id),
        "ix_events_invoice_id",
    ),
    # bot/reminders/approvals.py: who skipped, cancelled or approved a reminder
    "who acted": (
        select(Event.actor, Event.at)
        .where(Event.reminder_id == 7)
        .where(Event.kind.in_(("reminder.skipped", "reminder.cancelled", "reminder.approved")))
        .order_by(Event.id.desc()),
        "ix_events_reminder_id",
    ),
    # bot/planning/cards.py: who skipped each card of a message, and why
    "skips": (
        select(Event.reminder_id, Event.actor, Event.payload).where(
            Event.reminder_id.in_([1, 2, 3]), Event.kind == "reminder.skipped"
        ),
        "ix_events_reminder_id",
    ),
    # bot/planning/redraws.py: the cards of one Slack message, to redraw it
    "a message's cards": (
        select(Reminder)
        .where(Reminder.slack_channel == "C1", Reminder.slack_ts == "1700000000.000100")
        .order_by(Reminder.action.desc(), Reminder.id),
        "ix_reminders_slack_message",
    ),
    # the foreign keys' check when an invoice or a reminder is removed
    "an invoice's events": (select(Event.id).where(Event.invoice_id == 7), "ix_events_invoice_id"),
    "a reminder's events": (
        select(Event.id).where(Event.reminder_id == 7),
        "ix_events_reminder_id",
    ),
}


def _plan(engine: Engine, query: ClauseElement) -> str:
    """The query's plan as the database words it (PostgreSQL told to scan a table only when no
    index can serve, since on an empty table a scan is cheapest)."""
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.execute(text(f"EXPLAIN QUERY PLAN {sql}")).all()
            return "\n".join(row[-1] for row in rows)
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        return "\n".join(row[0] for row in connection.execute(text(f"EXPLAIN {sql}")))


@pytest.mark.parametrize("name", QUERIES)
def test_each_query_on_a_partial_index_still_uses_it(runtime: Runtime, name: str) -> None:
    query, index = QUERIES[name]
    plan = _plan(runtime.engine, query)
    assert index in plan, plan


def _where(engine: Engine, table: str, index: str) -> str | None:
    """The condition of a partial index as the database reflects it, None for a whole one."""
    found = {i["name"]: i for i in inspect(engine).get_indexes(table)}
    options = found[index].get("dialect_options", {})
    where = options.get(f"{engine.dialect.name}_where")
    return None if where is None else str(where).strip("() ")


def test_the_migrated_indexes_are_partial_as_the_model_says(runtime: Runtime) -> None:
    for index, (table, condition) in PARTIAL.items():
        assert _where(runtime.engine, table, index) == condition


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of its own (migrated by the test itself)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'partial.db'}"
        return
    from tests.conftest import PG_SERVER, POSTGRES

    if not POSTGRES:
        pytest.skip("PostgreSQL does not answer")
    schema = f"arbot_partial_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_SERVER)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_migration_0023_goes_down_to_whole_indexes_and_up_again(empty_url: str) -> None:
    from alembic import command

    engine = make_engine(empty_url)
    try:
        migrate.upgrade(engine)
        config = migrate.alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0022")
        for index, (table, _condition) in PARTIAL.items():
            assert _where(engine, table, index) is None
        assert migrate.upgrade(engine) is True
        for index, (table, condition) in PARTIAL.items():
            assert _where(engine, table, index) == condition
    finally:
        engine.dispose()
