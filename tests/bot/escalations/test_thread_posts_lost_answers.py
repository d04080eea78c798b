"""What arbot writes in an escalation's thread (a note owed for a reason added, the account's
history, a second escalation's "also needs" line) that Slack took though its answer was lost is
not posted a second time by the sweep: each message names what it is in its metadata, and a post
after one whose outcome is unknown first reads the thread's replies. A first try reads nothing,
and an install that may not read the channel posts as before. Driven through the real flows
against the recording Slack fake."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.core.clock import FixedClock
from bot.core.models import Customer, Escalation
from bot.core.runtime import Runtime
from bot.escalations import posting, service
from bot.escalations.sweeps import sweep
from bot.ledger.upsert import apply_batch
from integrations.csv_ledger import read_ledger_csv
from integrations.slack_chat import SlackChat, web_client
from tests.support.ledger_files import row, write

CHANNEL = "C0ESCALATE"


def _chat(slack_api: Any) -> SlackChat:
    return SlackChat(web_client("xoxb-test", slack_api.url))


def _customer(rt: Runtime, tmp_path: Path) -> int:
    with rt.writing() as session:
        apply_batch(session, read_ledger_csv(write(tmp_path / "l.csv", [row()])), rt.clock.now())
        customer_id = session.scalars(select(Customer.id)).one()
        service.open_or_add(session, customer_id, "replied", rt.clock.now())
        return customer_id


def _posted_thread(rt: Runtime, slack_api: Any, tmp_path: Path) -> tuple[int, str]:
    customer_id = _customer(rt, tmp_path)
    [escalation_id] = posting.post_new(rt, _chat(slack_api), CHANNEL)
    with rt.sessions() as session:
        escalation = session.get(Escalation, escalation_id)
        assert escalation is not None and escalation.slack_thread_ts
        return customer_id, escalation.slack_thread_ts


def _replies(slack_api: Any, thread_ts: str, containing: str) -> list[dict[str, Any]]:
    return [
        m
        for m in slack_api.messages.values()
        if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts and containing in m["text"]
    ]


def test_a_thread_note_slack_took_though_its_answer_was_lost_is_posted_once(
    slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    rt = slack_runtime
    customer_id, thread_ts = _posted_thread(rt, slack_api, tmp_path)
    with rt.writing() as session:
        service.open_or_add(session, customer_id, "disputed", clock.now(), detail="wrong qty")
    slack_api.lose_answer_next("chat.postMessage")

    assert sweep(rt, _chat(slack_api)).notes_posted == 0  # Slack has it; arbot cannot tell
    assert len(_replies(slack_api, thread_ts, "wrong qty")) == 1
    assert slack_api.calls("conversations.replies") == []  # a first try reads nothing
    clock.advance(timedelta(minutes=5))
    assert sweep(rt, _chat(slack_api)).notes_posted == 1  # found in the thread, and kept
    assert sweep(rt, _chat(slack_api)).notes_posted == 0
    assert len(_replies(slack_api, thread_ts, "wrong qty")) == 1
    assert slack_api.calls("conversations.replies")


def test_a_lost_thread_note_is_posted_again_where_slack_will_not_let_arbot_read_the_channel(
    slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    rt = slack_runtime
    customer_id, thread_ts = _posted_thread(rt, slack_api, tmp_path)
    with rt.writing() as session:
        service.open_or_add(session, customer_id, "disputed", clock.now(), detail="wrong qty")
    slack_api.lose_answer_next("chat.postMessage")
    sweep(rt, _chat(slack_api))
    slack_api.fail_next("conversations.replies", "missing_scope")

    clock.advance(timedelta(minutes=5))
    assert sweep(rt, _chat(slack_api)).notes_posted == 1
    assert len(_replies(slack_api, thread_ts, "wrong qty")) == 2  # as before: it is told


def test_a_thread_note_slack_refused_is_posted_again_without_reading_the_thread(
    slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    rt = slack_runtime
    customer_id, thread_ts = _posted_thread(rt, slack_api, tmp_path)
    with rt.writing() as session:
        service.open_or_add(session, customer_id, "disputed", clock.now(), detail="wrong qty")
    slack_api.fail_next("chat.postMessage", "fatal_error")
    sweep(rt, _chat(slack_api))

    clock.advance(timedelta(minutes=5))
    assert sweep(rt, _chat(slack_api)).notes_posted == 1
    assert slack_api.calls("conversations.replies") == []
    assert len(_replies(slack_api, thread_ts, "wrong qty")) == 1


def test_a_history_slack_took_though_its_answer_was_lost_is_posted_once(
    slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    rt = slack_runtime
    _customer(rt, tmp_path)
    slack_api.lose_answer_next("chat.postMessage", after=1)  # the parent is answered, not this
    [escalation_id] = posting.post_new(rt, _chat(slack_api), CHANNEL)
    with rt.sessions() as session:
        escalation = session.get(Escalation, escalation_id)
        assert escalation is not None and escalation.slack_thread_ts
        thread_ts = escalation.slack_thread_ts
    assert len(_replies(slack_api, thread_ts, "Account history")) == 1

    clock.advance(timedelta(minutes=5))
    assert sweep(rt, _chat(slack_api)).histories_posted == [escalation_id]
    assert len(_replies(slack_api, thread_ts, "Account history")) == 1
    assert sweep(rt, _chat(slack_api)).histories_posted == []


def test_a_second_escalations_line_slack_took_though_its_answer_was_lost_is_posted_once(
    slack_runtime: Runtime, slack_api: Any, clock: FixedClock, tmp_path: Path
) -> None:
    rt = slack_runtime
    customer_id, thread_ts = _posted_thread(rt, slack_api, tmp_path)
    with rt.writing() as session:  # a playbook step stores its escalation directly
        session.add(
            Escalation(
                customer_id=customer_id, reason="step plus30", state="open", opened_at=clock.now()
            )
        )
    slack_api.lose_answer_next("chat.postMessage")
    assert posting.post_new(rt, _chat(slack_api), CHANNEL) == []
    assert len(_replies(slack_api, thread_ts, "step plus30")) == 1

    clock.advance(timedelta(minutes=5))
    sweep(rt, _chat(slack_api))
    with rt.sessions() as session:
        threads = set(session.scalars(select(Escalation.slack_thread_ts)))
    assert threads == {thread_ts}
    assert len(_replies(slack_api, thread_ts, "step plus30")) == 1
