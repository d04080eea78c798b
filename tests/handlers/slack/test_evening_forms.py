"""An escalation's forms in the business's evening, when UTC is already on the next day: what the
form accepts against the business's date is what gets stored, through the real ASGI app with
signed requests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Customer, Escalation, Invoice, PlanInstalment
from bot.core.runtime import Runtime
from bot.escalations import posting, service
from bot.ledger.upsert import apply_batch
from integrations.csv_ledger import read_ledger_csv
from integrations.slack_chat import SlackChat, web_client
from tests.support.ledger_files import row, write
from tests.support.slack_requests import wait_for

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

# 20:30 on Monday the 16th in New York (the business's timezone), already the 17th in UTC
EVENING = datetime(2026, 3, 17, 0, 30, tzinfo=UTC)


@pytest.fixture
def thread(slack_runtime: Runtime, slack_api: Any, tmp_path: Path) -> Escalation:
    rt = slack_runtime
    rows = [row(invoice_number="INV-7", due_date="2026-03-01", balance="1200.00")]
    with rt.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", rows)), rt.clock.now())
        customer_id = session.scalars(select(Customer.id)).one()
        service.open_or_add(session, customer_id, "replied", rt.clock.now(), owner="U07DANA01")
    posting.post_new(rt, SlackChat(web_client("xoxb-test", slack_api.url)), "C0ESCALATE")
    with rt.sessions() as session:
        escalation = session.scalars(select(Escalation)).one()
        session.expunge(escalation)
        return escalation


def test_a_promise_for_today_recorded_in_the_evening_is_kept(
    served: Any, slack_runtime: Runtime, slack_api: Any, thread: Escalation, clock: FixedClock
) -> None:
    clock.set(EVENING)
    served.click("esc_promise", str(thread.id), channel="C0ESCALATE")
    wait_for(lambda: slack_api.calls("views.open"))
    modal = slack_api.calls("views.open")[-1]["view"]

    accepted = served.submit(
        "esc_promise",
        modal["private_metadata"],
        {"date": {"value": {"type": "datepicker", "selected_date": "2026-03-16"}}},
    )

    assert accepted.status_code == 200 and not accepted.content  # the form took today

    def promised() -> Any:
        with slack_runtime.sessions() as session:
            return session.scalars(select(Invoice.promise_date)).one()

    assert wait_for(promised) == date(2026, 3, 16)
    wait_for(lambda: any("promise to pay by 2026-03-16" in c["text"] for c in _posted(slack_api)))
    assert not any("in the past" in c["text"] for c in slack_api.calls("chat.postEphemeral"))


def test_a_payment_plan_starting_tomorrow_recorded_in_the_evening_is_kept(
    served: Any, slack_runtime: Runtime, slack_api: Any, thread: Escalation, clock: FixedClock
) -> None:
    clock.set(EVENING)
    served.click("esc_plan", str(thread.id), channel="C0ESCALATE")
    wait_for(lambda: slack_api.calls("views.open"))
    modal = slack_api.calls("views.open")[-1]["view"]
    values: dict[str, dict[str, Any]] = {
        "plan_scope": {"value": {"type": "static_select", "selected_option": {"value": "account"}}}
    }
    for n, (day, amount) in enumerate((("2026-03-17", "600.00"), ("2026-04-17", "600.00")), 1):
        values[f"plan_date_{n}"] = {"value": {"type": "datepicker", "selected_date": day}}
        values[f"plan_amount_{n}"] = {"value": {"type": "plain_text_input", "value": amount}}

    accepted = served.submit("esc_plan", modal["private_metadata"], values)

    assert accepted.status_code == 200 and not accepted.content  # the 17th is after today

    def stored() -> list[date]:
        with slack_runtime.sessions() as session:
            return list(session.scalars(select(PlanInstalment.due_on).order_by(PlanInstalment.seq)))

    assert wait_for(stored) == [date(2026, 3, 17), date(2026, 4, 17)]
    assert not any("after today" in c["text"] for c in slack_api.calls("chat.postEphemeral"))


def _posted(slack_api: Any) -> list[dict[str, Any]]:
    return [c for c in slack_api.calls("chat.postMessage") if "text" in c]
