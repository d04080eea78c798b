"""A running payment plan cancelled from its escalation's thread, through the real ASGI app with
signed requests and the recording Slack fake: the button asks first, only approvers may use it,
the plan ends with its instalment reminders, the history says who and when, and the reminder
ladder picks the account up again the next morning."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Escalation, Invoice, PaymentPlan, Reminder
from bot.core.runtime import Runtime
from bot.escalations import plans, posting
from bot.escalations.thread import history_of
from bot.planning.flows import plan_day
from integrations.slack_chat import SlackChat, web_client
from tests.handlers.slack.test_payment_plans import (
    META_CHANNEL,
    _at,
    _in_thread,
    _reminders,
    thread,
)
from tests.support.fake_slack import validate_blocks
from tests.support.slack_requests import wait_for

pytestmark = pytest.mark.slow  # the real app served over HTTP, end to end

__all__ = ["thread"]  # the fixture: a customer's escalation posted with its thread


def _button(slack_api: Any, escalation: Escalation, action_id: str) -> dict[str, Any] | None:
    message = slack_api.messages[(escalation.slack_channel, escalation.slack_thread_ts)]
    for block in message["blocks"]:
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id:
                return dict(element)
    return None


def _plan_state(rt: Runtime) -> str:
    with rt.sessions() as session:
        return session.scalars(select(PaymentPlan.state)).one()


def test_an_approver_cancels_a_running_plan_and_the_ladder_resumes_next_morning(
    served: Any,
    slack_runtime: Runtime,
    slack_api: Any,
    thread: Escalation,
    clock: FixedClock,
) -> None:
    rt = slack_runtime
    chat = SlackChat(web_client("xoxb-test", slack_api.url))
    with rt.writing() as session:
        plans.record(
            session,
            thread.id,
            "U0APPROVER",
            plans.ACCOUNT,
            [(date(2026, 3, 20), Decimal("600")), (date(2026, 4, 20), Decimal("600"))],
            clock.now(),
        )
    clock.set(_at(date(2026, 3, 17)))
    plan_day(rt, date(2026, 3, 17), links=None, slack=None)
    assert [(r.step_key, r.state) for r in _reminders(rt)] == [("instalment-1-1", "planned")]
    with rt.sessions() as session:
        posting.redraw(session, chat, thread.id, clock.now().date(), "America/New_York")

    button = _button(slack_api, thread, "esc_plan_cancel")
    assert button is not None and button["style"] == "danger"
    assert button["confirm"]["title"]["text"] == "Cancel the payment plan?"
    assert "resumes with the next morning's plan" in button["confirm"]["text"]["text"]
    assert _button(slack_api, thread, "esc_reopen") is not None
    message = slack_api.messages[(thread.slack_channel, thread.slack_thread_ts)]
    assert validate_blocks(message["blocks"]) == []

    served.click("esc_plan_cancel", str(thread.id), user="U0STRANGER", channel=META_CHANNEL)
    wait_for(lambda: slack_api.calls("chat.postEphemeral"))
    assert _plan_state(rt) == "active"

    served.click("esc_plan_cancel", str(thread.id), channel=META_CHANNEL)
    wait_for(lambda: _plan_state(rt) == "cancelled")
    note = wait_for(lambda: [t for t in _in_thread(slack_api, thread) if "cancelled the" in t])
    assert note[0] == (
        "<@U0APPROVER> cancelled the payment plan after 0 of 2 instalments ($0.00 of "
        "$1,200.00 paid). The reminder ladder resumes with the next morning's plan."
    )
    wait_for(lambda: _button(slack_api, thread, "esc_plan_cancel") is None)
    with rt.sessions() as session:
        assert session.scalars(select(Invoice.payment_plan)).one() is False
        instalment = session.scalars(select(Reminder)).one()
        assert (instalment.state, instalment.cancel_reason) == ("cancelled", "plan_cancelled")
        lines = [h.text for h in history_of(session, thread.customer_id, "America/New_York")]
    assert (
        "payment plan cancelled after 0 of 2 instalments (0.00 of 1200.00 USD paid) "
        "by <@U0APPROVER>"
    ) in lines

    served.click("esc_plan_cancel", str(thread.id), channel=META_CHANNEL)  # a second click
    wait_for(
        lambda: [
            c for c in slack_api.calls("chat.postEphemeral") if "nothing to cancel" in c["text"]
        ]
    )

    clock.set(_at(date(2026, 3, 18)))
    run = plan_day(rt, date(2026, 3, 18), links=None, slack=None).run
    assert "payment_plan" not in [h.reason for h in run.plan.held]
    ladder = [r for r in _reminders(rt) if not plans.is_instalment_step(r.step_key)]
    assert [(r.state, r.plan_date) for r in ladder] == [("planned", date(2026, 3, 18))]
    assert "esc_plan_cancel" not in json.dumps(
        slack_api.messages[(thread.slack_channel, thread.slack_thread_ts)]["blocks"]
    )
