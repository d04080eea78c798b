"""An instalment's reminder asks for the instalment: its card says so, and so does the plan
header's Approve all (its confirmation and what it says is waiting), not the balance of the
invoices the plan covers; and its card names the step in words, not by its key. Posted through
the real flow to the recording Slack fake."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Customer, Reminder
from bot.core.runtime import Runtime
from bot.escalations import plans, service
from bot.ledger.upsert import apply_batch
from bot.planning.flows import plan_day
from integrations.csv_ledger import read_ledger_csv
from integrations.slack_chat import SlackChat, web_client
from tests.support.ledger_files import row, write

REMINDED = date(2026, 3, 17)  # three days before the first instalment


def test_an_instalment_reminder_asks_for_the_instalment_in_words_on_its_card_and_header(
    slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    rt = slack_runtime
    rows = [row(invoice_number="INV-7", due_date="2026-03-01", balance="1200.00")]
    with rt.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), clock.now())
        customer_id = session.scalars(select(Customer.id)).one()
        escalation, _ = service.open_or_add(session, customer_id, "replied", clock.now())
        plans.record(
            session,
            escalation.id,
            "U0APPROVER",
            "account",
            [(date(2026, 3, 20), Decimal("400.00")), (date(2026, 4, 20), Decimal("800.00"))],
            clock.now(),
        )
    clock.set(datetime(2026, 3, 17, 14, 0, tzinfo=UTC))
    plan_day(rt, REMINDED, links=None, slack=SlackChat(web_client("xoxb-test", slack_api.url)))
    with rt.sessions() as session:
        reminder = session.scalars(select(Reminder)).one()
    assert reminder.step_key.startswith("instalment-") and "$400.00" in (reminder.subject or "")

    card = slack_api.messages[(reminder.slack_channel, reminder.slack_ts)]
    fields = [f["text"] for b in card["blocks"] for f in b.get("fields") or []]
    assert "*Asks for*\n$400.00" in fields
    assert "*Step*\nReminder of payment plan instalment 1" in fields  # not its step key
    [header] = [m for m in slack_api.messages.values() if m["text"].startswith("Collections plan")]
    button = next(
        e
        for b in header["blocks"]
        for e in b.get("elements") or []
        if str(e.get("action_id", "")).startswith("approve_all_")
    )
    assert "asking for $400.00" in button["confirm"]["text"]["text"]
    assert "$1,200.00" not in json.dumps(button)
