"""An escalation's parent message that Slack took though its answer was lost (a timeout or a
dropped connection) is not posted a second time by the sweep: the message carries its escalation
as metadata, and a post after one that met such an error first looks for it in the channel.
Driven through the real flows against the recording Slack fake."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Customer, Escalation
from bot.core.runtime import Runtime
from bot.escalations import posting, service
from bot.escalations.sweeps import sweep
from bot.planning.flows import plan_day
from integrations.slack_chat import SlackChat, web_client
from tests.support.ledger_files import row, write

TODAY = date(2026, 3, 16)


def _chat(slack_api: Any) -> SlackChat:
    return SlackChat(web_client("xoxb-test", slack_api.url))


def _parents(slack_api: Any) -> list[dict[str, Any]]:
    """Escalation messages in the channel (not in a thread), with their live buttons."""
    return [
        m
        for m in slack_api.messages.values()
        if m.get("thread_ts") in (None, m["ts"])
        and any(
            element.get("action_id") == "esc_claim"
            for block in m.get("blocks") or []
            for element in block.get("elements") or []
        )
    ]


def _thread(slack_api: Any, ts: str) -> list[str]:
    return [
        str(m.get("text")) + str(m.get("blocks"))
        for m in slack_api.messages.values()
        if m.get("thread_ts") == ts and m["ts"] != ts
    ]


def test_an_escalation_slack_posted_but_whose_answer_was_lost_is_not_posted_twice(
    cli: Any, slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    rt = slack_runtime
    assert cli("import-csv", str(write(tmp_path / "l.csv", [row()]))).code == 0  # 30 days late
    slack_api.lose_answer_next("chat.postMessage")  # the escalation's parent message
    plan_day(rt, TODAY, links=None, slack=_chat(slack_api))
    assert len(_parents(slack_api)) == 1
    with rt.writing() as session:  # a reason added before the sweep posts it again
        customer_id = session.scalars(select(Customer.id)).one()
        service.open_or_add(session, customer_id, "send_unknown", clock.now(), detail="meanwhile")

    clock.advance(timedelta(minutes=5))
    report = sweep(rt, _chat(slack_api))
    [parent] = _parents(slack_api)  # one card with live buttons
    with rt.sessions() as session:
        escalation = session.scalars(select(Escalation)).one()
    assert report.posted == [escalation.id]
    assert (escalation.slack_channel, escalation.slack_thread_ts) == (
        parent["channel"],
        parent["ts"],
    )
    assert [c["ts"] for c in slack_api.calls("chat.update")].count(parent["ts"]) >= 1  # redrawn
    history = _thread(slack_api, parent["ts"])
    assert "may or may not have gone out" in " ".join(history)  # with the added reason
    assert sweep(rt, _chat(slack_api)).notes_posted == 0  # told once, in the history
    assert len(_parents(slack_api)) == 1


def test_an_escalation_whose_post_slack_refused_is_posted_without_looking_first(
    cli: Any, slack_runtime: Runtime, slack_api: Any, tmp_path: Path
) -> None:
    rt = slack_runtime
    assert cli("import-csv", str(write(tmp_path / "l.csv", [row()]))).code == 0
    with rt.writing() as session:
        customer_id = session.scalars(select(Customer.id)).one()
        service.open_or_add(session, customer_id, "replied", rt.clock.now())
    slack_api.fail_next("chat.postMessage", "fatal_error")  # Slack said no: nothing posted

    assert posting.post_new(rt, _chat(slack_api)) == []
    assert len(posting.post_new(rt, _chat(slack_api))) == 1
    assert slack_api.calls("conversations.history") == []
    assert len(_parents(slack_api)) == 1
