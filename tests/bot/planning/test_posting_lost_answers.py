"""A post whose answer Slack lost on the way back (the connection dropped or timed out after
Slack had posted) is not posted a second time: the client does not send it again by itself, and
the plan's sweep finds the card message Slack already has before posting what is missing. An
answer cut off part-way reaches the core as Slack unreachable, like any other lost answer.
Driven through the real flows against the recording Slack fake, which can do a call and close
the connection without answering, or part-way through its answer."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.core.clock import FixedClock
from bot.core.errors import UserError
from bot.core.models import Reminder
from bot.core.runtime import Runtime
from bot.escalations.sweeps import sweep
from bot.planning import plan_posts
from bot.planning.flows import plan_day
from integrations.base.slack import PlanSummary
from integrations.errors import SlackFailed
from integrations.slack_chat import SlackChat, web_client
from tests.support.ledger_files import row, write

pytestmark = pytest.mark.usefixtures("slack_retries_at_once")  # a repeated update, at once

TODAY = date(2026, 3, 16)


def _ledger(cli: Any, tmp_path: Path, customers: int) -> None:
    rows = [
        row(
            customer_id=f"C-{n}",
            customer_name=f"Customer {n}",
            email=f"ap@c{n}.example",
            invoice_number=f"INV-{n}",
            issue_date="2026-01-01",
            due_date=(TODAY - timedelta(days=7)).isoformat(),
            amount="1200.00",
            balance="1200.00",
        )
        for n in range(customers)
    ]
    assert cli("import-csv", str(write(tmp_path / "ledger.csv", rows))).code == 0


def _chat(slack_api: Any) -> SlackChat:
    return SlackChat(web_client("xoxb-test", slack_api.url))


def _approve_buttons(slack_api: Any) -> list[str]:
    return [
        str(element.get("value"))
        for message in slack_api.messages.values()
        for block in message.get("blocks") or []
        for element in block.get("elements") or []
        if element.get("action_id") == "approve"
    ]


def _unposted(runtime: Runtime) -> int:
    with runtime.sessions() as session:
        return (
            session.scalar(
                select(func.count(Reminder.id)).where(
                    Reminder.plan_date == TODAY, Reminder.slack_ts.is_(None)
                )
            )
            or 0
        )


def test_a_post_whose_answer_was_lost_is_not_sent_again_by_the_client(slack_api: Any) -> None:
    slack_api.lose_answer_next("chat.postMessage")
    with pytest.raises(SlackFailed) as failed:
        _chat(slack_api).post_text("C0FINANCE", "The plan reached this channel late")
    assert failed.value.error.startswith("unreachable")
    assert len(slack_api.calls("chat.postMessage")) == 1
    assert len(slack_api.messages) == 1  # Slack has it once


def test_an_update_whose_answer_was_lost_is_sent_again(slack_api: Any) -> None:
    chat = _chat(slack_api)
    posted = chat.client.chat_postMessage(channel="C0FINANCE", text="before")
    slack_api.lose_answer_next("chat.update")
    chat.client.chat_update(channel="C0FINANCE", ts=posted["ts"], text="after")  # no raise
    assert len(slack_api.calls("chat.update")) == 2


def test_a_card_message_slack_posted_but_whose_answer_was_lost_is_not_posted_twice(
    cli: Any, slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    _ledger(cli, tmp_path, customers=24)
    slack_api.lose_answer_next("chat.postMessage", after=2)  # header, first cards, then lost
    with pytest.raises(UserError) as refused:
        plan_day(slack_runtime, TODAY, links=None, slack=_chat(slack_api))
    assert "could not be reached" in str(refused.value)
    assert _unposted(slack_runtime) > 0

    clock.advance(timedelta(minutes=5))
    sweep(slack_runtime, _chat(slack_api))
    assert _unposted(slack_runtime) == 0
    buttons = _approve_buttons(slack_api)
    with slack_runtime.sessions() as session:
        planned = session.scalar(select(func.count(Reminder.id)).where(Reminder.plan_date == TODAY))
        stored = set(session.scalars(select(Reminder.slack_ts).where(Reminder.plan_date == TODAY)))
    assert len(buttons) == len(set(buttons)) == planned  # every card once
    cards_in_slack = {
        ts
        for (_, ts), m in slack_api.messages.items()
        for block in m.get("blocks") or []
        for element in block.get("elements") or []
        if element.get("action_id") == "approve"
    }
    assert cards_in_slack == stored  # every card message is the one its reminders point at


def test_a_repost_slack_will_not_let_look_at_the_channel_still_posts_the_missing_cards(
    cli: Any, slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    _ledger(cli, tmp_path, customers=24)
    slack_api.server_error_next("chat.postMessage", after=2)  # nothing posted: a clean 500
    with pytest.raises(UserError):
        plan_day(slack_runtime, TODAY, links=None, slack=_chat(slack_api))
    slack_api.fail_next("conversations.history", "missing_scope")  # installed without history

    clock.advance(timedelta(minutes=5))
    sweep(slack_runtime, _chat(slack_api))
    assert [r["response"]["error"] for r in slack_api.records("conversations.history")] == [
        "missing_scope"
    ]
    assert _unposted(slack_runtime) == 0
    buttons = _approve_buttons(slack_api)
    assert len(buttons) == len(set(buttons)) == 24


def test_an_answer_cut_off_part_way_reaches_the_core_as_slack_unreachable(slack_api: Any) -> None:
    slack_api.cut_answer_next("chat.postMessage")
    with pytest.raises(SlackFailed) as failed:
        _chat(slack_api).post_text("C0FINANCE", "The plan reached this channel late")
    assert failed.value.error == "unreachable: IncompleteRead"
    assert len(slack_api.messages) == 1


def test_a_plan_whose_answer_was_cut_off_is_stored_said_so_and_posted_once_by_the_sweep(
    cli: Any, slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    _ledger(cli, tmp_path, customers=24)
    slack_api.cut_answer_next("chat.postMessage", after=1)  # the header, then the first cards
    with pytest.raises(UserError) as refused:
        plan_day(slack_runtime, TODAY, links=None, slack=_chat(slack_api))
    assert "could not be reached (unreachable: IncompleteRead)" in str(refused.value)

    clock.advance(timedelta(minutes=5))
    sweep(slack_runtime, _chat(slack_api))
    assert _unposted(slack_runtime) == 0
    buttons = _approve_buttons(slack_api)
    assert len(buttons) == len(set(buttons)) == 24


def _headers(slack_api: Any) -> list[dict[str, Any]]:
    return [
        m
        for m in slack_api.messages.values()
        if str(m.get("text") or "").startswith("Collections plan for")
    ]


def test_a_plan_header_slack_posted_but_whose_answer_was_lost_is_not_posted_twice(
    cli: Any, slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    _ledger(cli, tmp_path, customers=3)
    slack_api.lose_answer_next("chat.postMessage")  # the header: Slack has it, arbot no ts
    with pytest.raises(UserError):
        plan_day(slack_runtime, TODAY, links=None, slack=_chat(slack_api))
    assert len(_headers(slack_api)) == 1

    clock.advance(timedelta(minutes=5))
    sweep(slack_runtime, _chat(slack_api))
    assert _unposted(slack_runtime) == 0
    [header] = _headers(slack_api)  # one header, and it is the one arbot redraws
    with slack_runtime.sessions() as session:
        row = plan_posts.row_of(session, TODAY)
        assert row is not None and row.header_ts == header["ts"]
    assert [c["ts"] for c in slack_api.calls("chat.update")] == [header["ts"]]  # counts drawn
    assert len(_approve_buttons(slack_api)) == 3


def test_a_lost_header_is_posted_again_where_slack_will_not_let_arbot_read_the_channel(
    cli: Any, slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    _ledger(cli, tmp_path, customers=3)
    slack_api.lose_answer_next("chat.postMessage")
    with pytest.raises(UserError):
        plan_day(slack_runtime, TODAY, links=None, slack=_chat(slack_api))
    slack_api.fail_next("conversations.history", "missing_scope")  # installed without history

    clock.advance(timedelta(minutes=5))
    sweep(slack_runtime, _chat(slack_api))
    assert [r["response"]["error"] for r in slack_api.records("conversations.history")] == [
        "missing_scope"
    ]
    assert _unposted(slack_runtime) == 0
    assert len(_headers(slack_api)) == 2  # as before: the plan reaches the channel all the same
    assert len(_approve_buttons(slack_api)) == 3


def test_a_header_of_another_workspace_or_day_is_not_taken_for_the_plans(
    slack_api: Any,
) -> None:
    chat = _chat(slack_api)
    for day, workspace in ((TODAY, "T0OTHER"), (TODAY - timedelta(days=1), "")):
        chat.post_plan(
            "C0FINANCE", PlanSummary(day, (), ()), [], lambda *_: None, workspace=workspace
        )
    posted = chat.post_plan(
        "C0FINANCE", PlanSummary(TODAY, (), ()), [], lambda *_: None, header_maybe_posted=True
    )
    assert len(_headers(slack_api)) == 3
    assert posted.header_ts == _headers(slack_api)[-1]["ts"]
